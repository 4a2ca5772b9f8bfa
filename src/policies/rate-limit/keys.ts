/**
 * Limit keys: each key part is compiled once into a getter; per request the getters run and their
 * values are joined into one store key. Values are length-prefixed (so `a|b` + `c` never equals
 * `a` + `b|c`) and long ones are replaced by a hash (bounded key size whatever a client sends).
 */
import { createHash } from 'node:crypto'
import { compileClaimPath } from '../../auth/principal.js'
import { tokenStateKey } from '../../auth/token.js'
import type { RequestContext } from '../../gateway/pipeline/context.js'
import type { KeyPart } from './schema.js'

/** Longest value kept as is in a key; longer ones become a SHA-256. */
const MAX_VALUE_CHARS = 128
/** Longest JSON body parsed for a key field. */
export const MAX_JSON_KEY_BODY = 1024 * 1024

/** A compiled key part: the value for this request, or undefined when the request has none. */
export type PartGetter = (ctx: RequestContext) => string | undefined

function scalar(v: unknown): string | undefined {
  if (typeof v === 'string') return v.length > 0 ? v : undefined
  if (typeof v === 'number' && Number.isFinite(v)) return String(v)
  if (typeof v === 'boolean') return String(v)
  return undefined
}

/** Compiles `/users/{id}/orders` into a matcher that returns the `id` segment. */
export function compilePathParam(pattern: string, param: string): (path: string) => string | undefined {
  const segs = pattern.split('/').slice(1)
  const index = segs.indexOf(`{${param}}`)
  if (index === -1) throw new Error(`path template ${pattern} has no {${param}}`)
  const fixed = segs.map((s) => (/^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(s) ? undefined : s))
  return (path) => {
    const parts = path.split('/')
    // parts[0] is '' (the path starts with '/'); the template may be a prefix of the path.
    if (parts.length - 1 < segs.length) return undefined
    for (let i = 0; i < fixed.length; i++) {
      const f = fixed[i]
      if (f !== undefined && parts[i + 1] !== f) return undefined
    }
    const v = parts[index + 1]
    return v === undefined || v === '' ? undefined : v
  }
}

/** The parsed JSON body of a request, once per request (set by the policy before keys are read). */
export const JSON_BODY = Symbol('rate-limit.json-body')
type WithJson = RequestContext & { [JSON_BODY]?: unknown }

function jsonGetter(path: string): PartGetter {
  const segs = path.split('.')
  return (ctx) => {
    let cur = (ctx as WithJson)[JSON_BODY]
    for (const s of segs) {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, s))
        return undefined
      cur = (cur as Record<string, unknown>)[s]
    }
    return scalar(cur)
  }
}

/** Compiles one key part. */
export function compilePart(part: KeyPart): PartGetter {
  if (part === 'ip') return (ctx) => (ctx.clientIp === '' ? undefined : ctx.clientIp)
  if (part === 'principal') return (ctx) => ctx.principal?.id
  if (part === 'api-key') return (ctx) => (ctx.principal?.type === 'api-key' ? ctx.principal.id : undefined)
  if (part === 'route') return (ctx) => ctx.routeName
  if ('header' in part) {
    const name = part.header.toLowerCase()
    const tokenKey = tokenStateKey(name)
    return (ctx) => {
      // A header that carried a token an authentication policy accepted (Authorization): the
      // token's identity, the same for every spelling of it (scheme case, spaces, either ECDSA
      // signature), so that respelling a token does not buy another bucket.
      const id = ctx.state[tokenKey]
      if (typeof id === 'string') return id
      const v = ctx.req.headers[name]
      return scalar(Array.isArray(v) ? v[0] : v)
    }
  }
  if ('claim' in part) {
    const get = compileClaimPath(part.claim)
    return (ctx) => (ctx.principal ? scalar(get(ctx.principal.claims)) : undefined)
  }
  if ('query' in part) {
    const name = part.query
    return (ctx) => {
      if (ctx.query === '') return undefined
      const v = ctx.queryParams().single(name)
      return v === undefined ? undefined : scalar(v)
    }
  }
  if ('pathParam' in part) {
    const match = compilePathParam(part.pattern, part.pathParam)
    return (ctx) => match(ctx.path)
  }
  return jsonGetter(part.jsonField)
}

/** A short tag per part kind, so that the same value from two sources gives different keys. */
export function partTag(part: KeyPart): string {
  if (typeof part === 'string') return part
  if ('header' in part) return `h:${part.header.toLowerCase()}`
  if ('claim' in part) return `c:${part.claim}`
  if ('query' in part) return `q:${part.query}`
  if ('pathParam' in part) return `p:${part.pathParam}`
  return `j:${part.jsonField}`
}

/**
 * One value as it goes into a key: length-prefixed; long values, and with `hash` every value, are
 * replaced by their SHA-256 (values from headers, query strings and bodies may be credentials —
 * a session token in `Authorization` — which must not sit in Redis key names).
 */
export function keyValue(v: string, hash = false): string {
  if (hash || v.length > MAX_VALUE_CHARS) v = `#${createHash('sha256').update(v).digest('base64url')}`
  return `${v.length}:${v}`
}

/** Parts whose values are hashed in keys: request data a client controls and that may be secret. */
function hashed(part: KeyPart): boolean {
  return typeof part === 'object' && ('header' in part || 'query' in part || 'jsonField' in part)
}

/** What a compiled key gives for one request. */
export type KeyResult = { key: string } | { missing: true }

/**
 * Compiles a whole key. With `fallbackIp`, a missing part is replaced by the client IP (under its
 * own tag, so `principal=1.2.3.4` and a fallback to the IP 1.2.3.4 stay apart).
 */
export function compileKey(
  parts: readonly KeyPart[],
  fallbackIp: boolean,
): (ctx: RequestContext) => KeyResult {
  const getters = parts.map(compilePart)
  const tags = parts.map(partTag)
  const hash = parts.map(hashed)
  return (ctx) => {
    let key = ''
    for (let i = 0; i < getters.length; i++) {
      const v = (getters[i] as PartGetter)(ctx)
      if (v !== undefined) key += `${tags[i]}=${keyValue(v, hash[i])};`
      else if (fallbackIp && ctx.clientIp !== '') key += `${tags[i]}?ip=${keyValue(ctx.clientIp)};`
      else return { missing: true }
    }
    return { key }
  }
}

/** Whether any part reads the JSON body. */
export function needsJsonBody(parts: readonly KeyPart[]): boolean {
  return parts.some((p) => typeof p === 'object' && 'jsonField' in p)
}
