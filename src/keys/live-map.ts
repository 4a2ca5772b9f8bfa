/**
 * The gateway's view of the key records in the state store's replicated map `api-keys` (see
 * map-records.ts), for `api-key-auth` with `source: store`. One per process and store, shared by
 * every route and config generation that uses it.
 *
 * The records come from a map mirror (stores/mirror.ts): a local copy taken once and then kept in
 * step with the map's change feed (polled every 250 ms), so the per-request check stays
 * synchronous: a lookup in the copy, no round trip. A record is compiled (JSON parsed, checked,
 * hash decoded) the first time it is looked up after it changed, and the compiled form is kept
 * until the record changes again: a change costs nothing until its key is used, whatever the size
 * of the map.
 *
 * Availability: until the first copy has arrived the records are unknown; and when the store stops
 * answering, the mirror keeps its last copy (a revocation made meanwhile cannot arrive). The policy
 * asks {@link MapKeySet.available} and fails closed (503) before the first copy and once the copy
 * is older than its `maxStaleSeconds`.
 *
 * Last-used times are noted in memory and written to the map `api-keys-used` at most every
 * `lastUsedFlushMs` (one write per key used since the last flush); never a write per request, and
 * never a write to the records map (a gateway writing records could race a revocation).
 */
import type { Logger } from 'pino'
import { acquireMapMirror, type MapMirror } from '../stores/mirror.js'
import { isStoreError, type Store } from '../stores/types.js'
import { decodeRecord, KEYS_MAP, LAST_USED_MAP, REVOKED_PREFIX, tombstoneKey } from './map-records.js'
import { type CompiledKey, checkKey, compileRecord, type VerifyResult } from './verify.js'

export interface MapKeySetOptions {
  /** 0: last-used times are not tracked. */
  lastUsedFlushMs: number
  /** The policy's clock (ms since the epoch); also the mirror's, so that staleness is measured on it. */
  now: () => number
  /** Mirror poll interval (default: the mirror's, 250 ms). */
  intervalMs?: number
}

/** A compiled record and the stored text and tombstone state it was compiled from. */
interface Compiled {
  value: string
  tombstone: boolean
  /** undefined: the stored record is invalid (refused like an unknown id). */
  key: CompiledKey | undefined
}

/** Writes of last-used times in flight at once. */
const FLUSH_BATCH = 64

export class MapKeySet {
  private readonly mirror: MapMirror
  private readonly store: Store
  private readonly logger: Logger
  private readonly opts: MapKeySetOptions
  private readonly compiled = new Map<string, Compiled>()
  private readonly flusher: NodeJS.Timeout | undefined
  private usage = new Map<string, number>()
  private flushing: Promise<void> | undefined
  private usageErrorLogged = false
  refs = 0

  constructor(store: Store, logger: Logger, opts: MapKeySetOptions) {
    this.store = store
    this.logger = logger
    this.opts = opts
    this.mirror = acquireMapMirror(store, KEYS_MAP, {
      logger,
      now: opts.now,
      ...(opts.intervalMs !== undefined ? { intervalMs: opts.intervalMs } : {}),
      onChange: () => this.sweep(),
    })
    this.mirror.ready().then(
      () =>
        logger.info(
          { map: KEYS_MAP, entries: this.mirror.size },
          'api key records loaded from the state store',
        ),
      // The mirror keeps trying in the background; until it succeeds, requests with a key get 503.
      (err: unknown) =>
        logger.error(
          { map: KEYS_MAP, error: (err as Error).message },
          'api key records not loaded yet: requests with a key get 503 until the state store answers',
        ),
    )
    if (opts.lastUsedFlushMs > 0) {
      this.flusher = setInterval(() => void this.flushUsage(), opts.lastUsedFlushMs)
      this.flusher.unref()
    }
  }

  /** Resolves when the first copy of the records has arrived. */
  ready(): Promise<void> {
    return this.mirror.ready()
  }

  /** Refreshes the copy now (tests, and callers that must see a change at once). */
  refresh(): Promise<void> {
    return this.mirror.refresh()
  }

  /** Entries in the local copy (records and tombstones). */
  get size(): number {
    return this.mirror.size
  }

  /** When the copy was last brought up to date (ms since the epoch, on the `now` clock); 0: never. */
  get lastSyncAt(): number {
    return this.mirror.lastSyncAt
  }

  /** Whether keys can be checked at `now`: a first copy has arrived and is at most `maxStaleMs` old. */
  available(now: number, maxStaleMs: number): boolean {
    // lastSyncAt, not ready(): ready() rejects for good when the first attempt fails, while the
    // mirror keeps retrying and lastSyncAt moves on its first success.
    const last = this.mirror.lastSyncAt
    return last > 0 && now - last <= maxStaleMs
  }

  /** Drops compiled records that left the map (bounded by the map, not by what was ever seen). */
  private sweep(): void {
    for (const id of this.compiled.keys()) if (!this.mirror.has(id)) this.compiled.delete(id)
  }

  /** The compiled record of `id`, or undefined (absent, or invalid in the store). */
  lookup(id: string): CompiledKey | undefined {
    const entry = this.mirror.get(id)
    if (entry === undefined || id.startsWith(REVOKED_PREFIX)) return undefined
    const tombstone = this.mirror.has(tombstoneKey(id))
    const c = this.compiled.get(id)
    if (c !== undefined && c.value === entry.value && c.tombstone === tombstone) return c.key
    let key: CompiledKey | undefined
    try {
      key = compileRecord(decodeRecord(id, entry.value), tombstone)
    } catch (err) {
      // Fail closed: the key is refused as unknown. Logged once per stored version.
      this.logger.error(
        { map: KEYS_MAP, keyId: id, error: (err as Error).message },
        'invalid api key record refused',
      )
    }
    this.compiled.set(id, { value: entry.value, tombstone, key })
    return key
  }

  /** Checks a well-formed key (see parseKey) against its record; see checkKey. */
  verify(id: string, key: string, now: number): VerifyResult {
    return checkKey(this.lookup(id), key, now)
  }

  /** Notes that a key was used (in memory; written by the flush timer). */
  touch(id: string, now: number): void {
    if (this.opts.lastUsedFlushMs > 0) this.usage.set(id, now)
  }

  /**
   * Writes pending last-used times to the map `api-keys-used`. Never rejects; a failed write keeps
   * the time in memory for the next flush (bounded: one entry per key in the map).
   */
  flushUsage(): Promise<void> {
    if (this.flushing) return this.flushing
    if (this.usage.size === 0) return Promise.resolve()
    const batch = [...this.usage]
    this.usage = new Map()
    const run = async () => {
      let failed: unknown
      for (let i = 0; i < batch.length; i += FLUSH_BATCH) {
        await Promise.all(
          batch.slice(i, i + FLUSH_BATCH).map(async ([id, t]) => {
            try {
              await this.store.maps.set(LAST_USED_MAP, id, String(t))
            } catch (err) {
              failed ??= err
              if (this.mirror.has(id) && (this.usage.get(id) ?? 0) < t) this.usage.set(id, t)
            }
          }),
        )
      }
      if (failed === undefined) {
        this.usageErrorLogged = false
      } else if (!this.usageErrorLogged) {
        this.usageErrorLogged = true
        this.logger.warn(
          { map: LAST_USED_MAP, error: (failed as Error).message, storeError: isStoreError(failed) },
          'cannot write api key last-used times; they stay in memory',
        )
      }
    }
    this.flushing = run().finally(() => {
      this.flushing = undefined
    })
    return this.flushing
  }

  /** Stops the mirror and the timer, after a last flush of the last-used times. */
  async close(): Promise<void> {
    clearInterval(this.flusher)
    this.mirror.close()
    await this.flushUsage()
  }
}

const open = new WeakMap<Store, Map<number, MapKeySet>>()

/**
 * The shared key set of `store` (per last-used interval). `release` closes it when the last user
 * is gone.
 */
export function acquireMapKeySet(
  store: Store,
  logger: Logger,
  opts: MapKeySetOptions,
): { keys: MapKeySet; release: () => Promise<void> } {
  let byFlush = open.get(store)
  if (!byFlush) {
    byFlush = new Map()
    open.set(store, byFlush)
  }
  const table = byFlush
  let keys = table.get(opts.lastUsedFlushMs)
  if (!keys) {
    keys = new MapKeySet(store, logger, opts)
    table.set(opts.lastUsedFlushMs, keys)
  }
  keys.refs++
  const k = keys
  let released = false
  return {
    keys: k,
    release: async () => {
      if (released) return
      released = true
      k.refs--
      if (k.refs === 0) {
        table.delete(opts.lastUsedFlushMs)
        await k.close()
      }
    },
  }
}
