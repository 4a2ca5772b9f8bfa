/**
 * Other spellings of a JWS compact token, crafted by hand for tests: the same signature bytes in
 * a non-canonical base64url (padding, non-zero unused bits in the last character, the standard
 * alphabet), and the ECDSA signature (r, n − s) that anyone can compute without the key. Each
 * function returns undefined when the token has no such spelling (e.g. a signature whose length
 * is a multiple of 3 has no unused bits and no padding).
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Group orders of the NIST curves of ES256, ES384 and ES512 (FIPS 186-4 D.1.2). */
export const CURVE_ORDER: Record<'ES256' | 'ES384' | 'ES512', bigint> = {
  ES256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  ES384: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  ES512:
    0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
}
const COORD_BYTES = { ES256: 32, ES384: 48, ES512: 66 } as const

function split(token: string): [string, string, string] {
  const parts = token.split('.')
  if (parts.length !== 3) throw new Error('not a JWS compact token')
  return parts as [string, string, string]
}

/** The signature segment with `=` padding (undefined when its length is a multiple of 4). */
export function padded(token: string): string | undefined {
  const [h, p, s] = split(token)
  const rem = s.length % 4
  if (rem === 0) return undefined
  return `${h}.${p}.${s}${'='.repeat(4 - rem)}`
}

/**
 * The last character of the signature with its unused low bits set (2 characters over: 4 unused
 * bits; 3 characters over: 2). Decodes to the same bytes with a lenient decoder.
 */
export function unusedBitsSet(token: string): string | undefined {
  const [h, p, s] = split(token)
  const rem = s.length % 4
  if (rem === 0) return undefined
  const v = ALPHABET.indexOf(s.at(-1) as string)
  const spelled = ALPHABET[v | (rem === 2 ? 0x0f : 0x03)] as string
  return `${h}.${p}.${s.slice(0, -1)}${spelled}`
}

/** The signature in the standard base64 alphabet (undefined when it has no `-` or `_`). */
export function standardAlphabet(token: string): string | undefined {
  const [h, p, s] = split(token)
  if (!/[-_]/.test(s)) return undefined
  return `${h}.${p}.${s.replace(/-/g, '+').replace(/_/g, '/')}`
}

function sBytes(token: string, alg: keyof typeof COORD_BYTES): { r: Buffer; s: bigint } {
  const sig = Buffer.from(split(token)[2], 'base64url')
  const n = COORD_BYTES[alg]
  if (sig.length !== 2 * n) throw new Error(`not an ${alg} signature`)
  return { r: sig.subarray(0, n), s: BigInt(`0x${sig.subarray(n).toString('hex')}`) }
}

/** The other valid ECDSA signature of the same token: (r, n − s). */
export function otherS(token: string, alg: keyof typeof COORD_BYTES = 'ES256'): string {
  const [h, p] = split(token)
  const { r, s } = sBytes(token, alg)
  const flipped = CURVE_ORDER[alg] - s
  const sb = Buffer.from(flipped.toString(16).padStart(COORD_BYTES[alg] * 2, '0'), 'hex')
  return `${h}.${p}.${Buffer.concat([r, sb]).toString('base64url')}`
}

/** True when the token's ECDSA `s` is in the upper half of the group order. */
export function isHighS(token: string, alg: keyof typeof COORD_BYTES = 'ES256'): boolean {
  return sBytes(token, alg).s > CURVE_ORDER[alg] / 2n
}
