/**
 * The canonical spelling of a JWS compact token, and the identity of a token that caches,
 * revocation lists and rate-limit keys agree on.
 *
 * A lenient base64url decoder gives one token several spellings that decode to the same bytes:
 * `=` padding, non-zero unused bits in the last character, the standard alphabet (`+` `/`). A
 * check keyed on the token string (a `sha256:` revocation, a cache, a rate-limit key) then sees
 * different tokens where the signature check sees one. RFC 7515 §2 and §7.1 require unpadded
 * base64url; here a segment is canonical when it is exactly what encoding its bytes gives:
 * characters of `A–Z a–z 0–9 - _` only, no padding, length ≢ 1 (mod 4), and the unused low bits
 * of its last character zero. Anything else is refused before a signature is checked.
 *
 * One more spelling survives a strict decoder: an ECDSA signature (r, s) has a twin (r, n − s)
 * that verifies as well and that anyone can compute without the key. The canonical form of an
 * ES256/ES384/ES512 token takes the low s (s ≤ n/2); the other spelling's hash is kept as `alt`,
 * so that a revocation entry made from either spelling as issued revokes both. RSA signatures are
 * canonical by construction (RFC 8017 I2OSP: exactly the modulus length, big-endian; any other
 * length fails verification) and so are EdDSA (the verifier refuses S ≥ L) and HMAC signatures.
 */
import { hash } from 'node:crypto'

/** Value of each base64url character, 0xff for characters outside the url-safe alphabet. */
const B64URL = new Uint8Array(128).fill(0xff)
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
for (let i = 0; i < 64; i++) B64URL[ALPHABET.charCodeAt(i)] = i

/**
 * True when `s.slice(from, to)` is canonical unpadded base64url: only `A–Z a–z 0–9 - _`, a length
 * that is not 1 modulo 4, and zero unused bits in the last character (so that no other string
 * decodes to the same bytes). The empty string is canonical (zero bytes).
 *
 * @example
 * isCanonicalBase64url('YQ') // true  ('a')
 * isCanonicalBase64url('YR') // false (same byte, unused bits set)
 * isCanonicalBase64url('YQ==') // false (padding)
 */
export function isCanonicalBase64url(s: string, from = 0, to = s.length): boolean {
  const rem = (to - from) & 3
  if (rem === 1) return false
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    if (c >= 128 || B64URL[c] === 0xff) return false
  }
  if (rem === 0) return true
  const last = B64URL[s.charCodeAt(to - 1)] as number
  // 2 characters over: 12 bits for 1 byte (4 unused); 3 characters over: 18 bits for 2 (2 unused).
  return (last & (rem === 2 ? 0x0f : 0x03)) === 0
}

/**
 * Decodes canonical base64url; undefined for anything that is not (see {@link isCanonicalBase64url}).
 * Use this wherever a token is decoded.
 */
export function decodeBase64urlStrict(s: string): Buffer | undefined {
  return isCanonicalBase64url(s) ? Buffer.from(s, 'base64url') : undefined
}

/** The parts of a compact JWS whose three segments are canonical. */
export interface JwsSegments {
  /** Index of the first and the second `.`. */
  dot1: number
  dot2: number
  /** The `alg` of the protected header. */
  alg: string
}

/** The header segments seen lately, with their `alg` (most tokens of an issuer share one). */
const headerAlgs = new Map<string, string | null>()
const MAX_HEADER_MEMO = 256

function headerAlg(segment: string): string | undefined {
  const memo = headerAlgs.get(segment)
  if (memo !== undefined) return memo ?? undefined
  let alg: string | null = null
  try {
    const h = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as unknown
    if (h !== null && typeof h === 'object' && !Array.isArray(h)) {
      const a = (h as { alg?: unknown }).alg
      if (typeof a === 'string') alg = a
    }
  } catch {
    // not JSON: no alg
  }
  if (headerAlgs.size >= MAX_HEADER_MEMO) headerAlgs.clear()
  headerAlgs.set(segment, alg)
  return alg ?? undefined
}

/**
 * Splits a JWS compact token (`header.payload.signature`) whose three segments are canonical
 * base64url and whose header is a JSON object with a string `alg`; undefined otherwise (two dots
 * exactly; the header and the signature must not be empty).
 */
export function canonicalJwsSegments(token: string): JwsSegments | undefined {
  const dot1 = token.indexOf('.')
  if (dot1 <= 0) return undefined
  const dot2 = token.indexOf('.', dot1 + 1)
  if (dot2 === -1 || dot2 === token.length - 1 || token.indexOf('.', dot2 + 1) !== -1) return undefined
  if (
    !isCanonicalBase64url(token, 0, dot1) ||
    !isCanonicalBase64url(token, dot1 + 1, dot2) ||
    !isCanonicalBase64url(token, dot2 + 1, token.length)
  )
    return undefined
  const alg = headerAlg(token.slice(0, dot1))
  return alg === undefined ? undefined : { dot1, dot2, alg }
}

/**
 * True when a token looks like a JWS compact token in any spelling: two dots, and a first segment
 * that decodes (leniently) to a JSON object with a string `alg`. Such a token must be canonical;
 * anything else is an opaque token, compared as it is.
 */
export function looksLikeJws(token: string): boolean {
  const dot1 = token.indexOf('.')
  if (dot1 <= 0) return false
  const dot2 = token.indexOf('.', dot1 + 1)
  if (dot2 === -1 || token.indexOf('.', dot2 + 1) !== -1) return false
  return headerAlg(token.slice(0, dot1)) !== undefined
}

/** ECDSA group orders (FIPS 186-4 D.1.2) and coordinate sizes, by JWS algorithm (RFC 7518 §3.4). */
const ECDSA: Record<string, { n: Buffer; half: Buffer; size: number }> = {}
for (const [alg, n, size] of [
  ['ES256', 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n, 32],
  [
    'ES384',
    0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    48,
  ],
  [
    'ES512',
    0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
    66,
  ],
] as const) {
  const bytes = (v: bigint) => Buffer.from(v.toString(16).padStart(2 * size, '0'), 'hex')
  ECDSA[alg] = { n: bytes(n), half: bytes(n >> 1n), size }
}

/** n − s, big-endian, fixed length (s < n), by byte subtraction (no BigInt on the request path). */
function subtract(n: Buffer, s: Buffer, sFrom: number, size: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  let borrow = 0
  for (let i = size - 1; i >= 0; i--) {
    let d = (n[i] as number) - (s[sFrom + i] as number) - borrow
    borrow = d < 0 ? 1 : 0
    if (d < 0) d += 256
    out[i] = d
  }
  return out
}

/**
 * An ECDSA signature (R ‖ S, RFC 7518 §3.4) of `alg`: whether its s is above n/2, and its twin
 * (r, n − s). Undefined when `sig` is not an ECDSA signature of `alg` with 0 < s < n.
 */
function ecdsaTwin(alg: string, sig: Buffer): { high: boolean; twin: Buffer } | undefined {
  const c = ECDSA[alg]
  if (c === undefined || sig.length !== 2 * c.size) return undefined
  const size = c.size
  if (sig.compare(c.n, 0, size, size, 2 * size) >= 0) return undefined // s ≥ n
  let zero = true
  for (let i = size; i < 2 * size && zero; i++) if (sig[i] !== 0) zero = false
  if (zero) return undefined // s = 0
  const high = sig.compare(c.half, 0, size, size, 2 * size) > 0
  const twin = Buffer.allocUnsafe(2 * size)
  sig.copy(twin, 0, 0, size)
  subtract(c.n, sig, size, size).copy(twin, size)
  return { high, twin }
}

/**
 * For an ECDSA signature whose s is above n/2: the same signature with n − s (the low-s form).
 * Undefined when it is already low, or not an ECDSA signature of `alg`.
 */
export function lowS(alg: string, sig: Buffer): Buffer | undefined {
  const t = ecdsaTwin(alg, sig)
  return t?.high ? t.twin : undefined
}

/** {@link tokenIdentity}: a JWS-shaped token that is not in its canonical spelling. */
export const NOT_CANONICAL = 0

/** What identifies a token for caches, revocation and rate-limit keys. */
export interface TokenIdentity {
  /**
   * SHA-256 (hex) of the canonical form: for a JWS, `header.payload.` + the canonical signature
   * (low s for ECDSA); for an opaque token, the token itself. The `sha256:` revocation entry.
   */
  id: string
  /** ECDSA: SHA-256 (hex) of the high-s spelling, which revocation entries may also name. */
  alt: string | undefined
}

/**
 * The identity of a presented token. A JWS compact token (see {@link looksLikeJws}) must be
 * canonical base64url, else {@link NOT_CANONICAL}; its id is the hash of its canonical form. An
 * opaque token's id is the hash of the token. `rawHash` (the SHA-256 hex of `token`, when the
 * caller has it) saves computing it again.
 *
 * @example
 * const ident = tokenIdentity(token)
 * if (ident === NOT_CANONICAL) refuse()
 * else revocations.check(jti, ident.id, ident.alt)
 */
export function tokenIdentity(token: string, rawHash?: string): TokenIdentity | typeof NOT_CANONICAL {
  const seg = canonicalJwsSegments(token)
  if (seg === undefined) {
    if (looksLikeJws(token)) return NOT_CANONICAL
    return { id: rawHash ?? hash('sha256', token, 'hex'), alt: undefined }
  }
  return jwsIdentity(token, seg, rawHash)
}

/** {@link tokenIdentity} for a token already split by {@link canonicalJwsSegments}. */
export function jwsIdentity(token: string, seg: JwsSegments, rawHash?: string): TokenIdentity {
  const raw = rawHash ?? hash('sha256', token, 'hex')
  if (ECDSA[seg.alg] === undefined) return { id: raw, alt: undefined }
  const t = ecdsaTwin(seg.alg, Buffer.from(token.slice(seg.dot2 + 1), 'base64url'))
  if (t === undefined) return { id: raw, alt: undefined }
  const twinHash = hash('sha256', `${token.slice(0, seg.dot2 + 1)}${t.twin.toString('base64url')}`, 'hex')
  // The low-s spelling is the canonical one.
  return t.high ? { id: twinHash, alt: raw } : { id: raw, alt: twinHash }
}

/**
 * The canonical form of a JWS compact token with canonical segments: the same string, with an
 * ECDSA signature in its low-s form. Its SHA-256 is {@link TokenIdentity.id}.
 */
export function canonicalJws(token: string, seg: JwsSegments): string {
  const low = lowS(seg.alg, Buffer.from(token.slice(seg.dot2 + 1), 'base64url'))
  return low === undefined ? token : `${token.slice(0, seg.dot2 + 1)}${low.toString('base64url')}`
}
