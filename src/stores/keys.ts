/**
 * Key encoding and argument checks shared by both stores, so that they agree on what a key is.
 */
import { createHash } from 'node:crypto'

/** Keys longer than this (in UTF-16 code units, after escaping) are stored as their SHA-256. */
export const MAX_ENCODED_KEY_LENGTH = 256

/** Longest TTL or window accepted: 100 years (keeps every timestamp exact in a double). */
export const MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000

const NEEDS_ESCAPE = /[%{}\uD800-\uDFFF]/
const ESCAPE = /[%{}]|[\uD800-\uDBFF][\uDC00-\uDFFF]|[\uD800-\uDFFF]/g

function escapeChar(c: string): string {
  if (c.length === 2) return c // a well-formed surrogate pair: an ordinary character
  return `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`
}

/**
 * Turns any string into a stored key name that never contains `{` or `}` (so a Redis hash tag
 * around it is exactly it), is never empty (an empty `{}` would make Redis hash the whole name),
 * has no lone surrogates (which UTF-8 would merge into U+FFFD) and is bounded in length:
 *
 * - `%`, `{`, `}` and lone surrogates are percent-escaped (`%25`, `%7B`, `%7D`, `%D800`);
 * - the empty key becomes `%e`;
 * - a longer result than {@link MAX_ENCODED_KEY_LENGTH} becomes `%h` + the SHA-256 (hex) of the
 *   key's UTF-8 bytes.
 *
 * `%e` and `%h…` cannot come out of escaping (a literal `%` becomes `%25`), so the encoding is
 * injective: two different keys never share a stored name (short of a SHA-256 collision).
 */
export function encodeKey(key: string): string {
  if (typeof key !== 'string') throw new TypeError('store key must be a string')
  if (key.length === 0) return '%e'
  const escaped = NEEDS_ESCAPE.test(key) ? key.replace(ESCAPE, escapeChar) : key
  if (escaped.length <= MAX_ENCODED_KEY_LENGTH) return escaped
  return `%h${createHash('sha256').update(key, 'utf8').digest('hex')}`
}

/** A TTL or window in ms: a finite number in 1..MAX_TTL_MS, rounded up to a whole ms. */
export function checkTtl(ttlMs: number, what = 'ttlMs'): number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS) {
    throw new RangeError(`${what} must be a number of ms in (0, ${MAX_TTL_MS}], got ${String(ttlMs)}`)
  }
  return Math.ceil(ttlMs)
}

/** An optional TTL: `undefined` means no expiry. */
export function checkOptionalTtl(ttlMs: number | undefined): number | undefined {
  return ttlMs === undefined ? undefined : checkTtl(ttlMs)
}

/** A counter increment: a safe integer. */
export function checkIncrement(by: number): number {
  if (!Number.isSafeInteger(by)) throw new RangeError(`increment must be a safe integer, got ${String(by)}`)
  return by
}

/** A `members()` limit: a non-negative integer. */
export function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new RangeError(`limit must be a non-negative integer, got ${String(limit)}`)
  }
  return limit
}

/** Values and members are text: reject anything that is not a string early, with a clear message. */
export function checkString(value: string, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`)
  return value
}

/** Replicated map names: lower-case letters, digits and `-`, 1 to 64 characters. */
export const MAP_NAME = /^[a-z0-9-]{1,64}$/

/** Longest replicated map key, in UTF-8 bytes. */
export const MAX_MAP_KEY_BYTES = 1024

/** Longest replicated map value, in UTF-8 bytes. */
export const MAX_MAP_VALUE_BYTES = 64 * 1024

/** A replicated map name (RangeError otherwise). */
export function checkMapName(map: string): string {
  if (typeof map !== 'string' || !MAP_NAME.test(map)) {
    throw new RangeError('map name must match [a-z0-9-]{1,64}')
  }
  return map
}

/** A replicated map key: any string of at most {@link MAX_MAP_KEY_BYTES} UTF-8 bytes. */
export function checkMapKey(key: string): string {
  if (typeof key !== 'string') throw new TypeError('map key must be a string')
  if (key.length > MAX_MAP_KEY_BYTES || Buffer.byteLength(key, 'utf8') > MAX_MAP_KEY_BYTES) {
    throw new RangeError(`map key must be at most ${MAX_MAP_KEY_BYTES} bytes (UTF-8)`)
  }
  return key
}

/** A replicated map value: any string of at most {@link MAX_MAP_VALUE_BYTES} UTF-8 bytes. */
export function checkMapValue(value: string): string {
  if (typeof value !== 'string') throw new TypeError('map value must be a string')
  if (value.length > MAX_MAP_VALUE_BYTES || Buffer.byteLength(value, 'utf8') > MAX_MAP_VALUE_BYTES) {
    throw new RangeError(`map value must be at most ${MAX_MAP_VALUE_BYTES} bytes (UTF-8)`)
  }
  return value
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const TEXT_ESCAPE = /%|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g
const TEXT_UNESCAPE = /%(25|D[89A-F][0-9A-F]{2})/g

/** True when `text` has a lone UTF-16 surrogate (which UTF-8 cannot carry: it would become U+FFFD). */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text)
}

/**
 * A reversible encoding of any string as well-formed UTF-8 text: `%` becomes `%25` and a lone
 * surrogate `%D800`…`%DFFF`; everything else (well-formed pairs too) is kept. Unlike
 * {@link encodeKey} it never hashes: replicated maps must give their keys back.
 */
export function escapeText(text: string): string {
  return text.replace(TEXT_ESCAPE, (c) =>
    c === '%' ? '%25' : `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  )
}

/** The inverse of {@link escapeText}. */
export function unescapeText(text: string): string {
  if (!text.includes('%')) return text
  return text.replace(TEXT_UNESCAPE, (_, hex: string) =>
    hex === '25' ? '%' : String.fromCharCode(Number.parseInt(hex, 16)),
  )
}

/** Longest hash field name, in UTF-8 bytes. */
export const MAX_HASH_FIELD_BYTES = 1024

/** A hash field name: any string of at most {@link MAX_HASH_FIELD_BYTES} UTF-8 bytes. */
export function checkHashField(field: string): string {
  if (typeof field !== 'string') throw new TypeError('hash field must be a string')
  if (field.length > MAX_HASH_FIELD_BYTES || Buffer.byteLength(field, 'utf8') > MAX_HASH_FIELD_BYTES) {
    throw new RangeError(`hash field must be at most ${MAX_HASH_FIELD_BYTES} bytes (UTF-8)`)
  }
  return field
}

/** A hash value: a safe integer. */
export function checkHashValue(value: number): number {
  if (!Number.isSafeInteger(value))
    throw new RangeError(`hash value must be a safe integer, got ${String(value)}`)
  return value
}

/**
 * The operations of a hash update as `[op, field, value]` triples in application order (incr,
 * then max, then min); op is `i`, `x` or `n`. Validates every field and value.
 */
export function hashOps(update: {
  incr?: Readonly<Record<string, number>>
  max?: Readonly<Record<string, number>>
  min?: Readonly<Record<string, number>>
}): ['i' | 'x' | 'n', string, number][] {
  if (update === null || typeof update !== 'object') throw new TypeError('hash update must be an object')
  const out: ['i' | 'x' | 'n', string, number][] = []
  const parts: ['i' | 'x' | 'n', Readonly<Record<string, number>> | undefined][] = [
    ['i', update.incr],
    ['x', update.max],
    ['n', update.min],
  ]
  for (const [op, rec] of parts) {
    if (rec === undefined) continue
    for (const [f, v] of Object.entries(rec)) out.push([op, checkHashField(f), checkHashValue(v)])
  }
  return out
}

/**
 * Sets `out[field] = value` as an own, enumerable property even for names such as `__proto__`
 * (a plain assignment would change the object's prototype instead).
 */
export function putField(out: Record<string, number>, field: string, value: number): void {
  Object.defineProperty(out, field, { value, enumerable: true, writable: true, configurable: true })
}
