/**
 * auth.yaml: the identities the scanner acts as, and the seed data it may use.
 *
 * ```yaml
 * identities:
 *   alice:
 *     roles: [user]
 *     login:
 *       method: POST
 *       path: /api/v2/login
 *       json: { username: alice, password: "${env:ALICE_PASSWORD}" }
 *       tokenPointer: /token
 *       as: bearer                 # or "header X-Token", "query access_token"
 *       refreshOnStatus: [401]
 *       expiresInPointer: /expires_in
 *   bob:   { roles: [user], bearer: "${env:BOB_TOKEN}" }
 *   robot: { roles: [user], apiKey: { header: X-API-Key, value: "${env:ROBOT_KEY}" } }
 *   guest: { anonymous: true }
 * seed:
 *   create: true                   # create objects through the spec's POST operations (default)
 *   ids: { alice: { accounts: [1] } }   # by type, operationId, path or "METHOD /path"
 * flows:                           # request sequences replayed for API6 (business flows)
 *   checkout:
 *     identity: alice
 *     repeat: 8
 *     steps:
 *       - { method: POST, path: /cart/items, json: { sku: A, qty: 1 } }
 *       - { method: POST, path: /checkout, capture: { orderId: /order/id } }
 *     cleanup:
 *       - { method: DELETE, path: "/orders/{{orderId}}" }
 * ```
 *
 * Parsed with `yaml`, validated with TypeBox + ajv; every problem is reported at once, naming the
 * field. Credential values are never put in a message.
 */
import { readFileSync } from 'node:fs'
import { type Static, Type } from '@sinclair/typebox'
import { Ajv, type ErrorObject } from 'ajv'
import { LineCounter, parseDocument } from 'yaml'
import type { Masker } from './mask.js'
import { pointerGet } from './schema-tools.js'
import { rankOf } from './roles.js'
import type { DeclaredFlow, IdentityInfo } from './types.js'

const HeaderName = Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", maxLength: 128 })

export const LoginConfig = Type.Object(
  {
    method: Type.Optional(Type.String({ pattern: '^[A-Za-z]{1,16}$', description: 'HTTP method (POST)' })),
    path: Type.String({ pattern: '^/', maxLength: 2048, description: 'Path of the login operation' }),
    json: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'JSON body' })),
    form: Type.Optional(
      Type.Record(Type.String(), Type.String(), { description: 'application/x-www-form-urlencoded body' }),
    ),
    headers: Type.Optional(Type.Record(HeaderName, Type.String())),
    tokenPointer: Type.String({
      pattern: '^(/.*)?$',
      description: 'JSON pointer to the token in the answer',
    }),
    as: Type.Optional(
      Type.String({
        pattern: "^(bearer|(header|query|cookie) [A-Za-z0-9!#$%&'*+.^_`|~-]+)$",
        description: '"bearer", "header NAME", "query NAME" or "cookie NAME"',
      }),
    ),
    refreshOnStatus: Type.Optional(
      Type.Array(Type.Integer({ minimum: 400, maximum: 599 }), { maxItems: 10 }),
    ),
    expiresInPointer: Type.Optional(Type.String({ pattern: '^(/.*)?$' })),
  },
  { additionalProperties: false },
)

export const IdentityConfig = Type.Object(
  {
    roles: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 })),
    bearer: Type.Optional(Type.String({ minLength: 1 })),
    apiKey: Type.Optional(
      Type.Object(
        {
          header: Type.Optional(HeaderName),
          query: Type.Optional(Type.String({ minLength: 1 })),
          value: Type.String({ minLength: 1 }),
        },
        { additionalProperties: false },
      ),
    ),
    login: Type.Optional(LoginConfig),
    anonymous: Type.Optional(Type.Boolean()),
    headers: Type.Optional(
      Type.Record(HeaderName, Type.String(), { description: 'Extra headers sent as this identity' }),
    ),
  },
  { additionalProperties: false },
)

const FlowStepConfig = Type.Object(
  {
    method: Type.String({ pattern: '^[A-Za-z]{1,16}$', description: 'HTTP method' }),
    path: Type.String({ pattern: '^/', maxLength: 2048, description: 'Path, {{name}} for a captured value' }),
    json: Type.Optional(Type.Unknown()),
    form: Type.Optional(Type.Record(Type.String(), Type.String())),
    headers: Type.Optional(Type.Record(HeaderName, Type.String())),
    expect: Type.Optional(Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), { maxItems: 20 })),
    capture: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z0-9_]{1,64}$' }), Type.String({ pattern: '^(/.*)?$' })),
    ),
  },
  { additionalProperties: false },
)

export const FlowConfig = Type.Object(
  {
    identity: Type.String({ minLength: 1 }),
    repeat: Type.Optional(Type.Integer({ minimum: 2, maximum: 50 })),
    steps: Type.Array(FlowStepConfig, { minItems: 1, maxItems: 20 }),
    cleanup: Type.Optional(Type.Array(FlowStepConfig, { maxItems: 20 })),
  },
  { additionalProperties: false },
)

export const AuthConfigSchema = Type.Object(
  {
    identities: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), IdentityConfig),
    flows: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), FlowConfig)),
    seed: Type.Optional(
      Type.Object(
        {
          create: Type.Optional(
            Type.Boolean({ description: 'Create objects through POST operations (default true)' }),
          ),
          ids: Type.Optional(
            Type.Record(
              Type.String(),
              Type.Record(
                Type.String(),
                Type.Array(Type.Union([Type.String(), Type.Integer()]), { maxItems: 100 }),
              ),
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)

export type AuthConfig = Static<typeof AuthConfigSchema>
export type IdentityConfigT = Static<typeof IdentityConfig>

export class AuthConfigError extends Error {
  // main.ts maps ConfigError to exit code 2.
  override name = 'ConfigError'
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: invalid auth config:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
  }
}

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true })
const validate = ajv.compile<AuthConfig>(AuthConfigSchema)

function fieldPath(instancePath: string): string {
  if (instancePath === '') return '(top level)'
  return instancePath
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((t, i) => (/^\d+$/.test(t) ? `[${t}]` : i === 0 ? t : `.${t}`))
    .join('')
}

function describe(e: ErrorObject): string {
  const at = fieldPath(e.instancePath)
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at}: unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`
    case 'required':
      return `${at}: missing field "${(e.params as { missingProperty: string }).missingProperty}"`
    case 'pattern': {
      const d = (e.parentSchema as { description?: string } | undefined)?.description
      return `${at}: invalid value (expected ${d ?? `to match ${(e.params as { pattern: string }).pattern}`})`
    }
    case 'propertyNames':
      return `${at}: invalid identity name (letters, digits, "_", "." and "-", at most 64)`
    default:
      return `${at}: ${e.message ?? 'invalid'}`
  }
}

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g

/**
 * Replaces `${env:NAME}` in every string. Returns the substituted strings (secrets, whatever
 * field they sit in) and problems for unset variables.
 */
function substitute(
  value: unknown,
  path: string,
  env: NodeJS.ProcessEnv,
  secrets: string[],
  problems: string[],
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${env:')) return value
    const out = value.replace(ENV_REF, (_m, name: string) => {
      const v = env[name]
      if (v === undefined) {
        problems.push(`${path}: environment variable ${name} is not set`)
        return ''
      }
      return v
    })
    secrets.push(out)
    return out
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, `${path}[${i}]`, env, secrets, problems))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value))
      out[k] = substitute(v, path ? `${path}.${k}` : k, env, secrets, problems)
    return out
  }
  return value
}

export interface ParsedAuth {
  config: AuthConfig
  /** Values that came from ${env:} (masked everywhere). */
  envSecrets: string[]
}

/** The flows of an auth.yaml, with defaults applied. */
export function declaredFlows(auth: ParsedAuth | undefined): DeclaredFlow[] {
  return Object.entries(auth?.config.flows ?? {}).map(([name, f]) => ({
    name,
    identity: f.identity,
    repeat: f.repeat ?? 8,
    steps: f.steps.map((s) => ({ ...s, method: s.method.toUpperCase() })),
    cleanup: (f.cleanup ?? []).map((s) => ({ ...s, method: s.method.toUpperCase() })),
  }))
}

/** Parses and validates auth.yaml text; throws AuthConfigError listing every problem. */
export function parseAuthConfig(
  text: string,
  file = 'auth.yaml',
  env: NodeJS.ProcessEnv = process.env,
): ParsedAuth {
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new AuthConfigError(
      file,
      doc.errors.map((e) => {
        const pos = e.pos?.[0] !== undefined ? lc.linePos(e.pos[0]) : undefined
        return `${pos ? `line ${pos.line}:${pos.col}: ` : ''}${e.message.split('\n')[0]}`
      }),
    )
  }
  let raw: unknown
  try {
    raw = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    // yaml refuses alias expansion beyond maxAliasCount (billion laughs).
    throw new AuthConfigError(file, [`cannot read the document: ${(err as Error).message.split('\n')[0]}`])
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new AuthConfigError(file, ['(top level): expected a mapping with "identities"'])
  }
  const problems: string[] = []
  const envSecrets: string[] = []
  const data = substitute(raw, '', env, envSecrets, problems)
  if (problems.length > 0) throw new AuthConfigError(file, problems)
  if (!validate(data)) {
    const seen = new Set<string>()
    for (const e of validate.errors ?? []) {
      // The union in seed.ids gives one error per branch; keep the first per place.
      const m = describe(e)
      if (!seen.has(m)) {
        seen.add(m)
        problems.push(m)
      }
    }
    throw new AuthConfigError(file, problems)
  }
  const config = data as AuthConfig
  const names = Object.keys(config.identities)
  if (names.length === 0) problems.push('identities: declare at least one identity')
  for (const [name, id] of Object.entries(config.identities)) {
    const kinds = (['bearer', 'apiKey', 'login'] as const).filter((k) => id[k] !== undefined)
    if (id.anonymous === true) kinds.push('anonymous' as never)
    if (kinds.length !== 1) {
      problems.push(
        `identities.${name}: give exactly one of bearer, apiKey, login or anonymous: true (found ${kinds.length === 0 ? 'none' : kinds.join(', ')})`,
      )
    }
    if (id.apiKey && (id.apiKey.header === undefined) === (id.apiKey.query === undefined)) {
      problems.push(`identities.${name}.apiKey: give exactly one of header or query`)
    }
    if (id.login && id.login.json !== undefined && id.login.form !== undefined) {
      problems.push(`identities.${name}.login: give json or form, not both`)
    }
  }
  for (const owner of Object.keys(config.seed?.ids ?? {})) {
    if (!names.includes(owner)) problems.push(`seed.ids.${owner}: no identity named "${owner}"`)
  }
  for (const [name, flow] of Object.entries(config.flows ?? {})) {
    if (!names.includes(flow.identity))
      problems.push(`flows.${name}.identity: no identity named "${flow.identity}"`)
    if (config.identities[flow.identity]?.anonymous === true && flow.steps.length === 0)
      problems.push(`flows.${name}: no steps`)
  }
  if (problems.length > 0) throw new AuthConfigError(file, problems)
  return { config, envSecrets }
}

/** Reads and parses an auth.yaml file (at most 1 MiB). */
export function loadAuthConfig(file: string, env: NodeJS.ProcessEnv = process.env): ParsedAuth {
  let text: string
  try {
    const buf = readFileSync(file)
    if (buf.length > 1024 * 1024) throw new AuthConfigError(file, ['the file is larger than 1 MiB'])
    text = buf.toString('utf8')
  } catch (err) {
    if (err instanceof AuthConfigError) throw err
    throw new AuthConfigError(file, [
      `cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    ])
  }
  return parseAuthConfig(text, file, env)
}

const SECRET_KEY = /pass|secret|token|key|pin|otp|credential/i

/** What a login or a static credential adds to a request. */
export interface Credentials {
  headers: Record<string, string>
  query: Record<string, string>
  /** The header that carries the credential itself (not the identity's extra headers), if any. */
  credentialHeader?: string
}

/** The raw sender the identity uses for its login (no credentials, not rate-limit exempt). */
export type LoginSender = (req: {
  method: string
  path: string
  headers: Record<string, string>
  body?: string
}) => Promise<{ status: number; json: unknown; headers: Record<string, string> }>

/** One identity at run time: its credentials, its login and refresh. */
export class Identity {
  readonly info: IdentityInfo
  private creds: Credentials = { headers: {}, query: {} }
  private expiresAt: number | undefined
  private pending: Promise<void> | undefined
  private readonly refreshOn: ReadonlySet<number>

  constructor(
    readonly name: string,
    readonly config: IdentityConfigT,
    private readonly masker: Masker,
    private readonly now: () => number = Date.now,
    extra: { throwaway?: boolean } = {},
  ) {
    const roles = config.roles ?? (config.anonymous ? ['anonymous'] : ['user'])
    this.info = {
      name,
      roles,
      anonymous: config.anonymous === true,
      rank: rankOf(roles, config.anonymous === true),
      ...(extra.throwaway ? { throwaway: true } : {}),
    }
    for (const v of Object.values(config.headers ?? {})) masker.addSecret(v)
    this.refreshOn = new Set(config.login?.refreshOnStatus ?? [401])
    for (const [k, v] of Object.entries(config.headers ?? {})) this.creds.headers[k.toLowerCase()] = v
    if (config.bearer) {
      masker.addSecret(config.bearer)
      this.creds.headers.authorization = `Bearer ${config.bearer}`
    }
    if (config.apiKey) {
      masker.addSecret(config.apiKey.value)
      if (config.apiKey.header) {
        masker.addHeader(config.apiKey.header)
        this.creds.headers[config.apiKey.header.toLowerCase()] = config.apiKey.value
      } else if (config.apiKey.query) {
        masker.addQueryParam(config.apiKey.query)
        this.creds.query[config.apiKey.query] = config.apiKey.value
      }
    }
    const login = config.login
    if (login) {
      const as = login.as ?? 'bearer'
      const [kind, n] = as.split(' ')
      if (kind === 'header' && n) masker.addHeader(n)
      if (kind === 'query' && n) masker.addQueryParam(n)
      for (const [k, v] of Object.entries(login.json ?? {})) {
        if (typeof v === 'string' && SECRET_KEY.test(k)) masker.addSecret(v)
      }
      for (const [k, v] of Object.entries(login.form ?? {})) if (SECRET_KEY.test(k)) masker.addSecret(v)
    }
  }

  get hasLogin(): boolean {
    return this.config.login !== undefined
  }

  /**
   * Whether a response status should trigger a new login (and one retry). Not while an earlier
   * re-login did not help (the retry got the same status): for a minute the status is taken as
   * the answer to the request, not to the credentials, so odd probes cannot cause a login storm.
   */
  shouldRefresh(status: number): boolean {
    return this.hasLogin && this.refreshOn.has(status) && this.now() >= this.suppressUntil
  }

  /** Records that a re-login did not change the answer (see shouldRefresh). */
  reloginDidNotHelp(): void {
    this.suppressUntil = this.now() + 60_000
  }

  private suppressUntil = 0
  /** Logins done (the first one included). */
  logins = 0

  /** Logs in when there is a login and it has not happened or is about to expire. */
  async ensure(send: LoginSender): Promise<void> {
    if (!this.hasLogin) return
    const fresh = this.expiresAt === undefined || this.now() < this.expiresAt - 10_000
    if (this.loggedIn && fresh) return
    await this.relogin(send)
  }

  private loggedIn = false

  /** Logs in again (concurrent callers share one login). */
  relogin(send: LoginSender): Promise<void> {
    this.pending ??= this.doLogin(send).finally(() => {
      this.pending = undefined
    })
    return this.pending
  }

  private async doLogin(send: LoginSender): Promise<void> {
    const login = this.config.login
    if (!login) return
    const headers: Record<string, string> = { accept: 'application/json' }
    for (const [k, v] of Object.entries(login.headers ?? {})) headers[k.toLowerCase()] = v
    let body: string | undefined
    if (login.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(login.form).toString()
    } else if (login.json) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(login.json)
    }
    const res = await send({
      method: (login.method ?? 'POST').toUpperCase(),
      path: login.path,
      headers,
      ...(body !== undefined ? { body } : {}),
    })
    if (res.status < 200 || res.status > 299) {
      throw new IdentityError(`identity "${this.name}": login answered ${res.status}`)
    }
    this.adopt(res.json)
  }

  /** Takes the credentials from a login answer (the scanner's own first login of a throwaway account). */
  adopt(json: unknown): void {
    const login = this.config.login
    if (!login) return
    const token = pointerGet(json, login.tokenPointer)
    if (typeof token !== 'string' || token === '') {
      throw new IdentityError(
        `identity "${this.name}": no token at ${login.tokenPointer || '(root)'} in the login answer`,
      )
    }
    this.masker.addSecret(token)
    this.logins++
    const [kind, n] = (login.as ?? 'bearer').split(' ') as [string, string | undefined]
    for (const [k, v] of Object.entries(this.config.headers ?? {})) this.creds.headers[k.toLowerCase()] = v
    if (kind === 'bearer') this.creds.headers.authorization = `Bearer ${token}`
    else if (kind === 'header' && n) this.creds.headers[n.toLowerCase()] = token
    else if (kind === 'query' && n) this.creds.query[n] = token
    else if (kind === 'cookie' && n) this.creds.headers.cookie = `${n}=${token}`
    this.loggedIn = true
    this.expiresAt = undefined
    if (login.expiresInPointer !== undefined) {
      const exp = Number(pointerGet(json, login.expiresInPointer))
      if (Number.isFinite(exp) && exp > 0) this.expiresAt = this.now() + exp * 1000
    }
    this.loginAnswer = json
  }

  /** The JSON answer of the last login (it often holds the user's id). */
  loginAnswer: unknown

  credentials(): Credentials {
    const c = this.config
    const as = c.login?.as ?? 'bearer'
    const header = c.bearer
      ? 'authorization'
      : c.apiKey?.header
        ? c.apiKey.header.toLowerCase()
        : c.login
          ? as === 'bearer'
            ? 'authorization'
            : as.startsWith('header ')
              ? as.slice(7).toLowerCase()
              : as.startsWith('cookie ')
                ? 'cookie'
                : undefined
          : undefined
    return {
      headers: { ...this.creds.headers },
      query: { ...this.creds.query },
      ...(header && this.creds.headers[header] !== undefined ? { credentialHeader: header } : {}),
    }
  }
}

export class IdentityError extends Error {
  override name = 'IdentityError'
}
