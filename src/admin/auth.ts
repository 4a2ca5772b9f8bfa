/**
 * The admin API's authentication: one bearer token from the config (`admin.token`), compared as
 * SHA-256 digests with timingSafeEqual (fixed length, so neither the token's length nor the
 * position of the first wrong character shows in the timing). The token is never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** Shortest `admin.token` accepted (the schema says so too). */
export const MIN_ADMIN_TOKEN_LENGTH = 32

/** `ok`; `missing`: no bearer credentials at all; `invalid`: a wrong or malformed one. */
export type AdminAuthResult = 'ok' | 'missing' | 'invalid'

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest()
}

/**
 * A checker for requests against the configured token (kept as its digest only).
 *
 * @example
 * const check = createAdminAuth(config.admin.token)
 * if (check(req) !== 'ok') answer401()
 */
export function createAdminAuth(token: string): (req: IncomingMessage) => AdminAuthResult {
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new Error(`admin.token: at least ${MIN_ADMIN_TOKEN_LENGTH} characters are required`)
  }
  const expected = digest(token)
  return (req) => {
    const raw = req.headers.authorization
    if (raw === undefined) return 'missing'
    // Node keeps the first of several Authorization headers: more than one is ambiguous.
    let seen = 0
    const rh = req.rawHeaders
    for (let i = 0; i < rh.length; i += 2) if ((rh[i] as string).toLowerCase() === 'authorization') seen++
    if (seen !== 1) return 'invalid'
    const sp = raw.indexOf(' ')
    const scheme = sp === -1 ? raw : raw.slice(0, sp)
    if (scheme.toLowerCase() !== 'bearer') return 'missing'
    const presented = raw.slice(sp + 1).trim()
    if (sp === -1 || presented === '') return 'invalid'
    return timingSafeEqual(digest(presented), expected) ? 'ok' : 'invalid'
  }
}

/**
 * A checker for a token presented another way than a bearer header (the dashboard's sign-in
 * form): SHA-256 digests compared with timingSafeEqual, as for the API.
 */
export function createTokenCheck(token: string): (presented: string) => boolean {
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new Error(`admin.token: at least ${MIN_ADMIN_TOKEN_LENGTH} characters are required`)
  }
  const expected = digest(token)
  return (presented) =>
    typeof presented === 'string' && presented.length > 0 && timingSafeEqual(digest(presented), expected)
}
