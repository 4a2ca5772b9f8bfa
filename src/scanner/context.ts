/**
 * The engine's ScanContext: an origin-locked, rate-limited HTTP client (undici) acting as the
 * identities of auth.yaml, with the rules that hold whatever a check asks for:
 * - requests go only to the target's origin; redirects are never followed; bodies are bounded;
 * - at most `rate` requests per second and `concurrency` at once; a 429 (or a 503 with
 *   Retry-After) pauses every request and the request is sent again (up to 3 times);
 * - safe mode: destructive-looking operations only on objects the scanner created (safety.ts);
 *   excluded operations never;
 * - a target that stops answering (8 transport errors in a row) is marked dead: nothing more is
 *   sent and the scan ends without findings;
 * - a 401 costs at most one new login per identity until a login shows it helps.
 * Every recorded exchange is masked (mask.ts).
 */
import { randomBytes } from 'node:crypto'
import { type Agent, request } from 'undici'
import type { OpenApiSpec, Operation } from '../openapi/index.js'
import { Canary } from './canary.js'
import {
  type Credentials,
  declaredFlows,
  Identity,
  type IdentityConfigT,
  type LoginSender,
  type ParsedAuth,
} from './identities.js'
import { discoverLogins, findSignup, loginBody } from './logins.js'
import { Masker } from './mask.js'
import { destructiveReason } from './safety.js'
import { generateValue, isObject, pointerGet, requestBodyAny } from './schema-tools.js'
import type {
  DeclaredFlow,
  Exchange,
  IdentityInfo,
  LoginInfo,
  ObservedAnswer,
  ScanContext,
  ScanRequest,
  ScanResponse,
  SeededObject,
  ThrowawayAccount,
} from './types.js'

/** What ScanRun needs from the scan options. */
export interface RunOptions {
  rate?: number
  concurrency?: number
  timeoutMs?: number
  maxBodyBytes?: number
  /** Extra headers on every request (`-H`); their values are masked. */
  headers?: Record<string, string>
  /** Operations never to call (already removed from `operations`). */
  excluded?: readonly Operation[]
  chain?: boolean
  /** The path the target serves the spec at, when --spec is a URL on its origin. */
  specPath?: string
  /** Secrets of `--jwt-wordlist`, tried before the built-in list. */
  jwtWordlist?: readonly string[]
  log?: (line: string) => void
}

const EXCERPT = 4096
const MAX_OBSERVED = 1500
const DEAD_AFTER = 8
const MAX_RETRIES = 3
/** A Retry-After longer than this is not waited out: the 429 is the answer (the check treats it as inconclusive). */
const MAX_RETRY_WAIT_MS = 10_000

/** Token bucket (one token per 1/rate s, no burst) plus a concurrency gate and a global pause. */
class Limiter {
  private next = 0
  private active = 0
  private readonly waiting: (() => void)[] = []
  private pausedUntil = 0

  constructor(
    private readonly rate: number,
    private readonly concurrency: number,
  ) {}

  async acquire(): Promise<void> {
    if (this.active >= this.concurrency) await new Promise<void>((r) => this.waiting.push(r))
    else this.active++
    for (;;) {
      const now = Date.now()
      const at = Math.max(now, this.next, this.pausedUntil)
      this.next = at + 1000 / this.rate
      if (at > now) await new Promise((r) => setTimeout(r, at - now))
      // A pause set while this request waited (a 429 elsewhere) holds it too.
      if (Date.now() >= this.pausedUntil) return
    }
  }

  release(): void {
    const w = this.waiting.shift()
    if (w) w()
    else this.active--
  }

  /** Every request waits until `ms` from now. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms)
  }
}

function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(k.toLowerCase() === 'set-cookie' ? '\n' : ', ') : v
  }
  return out
}

/** Seconds (or an HTTP date) of a Retry-After header, in ms (at least 250; 1, 2, 4 s… without one). */
export function retryAfterMs(value: string | undefined, attempt: number): number {
  const fallback = 1000 * 2 ** attempt
  if (value === undefined) return fallback
  const s = Number(value.trim())
  if (Number.isFinite(s) && s >= 0) return Math.max(250, s * 1000)
  const at = Date.parse(value)
  if (Number.isFinite(at)) return Math.max(250, at - Date.now())
  return fallback
}

/** A regex matching concrete paths of a template (`/orders/{id}` → `^/orders/[^/]+/?$`). */
export function templateRegex(template: string): RegExp {
  const parts = template.split(/\{[^{}/]+\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${parts.join('[^/]+')}/?$`)
}

const TOKEN_POINTERS = [
  '/access_token',
  '/token',
  '/accessToken',
  '/jwt',
  '/id_token',
  '/session/token',
  '/data/token',
  '/data/access_token',
  '/data/accessToken',
  '/auth/token',
  '/result/token',
]

/** The engine's ScanContext. Exported for tests and for the engine. */
export class ScanRun implements ScanContext {
  readonly operations: Operation[]
  readonly identities: IdentityInfo[]
  readonly objects: SeededObject[] = []
  readonly masker = new Masker()
  readonly ids = new Map<string, Identity>()
  readonly logins: LoginInfo[]
  readonly flows: DeclaredFlow[]
  readonly options: { chain: boolean; specPath?: string; jwtWordlist?: readonly string[]; timeoutMs: number }
  stats = { requests: 0, errors: 0, retries: 0, blocked: 0 }
  /** Transport errors and gateway errors (502–504) outside expected-slow probes, for the verdict. */
  bad = 0
  /** Requests outside expected-slow probes. */
  counted = 0
  /** Set when the target stopped answering: no more requests are sent. */
  dead: string | undefined
  readonly notes: string[] = []
  /** Requests safe mode refused, per operation. */
  readonly refused = new Map<string, number>()

  /** Every destructive-looking operation (safe mode calls it only on objects the scanner created), and refusals. */
  get blocked(): Map<string, string> {
    const out = new Map<string, string>()
    if (!this.safe) return out
    for (const op of this.operations) {
      const why = destructiveReason(op)
      if (!why) continue
      const label = `${op.method} ${op.path}`
      const n = this.refused.get(label)
      out.set(
        label,
        `destructive-looking (${why}): called only on objects the scanner created${n ? `; ${n} request(s) refused` : ''}`,
      )
    }
    for (const [label, n] of this.refused)
      if (!out.has(label)) out.set(label, `DELETE outside the spec: ${n} request(s) refused`)
    return out
  }
  private consecutiveErrors = 0
  private readonly observedAnswers: ObservedAnswer[] = []
  private readonly limiter: Limiter
  private readonly canaryServer = new Canary()
  private readonly timeoutMs: number
  private readonly maxBodyBytes: number
  private readonly basePath: string
  private readonly matchers: { re: RegExp; op: Operation; params: number }[]
  private readonly excluded: { re: RegExp; op: Operation }[]
  private readonly throwaways: { identity: string; selfDelete?: Operation }[] = []

  constructor(
    readonly spec: OpenApiSpec,
    readonly target: URL,
    readonly safe: boolean,
    readonly auth: ParsedAuth | undefined,
    private readonly opts: RunOptions,
    private readonly dispatcher: Agent,
  ) {
    const excluded = new Set(opts.excluded ?? [])
    this.operations = spec.operations.filter((op) => !excluded.has(op))
    this.limiter = new Limiter(Math.max(0.1, opts.rate ?? 20), Math.max(1, Math.floor(opts.concurrency ?? 4)))
    this.timeoutMs = opts.timeoutMs ?? 10_000
    this.maxBodyBytes = opts.maxBodyBytes ?? 1024 * 1024
    this.basePath = target.pathname.replace(/\/+$/, '')
    this.options = {
      chain: opts.chain === true,
      timeoutMs: opts.timeoutMs ?? 10_000,
      ...(opts.specPath ? { specPath: opts.specPath } : {}),
      ...(opts.jwtWordlist ? { jwtWordlist: opts.jwtWordlist } : {}),
    }
    for (const s of auth?.envSecrets ?? []) this.masker.addSecret(s)
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      this.masker.addSecret(v)
      if (/auth|token|key|cookie|secret/i.test(k)) this.masker.addHeader(k)
    }
    for (const [name, cfg] of Object.entries(auth?.config.identities ?? {})) {
      this.ids.set(name, new Identity(name, cfg, this.masker))
    }
    this.identities = [...this.ids.values()].map((i) => i.info)
    this.matchers = spec.operations
      .map((op) => ({ re: templateRegex(op.path), op, params: (op.path.match(/\{/g) ?? []).length }))
      .sort((a, b) => a.params - b.params)
    this.excluded = (opts.excluded ?? []).map((op) => ({ re: templateRegex(op.path), op }))
    this.logins = discoverLogins(spec, auth?.config, target)
    this.flows = declaredFlows(auth)
  }

  debug(message: string): void {
    this.opts.log?.(this.masker.text(message))
  }

  note(message: string): void {
    const m = this.masker.text(message)
    if (!this.notes.includes(m) && this.notes.length < 200) this.notes.push(m)
    this.debug(m)
  }

  observed(): readonly ObservedAnswer[] {
    return this.observedAnswers
  }

  /** The identity's current credentials, logged in first (the JWT and token-in-URL checks). */
  async credentials(identity: string): Promise<Credentials | undefined> {
    const id = this.ids.get(identity)
    if (!id) return undefined
    await id.ensure(this.loginSender)
    return id.credentials()
  }

  readonly loginSender: LoginSender = async (req) => {
    const r = await this.raw(
      {
        method: req.method,
        path: req.path,
        headers: req.headers,
        ...(req.body !== undefined ? { body: req.body } : {}),
      },
      undefined,
      true,
    )
    if (r.status === 0) throw new Error(`login request failed: ${r.exchange.error ?? 'no answer'}`)
    return { status: r.status, json: r.json, headers: r.headers }
  }

  /** The spec operation a method and concrete path fall under (the most specific), if any. */
  operationFor(method: string, path: string): Operation | undefined {
    const m = method.toUpperCase()
    return this.matchers.find((x) => x.op.method === m && x.re.test(path))?.op
  }

  async send(identity: string | undefined, req: ScanRequest): Promise<ScanResponse> {
    const id = identity === undefined ? undefined : this.ids.get(identity)
    if (identity !== undefined && !id) throw new Error(`unknown identity "${identity}"`)
    const useAuth = id !== undefined && req.noAuth !== true
    if (useAuth) {
      try {
        await id.ensure(this.loginSender)
      } catch (err) {
        return this.notSent(req, `${identity} could not log in: ${(err as Error).message}`)
      }
    }
    let res = await this.raw(req, useAuth ? id : undefined)
    if (useAuth && req.relogin !== false && res.blocked === undefined && id.shouldRefresh(res.status)) {
      this.debug(`${identity}: ${res.status}, logging in again`)
      try {
        await id.relogin(this.loginSender)
      } catch (err) {
        this.debug(`${identity}: login failed (${(err as Error).message})`)
        id.reloginDidNotHelp()
        return res
      }
      const again = await this.raw(req, id)
      if (again.status === res.status) id.reloginDidNotHelp()
      res = again
    }
    return res
  }

  /** Builds the absolute URL of a target-relative path; refuses anything off the target's origin. */
  url(path: string, query?: Record<string, string | string[]>): URL {
    if (!path.startsWith('/') || path.startsWith('//'))
      throw new Error(`scan path must start with one "/": ${path.slice(0, 100)}`)
    const url = new URL(`${this.target.origin}${this.basePath}${path}`)
    if (url.origin !== this.target.origin) throw new Error('refusing a request off the target origin')
    for (const [k, v] of Object.entries(query ?? {})) {
      for (const x of Array.isArray(v) ? v : [v]) url.searchParams.append(k, x)
    }
    return url
  }

  /** Why safe mode (or an exclusion) keeps this request from being sent, if it does. */
  private refusal(req: ScanRequest, identity: Identity | undefined): string | undefined {
    const path = req.path.split('?')[0] ?? req.path
    const method = req.method.toUpperCase()
    const ex = this.excluded.find((x) => x.op.method === method && x.re.test(path))
    if (ex) return `excluded by --exclude (${ex.op.method} ${ex.op.path})`
    if (!this.safe || req.declared) return undefined
    const op = this.operationFor(method, path)
    const why = op ? destructiveReason(op) : method === 'DELETE' ? 'DELETE' : undefined
    if (!why) return undefined
    if (identity?.info.throwaway) return undefined
    const mine = this.objects.some(
      (o) => o.createdByScanner && (path === o.path || path.startsWith(`${o.path}/`)),
    )
    if (mine) return undefined
    const label = op ? `${op.method} ${op.path}` : `${method} ${path}`
    if (!this.blocked.has(label))
      this.blocked.set(label, `destructive-looking (${why}), not on an object the scanner created`)
    return `not sent in safe mode: ${label} is destructive-looking (${why})`
  }

  private notSent(req: ScanRequest, why: string): ScanResponse {
    const method = req.method.toUpperCase()
    let url: string
    try {
      url = this.url(req.path, req.query).href
    } catch {
      url = req.path
    }
    return {
      status: 0,
      headers: {},
      text: '',
      json: undefined,
      durationMs: 0,
      blocked: why,
      exchange: this.masker.exchange({ request: { method, url, headers: {} }, error: why }),
    }
  }

  private async raw(req: ScanRequest, id: Identity | undefined, isLogin = false): Promise<ScanResponse> {
    if (this.dead) return this.notSent(req, `not sent: ${this.dead}`)
    if (!isLogin) {
      const why = this.refusal(req, id)
      if (why) {
        this.stats.blocked++
        return this.notSent(req, why)
      }
    }
    const creds = id?.credentials()
    const url = this.url(req.path, { ...(creds?.query ?? {}), ...(req.query ?? {}) })
    const headers: Record<string, string> = {
      'user-agent': 'portcullis-scan',
      accept: 'application/json, */*;q=0.5',
    }
    for (const [k, v] of Object.entries(this.opts.headers ?? {})) headers[k.toLowerCase()] = v
    for (const [k, v] of Object.entries(creds?.headers ?? {})) headers[k.toLowerCase()] = v
    let body = req.body
    if (req.json !== undefined) {
      body = JSON.stringify(req.json)
      headers['content-type'] = 'application/json'
    } else if (req.form !== undefined) {
      body = new URLSearchParams(req.form).toString()
      headers['content-type'] = 'application/x-www-form-urlencoded'
    }
    for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v
    const method = req.method.toUpperCase()
    const timeout = req.timeoutMs ?? this.timeoutMs
    let retries = 0
    for (;;) {
      const res = await this.once(method, url, headers, body, timeout, req.expectSlow === true)
      const limited = res.status === 429 || (res.status === 503 && res.headers['retry-after'] !== undefined)
      if (!limited || req.retry429 === false || retries >= MAX_RETRIES || this.dead) {
        if (retries > 0) res.retries = retries
        if (res.status !== 0 && !isLogin) this.observe(method, req.path, res, creds !== undefined)
        return res
      }
      const wait = retryAfterMs(res.headers['retry-after'], retries)
      if (wait >= MAX_RETRY_WAIT_MS) {
        this.debug(
          `${res.status} on ${method} ${url.pathname} with Retry-After ${res.headers['retry-after']}: not waited out`,
        )
        res.retries = retries
        return res
      }
      retries++
      this.stats.retries++
      this.debug(
        `${res.status} on ${method} ${url.pathname}: every request waits ${wait} ms, then retry ${retries}`,
      )
      this.limiter.pause(wait)
    }
  }

  private async once(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: string | undefined,
    timeout: number,
    expectSlow: boolean,
  ): Promise<ScanResponse> {
    const exchange: Exchange = {
      request: {
        method,
        url: url.href,
        headers: { ...headers },
        ...(body !== undefined ? { body: body.slice(0, EXCERPT) } : {}),
      },
    }
    await this.limiter.acquire()
    this.stats.requests++
    if (!expectSlow) this.counted++
    const started = performance.now()
    try {
      const res = await request(url, {
        method: method as 'GET',
        headers,
        ...(body !== undefined ? { body } : {}),
        dispatcher: this.dispatcher,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      })
      const chunks: Buffer[] = []
      let size = 0
      if (method !== 'HEAD') {
        for await (const chunk of res.body) {
          const c = chunk as Buffer
          const room = this.maxBodyBytes - size
          if (c.length >= room) {
            chunks.push(c.subarray(0, room))
            size += room
            res.body.destroy()
            break
          }
          chunks.push(c)
          size += c.length
        }
      } else await res.body.dump()
      const text = Buffer.concat(chunks).toString('utf8')
      const durationMs = Math.round(performance.now() - started)
      const rh = flatHeaders(res.headers as Record<string, string | string[] | undefined>)
      let json: unknown
      if (text !== '' && /json/i.test(rh['content-type'] ?? '')) {
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
      }
      exchange.response = { status: res.statusCode, headers: rh, body: text.slice(0, EXCERPT), durationMs }
      if (!expectSlow) {
        this.consecutiveErrors = 0
        if (res.statusCode >= 502 && res.statusCode <= 504) this.bad++
      }
      return {
        status: res.statusCode,
        headers: rh,
        text,
        json,
        durationMs,
        exchange: this.masker.exchange(exchange),
      }
    } catch (err) {
      this.stats.errors++
      const e = err as Error & { code?: string }
      exchange.error =
        e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT'
          ? `timeout after ${timeout} ms`
          : `${e.code ?? e.name}: ${e.message}`
      if (!expectSlow) {
        this.bad++
        if (++this.consecutiveErrors >= DEAD_AFTER && !this.dead) {
          this.dead = `the target stopped answering (${this.consecutiveErrors} requests in a row failed; last: ${exchange.error})`
          this.debug(this.dead)
        }
      }
      return {
        status: 0,
        headers: {},
        text: '',
        json: undefined,
        durationMs: Math.round(performance.now() - started),
        exchange: this.masker.exchange(exchange),
      }
    } finally {
      this.limiter.release()
    }
  }

  private observe(method: string, path: string, res: ScanResponse, authenticated: boolean): void {
    if (this.observedAnswers.length >= MAX_OBSERVED) return
    const op = this.operationFor(method, path.split('?')[0] ?? path)
    this.observedAnswers.push({
      method,
      ...(op ? { operation: `${op.method} ${op.path}` } : {}),
      status: res.status,
      headers: res.headers,
      authenticated,
      exchange: res.exchange,
    })
  }

  /**
   * Sends a cheap request until the target answers (a bounded wait after a hang): true when it
   * answered, false when `maxMs` passed. A dead mark from the hang itself is lifted on success.
   */
  async waitForTarget(maxMs: number): Promise<boolean> {
    const until = Date.now() + maxMs
    let delay = 250
    while (Date.now() < until) {
      const wasDead = this.dead
      this.dead = undefined
      const r = await this.raw(
        {
          method: 'GET',
          path: '/',
          timeoutMs: Math.min(5000, Math.max(500, until - Date.now())),
          expectSlow: true,
        },
        undefined,
        true,
      )
      if (r.status !== 0) {
        this.consecutiveErrors = 0
        return true
      }
      this.dead = wasDead
      await new Promise((res) => setTimeout(res, Math.min(delay, Math.max(0, until - Date.now()))))
      delay = Math.min(delay * 2, 4000)
    }
    return false
  }

  canary(): Promise<{ url: string; wasHit(timeoutMs: number): Promise<boolean> }> {
    return this.canaryServer.url()
  }

  /** Adds an identity that sends the given (forged) headers instead of logging in. */
  forgeIdentity(base: string, label: string, headers: Record<string, string>): string {
    const from = this.ids.get(base)
    let name = `${base}+${label}`
    for (let i = 2; this.ids.has(name); i++) name = `${base}+${label}${i}`
    const id = new Identity(name, { roles: [...(from?.info.roles ?? []), 'forged'], headers }, this.masker)
    this.ids.set(name, id)
    this.identities.push(id.info)
    return name
  }

  /**
   * Registers a throwaway account (see ScanContext.throwaway). Undefined when the spec has no
   * sign-up operation, no login to use it with, or (safe mode) no way for it to delete itself.
   */
  async throwaway(opts: { extra?: Record<string, unknown> } = {}): Promise<ThrowawayAccount | undefined> {
    const signup = findSignup(this.spec, this.logins)
    const login =
      this.logins.find((l) => l.source === 'auth.yaml') ?? this.logins.find((l) => l.source !== 'auth.yaml')
    if (!signup || !login) return undefined
    const selfDelete = this.operations.find(
      (op) =>
        op.method === 'DELETE' &&
        !op.path.includes('{') &&
        /(^|\/)(me|self|profile|account|current)$/i.test(op.path),
    )
    if (this.safe && !selfDelete) {
      this.note(
        `no throwaway account: ${signup.op.method} ${signup.op.path} registers one, but the API offers no way for it to delete itself (safe mode leaves nothing behind)`,
      )
      return undefined
    }
    if (this.throwaways.length >= 5) return undefined
    const username = `pcl${randomBytes(5).toString('hex')}`
    const password = `Pcl-${randomBytes(12).toString('base64url')}-9!`
    this.masker.addSecret(password)
    const shape = requestBodyAny(this.spec, signup.op)
    const example = shape?.example ?? generateValue(shape?.schema)
    const body: Record<string, unknown> = { ...(isObject(example) ? example : {}) }
    const email = `${username}@example.com`
    body[signup.user] = /mail/i.test(signup.user) ? email : username
    body[signup.password] = password
    if (signup.email) body[signup.email] = email
    Object.assign(body, opts.extra ?? {})
    const reg = await this.raw(
      shape?.encoding === 'form'
        ? {
            method: 'POST',
            path: signup.op.path,
            form: Object.fromEntries(Object.entries(body).map(([k, v]) => [k, String(v)])),
          }
        : { method: 'POST', path: signup.op.path, json: body },
      undefined,
    )
    if (reg.status < 200 || reg.status > 299) {
      this.debug(`throwaway: ${signup.op.path} answered ${reg.status}`)
      return undefined
    }
    const loginUser = /mail/i.test(login.userField) ? email : String(body[signup.user])
    const cfgBody = loginBody(login, loginUser, password)
    const template = this.auth?.config.identities
      ? Object.values(this.auth.config.identities).find((i) => i.login?.path === login.path)?.login
      : undefined
    // Find the token in a first login's answer when the login comes from the spec.
    let tokenPointer = login.tokenPointer ?? template?.tokenPointer
    const first = await this.raw(
      login.encoding === 'form'
        ? { method: login.method, path: login.path, form: cfgBody }
        : { method: login.method, path: login.path, json: cfgBody },
      undefined,
      true,
    )
    if (first.status < 200 || first.status > 299) {
      this.note(
        `throwaway account ${username} was registered but its login answered ${first.status}: it is left behind`,
      )
      return undefined
    }
    tokenPointer ??= TOKEN_POINTERS.find((p) => typeof pointerGet(first.json, p) === 'string')
    if (!tokenPointer) {
      this.note(`throwaway account ${username}: no token found in its login answer; it is left behind`)
      return undefined
    }
    const config: IdentityConfigT = {
      roles: ['user'],
      login: {
        method: login.method,
        path: login.path,
        ...(login.encoding === 'form' ? { form: cfgBody } : { json: cfgBody }),
        tokenPointer,
        ...(template?.as ? { as: template.as } : {}),
        ...(template?.headers ? { headers: template.headers } : {}),
      },
    }
    const name = `throwaway-${username}`
    const id = new Identity(name, config, this.masker, Date.now, { throwaway: true })
    try {
      id.adopt(first.json)
    } catch {
      this.note(
        `throwaway account ${username}: no token at ${tokenPointer} in its login answer; it is left behind`,
      )
      return undefined
    }
    this.ids.set(name, id)
    this.identities.push(id.info)
    this.throwaways.push({ identity: name, ...(selfDelete ? { selfDelete } : {}) })
    this.debug(`throwaway account ${username} registered through ${signup.op.path}`)
    return {
      identity: name,
      username: loginUser,
      exchanges: [reg.exchange, first.exchange],
      operation: {
        method: signup.op.method,
        path: signup.op.path,
        ...(signup.op.operationId ? { operationId: signup.op.operationId } : {}),
      },
    }
  }

  /** Deletes the throwaway accounts (as themselves). */
  async deleteThrowaways(): Promise<void> {
    for (const t of this.throwaways.splice(0)) {
      if (!t.selfDelete) {
        this.note(`throwaway account ${t.identity} left behind: no operation deletes it (--unsafe)`)
        continue
      }
      const r = await this.send(t.identity, { method: 'DELETE', path: t.selfDelete.path })
      this.debug(`cleanup: ${t.identity} ${t.selfDelete.method} ${t.selfDelete.path} → ${r.status}`)
      if (r.status < 200 || r.status > 299)
        this.note(`throwaway account ${t.identity}: its deletion answered ${r.status}`)
    }
  }

  async close(): Promise<void> {
    await this.canaryServer.close()
  }

  /** Names of identities with a role, in auth.yaml order. */
  withRole(role: string): string[] {
    return this.identities.filter((i) => i.roles.includes(role)).map((i) => i.name)
  }
}
