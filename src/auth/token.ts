/**
 * Bearer token extraction, shared by the token-based authentication policies. An extractor is
 * compiled once per policy instance; per request it does a header lookup and a few string
 * operations, never a regex or an allocation beyond the token string itself.
 */
import { hash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { RequestContext } from '../gateway/pipeline/context.js'

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
 * Compiles a token extractor. Returns the token, or why there is none. With a scheme, the value
 * is parsed as RFC 6750 §2.1 `Bearer 1*SP b64token` (scheme in any case, one or more spaces); the
 * token's syntax is the caller's to check (jwt-auth: `jws-canonical.ts`; the opaque-token policies:
 * visible ASCII).
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
  const exact = o.scheme
  const scheme = o.scheme.toLowerCase()
  const slen = scheme.length
  return (req) => {
    const v = req.headers[name]
    if (v === undefined) return TOKEN_MISSING
    if (typeof v !== 'string') return TOKEN_MALFORMED
    // Node keeps the first of repeated Authorization fields, but all of them are forwarded:
    // an upstream that reads another one must not see a token the gateway did not check.
    if (countHeader(req.rawHeaders, name) !== 1) return TOKEN_MALFORMED
    let i = 0
    if (slen > 0) {
      // RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token, the scheme case-insensitive (RFC 9110
      // §11.1). Another scheme (Basic, ...) is "no credentials" (RFC 6750 §3.1); a scheme that is
      // ours but not followed by spaces and a token (a lone "Bearer", "Bearer\t…") is malformed.
      if (v.length < slen) return TOKEN_MISSING
      if (!v.startsWith(exact) && v.slice(0, slen).toLowerCase() !== scheme) return TOKEN_MISSING
      if (v.length === slen) return TOKEN_MALFORMED
      const c = v.charCodeAt(slen)
      if (c !== 0x20) return isTchar(c) ? TOKEN_MISSING : TOKEN_MALFORMED // "Bearerx": another scheme
      i = slen + 1
      const n = v.length
      while (i < n && v.charCodeAt(i) === 0x20) i++
    }
    const len = v.length - i
    if (len > max) return TOKEN_TOO_LARGE
    if (len === 0) return TOKEN_MALFORMED
    return i === 0 ? v : v.slice(i)
  }
}

/** RFC 9110 tchar: a character that may continue an auth-scheme token. */
function isTchar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    (c < 0x7f && c > 0x20 && "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)))
  )
}

/**
 * The `ctx.state` key under which an authentication policy records the identity of the token it
 * accepted from `header` (see {@link setVerifiedTokenId}).
 */
export function tokenStateKey(header: string): string {
  return `auth.token:${header.toLowerCase()}`
}

/**
 * Records, for the rest of the request, the identity of the token an authentication policy
 * accepted from a header: the SHA-256 of its canonical form (`jws-canonical.ts`), the same for
 * every spelling of the token (`Bearer` in any case, any number of spaces, either ECDSA
 * signature). A rate-limit key on that header uses it instead of the raw header value, so that
 * respelling a token does not buy another bucket. `key` is {@link tokenStateKey}(header).
 */
export function setVerifiedTokenId(ctx: RequestContext, key: string, id: string): void {
  ctx.state[key] = id
}

/** The identity recorded by {@link setVerifiedTokenId} for `header`; undefined when none. */
export function verifiedTokenId(ctx: RequestContext, header: string): string | undefined {
  const v = ctx.state[tokenStateKey(header)]
  return typeof v === 'string' ? v : undefined
}

/**
 * SHA-256 of a token, hex: for a token in its canonical form, its identity (cache key, `sha256:`
 * revocation entry; see `jws-canonical.ts` for the other spellings). `crypto.hash`
 * is the one-shot form of `createHash('sha256').update(t).digest('hex')` (same digest, no Hash
 * object): about half the cost on the cache-hit path (Node ≥ 20.12).
 */
export function tokenHash(token: string): string {
  return hash('sha256', token, 'hex')
}
