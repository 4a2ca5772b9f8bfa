/**
 * The API key format: `pcl_` + 30 base62 characters from crypto.randomBytes (≈ 178.6 bits) + a
 * 6-character base62 CRC32 of those 30 characters. Like GitHub's tokens, the fixed prefix and the
 * checksum let a secret scanner find a leaked key and tell it from a random string offline, and let
 * the gateway refuse a mistyped or made-up key without looking anything up.
 *
 *   pcl_ 8Kq2ZpLwTn3vXyR7aBcD0eFgHiJkLm 1x9QzA
 *        └ id ──┘└─ secret rest ──────┘ └ crc ┘
 *
 * The first 8 random characters are the key's public id (`kid`): it is stored in clear, used for the
 * lookup, and may appear in logs. The other 22 random characters (≈ 131 bits) are what keeps the key
 * secret. Scanner regex: `\bpcl_[0-9A-Za-z]{36}\b`.
 */
import { randomBytes } from 'node:crypto'

export const KEY_PREFIX = 'pcl_'
/** Random base62 characters after the prefix. */
export const RANDOM_LENGTH = 30
/** Base62 characters of the CRC32 checksum (62^6 > 2^32). */
export const CHECKSUM_LENGTH = 6
/** Characters of the random part that form the public key id. */
export const ID_LENGTH = 8
/** Total length of a key. */
export const KEY_LENGTH = KEY_PREFIX.length + RANDOM_LENGTH + CHECKSUM_LENGTH

export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const BASE62_RE = /^[0-9A-Za-z]+$/
const ID_RE = new RegExp(`^[0-9A-Za-z]{${ID_LENGTH}}$`)

/** Why a string is not a well-formed key. Never contains (any part of) the string itself. */
export type KeyFormatError = 'empty' | 'length' | 'prefix' | 'charset' | 'checksum'

export type ParsedKey =
  | { ok: true; id: string; key: string; reason?: undefined }
  | { ok: false; reason: KeyFormatError; id?: undefined; key?: undefined }

const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

/** CRC-32 (IEEE 802.3, as zlib and PNG) of an ASCII string. */
export function crc32(s: string): number {
  let c = 0xffffffff
  for (let i = 0; i < s.length; i++) c = (CRC_TABLE[(c ^ s.charCodeAt(i)) & 0xff] as number) ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/** The 6-character base62 checksum (big-endian, zero-padded) of the random part. */
export function checksum(random: string): string {
  let n = crc32(random)
  let out = ''
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[n % 62] + out
    n = Math.floor(n / 62)
  }
  return out
}

/** `count` uniform base62 characters from the CSPRNG (rejection sampling: no modulo bias). */
export function randomBase62(count: number): string {
  let out = ''
  while (out.length < count) {
    const buf = randomBytes(count * 2)
    for (let i = 0; i < buf.length && out.length < count; i++) {
      const b = buf[i] as number
      if (b < 248) out += BASE62[b % 62] // 248 = 4 × 62
    }
  }
  return out
}

/** A new key and its public id. */
export function generateKey(): { key: string; id: string } {
  const random = randomBase62(RANDOM_LENGTH)
  return { key: `${KEY_PREFIX}${random}${checksum(random)}`, id: random.slice(0, ID_LENGTH) }
}

/**
 * Checks a candidate key: length first (so a huge string costs nothing), then prefix, charset and
 * checksum. The result names what is wrong, never the input.
 */
export function parseKey(s: unknown): ParsedKey {
  if (typeof s !== 'string' || s.length === 0) return { ok: false, reason: 'empty' }
  if (s.length !== KEY_LENGTH) return { ok: false, reason: 'length' }
  if (!s.startsWith(KEY_PREFIX)) return { ok: false, reason: 'prefix' }
  const rest = s.slice(KEY_PREFIX.length)
  if (!BASE62_RE.test(rest)) return { ok: false, reason: 'charset' }
  const random = rest.slice(0, RANDOM_LENGTH)
  if (rest.slice(RANDOM_LENGTH) !== checksum(random)) return { ok: false, reason: 'checksum' }
  return { ok: true, id: random.slice(0, ID_LENGTH), key: s }
}

/** True for a string shaped like a key id (what `keys revoke ID` accepts). */
export function isKeyId(s: string): boolean {
  return ID_RE.test(s)
}
