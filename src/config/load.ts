/**
 * Config loading: parse (YAML or JSON) → substitute `${env:NAME}` / `${file:PATH}` → validate
 * against the schema, filling defaults → cross-field rules → deep-freeze. Every problem is
 * collected, so a user sees all of them at once, each with file, line, path, expected and found.
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { dirname, isAbsolute, resolve } from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import { isMap, isScalar, Lexer, LineCounter, parseDocument } from 'yaml'
import { canonicalizeTarget } from '../gateway/hygiene.js'
import { BUILTIN_POLICIES, policyById } from '../policies/registry.js'
import { checkStoresConfig } from '../stores/config.js'
import { GatewayConfig } from './schema.js'

export interface ConfigProblem {
  file: string
  /** Path in the document, e.g. `routes[0].upstream`; '' for the whole document. */
  path: string
  line?: number
  column?: number
  message: string
}

export interface LoadResult {
  config: GatewayConfig | undefined
  errors: ConfigProblem[]
  warnings: ConfigProblem[]
  /** Paths whose values came from ${env:} or ${file:}: treated as secrets (never printed). */
  secretPaths: ReadonlySet<string>
  /** Where a path is in the document, for problems found after loading (policy checks). */
  locate?: (path: readonly (string | number)[]) => { line?: number; column?: number }
  /** Removes every secret value of the document from a message. */
  scrub?: (message: string) => string
}

// verbose: ajv sets `parentSchema` on errors only in verbose mode (used for the unknown-field hint).
// code.optimize off: ajv's code optimizer counts identifiers in plain objects keyed by name, and
// on a schema this size that leaves V8's shared object shapes in a state that slows every
// request the process serves afterwards (measured: the same bare proxy code costs ~30% more CPU
// per request in a process that compiled this schema optimized; see docs/benchmarks.md). The
// validator runs at load and reload only, where the unoptimized code costs nothing that matters.
const ajv = new Ajv({
  allErrors: true,
  useDefaults: true,
  strict: false,
  coerceTypes: false,
  verbose: true,
  code: { optimize: false },
})
const validate = ajv.compile<GatewayConfig>(GatewayConfig)

type Seg = string | number

export function formatPath(segs: readonly Seg[]): string {
  let out = ''
  for (const s of segs) {
    if (typeof s === 'number') out += `[${s}]`
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(s)) out += out === '' ? s : `.${s}`
    else out += `[${JSON.stringify(s)}]`
  }
  return out
}

function pointerToSegs(pointer: string, data: unknown): Seg[] {
  if (pointer === '') return []
  const segs: Seg[] = []
  let cur: unknown = data
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(cur)) {
      const n = Number(key)
      segs.push(n)
      cur = cur[n]
    } else {
      segs.push(key)
      cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[key] : undefined
    }
  }
  return segs
}

function valueAt(data: unknown, segs: readonly Seg[]): unknown {
  let cur = data
  for (const s of segs) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string | number, unknown>)[s]
  }
  return cur
}

function describe(value: unknown, secret: boolean): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return `a list of ${value.length}`
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') {
    if (secret) return 'a string (secret, not shown)'
    return value.length > 40 ? `string "${value.slice(0, 40)}…"` : `string "${value}"`
  }
  return `${typeof value} ${String(value)}`
}

/** Turns ajv's errors into one readable message per problem, choosing the best anyOf branch. */
function ajvProblems(errors: ErrorObject[], data: unknown, secretPaths: ReadonlySet<string>): Problem[] {
  const out: Problem[] = []
  const anyOfPaths = new Map<string, ErrorObject>()
  for (const e of errors) if (e.keyword === 'anyOf') anyOfPaths.set(e.schemaPath, e)
  const consumed = new Set<ErrorObject>()
  for (const [schemaPath, e] of anyOfPaths) {
    const branches = errors.filter((x) => x !== e && x.schemaPath.startsWith(`${schemaPath}/`))
    const deep = branches.filter((x) => x.instancePath !== e.instancePath)
    const shallow = branches.filter((x) => x.instancePath === e.instancePath)
    if (deep.length > 0) {
      // The value has the shape of one branch and fails inside it: report that branch only.
      for (const s of shallow) consumed.add(s)
      consumed.add(e)
    } else {
      // One description per branch: its const if it has one (a literal `false` is also
      // `type: boolean`), else its type, else the first constraint it failed.
      const byBranch = new Map<string, ErrorObject[]>()
      for (const s of shallow) {
        const branch = s.schemaPath.slice(schemaPath.length + 1).split('/')[0] ?? ''
        byBranch.set(branch, [...(byBranch.get(branch) ?? []), s])
        consumed.add(s)
      }
      const allowed: string[] = []
      for (const errs of byBranch.values()) {
        const c = errs.find((x) => x.keyword === 'const')
        const t = errs.find((x) => x.keyword === 'type')
        if (c) allowed.push(JSON.stringify((c.params as { allowedValue: unknown }).allowedValue))
        else if (t) allowed.push(`a ${(t.params as { type: string }).type}`)
        else if (errs[0]) allowed.push(`a value that ${errs[0].message ?? 'is valid'}`)
      }
      consumed.add(e)
      const segs = pointerToSegs(e.instancePath, data)
      out.push({
        segs,
        message: `expected ${[...new Set(allowed)].join(' or ')}, found ${describe(valueAt(data, segs), secretPaths.has(formatPath(segs)))}`,
      })
    }
  }
  for (const e of errors) {
    if (consumed.has(e)) continue
    // The `if` of a policy entry (`enabled: false` needs no required field) only restates the
    // `required` errors of its `else` branch, which are reported.
    if (e.keyword === 'if') continue
    const segs = pointerToSegs(e.instancePath, data)
    const found = describe(valueAt(data, segs), secretPaths.has(formatPath(segs)))
    let message: string
    switch (e.keyword) {
      case 'required': {
        const prop = (e.params as { missingProperty: string }).missingProperty
        out.push({ segs, message: `missing required field "${prop}"`, covers: [...segs, prop] })
        continue
      }
      case 'additionalProperties': {
        const prop = (e.params as { additionalProperty: string }).additionalProperty
        const known = Object.keys(
          ((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ??
            {}) as object,
        )
        // Reported at the unknown key itself, not at the start of the enclosing mapping.
        out.push({
          segs: [...segs, prop],
          atKey: true,
          message: `unknown field "${prop}"${known.length ? ` (expected one of: ${known.join(', ')})` : ''}`,
        })
        continue
      }
      case 'type':
        message = `expected ${(e.params as { type: string }).type}, found ${found}`
        break
      case 'pattern':
        message = `expected a value matching ${(e.params as { pattern: string }).pattern}, found ${found}`
        break
      default:
        message = `expected a value that ${e.message ?? 'is valid'}, found ${found}`
    }
    out.push({ segs, message })
  }
  return out
}

const SUBST = /\$\{(env|file):([^}]*)\}/g

/**
 * Replaces ${env:NAME} and ${file:PATH} in every string; records where secrets came from and
 * their values (scrubbed from every message). Returns a copy: YAML aliases become independent
 * values, an alias that contains itself is a problem (not an endless recursion), and a
 * `__proto__` key stays an ordinary (unknown) field instead of replacing the prototype.
 */
function substitute(
  node: unknown,
  segs: Seg[],
  ctx: {
    baseDir: string
    env: NodeJS.ProcessEnv
    problems: Problem[]
    secretPaths: Set<string>
    secretValues: Set<string>
    ancestors: Set<object>
  },
): unknown {
  if (typeof node === 'string') {
    if (!node.includes('${')) return node
    let secret = false
    const out = node.replace(SUBST, (_m, kind: string, ref: string) => {
      secret = true
      ctx.secretPaths.add(formatPath(segs))
      if (kind === 'env') {
        const v = ctx.env[ref]
        if (v === undefined) {
          ctx.problems.push({ segs: [...segs], message: `environment variable ${ref} is not set` })
          return ''
        }
        ctx.secretValues.add(v)
        return v
      }
      const p = isAbsolute(ref) ? ref : resolve(ctx.baseDir, ref)
      try {
        const v = readFileSync(p, 'utf8').replace(/\r?\n$/, '')
        ctx.secretValues.add(v)
        return v
      } catch (err) {
        ctx.problems.push({
          segs: [...segs],
          message: `cannot read ${p}: ${(err as NodeJS.ErrnoException).code}`,
        })
        return ''
      }
    })
    if (secret) ctx.secretValues.add(out)
    return out
  }
  if (node === null || typeof node !== 'object') return node
  if (ctx.ancestors.has(node)) {
    ctx.problems.push({ segs: [...segs], message: 'a YAML alias that contains itself is not allowed' })
    return null
  }
  ctx.ancestors.add(node)
  try {
    if (Array.isArray(node)) return node.map((v, i) => substitute(v, [...segs, i], ctx))
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(node)) {
      Object.defineProperty(out, k, {
        value: substitute(v, [...segs, k], ctx),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
    return out
  } finally {
    ctx.ancestors.delete(node)
  }
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o)
    for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}

function readable(path: string): string | undefined {
  try {
    readFileSync(path)
    return undefined
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'unreadable'
  }
}

/** Cross-field rules that the schema cannot express. */
/** Top-level secrets that belong in an ${env:} or ${file:} reference rather than in the file. */
const SECRET_FIELDS: readonly (readonly Seg[])[] = [
  ['admin', 'token'],
  ['stores', 'redis', 'password'],
  ['stores', 'redis', 'sentinelPassword'],
  ['audit', 'http', 'token'],
]

/** Warnings for secrets written into the config file itself (it is often committed or shared). */
function plainSecrets(c: GatewayConfig, secretPaths: ReadonlySet<string>): Problem[] {
  return SECRET_FIELDS.filter(
    (segs) => valueAt(c, segs as Seg[]) !== undefined && !secretPaths.has(formatPath(segs)),
  )
    .concat(
      urlHasPassword(c.stores.redis.url) && !secretPaths.has('stores.redis.url')
        ? [['stores', 'redis', 'url']]
        : [],
    )
    .map((segs) => ({
      segs: [...segs],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the ${…} syntax is the advice itself
      message: 'a secret written in the config file; use ${env:NAME} or ${file:PATH} instead',
    }))
}

function urlHasPassword(url: string | undefined): boolean {
  if (url === undefined) return false
  try {
    return new URL(url).password !== ''
  } catch {
    return false
  }
}

function rules(c: GatewayConfig, baseDir: string): { errors: Problem[]; warnings: Problem[] } {
  const errors: Problem[] = []
  const warnings: Problem[] = []
  const seen = new Map<string, number>()
  c.listeners.forEach((l, i) => {
    if (seen.has(l.name))
      errors.push({ segs: ['listeners', i, 'name'], message: `duplicate listener name "${l.name}"` })
    seen.set(l.name, i)
    if (l.port !== 0) {
      const key = `${l.host}:${l.port}`
      if (seen.has(key)) errors.push({ segs: ['listeners', i, 'port'], message: `${key} is used twice` })
      seen.set(key, i)
      if (c.admin.enabled && c.admin.port === l.port) {
        errors.push({ segs: ['admin', 'port'], message: `port ${l.port} is also listener "${l.name}"'s` })
      }
    }
    if (l.tls) {
      for (const f of ['cert', 'key'] as const) {
        const code = readable(resolve(baseDir, l.tls[f]))
        if (code)
          errors.push({ segs: ['listeners', i, 'tls', f], message: `cannot read ${l.tls[f]}: ${code}` })
      }
      const ca = l.tls.clientAuth?.ca
      const caCode = ca === undefined ? undefined : readable(resolve(baseDir, ca))
      if (caCode) {
        errors.push({
          segs: ['listeners', i, 'tls', 'clientAuth', 'ca'],
          message: `cannot read ${ca}: ${caCode}`,
        })
      }
    }
  })
  if (c.admin.enabled && isIP(c.admin.host) && !/^(127\.|::1$)/.test(c.admin.host)) {
    warnings.push({
      segs: ['admin', 'host'],
      message: `admin listener bound to ${c.admin.host}, not loopback`,
    })
  }
  for (const [name, u] of Object.entries(c.upstreams)) {
    u.targets.forEach((t, i) => {
      const segs = ['upstreams', name, 'targets', i, 'url']
      let url: URL
      try {
        url = new URL(t.url)
      } catch {
        errors.push({ segs, message: `expected an http(s) URL, found string "${t.url.slice(0, 60)}"` })
        return
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        errors.push({ segs, message: `expected http: or https:, found ${url.protocol}` })
      }
      if (url.username || url.password)
        errors.push({ segs, message: 'credentials in a target URL are not allowed' })
      if (url.search || url.hash) errors.push({ segs, message: 'a target URL takes no query or fragment' })
    })
    if (u.tls.ca) {
      const code = readable(resolve(baseDir, u.tls.ca))
      if (code)
        errors.push({ segs: ['upstreams', name, 'tls', 'ca'], message: `cannot read ${u.tls.ca}: ${code}` })
    }
    if (!u.tls.rejectUnauthorized) {
      warnings.push({
        segs: ['upstreams', name, 'tls', 'rejectUnauthorized'],
        message: 'upstream TLS is not verified',
      })
    }
  }
  // API keys in URLs end up in browser history, Referer headers and logs in front of the gateway.
  const queryKey = (p: unknown) =>
    (p as { 'api-key-auth'?: { queryParam?: string; enabled?: boolean } } | undefined)?.['api-key-auth']
  const warnQueryKey = (entry: ReturnType<typeof queryKey>, segs: Seg[]) => {
    if (entry?.queryParam !== undefined && entry.enabled !== false) {
      warnings.push({
        segs: [...segs, 'api-key-auth', 'queryParam'],
        message:
          'API keys accepted in the query string: URLs leak into browser history, Referer headers and proxy logs; prefer the header',
      })
    }
  }
  warnQueryKey(queryKey(c.policies), ['policies'])
  c.routes.forEach((r, i) => {
    warnQueryKey(queryKey(r.policies), ['routes', i, 'policies'])
  })
  // api-key-auth: `store` (a file) goes with source: file only; source: store needs Redis, because
  // `portcullis keys` cannot reach a memory store inside a gateway process.
  const checkKeySource = (p: unknown, segs: Seg[]) => {
    const e = (
      p as { 'api-key-auth'?: { source?: string; store?: string; enabled?: boolean } } | undefined
    )?.['api-key-auth']
    if (e === undefined || e.enabled === false) return
    const at = [...segs, 'api-key-auth']
    if (e.source === 'store') {
      if (e.store !== undefined)
        errors.push({
          segs: [...at, 'store'],
          message: 'not used with source: store (the key records are in the stores: backend); remove it',
        })
      if (c.stores.backend !== 'redis') {
        errors.push({
          segs: [...at, 'source'],
          message: `source: store needs stores.backend: redis, found ${c.stores.backend} (portcullis keys cannot write to a memory store inside a gateway process)`,
        })
      }
    } else if (e.store === undefined) {
      errors.push({
        segs: at,
        message: 'missing required field "store" (the key store file, with source: file)',
        covers: [...at, 'store'],
      })
    }
  }
  checkKeySource(c.policies, ['policies'])
  c.routes.forEach((r, i) => {
    checkKeySource(r.policies, ['routes', i, 'policies'])
  })
  for (const problem of checkStoresConfig(c.stores)) {
    const m = /^stores\.redis(?:\.(\w+))?: (.*)$/.exec(problem)
    errors.push({
      segs: m ? ['stores', 'redis', ...(m[1] ? [m[1]] : [])] : ['stores'],
      message: m ? (m[2] as string) : problem,
    })
  }
  const routeNames = new Set<string>()
  c.routes.forEach((r, i) => {
    if (routeNames.has(r.name))
      errors.push({ segs: ['routes', i, 'name'], message: `duplicate route name "${r.name}"` })
    routeNames.add(r.name)
    if (!Object.hasOwn(c.upstreams, r.upstream)) {
      const known = Object.keys(c.upstreams)
      errors.push({
        segs: ['routes', i, 'upstream'],
        message: `expected one of the upstreams (${known.join(', ') || 'none defined'}), found "${r.upstream}"`,
      })
    }
    try {
      const canon = canonicalizeTarget(r.match.pathPrefix, { allowSemicolon: true, maxUrlLength: 8192 })
      if (canon.path !== r.match.pathPrefix || r.match.pathPrefix.includes('?')) {
        errors.push({
          segs: ['routes', i, 'match', 'pathPrefix'],
          message: `expected a canonical path, found "${r.match.pathPrefix}" (canonical: "${canon.path}")`,
        })
      }
    } catch (err) {
      errors.push({
        segs: ['routes', i, 'match', 'pathPrefix'],
        message: (err as Error & { detail?: string }).detail ?? 'invalid',
      })
    }
    const auth = r.authentication
    if (auth) {
      const ids = auth.anyOf ?? auth.allOf ?? []
      if ((auth.anyOf === undefined) === (auth.allOf === undefined)) {
        errors.push({
          segs: ['routes', i, 'authentication'],
          message: 'expected exactly one of anyOf or allOf',
        })
      }
      const merged = { ...c.policies, ...(r.policies ?? {}) } as Record<
        string,
        { enabled?: boolean } | undefined
      >
      const key = auth.anyOf ? 'anyOf' : 'allOf'
      ids.forEach((id, j) => {
        const segs = ['routes', i, 'authentication', key, j]
        const def = policyById(id)
        if (!def?.authenticates) {
          const known = BUILTIN_POLICIES.filter((p) => p.authenticates).map((p) => p.id)
          errors.push({
            segs,
            message: `expected an authentication policy (${known.join(', ')}), found "${id}"`,
          })
        } else if (merged[id] === undefined || merged[id]?.enabled === false) {
          errors.push({ segs, message: `"${id}" is not enabled on this route: configure it under policies` })
        }
      })
    }
    r.match.hosts?.forEach((h, j) => {
      if (!/^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(h)) {
        errors.push({
          segs: ['routes', i, 'match', 'hosts', j],
          message: `expected a lower-case host name or *.domain, found "${h.slice(0, 60)}"`,
        })
      }
    })
  })
  c.proxy.trustedProxies.forEach((p, i) => {
    const [addr, bits] = p.split('/')
    const fam = isIP(addr ?? '')
    const n = bits === undefined ? undefined : Number(bits)
    if (fam === 0 || (n !== undefined && (!Number.isInteger(n) || n < 0 || n > (fam === 4 ? 32 : 128)))) {
      errors.push({
        segs: ['proxy', 'trustedProxies', i],
        message: `expected an IP address or CIDR, found "${p}"`,
      })
      return
    }
  })
  return { errors, warnings }
}

type Problem = {
  segs: Seg[]
  message: string
  /** Locate the key of the last segment rather than its value (unknown fields). */
  atKey?: boolean
  /** The path this problem is about when it differs from `segs` (a missing required field). */
  covers?: Seg[]
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv
}

/** Larger documents are refused before parsing: a config is kilobytes, not megabytes. */
export const MAX_CONFIG_BYTES = 1024 * 1024
/**
 * Deeper documents are refused before parsing. The YAML composer recurses once per level and a
 * stack overflow inside it can take the whole process down, so the depth is bounded first.
 */
export const MAX_CONFIG_DEPTH = 200

/**
 * A cheap upper bound of the nesting depth, from the YAML lexer (which does not recurse): flow
 * brackets open, plus block indentation and `- ` / `? ` indicators on the line (a block level
 * takes at least one column or one indicator; a sequence under a key may share its column, hence
 * the factor 2). Block scalar contents and quoted strings are single tokens and never count.
 * Returns the offset where the bound first exceeds `limit`, or -1.
 */
function tooDeepAt(text: string, limit: number): number {
  let offset = 0
  let flow = 0
  let indent = 0
  let indicators = 0
  let lineStart = true
  let skipScalar = false
  for (const tok of new Lexer().lex(text)) {
    // Control tokens mark the next token and take no room in the source.
    if (tok === '\x02' || tok === '\x18') continue
    if (tok === '\x1f') {
      skipScalar = true
      continue
    }
    const at = offset
    offset += tok.length
    if (skipScalar) {
      skipScalar = false
      lineStart = false
      continue
    }
    const c = tok[0]
    if (tok === '\n' || tok === '\r\n') {
      lineStart = true
      indent = 0
      indicators = 0
      continue
    }
    if (c === ' ' && lineStart) indent = tok.length
    else if (c === '[' || c === '{') flow++
    else if ((c === ']' || c === '}') && flow > 0) flow--
    else if ((tok === '-' || tok === '?') && flow === 0) indicators++
    lineStart = false
    if (flow + 2 * (indent + indicators) + 1 > limit) return at
  }
  return -1
}

function linePosAt(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let lineStart = 0
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    lineStart = i + 1
  }
  return { line, column: offset - lineStart + 1 }
}

/** Problems sorted by position (stable; those without a position first), as a reader scans. */
function inDocumentOrder(problems: ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))
}

function isUnder(path: readonly Seg[], prefix: readonly Seg[]): boolean {
  return prefix.length <= path.length && prefix.every((s, i) => String(s) === String(path[i]))
}

/** Loads a config from text. `file` is used for messages and relative paths. Never throws. */
export function loadConfigText(text: string, file: string, opts: LoadOptions = {}): LoadResult {
  try {
    return load(text, file, opts)
  } catch (err) {
    // Defence in depth: whatever a hostile document does to a library, it is a config error.
    return {
      config: undefined,
      errors: [{ file, path: '', message: `cannot load the config: ${(err as Error).message}` }],
      warnings: [],
      secretPaths: new Set(),
    }
  }
}

function load(text: string, file: string, opts: LoadOptions): LoadResult {
  const secretPaths = new Set<string>()
  const fail = (message: string, pos: { line?: number; column?: number } = {}): LoadResult => ({
    config: undefined,
    errors: [{ file, path: '', ...pos, message }],
    warnings: [],
    secretPaths,
  })
  const bytes = Buffer.byteLength(text)
  if (bytes > MAX_CONFIG_BYTES) {
    return fail(`the document is ${bytes} bytes; the limit is ${MAX_CONFIG_BYTES} bytes`)
  }
  const deep = tooDeepAt(text, MAX_CONFIG_DEPTH)
  if (deep !== -1) {
    return fail(`the document nests deeper than ${MAX_CONFIG_DEPTH} levels`, linePosAt(text, deep))
  }
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const pos = (offset: number) => {
    const p = lineCounter.linePos(offset)
    return { line: p.line, column: p.col }
  }
  const locate = (segs: readonly Seg[], atKey = false): { line?: number; column?: number } => {
    if (atKey && segs.length > 0) {
      const parent = doc.getIn(segs.slice(0, -1), true)
      const last = segs[segs.length - 1]
      if (isMap(parent)) {
        const pair = parent.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(last))
        const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range
        if (range) return pos(range[0])
      }
    }
    for (let n = segs.length; n >= 0; n--) {
      const node = doc.getIn(segs.slice(0, n), true) as { range?: [number, number, number] } | undefined
      if (node?.range) return pos(node.range[0])
    }
    return {}
  }
  const secretValues = new Set<string>()
  // Substituted values never appear in a message, whatever rule produced it.
  const scrub = (message: string): string => {
    let out = message
    for (const v of [...secretValues].sort((a, b) => b.length - a.length)) {
      if (v.length >= 4) out = out.split(v).join('(secret)')
    }
    return out
  }
  const toProblem = (p: Problem): ConfigProblem => ({
    file,
    path: formatPath(p.segs),
    ...locate(p.segs, p.atKey),
    message: scrub(p.message),
  })
  if (doc.errors.length > 0) {
    return {
      config: undefined,
      errors: doc.errors.map((e) => ({
        file,
        path: '',
        ...(e.linePos?.[0] ? { line: e.linePos[0].line, column: e.linePos[0].col } : pos(e.pos[0])),
        message: e.message.split('\n')[0] ?? e.message,
      })),
      warnings: [],
      secretPaths,
    }
  }
  let raw: unknown
  try {
    raw = doc.toJS({ maxAliasCount: 50 })
  } catch (err) {
    // yaml throws (ReferenceError) on alias amplification ("billion laughs").
    return fail((err as Error).message)
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return fail(`expected a mapping at the top level, found ${describe(raw, false)}`)
  }
  const baseDir = dirname(resolve(file))
  const substProblems: Problem[] = []
  const data = substitute(raw, [], {
    baseDir,
    env: opts.env ?? process.env,
    problems: substProblems,
    secretPaths,
    secretValues,
    ancestors: new Set(),
  })
  const errors: ConfigProblem[] = substProblems.map(toProblem)
  // A value whose substitution failed is reported once, not again for being empty.
  const unreported = (p: Problem) => !substProblems.some((s) => isUnder(p.segs, s.segs))
  if (!validate(data)) {
    const schemaProblems = ajvProblems(validate.errors ?? [], data, secretPaths)
    for (const p of schemaProblems.filter(unreported)) errors.push(toProblem(p))
    // The cross-field rules too, so that every problem shows at once. They assume a valid
    // shape: best effort, and nothing about a value the schema already rejected.
    let ruleErrors: Problem[] = []
    try {
      ruleErrors = rules(data as GatewayConfig, baseDir).errors
    } catch {
      // a shape the schema already reported
    }
    for (const p of ruleErrors) {
      if (unreported(p) && !schemaProblems.some((s) => isUnder(p.segs, s.covers ?? s.segs)))
        errors.push(toProblem(p))
    }
    return { config: undefined, errors: inDocumentOrder(errors), warnings: [], secretPaths }
  }
  const r = rules(data, baseDir)
  errors.push(...r.errors.filter(unreported).map(toProblem))
  const warnings = [...r.warnings, ...plainSecrets(data, secretPaths)].map(toProblem)
  if (errors.length > 0)
    return {
      config: undefined,
      errors: inDocumentOrder(errors),
      warnings: inDocumentOrder(warnings),
      secretPaths,
    }
  return {
    config: deepFreeze(data),
    errors,
    warnings: inDocumentOrder(warnings),
    secretPaths,
    locate: (segs) => locate(segs as Seg[]),
    scrub,
  }
}

/** Loads a config file. Never throws for bad content; an unreadable file is one error. */
export function loadConfigFile(file: string, opts: LoadOptions = {}): LoadResult {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    return {
      config: undefined,
      errors: [
        {
          file,
          path: '',
          // e.g. "ENOENT: no such file or directory" (without the repeated path)
          message: `cannot read the file: ${(err as Error).message.replace(/, \w+ '.*'$/s, '')}`,
        },
      ],
      warnings: [],
      secretPaths: new Set(),
    }
  }
  return loadConfigText(text, file, opts)
}

/** `file:line:col path: message` */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}:${p.column}` : p.file
  return `${where}${p.path ? ` ${p.path}` : ''}: ${p.message}`
}
