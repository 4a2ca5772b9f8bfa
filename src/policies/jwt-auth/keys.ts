/**
 * Verification keys: from PEM or JWK to imported CryptoKeys, once per key set version. Each key
 * is imported only for the algorithms of its type that the config allows (an RSA key never for
 * HS256, an HMAC secret never for RS256: no key confusion), and only its public members are used.
 */
import { createPublicKey, type JsonWebKey as NodeJwk, webcrypto } from 'node:crypto'
import { type CryptoKey, importJWK } from 'jose'
import type { JwsAlgorithm } from './schema.js'

/** A key imported for one algorithm. */
export interface KeyRecord {
  readonly kid: string | undefined
  readonly alg: JwsAlgorithm
  readonly key: CryptoKey
  /** Identity of the key material + alg, to reuse records across JWKS versions. */
  readonly fingerprint: string
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

/**
 * Prepares one JWK: public members only, algorithms = the key type's ∩ the JWK's own `alg` ∩ the
 * allowed ones. Returns a reason string when the key cannot be used for verification here.
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
  if (kty === 'RSA' && Buffer.from(jwk.n as string, 'base64url').length < 256) {
    return 'RSA modulus shorter than 2048 bits'
  }
  let algs = algorithmsForKey(jwk)
  const own = override.alg ?? (typeof j.alg === 'string' ? j.alg : undefined)
  if (own !== undefined) algs = algs.filter((a) => a === own)
  algs = algs.filter((a) => allowed.has(a))
  if (kty === 'oct') {
    const bytes = Buffer.from(jwk.k as string, 'base64url').length
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
      records.push({ kid: k.kid, alg, key: await importFor(k, alg), fingerprint: fp })
    }
  }
  return new KeySet(records)
}

/**
 * Reads a JWKS document. Keys that cannot be used are skipped (the reasons are returned for the
 * log); a document that is not a JWKS throws.
 */
export function prepareJwks(
  doc: unknown,
  allowed: ReadonlySet<JwsAlgorithm>,
  opts: { allowSecrets: boolean; maxKeys?: number },
): { keys: PreparedKey[]; skipped: string[] } {
  const maxKeys = opts.maxKeys ?? 100
  if (doc === null || typeof doc !== 'object' || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new KeyError('not a JWKS (expected {"keys": [...]})')
  }
  const list = (doc as { keys: unknown[] }).keys
  if (list.length > maxKeys) throw new KeyError(`${list.length} keys, at most ${maxKeys} are accepted`)
  const keys: PreparedKey[] = []
  const skipped: string[] = []
  list.forEach((raw, i) => {
    const p = prepareJwk(raw, allowed)
    if (typeof p === 'string') {
      const kid = (raw as { kid?: unknown } | null)?.kid
      skipped.push(`keys[${i}]${typeof kid === 'string' ? ` (kid ${kid.slice(0, 64)})` : ''}: ${p}`)
      return
    }
    // A published JWKS holds public keys: an HMAC secret there is refused (a local file may).
    if (p.jwk.kty === 'oct' && !opts.allowSecrets) {
      skipped.push(`keys[${i}]: a secret (kty oct) in a JWKS is not used`)
      return
    }
    try {
      checkJwk(p)
    } catch (err) {
      skipped.push(`keys[${i}]: ${(err as Error).message}`)
      return
    }
    keys.push(p)
  })
  return { keys, skipped }
}
