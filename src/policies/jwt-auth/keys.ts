/**
 * Verification keys: from PEM or JWK to imported CryptoKeys, once per key set version. Each key
 * is imported only for the algorithms of its type that the config allows (an RSA key never for
 * HS256, an HMAC secret never for RS256: no key confusion), and only its public members are used.
 */
import { createHash, createPublicKey, type JsonWebKey as NodeJwk, webcrypto } from 'node:crypto'
import { type CryptoKey, importJWK } from 'jose'
import type { JwsAlgorithm } from './schema.js'

/** A key imported for one algorithm. */
export interface KeyRecord {
  readonly kid: string | undefined
  readonly alg: JwsAlgorithm
  readonly key: CryptoKey
  /** Identity of the key material + alg, to reuse records across JWKS versions. */
  readonly fingerprint: string
  /** RSA: length of a signature in unpadded base64url (the modulus length, RFC 8017). */
  readonly sigChars: number | undefined
}

/** A public JWK (or an HMAC secret) reduced to what verification needs, with its algorithms. */
export interface PreparedKey {
  kid: string | undefined
  algs: JwsAlgorithm[]
  jwk: Record<string, string>
}

export class KeyError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'KeyError'
  }
}

const RSA_ALGS: JwsAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
const HMAC_MIN_BYTES: Partial<Record<JwsAlgorithm, number>> = { HS256: 32, HS384: 48, HS512: 64 }

/** Algorithms a key of this type may be used with (RFC 7518 / RFC 8037). */
export function algorithmsForKey(jwk: { kty?: unknown; crv?: unknown }): JwsAlgorithm[] {
  switch (jwk.kty) {
    case 'RSA':
      return RSA_ALGS
    case 'EC':
      return jwk.crv === 'P-256'
        ? ['ES256']
        : jwk.crv === 'P-384'
          ? ['ES384']
          : jwk.crv === 'P-521'
            ? ['ES512']
            : []
    case 'OKP':
      return jwk.crv === 'Ed25519' ? ['EdDSA', 'Ed25519'] : []
    case 'oct':
      return ['HS256', 'HS384', 'HS512']
    default:
      return []
  }
}

const PUBLIC_MEMBERS: Record<string, readonly string[]> = {
  RSA: ['n', 'e'],
  EC: ['crv', 'x', 'y'],
  OKP: ['crv', 'x'],
  oct: ['k'],
}

/** Smallest RSA modulus accepted, in effective bits (leading zero octets do not count). */
export const MIN_RSA_MODULUS_BITS = 2048
/** Largest RSA modulus accepted (OpenSSL's own limit): verification cost grows with it. */
export const MAX_RSA_MODULUS_BITS = 16384
/** Smallest RSA public exponent accepted (F4). e = 1 makes every signature forgeable; 3 is weak. */
export const MIN_RSA_EXPONENT = 65537n
/** Largest RSA public exponent accepted, in bits (OpenSSL's limit for large moduli). */
export const MAX_RSA_EXPONENT_BITS = 64
/** Coordinate length of each EC curve (RFC 7518 §6.2.1.2: exactly this many octets). */
const EC_COORD_BYTES: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 }

const BASE64URL_MEMBER = /^[A-Za-z0-9_-]*={0,2}$/

/**
 * A JWK member as bytes: base64url (RFC 7518 §2; trailing `=` tolerated, as some publishers add
 * it), nothing else. A key whose bytes are not what they appear to be (a lenient decoder skips
 * characters it does not know) is refused.
 */
function memberBytes(v: string): Buffer | undefined {
  if (!BASE64URL_MEMBER.test(v)) return undefined
  const body = v.replace(/=+$/, '')
  if (body.length % 4 === 1) return undefined
  return Buffer.from(body, 'base64url')
}

/** The octets of a big-endian unsigned integer without its leading zero octets. */
function stripZeros(b: Buffer): Buffer {
  let i = 0
  while (i < b.length && b[i] === 0) i++
  return b.subarray(i)
}

function bitLength(b: Buffer): number {
  if (b.length === 0) return 0
  return (b.length - 1) * 8 + (32 - Math.clz32(b[0] as number))
}

/** Checks an RSA key by value; its members are rewritten without leading zero octets. */
function checkRsa(jwk: Record<string, string>): string | undefined {
  const nRaw = memberBytes(jwk.n as string)
  const eRaw = memberBytes(jwk.e as string)
  if (nRaw === undefined) return 'RSA modulus (n) is not base64url'
  if (eRaw === undefined) return 'RSA exponent (e) is not base64url'
  const n = stripZeros(nRaw)
  const e = stripZeros(eRaw)
  const bits = bitLength(n)
  if (bits < MIN_RSA_MODULUS_BITS) return `RSA modulus of ${bits} bits (at least ${MIN_RSA_MODULUS_BITS})`
  if (bits > MAX_RSA_MODULUS_BITS) return `RSA modulus of ${bits} bits (at most ${MAX_RSA_MODULUS_BITS})`
  if (((n[n.length - 1] as number) & 1) === 0) return 'RSA modulus is even'
  const eBits = bitLength(e)
  if (eBits > MAX_RSA_EXPONENT_BITS)
    return `RSA public exponent of ${eBits} bits (at most ${MAX_RSA_EXPONENT_BITS})`
  const ev = e.length === 0 ? 0n : BigInt(`0x${e.toString('hex')}`)
  if ((ev & 1n) === 0n) return `RSA public exponent ${ev} is even`
  if (ev < MIN_RSA_EXPONENT) return `RSA public exponent ${ev} (at least ${MIN_RSA_EXPONENT})`
  jwk.n = n.toString('base64url')
  jwk.e = e.toString('base64url')
  return undefined
}

function checkEc(jwk: Record<string, string>): string | undefined {
  const size = EC_COORD_BYTES[jwk.crv as string]
  if (size === undefined) return undefined // no algorithm for it: refused below
  for (const m of ['x', 'y'] as const) {
    const b = memberBytes(jwk[m] as string)
    if (b === undefined) return `EC ${m} is not base64url`
    if (b.length !== size) return `EC ${m} is ${b.length} octets, ${size} on ${jwk.crv}`
    jwk[m] = b.toString('base64url')
  }
  return undefined // on the curve: checkJwk (node:crypto refuses a point off the curve)
}

// Ed25519 (RFC 8032 §5.1): p = 2^255 − 19, d = −121665/121666.
const ED_P = 2n ** 255n - 19n
const ED_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n
/** The y of the points of order 8 (the others of small order have y = 0, 1 or −1). */
const ED_Y8 = 0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n
const ED_SMALL_Y = new Set([0n, 1n, ED_P - 1n, ED_Y8, ED_P - ED_Y8])

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n
  b %= m
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m
    b = (b * b) % m
    e >>= 1n
  }
  return r
}

/**
 * Checks an Ed25519 public key by value: 32 octets, y < p, a point of the curve, not of small
 * order. A small-order key (the identity, among others) verifies forged signatures for any message
 * — node:crypto accepts it, and then (R = identity, S = 0) is a valid signature of everything.
 */
function checkEd25519(jwk: Record<string, string>): string | undefined {
  const x = memberBytes(jwk.x as string)
  if (x === undefined) return 'Ed25519 x is not base64url'
  if (x.length !== 32) return `Ed25519 x is ${x.length} octets, 32 expected`
  const le = Buffer.from(x)
  const sign = ((le[31] as number) & 0x80) !== 0
  le[31] = (le[31] as number) & 0x7f
  const y = BigInt(`0x${Buffer.from(le).reverse().toString('hex')}`)
  if (y >= ED_P) return 'Ed25519 public key is not canonically encoded (y ≥ p)'
  if (ED_SMALL_Y.has(y)) return 'Ed25519 public key of small order (forgeable)'
  const y2 = (y * y) % ED_P
  const u = (y2 - 1n + ED_P) % ED_P
  const v = (ED_D * y2 + 1n) % ED_P
  const x2 = (u * modPow(v, ED_P - 2n, ED_P)) % ED_P
  if (x2 === 0n && sign) return 'Ed25519 public key is not canonically encoded (x = 0, sign bit set)'
  if (x2 !== 0n && modPow(x2, (ED_P - 1n) / 2n, ED_P) !== 1n)
    return 'Ed25519 public key is not a point of the curve'
  jwk.x = x.toString('base64url')
  return undefined
}

/**
 * Prepares one JWK: public members only, algorithms = the key type's ∩ the JWK's own `alg` ∩ the
 * allowed ones. Returns a reason string when the key cannot be used for verification here: a
 * member that is not base64url, or a key that is weak by value (RSA: effective modulus under 2048
 * bits, public exponent even, under 65537 or over 64 bits; EC: coordinates not of the curve's
 * length; Ed25519: not 32 octets, not canonical, or of small order; HMAC: shorter than the hash).
 */
export function prepareJwk(
  raw: unknown,
  allowed: ReadonlySet<JwsAlgorithm>,
  override: { kid?: string | undefined; alg?: JwsAlgorithm | undefined } = {},
): PreparedKey | string {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return 'not a JSON object'
  const j = raw as Record<string, unknown>
  const kty = j.kty
  if (typeof kty !== 'string' || PUBLIC_MEMBERS[kty] === undefined) return `unsupported kty ${String(kty)}`
  if (j.use !== undefined && j.use !== 'sig') return `use is ${String(j.use)}, not sig`
  if (j.key_ops !== undefined && (!Array.isArray(j.key_ops) || !j.key_ops.includes('verify'))) {
    return 'key_ops does not include verify'
  }
  const jwk: Record<string, string> = { kty }
  for (const m of PUBLIC_MEMBERS[kty] as readonly string[]) {
    const v = j[m]
    if (typeof v !== 'string' || v === '') return `member ${m} missing`
    jwk[m] = v
  }
  const weak =
    kty === 'RSA'
      ? checkRsa(jwk)
      : kty === 'EC'
        ? checkEc(jwk)
        : kty === 'OKP' && jwk.crv === 'Ed25519'
          ? checkEd25519(jwk)
          : kty === 'oct' && memberBytes(jwk.k as string) === undefined
            ? 'HMAC secret (k) is not base64url'
            : undefined
  if (weak !== undefined) return weak
  let algs = algorithmsForKey(jwk)
  const own = override.alg ?? (typeof j.alg === 'string' ? j.alg : undefined)
  if (own !== undefined) algs = algs.filter((a) => a === own)
  algs = algs.filter((a) => allowed.has(a))
  if (kty === 'oct') {
    const bytes = (memberBytes(jwk.k as string) as Buffer).length
    algs = algs.filter((a) => bytes >= (HMAC_MIN_BYTES[a] ?? 0))
  }
  if (algs.length === 0) return `no allowed algorithm fits a ${kty} key${own ? ` with alg ${own}` : ''}`
  const kid = override.kid ?? (typeof j.kid === 'string' && j.kid !== '' ? j.kid : undefined)
  return { kid, algs, jwk }
}

/** A PEM public key or certificate as a public JWK (node:crypto parses it; nothing is verified here). */
export function pemToJwk(pem: string): Record<string, unknown> {
  let key: ReturnType<typeof createPublicKey>
  try {
    key = createPublicKey(pem)
  } catch (err) {
    throw new KeyError(`not a PEM public key or certificate (${(err as Error).message})`)
  }
  if (/PRIVATE KEY-----/.test(pem)) throw new KeyError('a private key: configure the public key only')
  return key.export({ format: 'jwk' }) as NodeJwk as Record<string, unknown>
}

/** Checks that an asymmetric JWK parses as a key (synchronously, at config time). */
export function checkJwk(k: PreparedKey): void {
  if (k.jwk.kty === 'oct') return
  try {
    createPublicKey({ key: k.jwk as NodeJwk, format: 'jwk' })
  } catch (err) {
    throw new KeyError(`invalid ${k.jwk.kty} key (${(err as Error).message})`)
  }
}

const HMAC_HASH: Partial<Record<JwsAlgorithm, string>> = {
  HS256: 'SHA-256',
  HS384: 'SHA-384',
  HS512: 'SHA-512',
}

async function importFor(k: PreparedKey, alg: JwsAlgorithm): Promise<CryptoKey> {
  if (k.jwk.kty === 'oct') {
    // jose hands HMAC secrets back as bytes (imported again on every verify): import once here.
    const bytes = Buffer.from(k.jwk.k as string, 'base64url')
    return webcrypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: HMAC_HASH[alg] as string }, false, [
      'verify',
    ]) as Promise<CryptoKey>
  }
  const key = await importJWK({ ...k.jwk, ext: false }, alg)
  if (key instanceof Uint8Array) throw new KeyError('unexpected secret key')
  return key
}

/** An immutable set of imported keys, looked up by kid and algorithm. */
export class KeySet {
  readonly records: ReadonlySet<KeyRecord>
  private readonly byKid = new Map<string, KeyRecord[]>()
  private readonly noKid: KeyRecord[] = []
  private readonly byAlg = new Map<JwsAlgorithm, KeyRecord[]>()
  readonly size: number

  constructor(records: KeyRecord[]) {
    this.records = new Set(records)
    for (const r of records) {
      if (r.kid !== undefined) {
        const l = this.byKid.get(r.kid) ?? []
        l.push(r)
        this.byKid.set(r.kid, l)
      } else this.noKid.push(r)
      const a = this.byAlg.get(r.alg) ?? []
      a.push(r)
      this.byAlg.set(r.alg, a)
    }
    this.size = new Set(records.map((r) => r.fingerprint.slice(r.alg.length + 1))).size
  }

  hasKid(kid: string): boolean {
    return this.byKid.has(kid)
  }

  /**
   * Keys to try for a token's header. With a kid: that key (for that alg), or else keys without a
   * kid. Without a kid: every key of the algorithm.
   */
  candidates(kid: string | undefined, alg: string): KeyRecord[] {
    if (kid !== undefined) {
      const named = this.byKid.get(kid)
      if (named) return named.filter((r) => r.alg === alg)
      return this.noKid.filter((r) => r.alg === alg)
    }
    return this.byAlg.get(alg as JwsAlgorithm) ?? []
  }
}

function fingerprint(k: PreparedKey, alg: JwsAlgorithm): string {
  return `${alg}:${k.kid ?? ''}:${JSON.stringify(k.jwk)}`
}

/**
 * Imports prepared keys, one record per allowed algorithm. Records of `previous` with the same
 * material are reused, so that a JWKS refresh that adds a key keeps the others' cached tokens.
 */
export async function importKeySet(keys: readonly PreparedKey[], previous?: KeySet): Promise<KeySet> {
  const old = new Map<string, KeyRecord>()
  if (previous) for (const r of previous.records) old.set(r.fingerprint, r)
  const records: KeyRecord[] = []
  for (const k of keys) {
    for (const alg of k.algs) {
      const fp = fingerprint(k, alg)
      const reused = old.get(fp)
      if (reused) {
        records.push(reused)
        continue
      }
      const key = await importFor(k, alg)
      const bits = (key.algorithm as { modulusLength?: number }).modulusLength
      const sigChars = typeof bits === 'number' ? Math.ceil((Math.ceil(bits / 8) * 4) / 3) : undefined
      records.push({ kid: k.kid, alg, key, fingerprint: fp, sigChars })
    }
  }
  return new KeySet(records)
}

/** A key of a JWKS that is not used, and why. */
export interface RefusedKey {
  /** Where it is: `keys[2] (kid abc)`. */
  where: string
  reason: string
  /** Identifies the key's content (SHA-256 of its JSON), to log each refused key once. */
  id: string
}

/**
 * Reads a JWKS document. Keys that cannot be used are skipped (`refused`, with the reasons, for
 * the log; `skipped` as lines); a document that is not a JWKS throws.
 */
export function prepareJwks(
  doc: unknown,
  allowed: ReadonlySet<JwsAlgorithm>,
  opts: { allowSecrets: boolean; maxKeys?: number },
): { keys: PreparedKey[]; skipped: string[]; refused: RefusedKey[] } {
  const maxKeys = opts.maxKeys ?? 100
  if (doc === null || typeof doc !== 'object' || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new KeyError('not a JWKS (expected {"keys": [...]})')
  }
  const list = (doc as { keys: unknown[] }).keys
  if (list.length > maxKeys) throw new KeyError(`${list.length} keys, at most ${maxKeys} are accepted`)
  const keys: PreparedKey[] = []
  const refused: RefusedKey[] = []
  list.forEach((raw, i) => {
    const reason = keyProblem(raw)
    if (reason === undefined) return
    const kid = (raw as { kid?: unknown } | null)?.kid
    const where = `keys[${i}]${typeof kid === 'string' ? ` (kid ${kid.slice(0, 64)})` : ''}`
    const id = createHash('sha256')
      .update(JSON.stringify(raw) ?? '')
      .digest('hex')
    refused.push({ where, reason, id })
  })
  /** Why the key cannot be used, or undefined when it was added to `keys`. */
  function keyProblem(raw: unknown): string | undefined {
    const p = prepareJwk(raw, allowed)
    if (typeof p === 'string') return p
    // A published JWKS holds public keys: an HMAC secret there is refused (a local file may).
    if (p.jwk.kty === 'oct' && !opts.allowSecrets) return 'a secret (kty oct) in a JWKS is not used'
    try {
      checkJwk(p)
    } catch (err) {
      return (err as Error).message
    }
    keys.push(p)
    return undefined
  }
  return { keys, skipped: refused.map((r) => `${r.where}: ${r.reason}`), refused }
}

/**
 * Logs each refused key of a key source once (by content and reason), however often the JWKS is
 * read again; bounded (forgets everything past 1000 distinct keys, then logs them again).
 */
export function refusedKeyLogger(
  logger: { warn(o: object, msg: string): void },
  where: Record<string, string>,
): (refused: readonly RefusedKey[]) => void {
  const seen = new Set<string>()
  return (refused) => {
    for (const r of refused) {
      const k = `${r.id}:${r.reason}`
      if (seen.has(k)) continue
      if (seen.size >= 1000) seen.clear()
      seen.add(k)
      logger.warn({ ...where, key: r.where, reason: r.reason }, 'jwt-auth: JWKS key refused')
    }
  }
}
