/**
 * Config loading: parse (YAML or JSON) → substitute `${env:NAME}` / `${file:PATH}` → validate
 * against the schema, filling defaults → cross-field rules → deep-freeze. Every problem is
 * collected, so a user sees all of them at once, each with file, line, path, expected and found.
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { dirname, isAbsolute, resolve } from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import { LineCounter, parseDocument } from 'yaml'
import { canonicalizeTarget } from '../gateway/hygiene.js'
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
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, coerceTypes: false })
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
function ajvProblems(errors: ErrorObject[], data: unknown, secretPaths: ReadonlySet<string>) {
  const out: { segs: Seg[]; message: string }[] = []
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
      const allowed: string[] = []
      for (const s of shallow) {
        if (s.keyword === 'const')
          allowed.push(JSON.stringify((s.params as { allowedValue: unknown }).allowedValue))
        else if (s.keyword === 'type') allowed.push(`a ${(s.params as { type: string }).type}`)
        consumed.add(s)
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
    const segs = pointerToSegs(e.instancePath, data)
    const found = describe(valueAt(data, segs), secretPaths.has(formatPath(segs)))
    let message: string
    switch (e.keyword) {
      case 'required':
        message = `missing required field "${(e.params as { missingProperty: string }).missingProperty}"`
        break
      case 'additionalProperties': {
        const prop = (e.params as { additionalProperty: string }).additionalProperty
        const known = Object.keys(
          ((e.parentSchema as { properties?: Record<string, unknown> }).properties ?? {}) as object,
        )
        message = `unknown field "${prop}"${known.length ? ` (expected one of: ${known.join(', ')})` : ''}`
        break
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

/** Replaces ${env:NAME} and ${file:PATH} in every string; records where secrets came from. */
function substitute(
  node: unknown,
  segs: Seg[],
  baseDir: string,
  env: NodeJS.ProcessEnv,
  problems: { segs: Seg[]; message: string }[],
  secretPaths: Set<string>,
): unknown {
  if (typeof node === 'string') {
    if (!node.includes('${')) return node
    return node.replace(SUBST, (_m, kind: string, ref: string) => {
      secretPaths.add(formatPath(segs))
      if (kind === 'env') {
        const v = env[ref]
        if (v === undefined) {
          problems.push({ segs: [...segs], message: `environment variable ${ref} is not set` })
          return ''
        }
        return v
      }
      const p = isAbsolute(ref) ? ref : resolve(baseDir, ref)
      try {
        return readFileSync(p, 'utf8').replace(/\r?\n$/, '')
      } catch (err) {
        problems.push({
          segs: [...segs],
          message: `cannot read ${p}: ${(err as NodeJS.ErrnoException).code}`,
        })
        return ''
      }
    })
  }
  if (Array.isArray(node))
    return node.map((v, i) => substitute(v, [...segs, i], baseDir, env, problems, secretPaths))
  if (node !== null && typeof node === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(node))
      out[k] = substitute(v, [...segs, k], baseDir, env, problems, secretPaths)
    return out
  }
  return node
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

type Problem = { segs: Seg[]; message: string }

export interface LoadOptions {
  env?: NodeJS.ProcessEnv
}

/** Loads a config from text. `file` is used for messages and relative paths. */
export function loadConfigText(text: string, file: string, opts: LoadOptions = {}): LoadResult {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const secretPaths = new Set<string>()
  const locate = (segs: readonly Seg[]): { line?: number; column?: number } => {
    for (let n = segs.length; n >= 0; n--) {
      const node = doc.getIn(segs.slice(0, n), true) as { range?: [number, number, number] } | undefined
      if (node?.range) {
        const pos = lineCounter.linePos(node.range[0])
        return { line: pos.line, column: pos.col }
      }
    }
    return {}
  }
  const toProblem = (p: Problem): ConfigProblem => ({
    file,
    path: formatPath(p.segs),
    ...locate(p.segs),
    message: p.message,
  })
  if (doc.errors.length > 0) {
    return {
      config: undefined,
      errors: doc.errors.map((e) => {
        const pos = e.linePos?.[0]
        return {
          file,
          path: '',
          ...(pos ? { line: pos.line, column: pos.col } : {}),
          message: e.message.split('\n')[0] ?? e.message,
        }
      }),
      warnings: [],
      secretPaths,
    }
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 50 })
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      config: undefined,
      errors: [
        { file, path: '', message: `expected a mapping at the top level, found ${describe(raw, false)}` },
      ],
      warnings: [],
      secretPaths,
    }
  }
  const baseDir = dirname(resolve(file))
  const substProblems: Problem[] = []
  const data = substitute(raw, [], baseDir, opts.env ?? process.env, substProblems, secretPaths)
  const errors: ConfigProblem[] = substProblems.map(toProblem)
  if (!validate(data)) {
    for (const p of ajvProblems(validate.errors ?? [], data, secretPaths)) errors.push(toProblem(p))
    return { config: undefined, errors, warnings: [], secretPaths }
  }
  const r = rules(data, baseDir)
  errors.push(...r.errors.map(toProblem))
  const warnings = r.warnings.map(toProblem)
  if (errors.length > 0) return { config: undefined, errors, warnings, secretPaths }
  return { config: deepFreeze(data), errors, warnings, secretPaths }
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
          message: `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
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
