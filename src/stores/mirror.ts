/**
 * Map mirrors: the local, synchronously readable copy of a replicated map (see {@link MapStore})
 * that a gateway consults on every request (API key records, token revocations, bans) without a
 * round trip to the store.
 *
 * A mirror takes a snapshot, then polls the map's change feed every `intervalMs`; on `reset` (the
 * feed was trimmed past it, or the backend lost its data) it takes a new snapshot. While the store
 * is unavailable it keeps serving its last copy and keeps polling: a change reaches every gateway
 * within the poll interval plus one round trip once the store answers.
 *
 * One mirror is shared per (store instance, map) with reference counting: every route and config
 * generation that needs the map acquires a handle, and the poll timer stops when the last handle is
 * closed. Timers are unref'd: a mirror never keeps the process alive.
 */
import type { Logger } from 'pino'
import { checkMapName } from './keys.js'
import { isStoreError, type MapChange, type MapEntry, type Store, StoreError } from './types.js'

export interface MapMirrorOptions {
  /** Where outages (one warning each) and recoveries are logged. Keys and values never are. */
  logger: Logger
  /** Poll period in ms. Default 250. (The first handle's value holds for a shared mirror.) */
  intervalMs?: number
  /** Changes asked for per `changes()` call. Default 1000. (The first handle's value holds.) */
  batch?: number
  /** Clock for expiry checks, ms since the epoch. Default `Date.now`. (The first handle's holds.) */
  now?: () => number
  /** Called after the local copy changed (entries set, deleted, expired, or a new snapshot). */
  onChange?: () => void
}

export interface MapMirror {
  /**
   * Resolves after the first snapshot. Rejects (with the store's error, a StoreError on an outage)
   * when the snapshot attempt in flight fails, or right away when the last one failed and none has
   * succeeded yet. The mirror keeps retrying in the background either way.
   */
  ready(): Promise<void>
  /** The live entry (synchronous); `undefined` when absent or expired. */
  get(key: string): MapEntry | undefined
  /** Whether a live entry exists. */
  has(key: string): boolean
  /** Number of live entries. */
  readonly size: number
  /** The live entries (a copy taken lazily: changes applied while iterating may or may not show). */
  entries(): IterableIterator<[string, MapEntry]>
  /** When the mirror last synced successfully (ms since the epoch, by its clock); 0 before the first. */
  readonly lastSyncAt: number
  /**
   * Syncs now (after a poll already running, if any): read-your-writes on this gateway after an
   * admin write, and tests. Rejects when that sync fails (the copy is then unchanged).
   */
  refresh(): Promise<void>
  /** Releases this handle (idempotent). The shared mirror stops polling when its last handle goes. */
  close(): void
}

export const MIRROR_DEFAULTS = { intervalMs: 250, batch: 1000 } as const

/** `changes()` calls per poll at most: a writer faster than this cannot keep one poll running forever. */
const MAX_CALLS_PER_POLL = 20

/** The shared mirrors of each store, by map name. */
const registry = new WeakMap<Store, Map<string, SharedMirror>>()

function positiveInt(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer`)
  return v
}

interface Waiter {
  resolve: () => void
  reject: (err: unknown) => void
}

class SharedMirror {
  private entries = new Map<string, MapEntry>()
  /** Earliest `expiresAt` among the entries (Infinity: none expires). */
  private nextExpiry = Number.POSITIVE_INFINITY
  /** Feed position; undefined: a snapshot is needed. */
  private cursor: string | undefined
  private readonly handles = new Set<Handle>()
  private timer: NodeJS.Timeout | undefined
  private inFlight: Promise<void> | undefined
  private queued: Promise<void> | undefined
  private synced = false
  private lastError: unknown
  private waiters: Waiter[] = []
  private outage = false
  private closed = false
  lastSyncAt = 0

  readonly intervalMs: number
  readonly batch: number
  readonly now: () => number
  private readonly logger: Logger

  constructor(
    private readonly store: Store,
    readonly map: string,
    opts: MapMirrorOptions,
    private readonly onClosed: () => void,
  ) {
    this.intervalMs = positiveInt(opts.intervalMs, MIRROR_DEFAULTS.intervalMs, 'intervalMs')
    this.batch = positiveInt(opts.batch, MIRROR_DEFAULTS.batch, 'batch')
    this.now = opts.now ?? Date.now
    this.logger = opts.logger
  }

  acquire(onChange: (() => void) | undefined): Handle {
    const handle = new Handle(this, onChange)
    this.handles.add(handle)
    if (this.handles.size === 1 && !this.inFlight && this.timer === undefined) this.sync().catch(noop)
    return handle
  }

  release(handle: Handle): void {
    if (!this.handles.delete(handle) || this.handles.size > 0) return
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    this.onClosed()
    const err = new StoreError(`map mirror ${this.map}: closed before its first snapshot`)
    for (const w of this.waiters.splice(0)) w.reject(err)
  }

  ready(): Promise<void> {
    if (this.synced) return Promise.resolve()
    if (!this.inFlight && this.lastError !== undefined) return Promise.reject(this.lastError)
    if (this.closed) return Promise.reject(new StoreError(`map mirror ${this.map}: closed`))
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  get(key: string): MapEntry | undefined {
    const e = this.entries.get(key)
    if (e === undefined || (e.expiresAt !== undefined && e.expiresAt <= this.now())) return undefined
    return e
  }

  get size(): number {
    const now = this.now()
    if (now < this.nextExpiry) return this.entries.size
    let n = 0
    for (const e of this.entries.values()) if (e.expiresAt === undefined || e.expiresAt > now) n++
    return n
  }

  *live(): IterableIterator<[string, MapEntry]> {
    for (const [key, e] of this.entries) {
      if (e.expiresAt === undefined || e.expiresAt > this.now()) yield [key, e]
    }
  }

  /** Runs a poll after the one in flight (at most one queued: later callers share it). */
  sync(): Promise<void> {
    if (this.queued) return this.queued
    if (!this.inFlight) {
      this.inFlight = this.run()
      return this.inFlight
    }
    const next = this.inFlight.catch(noop).then(() => {
      this.queued = undefined
      this.inFlight = this.run()
      return this.inFlight
    })
    this.queued = next
    return next
  }

  private async run(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    try {
      await this.poll()
    } finally {
      this.inFlight = undefined
      this.schedule()
    }
  }

  private schedule(): void {
    if (this.closed || this.queued || this.timer !== undefined) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.sync().catch(noop)
    }, this.intervalMs)
    this.timer.unref()
  }

  private async poll(): Promise<void> {
    if (this.closed) return
    const isSnapshot = this.cursor === undefined
    try {
      let changed = false
      if (this.cursor === undefined) {
        await this.snapshot()
        changed = true
      } else {
        for (let i = 0; i < MAX_CALLS_PER_POLL; i++) {
          const r = await this.store.maps.changes(this.map, this.cursor, this.batch)
          if (r.reset) {
            this.logger.info({ map: this.map }, 'replicated map: change feed reset; reloading the map')
            this.cursor = undefined
            await this.snapshot()
            changed = true
            break
          }
          const moved = r.cursor !== this.cursor
          this.cursor = r.cursor
          if (r.changes.length > 0) {
            this.apply(r.changes)
            changed = true
          } else if (!moved) {
            break
          }
        }
      }
      if (this.pruneExpired()) changed = true
      this.lastSyncAt = this.now()
      this.lastError = undefined
      if (this.outage) {
        this.outage = false
        this.logger.info({ map: this.map }, 'replicated map: store answers again; in sync')
      }
      if (changed) this.notify()
      if (!this.synced && this.cursor !== undefined) {
        this.synced = true
        for (const w of this.waiters.splice(0)) w.resolve()
      }
    } catch (err) {
      this.lastError = err
      if (!this.outage) {
        this.outage = true
        const message = err instanceof Error ? err.message : String(err)
        if (isStoreError(err)) {
          this.logger.warn(
            { map: this.map, error: message },
            'replicated map: store unavailable; serving the last copy',
          )
        } else {
          this.logger.error({ map: this.map, error: message }, 'replicated map: sync failed')
        }
      }
      if (isSnapshot && !this.synced) for (const w of this.waiters.splice(0)) w.reject(err)
      throw err
    }
  }

  private async snapshot(): Promise<void> {
    const snap = await this.store.maps.snapshot(this.map)
    if (this.closed) return
    let next = Number.POSITIVE_INFINITY
    for (const e of snap.entries.values()) {
      Object.freeze(e)
      if (e.expiresAt !== undefined && e.expiresAt < next) next = e.expiresAt
    }
    this.entries = snap.entries
    this.nextExpiry = next
    this.cursor = snap.cursor
  }

  private apply(changes: MapChange[]): void {
    for (const c of changes) {
      if (c.entry === undefined) {
        this.entries.delete(c.key)
        continue
      }
      const e = Object.freeze({ ...c.entry })
      this.entries.set(c.key, e)
      if (e.expiresAt !== undefined && e.expiresAt < this.nextExpiry) this.nextExpiry = e.expiresAt
    }
  }

  /** Drops expired entries once the earliest expiry has passed; true when some went. */
  private pruneExpired(): boolean {
    const now = this.now()
    if (now < this.nextExpiry) return false
    let next = Number.POSITIVE_INFINITY
    let removed = false
    for (const [key, e] of this.entries) {
      if (e.expiresAt === undefined) continue
      if (e.expiresAt <= now) {
        this.entries.delete(key)
        removed = true
      } else if (e.expiresAt < next) next = e.expiresAt
    }
    this.nextExpiry = next
    return removed
  }

  private notify(): void {
    for (const h of this.handles) {
      if (!h.onChange) continue
      try {
        h.onChange()
      } catch (err) {
        this.logger.error(
          { map: this.map, error: err instanceof Error ? err.message : String(err) },
          'replicated map: onChange listener failed',
        )
      }
    }
  }
}

class Handle implements MapMirror {
  private released = false

  constructor(
    private readonly shared: SharedMirror,
    readonly onChange: (() => void) | undefined,
  ) {}

  ready(): Promise<void> {
    return this.shared.ready()
  }

  get(key: string): MapEntry | undefined {
    return this.shared.get(key)
  }

  has(key: string): boolean {
    return this.shared.get(key) !== undefined
  }

  get size(): number {
    return this.shared.size
  }

  entries(): IterableIterator<[string, MapEntry]> {
    return this.shared.live()
  }

  get lastSyncAt(): number {
    return this.shared.lastSyncAt
  }

  refresh(): Promise<void> {
    if (this.released) return Promise.reject(new StoreError('map mirror handle is closed'))
    return this.shared.sync()
  }

  close(): void {
    if (this.released) return
    this.released = true
    this.shared.release(this)
  }
}

function noop(): void {}

/**
 * A handle on the shared mirror of `map` in `store` (created, with its first snapshot under way,
 * when none is open). Close it when done; the last close stops the polling.
 *
 * A mirror that has never synced is empty: a check that must fail closed (revocations) tests
 * `lastSyncAt > 0` (or awaits `ready()`) before trusting a miss.
 *
 * @example
 * const revoked = acquireMapMirror(store, 'revoked-tokens', { logger })
 * await revoked.ready() // at startup; rejects with a StoreError when the store is down
 * // per request, synchronously:
 * if (revoked.lastSyncAt === 0) throw new GatewayError('GW_ERR_STATE_UNAVAILABLE') // fail closed
 * if (revoked.has(jti)) throw new GatewayError('GW_ERR_AUTH_INVALID')
 * // on reload or shutdown:
 * revoked.close()
 */
export function acquireMapMirror(store: Store, map: string, opts: MapMirrorOptions): MapMirror {
  checkMapName(map)
  let byName = registry.get(store)
  if (byName === undefined) {
    byName = new Map()
    registry.set(store, byName)
  }
  const mirrors = byName
  let shared = mirrors.get(map)
  if (shared === undefined) {
    const created: SharedMirror = new SharedMirror(store, map, opts, () => {
      if (mirrors.get(map) === created) mirrors.delete(map)
    })
    shared = created
    mirrors.set(map, shared)
  }
  return shared.acquire(opts.onChange)
}

/** Names of the maps with an open mirror on `store` (for diagnostics and tests). */
export function openMapMirrors(store: Store): string[] {
  return [...(registry.get(store)?.keys() ?? [])]
}
