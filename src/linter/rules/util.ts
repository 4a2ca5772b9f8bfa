/** Helpers shared by the rules. */
import type { Operation } from '../../openapi/index.js'
import { isObject, type LintContext, type Obj, type OpInfo, type SchemaNode } from '../context.js'
import type { Hit, Rule, SpecLocation } from '../types.js'

/** Whether an operation documents a response with this status (exact, or its `4XX` range). */
export function hasStatus(op: Operation, code: string): boolean {
  return op.responses.some((r) => r.status === code || r.status === `${code[0]}XX`)
}

const RATE_HEADERS =
  /^(ratelimit|ratelimit-policy|ratelimit-limit|ratelimit-remaining|x-ratelimit-limit|x-ratelimit-remaining|x-rate-limit-limit|x-rate-limit-remaining|retry-after)$/

/** A rate limit documented: a 429 response, rate-limit headers, or an `x-*rate*limit*` extension. */
export function documentsRateLimit(o: OpInfo): boolean {
  if (hasStatus(o.op, '429')) return true
  if (o.op.responses.some((r) => r.headers.some((h) => RATE_HEADERS.test(h)))) return true
  return Object.keys(o.op.raw).some((k) => /^x-.*rate-?limit/i.test(k) || /^x-.*throttl/i.test(k))
}

export function isJsonMedia(type: string | undefined): boolean {
  return (
    type !== undefined &&
    (/^application\/([\w.+-]+\+)?json$/.test(type) || type === '*/*' || type === 'application/*')
  )
}

/** The schema's declared types (`type: [string, "null"]` → string, null). */
export function typesOf(s: Obj): Set<string> {
  const out = new Set<string>()
  if (typeof s.type === 'string') out.add(s.type)
  else if (Array.isArray(s.type)) for (const t of s.type) out.add(String(t))
  return out
}

const BOUNDED_FORMATS = new Set([
  'date',
  'date-time',
  'time',
  'uuid',
  'ipv4',
  'ipv6',
  'int32',
  'int64',
  'duration',
])

/** A string whose length is bounded by maxLength, an enum or const, a bounded format, or an anchored pattern. */
export function isBoundedString(s: Obj): boolean {
  if (typeof s.maxLength === 'number') return true
  if (Array.isArray(s.enum) || s.const !== undefined) return true
  if (typeof s.format === 'string' && BOUNDED_FORMATS.has(s.format)) return true
  if (typeof s.pattern === 'string') return isBoundedPattern(s.pattern)
  return false
}

/** `^[A-Z]{3}$`: anchored at both ends with no unbounded quantifier. */
export function isBoundedPattern(p: string): boolean {
  return p.startsWith('^') && p.endsWith('$') && !/[*+]|\{\d+,\}/.test(p.replace(/\\./g, ''))
}

/** Digit-only strings: `pattern: ^[0-9]+$`, `^\d{1,10}$`, `format: int64` on a string. */
export function isDigitOnlyString(s: Obj): boolean {
  if (!typesOf(s).has('string')) return false
  if (s.format === 'int64' || s.format === 'int32' || s.format === 'integer') return true
  return typeof s.pattern === 'string' && /^\^?(\[0-9\]|\\d)(\+|\*|\{\d+(,\d*)?\})\$?$/.test(s.pattern)
}

export function isNumericIdSchema(s: Obj): boolean {
  const t = typesOf(s)
  return t.has('integer') || (t.has('number') && !t.has('string')) || isDigitOnlyString(s)
}

/** Nodes of the request side, JSON bodies and parameters, once per schema location. */
export function requestProps(ctx: LintContext): SchemaNode[] {
  return ctx.requestNodes().filter((n) => n.name !== undefined)
}

/** A location for a schema node (with its operation). */
export function nodeLoc(ctx: LintContext, n: SchemaNode, note?: string): SpecLocation {
  return ctx.loc(n.at, n.op, note)
}

/** Nodes grouped by schema location: each location once, with every operation that reaches it. */
export function perOperation(ctx: LintContext, fn: (o: OpInfo) => string | undefined): Hit[] {
  const out: Hit[] = []
  for (const o of ctx.ops) {
    const note = fn(o)
    if (note !== undefined) out.push({ message: note, locations: [ctx.opLoc(o, note)], ops: [o] })
  }
  return out
}

/** The value of a security scheme used by a requirement, when defined. */
export function schemeOf(ctx: LintContext, name: string): Obj | undefined {
  return ctx.schemes.get(name)?.value
}

/** All scopes named by an operation's security requirements. */
export function scopesOf(o: OpInfo): string[] {
  return (o.security ?? []).flatMap((r) => Object.values(r).flat())
}

/** A requirement's canonical form (`oauth[a b]|key[]`) for comparing operations. */
export function requirementKey(o: OpInfo): string {
  return (o.security ?? [])
    .map((r) =>
      Object.entries(r)
        .map(([k, v]) => `${k}[${[...v].sort().join(' ')}]`)
        .sort()
        .join('+'),
    )
    .sort()
    .join('|')
}

export function defineRule(r: Rule): Rule {
  return r
}

export { isObject }

export interface ServerEntry {
  url: string
  /** Every URL the variables allow (defaults and enum values), at most 20. */
  expanded: string[]
  variables: Record<string, unknown>
  at: import('../../openapi/index.js').Location
}

/** Servers of the document, its path items and operations. */
export function serversOf(ctx: LintContext): ServerEntry[] {
  const out: ServerEntry[] = []
  const add = (list: unknown, pointer: string) => {
    if (!Array.isArray(list)) return
    list.forEach((s, i) => {
      if (!isObject(s) || typeof s.url !== 'string') return
      const variables = isObject(s.variables) ? s.variables : {}
      let urls = [s.url]
      for (const [name, v] of Object.entries(variables)) {
        if (!isObject(v)) continue
        const values = [
          ...(v.default !== undefined ? [String(v.default)] : []),
          ...(Array.isArray(v.enum) ? v.enum.map(String) : []),
        ]
        if (values.length === 0) continue
        urls = urls
          .flatMap((u) => (u.includes(`{${name}}`) ? values.map((x) => u.split(`{${name}}`).join(x)) : [u]))
          .slice(0, 20)
      }
      out.push({
        url: s.url,
        expanded: [...new Set(urls)],
        variables,
        at: { file: ctx.rootFile, pointer: `${pointer}/${i}` },
      })
    })
  }
  add(ctx.root.servers, '/servers')
  const paths = isObject(ctx.root.paths) ? ctx.root.paths : {}
  for (const [p, item] of Object.entries(paths)) {
    if (!isObject(item)) continue
    const base = `/paths/${p.replace(/~/g, '~0').replace(/\//g, '~1')}`
    add(item.servers, `${base}/servers`)
    for (const [m, op] of Object.entries(item)) if (isObject(op)) add(op.servers, `${base}/${m}/servers`)
  }
  return out
}
