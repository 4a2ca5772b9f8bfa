/**
 * Method override: `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` headers and a
 * `_method` query or form parameter ask a framework (Express method-override, Rails, Laravel,
 * Symfony, the Flask recipe, gorilla's handler) to run a POST as another method. A gateway that
 * routes, validates and authorizes the POST would then let an undeclared DELETE through.
 *
 * Request hygiene refuses them on every route (400 `GW_ERR_METHOD_OVERRIDE`) unless the route
 * opts in (`methodOverride: true`): then a POST naming PUT, PATCH or DELETE is routed, validated,
 * authorized and forwarded as that method — the upstream receives the real method and no override
 * header or query parameter, so there is nothing left for it to reinterpret.
 *
 * What is looked at:
 * - headers: the three names above in any case, with `_` for `-` as well (CGI-style servers —
 *   PHP, WSGI, Rack — read `X_HTTP_METHOD_OVERRIDE` as the same variable);
 * - the query string: a parameter whose name a framework reads as `_method` (percent-decoded,
 *   any case, `_method[]`, PHP's ` method` / `.method` / `[method`), split on `&` and `;`;
 * - a form body (`application/x-www-form-urlencoded`, `multipart/form-data`) or a JSON body's
 *   top-level member: only where a policy reads the body (openapi-validation calls
 *   {@link checkBodyFields} then); a `_method` there must name the method the request was
 *   validated as, else it is refused. The gateway does not read other bodies for it.
 */
import { GatewayError } from './errors.js'
import type { RequestContext } from './pipeline/context.js'
import type { RouteMatcher } from './router.js'

/** Header names (lower case, `-` form) that ask for another method. */
export const METHOD_OVERRIDE_HEADERS = [
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
] as const

/** Methods an opted-in route lets a POST become: what HTML forms cannot send. */
export const OVERRIDABLE_METHODS: ReadonlySet<string> = new Set(['PUT', 'PATCH', 'DELETE'])

const HEADER_SET: ReadonlySet<string> = new Set(METHOD_OVERRIDE_HEADERS)
const METHOD_TOKEN = /^[A-Za-z]{1,16}$/
/** Where the original method is kept once an override was applied (see {@link overriddenFrom}). */
const APPLIED = 'gateway.method-override'

/** An override a request asks for. */
export interface MethodOverride {
  /** The method named, upper case. */
  method: string
  /** Raw header names that asked for it, lower case (to remove them before the upstream). */
  headers: string[]
  /** True when the query string asked for it. */
  query: boolean
}

function refused(detail: string): GatewayError {
  return new GatewayError('GW_ERR_METHOD_OVERRIDE', { detail })
}

/** True when a header name (lower case) is one of the override headers, `_` counting as `-`. */
function isOverrideHeader(lower: string): boolean {
  if (lower.length < 13 || lower.length > 22 || lower.charCodeAt(0) !== 0x78) return false // 'x'
  return HEADER_SET.has(lower.includes('_') ? lower.replaceAll('_', '-') : lower)
}

/**
 * True when a decoded parameter name is read as `_method` by some framework: compared without
 * case, after PHP's name mangling (leading spaces dropped; ` ` `.` and an unclosed `[` become `_`)
 * and ignoring a `[...]` suffix (`_method[]`, an array in qs/PHP).
 */
export function isMethodParamName(name: string): boolean {
  let n = name.trimStart().toLowerCase()
  if (n.length < 7 || !n.includes('method')) return false
  const br = n.indexOf('[')
  if (br > 0 && n.indexOf(']', br) !== -1) n = n.slice(0, br)
  return n.replace(/[ .[]/g, '_') === '_method'
}

function decode(s: string): string {
  const plus = s.includes('+') ? s.replaceAll('+', ' ') : s
  if (!plus.includes('%')) return plus
  try {
    return decodeURIComponent(plus)
  } catch {
    return plus
  }
}

/** The `_method` parameters of a query string or urlencoded body: [raw part, decoded value]. */
function methodParams(text: string): [string, string][] {
  const out: [string, string][] = []
  for (const part of text.split(/[&;]/)) {
    const eq = part.indexOf('=')
    const name = decode(eq === -1 ? part : part.slice(0, eq))
    if (isMethodParamName(name)) out.push([part, eq === -1 ? '' : decode(part.slice(eq + 1))])
  }
  return out
}

/** Cheap test before parsing a query: could any parameter name be a `_method`? */
function mayHaveMethodParam(query: string): boolean {
  return query.includes('%') || /method/i.test(query)
}

/**
 * The override a request asks for, from its headers and query string; undefined when none.
 * Throws 400 GW_ERR_METHOD_OVERRIDE when what it asks for is not one method: a value that is not
 * a method token, a list, or two sources naming different methods.
 *
 * @example
 * findMethodOverride(['X-HTTP-Method-Override', 'delete'], '') // { method: 'DELETE', headers: ['x-http-method-override'], query: false }
 */
export function findMethodOverride(rawHeaders: readonly string[], query: string): MethodOverride | undefined {
  let method: string | undefined
  let headers: string[] | undefined
  const named = (v: string) => {
    const t = v.trim()
    if (!METHOD_TOKEN.test(t)) throw refused('a method override must name one method')
    const m = t.toUpperCase()
    if (method !== undefined && method !== m) throw refused('method overrides name different methods')
    method = m
  }
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length < 13 || (name.charCodeAt(0) | 0x20) !== 0x78) continue
    const lower = name.toLowerCase()
    if (!isOverrideHeader(lower)) continue
    named(rawHeaders[i + 1] as string)
    headers ??= []
    if (!headers.includes(lower)) headers.push(lower)
  }
  let inQuery = false
  if (query !== '' && mayHaveMethodParam(query)) {
    for (const [, value] of methodParams(query)) {
      named(value)
      inQuery = true
    }
  }
  if (method === undefined) return undefined
  return { method, headers: headers ?? [], query: inQuery }
}

/** What a route must say to accept overrides. */
interface OverrideRoute {
  config: { methodOverride?: boolean }
}

function isRoute(m: unknown): m is OverrideRoute {
  return m !== null && typeof m === 'object' && 'config' in m
}

/**
 * Routes a request, honouring a method override where the route opts in. Without an override:
 * the route for `ctx.method`. With one: the route of the overridden method must have
 * `methodOverride: true`, the request must be a POST and the method one of PUT, PATCH, DELETE;
 * then `ctx.method` becomes that method (routing, every policy and the upstream see it), the
 * override headers and `_method` query parameters are removed from what the upstream receives,
 * and that route is returned. Otherwise (a route that did not opt in, no route, another method)
 * 400 GW_ERR_METHOD_OVERRIDE is thrown. `ctx.host`, `ctx.path` and `ctx.query` must be set.
 */
export function routeWithOverride<R>(
  ctx: RequestContext,
  router: RouteMatcher<R>,
): R | { allow: string[] } | undefined {
  const ov = findMethodOverride(ctx.req.rawHeaders, ctx.query)
  if (ov === undefined) return router.match(ctx.host, ctx.path, ctx.method)
  let m: R | { allow: string[] } | undefined
  try {
    m = router.match(ctx.host, ctx.path, ov.method)
  } catch {
    m = undefined // e.g. a spec-driven route that does not declare the method: not opted in
  }
  if (!isRoute(m) || m.config.methodOverride !== true) {
    throw refused('method override headers and _method parameters are not accepted on this route')
  }
  if (ctx.method !== 'POST') throw refused('only a POST may be overridden')
  if (!OVERRIDABLE_METHODS.has(ov.method)) throw refused('a POST may be overridden to PUT, PATCH or DELETE')
  ctx.state[APPLIED] = ctx.method
  // The request is this method from here on (RequestContext.method is read-only to policies).
  ;(ctx as { method: string }).method = ov.method
  for (const h of ov.headers) ctx.setUpstreamHeader(h, undefined)
  if (ov.query) ctx.query = withoutMethodParams(ctx.query)
  return m
}

/** The query string without its `_method` parameters. */
function withoutMethodParams(query: string): string {
  const drop = new Set(methodParams(query).map(([part]) => part))
  return query
    .split('&')
    .map((p) =>
      p
        .split(';')
        .filter((x) => !drop.has(x))
        .join(';'),
    )
    .filter((p) => p !== '')
    .join('&')
}

/** The method a request had before an override was applied; undefined when none was. */
export function overriddenFrom(ctx: RequestContext): string | undefined {
  const v = ctx.state[APPLIED]
  return typeof v === 'string' ? v : undefined
}

/**
 * For policies that read a body: throws 400 GW_ERR_METHOD_OVERRIDE when a field named like
 * `_method` (see {@link isMethodParamName}) names anything but the method the request was routed
 * and validated as — and always when the route did not apply an override (no `_method` at all
 * there). `fields` are [name, value] pairs (a value that is not a string is refused).
 */
export function checkBodyFields(ctx: RequestContext, fields: Iterable<readonly [string, unknown]>): void {
  for (const [name, value] of fields) {
    if (!isMethodParamName(name)) continue
    if (
      overriddenFrom(ctx) === undefined ||
      typeof value !== 'string' ||
      value.trim().toUpperCase() !== ctx.method
    )
      throw refused('a _method field in the body is not accepted')
  }
}

/** {@link checkBodyFields} for an `application/x-www-form-urlencoded` body. */
export function checkFormBody(ctx: RequestContext, text: string): void {
  if (!mayHaveMethodParam(text)) return
  checkBodyFields(
    ctx,
    methodParams(text).map(([part, value]) => [decode(part.split('=')[0] as string), value] as const),
  )
}

/** {@link checkBodyFields} for a parsed JSON body: its top-level members. */
export function checkJsonBody(ctx: RequestContext, value: unknown): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return
  checkBodyFields(ctx, Object.entries(value))
}
