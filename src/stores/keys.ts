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
