/**
 * One parse of a body per request, shared by the policies that read it. openapi-validation,
 * property-filter, object-ownership and ssrf-guard each read the same request body (and the first
 * two the same response body); each parsed it again, which was a tenth of the whole-stack route's
 * CPU (issue 22). The parse is keyed by the body's Buffer object: the policies of one request see
 * the same Buffer until one of them replaces the body, and a replaced body is a new Buffer, so a
 * cached value never stands for other bytes.
 *
 * The value is shared: callers must not change it. A caller that edits the tree (openapi-validation's
 * strip mode, property-filter's removals) calls {@link forgetJson} first, or parses its own copy.
 * Errors are shared too, so a malformed body costs one failed parse however many policies read it.
 */
import { DEFAULT_JSON_LIMITS, JsonGuardError, type JsonLimits, parseJsonGuarded } from './json-guard.js'

type Parsed =
  | { limits: JsonLimits | undefined; ok: true; value: unknown }
  | { limits: JsonLimits | undefined; ok: false; error: Error }

const parsed = new WeakMap<Buffer, Parsed>()

function sameLimits(a: JsonLimits | undefined, b: JsonLimits | undefined): boolean {
  if (a === b) return true
  if (a === undefined || b === undefined) return false
  return (
    a.maxDepth === b.maxDepth &&
    a.maxKeys === b.maxKeys &&
    a.maxArrayLength === b.maxArrayLength &&
    a.maxStringLength === b.maxStringLength &&
    a.maxTotalValues === b.maxTotalValues &&
    a.allowNul === b.allowNul
  )
}

function cached(bytes: Buffer, limits: JsonLimits | undefined, parse: () => unknown): unknown {
  const hit = parsed.get(bytes)
  if (hit !== undefined && sameLimits(hit.limits, limits)) {
    if (hit.ok) return hit.value
    throw hit.error
  }
  let entry: Parsed
  try {
    entry = { limits, ok: true, value: parse() }
  } catch (err) {
    if (!(err instanceof JsonGuardError || err instanceof SyntaxError)) throw err
    entry = { limits, ok: false, error: err }
  }
  parsed.set(bytes, entry)
  if (entry.ok) return entry.value
  throw entry.error
}

/**
 * `parseJsonGuarded(bytes as UTF-8, limits)`, parsed once per body Buffer and limits. Throws the
 * JsonGuardError of the parse. The value must not be changed (see the module comment).
 */
export function guardedJsonOf(bytes: Buffer, limits: JsonLimits = DEFAULT_JSON_LIMITS): unknown {
  return cached(bytes, limits, () => parseJsonGuarded(bytes.toString('utf8'), limits))
}

/**
 * `JSON.parse(bytes as UTF-8)`, parsed once per body Buffer (response bodies, which come from the
 * upstream and are not held to the request guards). Throws the SyntaxError of the parse.
 */
export function jsonOf(bytes: Buffer): unknown {
  return cached(bytes, undefined, () => JSON.parse(bytes.toString('utf8')))
}

/** Drops the shared parse of `bytes`: call it before changing a value the functions above gave. */
export function forgetJson(bytes: Buffer): void {
  parsed.delete(bytes)
}

/**
 * Records `value` as the parse of `bytes`, a body just written as `JSON.stringify(value)` (UTF-8)
 * from a value of `jsonOf` that a policy changed (property-filter's removals): `JSON.parse` of it
 * would give an equal value, so the next policy of the response (openapi-validation) does not parse
 * it again. The value must not be changed afterwards (see the module comment).
 */
export function rememberJson(bytes: Buffer, value: unknown): void {
  parsed.set(bytes, { limits: undefined, ok: true, value })
}
