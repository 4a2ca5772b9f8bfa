/**
 * Identities of authentication attempts, shared by brute-force-lockout (which reads the account
 * name of a login request), the detectors (brute-force, credential-stuffing) and the audit log's
 * failed-login records, so that all three count and name one account the same way.
 *
 * - {@link normalizeIdentity}: an account name as the application compares it (trim, Unicode
 *   NFKC, case fold; each configurable). `alice`, ` alice`, `\tALICE` and `ａｌｉｃｅ` (fullwidth)
 *   are one account by default.
 * - {@link accountHash}: what tables, store keys, alerts, logs and audit records hold instead of
 *   the name (a truncated SHA-256).
 * - {@link LoginAttempt}: what brute-force-lockout leaves in `ctx.state['brute-force-lockout']`
 *   for the log phase.
 */
import { createHash } from 'node:crypto'

/** How account names are normalized before they are counted (brute-force-lockout `credential.normalize`). */
export interface IdentityNormalization {
  /** Remove leading and trailing white space (every Unicode space, tabs and line breaks). */
  trim: boolean
  /** Compare without case: full case folding (`ß` and `SS` are `ss`, `İ` is `i̇`). */
  caseFold: boolean
  /** `NFKC`: compatibility forms are one (fullwidth `ａ` is `a`, `ﬁ` is `fi`); `none`: as sent. */
  unicode: 'NFKC' | 'none'
}

/** The default: what most applications do with user names and e-mail addresses, and a little more. */
export const DEFAULT_NORMALIZATION: IdentityNormalization = Object.freeze({
  trim: true,
  caseFold: true,
  unicode: 'NFKC',
})

/** Longest account name read (before normalization); longer is not an account name. */
export const MAX_ACCOUNT_CHARS = 256

/**
 * An account name as the application compares it: NFKC, trimmed, case-folded, NFKC again (case
 * folding can produce characters that NFKC composes). Undefined for a name that is empty after
 * normalization or longer than {@link MAX_ACCOUNT_CHARS} before or after it (NFKC can expand a
 * string up to 18 times).
 */
export function normalizeIdentity(
  name: string,
  n: IdentityNormalization = DEFAULT_NORMALIZATION,
): string | undefined {
  if (name.length === 0 || name.length > MAX_ACCOUNT_CHARS) return undefined
  let s = name
  if (n.unicode === 'NFKC') s = s.normalize('NFKC')
  if (n.trim) s = s.trim()
  // toUpperCase().toLowerCase() is full case folding for all but a handful of characters
  // (Cherokee, which folds to upper case, and the Turkic dotted/dotless i, which it merges).
  if (n.caseFold) s = s.toUpperCase().toLowerCase()
  if (n.unicode === 'NFKC' && n.caseFold) s = s.normalize('NFKC')
  if (s.length === 0 || s.length > MAX_ACCOUNT_CHARS) return undefined
  return s
}

/** A short, non-reversible id of a normalized account name (base64url, 22 characters). */
export function accountHash(normalized: string): string {
  return createHash('sha256').update(normalized).digest('base64url').slice(0, 22)
}

/** `ctx.state` key of the {@link LoginAttempt} (the brute-force-lockout policy's id). */
export const LOGIN_STATE = 'brute-force-lockout'

/**
 * What brute-force-lockout records about a request on its routes, read in the log phase by the
 * detectors (the attempted identity) and the audit log (a failed login gets an `auth.failure`).
 */
export interface LoginAttempt {
  /** The subjects failures are counted against: `ip:<addr>`, `acct:<hash>`, `acctip:<hash>`. */
  subjects: string[]
  /** The account hash (of the normalized name), when the request named an account. */
  account: string | undefined
  /** Statuses that count as a failed authentication on this route. */
  failureStatuses: ReadonlySet<number>
}

/** The {@link LoginAttempt} of a request, when brute-force-lockout ran on it. */
export function loginAttemptOf(state: Record<string, unknown>): LoginAttempt | undefined {
  const v = state[LOGIN_STATE]
  return v !== null && typeof v === 'object' && Array.isArray((v as LoginAttempt).subjects)
    ? (v as LoginAttempt)
    : undefined
}

/**
 * The user name of an `Authorization: Basic` header (RFC 7617), undefined for any other header or
 * one that does not decode to `user:password`. Only the part before the first colon is returned:
 * the password is never read further.
 */
export function basicUser(header: string): string | undefined {
  if (header.length < 7 || header.length > 4096) return undefined
  if (header.slice(0, 6).toLowerCase() !== 'basic ') return undefined
  const b64 = header.slice(6).trim()
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined
  const text = Buffer.from(b64, 'base64').toString('utf8')
  const colon = text.indexOf(':')
  if (colon <= 0) return undefined
  return text.slice(0, colon)
}
