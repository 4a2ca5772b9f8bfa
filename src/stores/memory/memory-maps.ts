/**
 * Replicated maps of the memory store: per map a Map of entries and a bounded change log (a ring of
 * the last `logLength` changed keys with increasing sequence numbers). A cursor is
 * `<epoch>:<sequence>`, the epoch being unique to the store instance, so a cursor from another
 * instance (or a restarted process) or one older than the ring gives `reset: true`.
 *
 * Maps are outside the store's `maxKeys` LRU: a map is bounded by `maxEntries` instead (a full map
 * refuses new keys rather than forgetting old ones: an API key must not silently disappear).
 */
import { randomUUID } from 'node:crypto'
import { checkLimit, checkMapKey, checkMapName, checkMapValue, checkOptionalTtl } from '../keys.js'
import type { MapChange, MapChanges, MapEntry, MapSnapshot, MapStore } from '../types.js'

export interface MemoryMapsOptions {
  /** Most entries of one map. */
  maxEntries: number
  /** Changes kept per map for `changes()`; an older cursor gets `reset: true`. */
  logLength: number
  now: () => number
  /** Throws a StoreError once the store is closed. */
  assertOpen: () => void
}

interface Stored {
  value: string
  /** ms since the epoch; Infinity for none. */
  exp: number
}

class MapState {
  readonly entries = new Map<string, Stored>()
  /** Ring of changed keys; the change with sequence number s is at (s - 1) % ring.length. */
  readonly ring: string[]
  /** Sequence number of the latest change (0: none yet). */
  last = 0
  /** No entry expires before this (a lower bound): a full map of live entries refuses in O(1). */
  floor = Number.POSITIVE_INFINITY

  constructor(logLength: number) {
    this.ring = new Array<string>(logLength)
  }

  /** The oldest sequence number still in the ring. */
  get first(): number {
    return Math.max(1, this.last - this.ring.length + 1)
  }

  log(key: string): void {
    this.last++
    this.ring[(this.last - 1) % this.ring.length] = key
  }
}

function toEntry(s: Stored): MapEntry {
  return s.exp === Number.POSITIVE_INFINITY ? { value: s.value } : { value: s.value, expiresAt: s.exp }
}

/** The memory implementation of {@link MapStore}. */
export class MemoryMaps implements MapStore {
  /** Unique to this store instance: cursors of other instances are refused. */
  readonly epoch = randomUUID().replaceAll('-', '').slice(0, 16)
  private readonly maps = new Map<string, MapState>()

  constructor(private readonly o: MemoryMapsOptions) {}

  async set(map: string, key: string, value: string, ttlMs?: number): Promise<void> {
    const m = this.state(map, true)
    checkMapKey(key)
    checkMapValue(value)
    const ttl = checkOptionalTtl(ttlMs)
    const now = this.o.now()
    if (!m.entries.has(key) && m.entries.size >= this.o.maxEntries) {
      this.prune(m, now)
      if (m.entries.size >= this.o.maxEntries) {
        throw new RangeError(`map ${map} is full (${this.o.maxEntries} entries)`)
      }
    }
    const exp = ttl === undefined ? Number.POSITIVE_INFINITY : now + ttl
    if (exp < m.floor) m.floor = exp
    m.entries.set(key, { value, exp })
    m.log(key)
  }

  async get(map: string, key: string): Promise<MapEntry | undefined> {
    const m = this.state(map, false)
    checkMapKey(key)
    const s = m?.entries.get(key)
    return s !== undefined && s.exp > this.o.now() ? toEntry(s) : undefined
  }

  async delete(map: string, key: string): Promise<boolean> {
    const m = this.state(map, false)
    checkMapKey(key)
    const s = m?.entries.get(key)
    if (m === undefined || s === undefined) return false
    m.entries.delete(key)
    m.log(key)
    return s.exp > this.o.now()
  }

  async snapshot(map: string): Promise<MapSnapshot> {
    const m = this.state(map, false)
    const now = this.o.now()
    const entries = new Map<string, MapEntry>()
    if (m !== undefined) {
      for (const [key, s] of m.entries) if (s.exp > now) entries.set(key, toEntry(s))
    }
    return { entries, cursor: `${this.epoch}:${m?.last ?? 0}` }
  }

  async changes(map: string, cursor: string, limit: number): Promise<MapChanges> {
    const m = this.state(map, false)
    const max = checkLimit(limit)
    if (max < 1) throw new RangeError('limit must be at least 1')
    const colon = typeof cursor === 'string' ? cursor.indexOf(':') : -1
    if (colon < 0 || cursor.slice(0, colon) !== this.epoch) return { reset: true }
    const digits = cursor.slice(colon + 1)
    if (!/^\d{1,15}$/.test(digits)) return { reset: true }
    const seq = Number(digits)
    const last = m?.last ?? 0
    if (seq > last) return { reset: true }
    if (m === undefined || seq === last) return { reset: false, changes: [], cursor }
    if (seq < m.first - 1) return { reset: true }
    const end = Math.min(last, seq + max)
    const now = this.o.now()
    // One change per key (its current entry): a key written twice in the batch is reported once.
    const keys = new Set<string>()
    for (let s = seq + 1; s <= end; s++) {
      const key = m.ring[(s - 1) % m.ring.length] as string
      keys.delete(key)
      keys.add(key)
    }
    const changes: MapChange[] = []
    for (const key of keys) {
      const e = m.entries.get(key)
      changes.push({ key, entry: e !== undefined && e.exp > now ? toEntry(e) : undefined })
    }
    return { reset: false, changes, cursor: `${this.epoch}:${end}` }
  }

  /** Drops every expired entry of every map (the store's periodic sweep); returns how many. */
  sweep(): number {
    const now = this.o.now()
    let removed = 0
    for (const m of this.maps.values()) removed += this.prune(m, now)
    return removed
  }

  /** Entries held per map (expired ones included until swept). */
  sizes(): Record<string, number> {
    return Object.fromEntries([...this.maps].map(([name, m]) => [name, m.entries.size]))
  }

  clear(): void {
    this.maps.clear()
  }

  private state(map: string, create: true): MapState
  private state(map: string, create: false): MapState | undefined
  private state(map: string, create: boolean): MapState | undefined {
    this.o.assertOpen()
    checkMapName(map)
    let m = this.maps.get(map)
    if (m === undefined && create) {
      m = new MapState(this.o.logLength)
      this.maps.set(map, m)
    }
    return m
  }

  /**
   * Drops expired entries. Not logged: an expiry is not a change (readers check `expiresAt`
   * themselves), and the ring must keep the real changes.
   */
  private prune(m: MapState, now: number): number {
    if (now < m.floor) return 0
    let removed = 0
    let floor = Number.POSITIVE_INFINITY
    for (const [key, s] of m.entries) {
      if (s.exp <= now) {
        m.entries.delete(key)
        removed++
      } else if (s.exp < floor) {
        floor = s.exp
      }
    }
    m.floor = floor
    return removed
  }
}
