/**
 * Bearer token extraction, shared by the token-based authentication policies. An extractor is
 * compiled once per policy instance; per request it does a header lookup and a few string
 * operations, never a regex or an allocation beyond the token string itself.
 */
import { hash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** No credentials of this kind in the request (RFC 6750: no error code in the challenge). */
export const TOKEN_MISSING = 0
/** A header or cookie that is there but unusable (empty, repeated, bad syntax). */
export const TOKEN_MALFORMED = 1
/** Longer than the configured limit; refused before any parsing. */
export const TOKEN_TOO_LARGE = 2
export type TokenProblem = typeof TOKEN_MISSING | typeof TOKEN_MALFORMED | typeof TOKEN_TOO_LARGE

export interface TokenSourceOptions {
  /** Header carrying the token (case-insensitive). Ignored when `cookie` is set. */
  header: string
  /** Auth scheme before the token (`Bearer`); '' when the header value is the token itself. */
  scheme: string
  /** Read the token from this cookie instead of a header. */
  cookie?: string | undefined
  /** Longest token accepted, in bytes. */
  maxBytes: number
}

export type TokenExtractor = (req: IncomingMessage) => string | TokenProblem

/**
 * Characters of RFC 6750's b64token (token68): what a bearer token may consist of. Not part of
 * the extractor: a token found in a verified-token cache was checked when it was verified.
 */
export function isToken68(s: string): boolean {
  let i = 0
  const n = s.length
  for (; i < n; i++) {
    const c = s.charCodeAt(i)
    const ok =
      (c >= 0x61 && c <= 0x7a) || // a-z
      (c >= 0x41 && c <= 0x5a) || // A-Z
      (c >= 0x30 && c <= 0x39) || // 0-9
      c === 0x2d || // -
      c === 0x2e || // .
      c === 0x5f || // _
      c === 0x7e || // ~
      c === 0x2b || // +
      c === 0x2f // /
    if (!ok) break
  }
  while (i < n && s.charCodeAt(i) === 0x3d) i++ // trailing '='
  return i === n && n > 0
}

/** How many times a header field appears in the raw head (Node keeps only the first one). */
function countHeader(raw: readonly string[], lower: string): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (name.length === lower.length && name.toLowerCase() === lower) n++
  }
  return n
}

/**
 * Compiles a token extractor. Returns the token, or why there is none. The length limit is
 * checked on the raw value before anything else looks at it; the token's syntax is not checked
 * here (see isToken68).
 */
export function compileTokenExtractor(o: TokenSourceOptions): TokenExtractor {
  const max = o.maxBytes
  if (o.cookie !== undefined) {
    const cookieName = o.cookie
    return (req) => {
      const header = req.headers.cookie
      if (header === undefined) return TOKEN_MISSING
      let found: string | undefined
      let start = 0
      while (start < header.length) {
        let end = header.indexOf(';', start)
        if (end === -1) end = header.length
        const eq = header.indexOf('=', start)
        if (eq !== -1 && eq < end && header.slice(start, eq).trim() === cookieName) {
          // The same cookie twice (e.g. set for two paths) is ambiguous: refuse it.
          if (found !== undefined) return TOKEN_MALFORMED
          if (end - eq - 1 > max + 2) return TOKEN_TOO_LARGE
          let v = header.slice(eq + 1, end).trim()
          if (v.length >= 2 && v.charCodeAt(0) === 0x22 && v.charCodeAt(v.length - 1) === 0x22)
            v = v.slice(1, -1)
          found = v
        }
        start = end + 1
      }
      if (found === undefined) return TOKEN_MISSING
      if (found.length > max) return TOKEN_TOO_LARGE
      return found.length > 0 ? found : TOKEN_MALFORMED
    }
  }
  const name = o.header.toLowerCase()
  const exact = o.scheme === '' ? '' : `${o.scheme} `
  const prefix = exact.toLowerCase()
  const plen = prefix.length
  return (req) => {
    const v = req.headers[name]
    if (v === undefined) return TOKEN_MISSING
    if (typeof v !== 'string') return TOKEN_MALFORMED
    // Node keeps the first of repeated Authorization fields, but all of them are forwarded:
    // an upstream that reads another one must not see a token the gateway did not check.
    if (countHeader(req.rawHeaders, name) !== 1) return TOKEN_MALFORMED
    if (v.length > max + plen + 2) return TOKEN_TOO_LARGE
    let t: string
    if (plen > 0) {
      if (!v.startsWith(exact) && v.slice(0, plen).toLowerCase() !== prefix) {
        // Another scheme (Basic, ...) or a bare scheme: RFC 6750 §3.1 treats an unsupported
        // method as "no credentials"; a lone "Bearer" is a malformed attempt.
        return v.trim().toLowerCase() === prefix.trim() ? TOKEN_MALFORMED : TOKEN_MISSING
      }
      t = v.slice(plen)
    } else t = v
    if (t.length > max) return TOKEN_TOO_LARGE
    return t.length > 0 ? t : TOKEN_MALFORMED
  }
}

/**
 * SHA-256 of a token, hex: the cache key and the `sha256:` revocation entry format. `crypto.hash`
 * is the one-shot form of `createHash('sha256').update(t).digest('hex')` (same digest, no Hash
 * object): about half the cost on the cache-hit path (Node ≥ 20.12).
 */
export function tokenHash(token: string): string {
  return hash('sha256', token, 'hex')
}
