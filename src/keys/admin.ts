/**
 * What `portcullis keys` does to key records, on either backend: a key store file (serialized by
 * its lock file, written atomically) or the replicated map `api-keys` of a Redis state store
 * (per-record writes plus revocation tombstones, see map-records.ts). The CLI parses arguments and
 * prints; this module owns the records. Both backends produce the same records, so the output
 * of every command is the same.
 */
import { generateKey } from './format.js'
import {
  decodeRecord,
  encodeRecord,
  KEYS_MAP,
  LAST_USED_MAP,
  REVOKED_PREFIX,
  tombstoneKey,
} from './map-records.js'
import {
  hashFields,
  type KeyRecord,
  KeyStoreError,
  readStore,
  readUsage,
  type StoreData,
  withStoreLock,
  writeStore,
} from './store.js'
import type { Store } from '../stores/types.js'

/** The id names no key, or the key cannot be rotated. The message is safe to print. */
export class UnknownKeyError extends Error {
  override name = 'UnknownKeyError'
}

/** Fields of a new key chosen by the caller. */
export interface NewKeyFields {
  owner: string
  scopes: string[]
  name?: string | undefined
  /** ISO 8601; none: the key does not expire. */
  expiresAt?: string | undefined
}

export interface RotateOptions {
  /** How long the old key stays valid (capped by its own expiry); 0: it ends now. */
  overlapMs: number
  /** Lifetime of the new key; none: the old key's lifetime (or no expiry). */
  ttlMs?: number | undefined
}

export interface NewKey {
  /** The key itself: print it once, never store it. */
  key: string
  record: KeyRecord
}

export interface RevokeOutcome {
  owner: string
  already: boolean
}

export interface RotateOutcome extends NewKey {
  /** When the old key stops being accepted (ISO 8601). */
  oldUntil: string
}

/** One backend's records, as `portcullis keys` sees them. */
export interface KeyAdmin {
  /** Where the records are, for messages: the file, or the map and the config naming Redis. */
  readonly where: string
  /** Every record with the gateways' last-used times folded in. */
  list(): Promise<KeyRecord[]>
  create(fields: NewKeyFields, now: number): Promise<NewKey>
  revoke(id: string, now: number): Promise<RevokeOutcome>
  rotate(id: string, opts: RotateOptions, now: number): Promise<RotateOutcome>
  close(): Promise<void>
}

const iso = (ms: number) => new Date(ms).toISOString()

/** A new record and its key. Callers check that the id is not taken (and make another one). */
function newRecord(fields: NewKeyFields & { rotatedFrom?: string }, now: number): NewKey {
  const g = generateKey()
  const record: KeyRecord = {
    id: g.id,
    owner: fields.owner,
    ...(fields.name !== undefined ? { name: fields.name } : {}),
    scopes: fields.scopes,
    createdAt: iso(now),
    ...(fields.expiresAt !== undefined ? { expiresAt: fields.expiresAt } : {}),
    status: 'active',
    ...(fields.rotatedFrom !== undefined ? { rotatedFrom: fields.rotatedFrom } : {}),
    ...hashFields(g.key),
  }
  return { key: g.key, record }
}

/** The successor's fields and the old record's new end, for a rotation at `now`. */
function rotation(
  old: KeyRecord,
  opts: RotateOptions,
  now: number,
): { fields: NewKeyFields & { rotatedFrom: string }; oldEnd: number } {
  // The new key lives as long as the old one was meant to, unless --expires says otherwise.
  const lifetime =
    opts.ttlMs ??
    (old.expiresAt === undefined ? undefined : Date.parse(old.expiresAt) - Date.parse(old.createdAt))
  const oldEnd =
    old.expiresAt === undefined
      ? now + opts.overlapMs
      : Math.min(Date.parse(old.expiresAt), now + opts.overlapMs)
  return {
    fields: {
      owner: old.owner,
      scopes: old.scopes,
      name: old.name,
      expiresAt: lifetime === undefined ? undefined : iso(now + Math.max(lifetime, 1000)),
      rotatedFrom: old.id,
    },
    oldEnd,
  }
}

/** Adds last-used times (id → ms) to the records, keeping the later one. */
function withLastUsed(records: KeyRecord[], usage: ReadonlyMap<string, number>): KeyRecord[] {
  if (usage.size === 0) return records
  return records.map((k) => {
    const seen = usage.get(k.id)
    if (seen === undefined || (k.lastUsedAt !== undefined && Date.parse(k.lastUsedAt) >= seen)) return k
    return { ...k, lastUsedAt: iso(seen) }
  })
}

/** The key store file backend (see store.ts). `file` is an absolute path. */
export function fileKeyAdmin(file: string): KeyAdmin {
  /** Reads the store under the lock, lets `change` edit it, writes it back atomically. */
  // Synchronous inside the lock: the lock is released when the callback returns.
  const update = <T>(
    missingOk: boolean,
    change: (data: StoreData) => { data: StoreData | undefined; result: T },
  ): Promise<T> =>
    withStoreLock(file, () => {
      const current = readStore(file, { missingOk })
      const withUsage = { ...current, keys: withLastUsed(current.keys, readUsage(file)) }
      const { data, result } = change(withUsage)
      if (data !== undefined) writeStore(file, data)
      return result
    })
  const unusedId = (data: StoreData, fields: NewKeyFields & { rotatedFrom?: string }, now: number) => {
    const ids = new Set(data.keys.map((k) => k.id))
    let made = newRecord(fields, now)
    while (ids.has(made.record.id)) made = newRecord(fields, now)
    return made
  }
  return {
    where: file,
    async list() {
      return withLastUsed(readStore(file).keys, readUsage(file))
    },
    create(fields, now) {
      return update(true, (data) => {
        const made = unusedId(data, fields, now)
        return { data: { ...data, keys: [...data.keys, made.record] }, result: made }
      })
    },
    revoke(id, now) {
      return update<RevokeOutcome>(false, (data) => {
        const k = data.keys.find((x) => x.id === id)
        if (!k) throw new UnknownKeyError(`no key with id ${id} in ${file}`)
        if (k.status === 'revoked') return { data: undefined, result: { owner: k.owner, already: true } }
        const revoked: KeyRecord = { ...k, status: 'revoked', revokedAt: iso(now) }
        return {
          data: { ...data, keys: data.keys.map((x) => (x.id === id ? revoked : x)) },
          result: { owner: k.owner, already: false },
        }
      })
    },
    rotate(id, opts, now) {
      return update(false, (data) => {
        const old = data.keys.find((x) => x.id === id)
        if (!old) throw new UnknownKeyError(`no key with id ${id} in ${file}`)
        if (old.status === 'revoked') {
          throw new UnknownKeyError(`key ${id} is revoked; create a new key instead of rotating it`)
        }
        const { fields, oldEnd } = rotation(old, opts, now)
        const made = unusedId(data, fields, now)
        const retired: KeyRecord = { ...old, expiresAt: iso(oldEnd), rotatedTo: made.record.id }
        return {
          data: { ...data, keys: [...data.keys.map((x) => (x.id === id ? retired : x)), made.record] },
          result: { ...made, oldUntil: iso(oldEnd) },
        }
      })
    },
    async close() {},
  }
}

/** What `keys import` did. */
export interface ImportOutcome {
  /** Records written (their ids were not in the map). */
  added: string[]
  /** Records already in the map with the same hash: left alone. */
  present: string[]
  /** Records revoked in the file but not in the map: revoked there too (a revocation wins). */
  revoked: string[]
}

/** The replicated map backend on a state store (Redis). `where` describes it in messages. */
export class MapKeyAdmin implements KeyAdmin {
  readonly where: string
  private readonly store: Store

  constructor(store: Store, where: string) {
    this.store = store
    this.where = where
  }

  private async record(
    id: string,
  ): Promise<{ record: KeyRecord; tombstone: string | undefined } | undefined> {
    const [entry, tomb] = await Promise.all([
      this.store.maps.get(KEYS_MAP, id),
      this.store.maps.get(KEYS_MAP, tombstoneKey(id)),
    ])
    if (entry === undefined) return undefined
    return { record: decodeRecord(id, entry.value), tombstone: tomb?.value }
  }

  private put(r: KeyRecord): Promise<void> {
    return this.store.maps.set(KEYS_MAP, r.id, encodeRecord(r))
  }

  /** A new record whose id is not in the map yet. */
  private async unused(fields: NewKeyFields & { rotatedFrom?: string }, now: number): Promise<NewKey> {
    for (;;) {
      const made = newRecord(fields, now)
      if ((await this.store.maps.get(KEYS_MAP, made.record.id)) === undefined) return made
    }
  }

  async list(): Promise<KeyRecord[]> {
    const [snap, used] = await Promise.all([
      this.store.maps.snapshot(KEYS_MAP),
      this.store.maps.snapshot(LAST_USED_MAP),
    ])
    const tombstones = new Map<string, string>()
    const records: KeyRecord[] = []
    for (const [k, e] of snap.entries) {
      if (k.startsWith(REVOKED_PREFIX)) tombstones.set(k.slice(REVOKED_PREFIX.length), e.value)
      else records.push(decodeRecord(k, e.value))
    }
    const usage = new Map<string, number>()
    for (const [id, e] of used.entries) {
      const t = Number(e.value)
      if (Number.isSafeInteger(t) && t > 0) usage.set(id, t)
    }
    const out = records.map((r) => {
      const at = tombstones.get(r.id)
      if (r.status === 'revoked' || at === undefined) return r
      return { ...r, status: 'revoked' as const, revokedAt: Number.isNaN(Date.parse(at)) ? undefined : at }
    })
    out.sort((a, b) =>
      a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1,
    )
    return withLastUsed(out, usage)
  }

  async create(fields: NewKeyFields, now: number): Promise<NewKey> {
    const made = await this.unused(fields, now)
    await this.put(made.record)
    return made
  }

  async revoke(id: string, now: number): Promise<RevokeOutcome> {
    const found = await this.record(id)
    if (!found) throw new UnknownKeyError(`no key with id ${id} in ${this.where}`)
    const { record, tombstone } = found
    const already = tombstone !== undefined || record.status === 'revoked'
    // The tombstone first: from this write on, every gateway refuses the key, whatever happens
    // to the record (a rotate in flight may write back an older copy of it).
    const at = tombstone ?? record.revokedAt ?? iso(now)
    if (tombstone === undefined) await this.store.maps.set(KEYS_MAP, tombstoneKey(id), at)
    if (record.status !== 'revoked') await this.put({ ...record, status: 'revoked', revokedAt: at })
    return { owner: record.owner, already }
  }

  async rotate(id: string, opts: RotateOptions, now: number): Promise<RotateOutcome> {
    const found = await this.record(id)
    if (!found) throw new UnknownKeyError(`no key with id ${id} in ${this.where}`)
    const old = found.record
    if (old.status === 'revoked' || found.tombstone !== undefined) {
      throw new UnknownKeyError(`key ${id} is revoked; create a new key instead of rotating it`)
    }
    const { fields, oldEnd } = rotation(old, opts, now)
    const made = await this.unused(fields, now)
    // The new record first, then the old one's end: a failure in between leaves the old key as
    // it was (and an unused new record), never a client without a valid key.
    await this.put(made.record)
    await this.put({ ...old, expiresAt: iso(oldEnd), rotatedTo: made.record.id })
    return { ...made, oldUntil: iso(oldEnd) }
  }

  /**
   * Copies a key store file's records into the map. Idempotent: a record whose id is in the map
   * with the same hash and salt is left alone (the map's copy may be newer); a record revoked in
   * the file is revoked in the map too. Refuses the whole import, writing nothing, when an id is
   * in the map with a different hash.
   */
  async importRecords(records: readonly KeyRecord[], now: number): Promise<ImportOutcome> {
    const existing = await Promise.all(records.map((r) => this.record(r.id)))
    const conflicts = records.filter((r, i) => {
      const e = existing[i]
      return e !== undefined && (e.record.hash !== r.hash || e.record.salt !== r.salt)
    })
    if (conflicts.length > 0) {
      throw new KeyStoreError(
        `refusing to import: ${conflicts.length === 1 ? 'the id' : 'the ids'} ${conflicts
          .slice(0, 10)
          .map((r) => r.id)
          .join(', ')}${conflicts.length > 10 ? ', …' : ''} ${
          conflicts.length === 1 ? 'is' : 'are'
        } already in ${this.where} with a different hash (another key); nothing was imported`,
      )
    }
    const outcome: ImportOutcome = { added: [], present: [], revoked: [] }
    for (const [i, r] of records.entries()) {
      const e = existing[i]
      if (e === undefined) {
        if (r.status === 'revoked') {
          await this.store.maps.set(KEYS_MAP, tombstoneKey(r.id), r.revokedAt ?? iso(now))
        }
        await this.put(r)
        outcome.added.push(r.id)
      } else if (r.status === 'revoked' && e.record.status !== 'revoked' && e.tombstone === undefined) {
        await this.revoke(r.id, r.revokedAt === undefined ? now : Date.parse(r.revokedAt))
        outcome.revoked.push(r.id)
      } else {
        outcome.present.push(r.id)
      }
    }
    return outcome
  }

  async close(): Promise<void> {
    await this.store.close()
  }
}
