/**
 * The in-memory, per-request side of the key store: records compiled once per load into a map by
 * id, and the check of one presented key against it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { generateKey } from './format.js'
import { hashKey, type KeyRecord, type StoreData } from './store.js'

export interface CompiledKey {
  readonly id: string
  readonly owner: string
  readonly name: string | undefined
  readonly scopes: readonly string[]
  readonly hash: Buffer
  readonly salt: Buffer
  readonly revoked: boolean
  /** Milliseconds since the epoch; Infinity when the key does not expire. */
  readonly expiresAt: number
}

/** Why a well-formed key was refused. Logged with the key id; never sent to the client. */
export type RefusalReason = 'unknown' | 'mismatch' | 'revoked' | 'expired'

export type VerifyResult = { ok: true; key: CompiledKey } | { ok: false; reason: RefusalReason }

/** A record that matches no key: an unknown id is hashed against it, so it costs the same time. */
const DUMMY: CompiledKey = (() => {
  const salt = randomBytes(16)
  return {
    id: '',
    owner: '',
    name: undefined,
    scopes: [],
    hash: hashKey(generateKey().key, salt),
    salt,
    revoked: true,
    expiresAt: 0,
  }
})()

/** The in-memory form of a record: buffers decoded and dates parsed once. */
export function compileRecord(r: KeyRecord, revoked = false): CompiledKey {
  return {
    id: r.id,
    owner: r.owner,
    name: r.name,
    scopes: Object.freeze([...r.scopes]),
    hash: Buffer.from(r.hash, 'base64url'),
    salt: Buffer.from(r.salt, 'base64url'),
    revoked: revoked || r.status === 'revoked',
    expiresAt: r.expiresAt === undefined ? Number.POSITIVE_INFINITY : Date.parse(r.expiresAt),
  }
}

/**
 * Checks a well-formed key (see parseKey) against the record found by its id (`undefined`: none):
 * constant-time comparison of the hash (an unknown id is compared against a dummy record, so it
 * costs the same), then status and expiry. The hash is compared first, so "revoked" or "expired"
 * is only ever reported (in logs) for a caller that really holds that key.
 */
export function checkKey(rec: CompiledKey | undefined, key: string, now: number): VerifyResult {
  const target = rec ?? DUMMY
  const same = timingSafeEqual(hashKey(key, target.salt), target.hash)
  if (rec === undefined) return { ok: false, reason: 'unknown' }
  if (!same) return { ok: false, reason: 'mismatch' }
  if (rec.revoked) return { ok: false, reason: 'revoked' }
  if (now >= rec.expiresAt) return { ok: false, reason: 'expired' }
  return { ok: true, key: rec }
}

/** An immutable set of keys, built from one version of the store file. */
export class KeySet {
  private readonly byId: Map<string, CompiledKey>

  constructor(data: StoreData) {
    this.byId = new Map()
    for (const r of data.keys) this.byId.set(r.id, compileRecord(r))
  }

  get size(): number {
    return this.byId.size
  }

  /** Checks a well-formed key: lookup by id, then {@link checkKey}. */
  verify(id: string, key: string, now: number): VerifyResult {
    return checkKey(this.byId.get(id), key, now)
  }
}
