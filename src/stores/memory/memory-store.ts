/**
 * The in-memory store: state for one gateway process. Bounded: at most `maxKeys` entries (a counter,
 * kv or gcra key is one entry, a set counts one per member), least recently used evicted first;
 * TTLs are honoured when an entry is read and by one periodic, unref'd sweep (no timer per key).
 * Replicated maps (`maps`, see memory-maps.ts) are outside that LRU: each map is bounded by
 * `maxMapEntries` and refuses new keys when full instead of forgetting old ones. A hash counts one
 * per field.
 */
import { checkGcraParams, gcraStep } from '../gcra.js'
import {
  checkIncrement,
  checkLimit,
  checkOptionalTtl,
  checkString,
  checkTtl,
  encodeKey,
  hashOps,
  putField,
} from '../keys.js'
import { MemoryMaps } from './memory-maps.js'
import {
  type CounterStore,
  type CounterValue,
  type GcraParams,
  type GcraResult,
  type GcraStore,
  type HashStore,
  type KvStore,
  type MapStore,
  type SetStore,
  type Store,
  StoreError,
} from '../types.js'

export interface MemoryStoreOptions {
  /** Most entries kept (a set counts one per member); LRU eviction beyond. Default 100,000. */
  maxKeys?: number
  /** Most members of one set; adding a new one to a full set drops the oldest. Default 10,000. */
  maxSetMembers?: number
  /** Most fields of one hash; an update's new fields beyond it are dropped. Default 10,000. */
  maxHashFields?: number
  /**
   * Most entries of one replicated map (`maps`); a set of a new key into a full map rejects with a
   * RangeError. Maps are not part of `maxKeys`. Default 100,000.
   */
  maxMapEntries?: number
  /** Changes kept per replicated map for its feed; a reader further behind re-snapshots. Default 10,000. */
  mapLogLength?: number
  /** Period of the expiry sweep in ms. Default 10,000. */
  sweepIntervalMs?: number
  /** Clock in ms since the epoch (a fake one in tests). Default `Date.now`. */
  now?: () => number
}

export const MEMORY_DEFAULTS = {
  maxKeys: 100_000,
  maxSetMembers: 10_000,
  maxHashFields: 10_000,
  maxMapEntries: 100_000,
  mapLogLength: 10_000,
  sweepIntervalMs: 10_000,
} as const

interface CounterEntry {
  t: 'c'
  /** Expiry in ms since the epoch; Infinity for none. */
  exp: number
  value: number
}
interface KvEntry {
  t: 'k'
  exp: number
  value: string
}
interface GcraEntry {
  t: 'g'
  exp: number
  tatUs: number
}
interface SetEntry {
  t: 's'
  /** The latest member expiry (Infinity when a member has none): the set is gone after it. */
  exp: number
  /** member → expiry in ms (Infinity for none); insertion order = oldest first. */
  members: Map<string, number>
}
interface HashEntry {
  t: 'h'
  exp: number
  fields: Map<string, number>
}
type Entry = CounterEntry | KvEntry | GcraEntry | SetEntry | HashEntry
type Kind = Entry['t']

function positiveInt(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer`)
  return v
}

/** The memory implementation of {@link Store}. Use {@link createMemoryStore} or `new MemoryStore()`. */
export class MemoryStore implements Store {
  readonly backend = 'memory'
  readonly counters: CounterStore
  readonly kv: KvStore
  readonly sets: SetStore
  readonly gcra: GcraStore
  readonly maps: MapStore & MemoryMaps
  readonly hashes: HashStore

  readonly maxKeys: number
  readonly maxHashFields: number
  readonly maxMapEntries: number
  readonly maxSetMembers: number
  private readonly now: () => number
  /** Entries by `kind + encoded key`, least recently used first (Map order). */
  private readonly entries = new Map<string, Entry>()
  /** Sum of entry weights (1 per key, 1 per set member); kept ≤ maxKeys. */
  private weight = 0
  private timer: NodeJS.Timeout | undefined
  private closed = false

  constructor(options: MemoryStoreOptions = {}) {
    this.maxKeys = positiveInt(options.maxKeys, MEMORY_DEFAULTS.maxKeys, 'maxKeys')
    this.maxSetMembers = Math.min(
      this.maxKeys,
      positiveInt(options.maxSetMembers, MEMORY_DEFAULTS.maxSetMembers, 'maxSetMembers'),
    )
    const sweepIntervalMs = positiveInt(
      options.sweepIntervalMs,
      MEMORY_DEFAULTS.sweepIntervalMs,
      'sweepIntervalMs',
    )
    this.maxHashFields = Math.min(
      this.maxKeys,
      positiveInt(options.maxHashFields, MEMORY_DEFAULTS.maxHashFields, 'maxHashFields'),
    )
    this.now = options.now ?? Date.now
    this.maxMapEntries = positiveInt(options.maxMapEntries, MEMORY_DEFAULTS.maxMapEntries, 'maxMapEntries')
    this.maps = new MemoryMaps({
      maxEntries: this.maxMapEntries,
      logLength: positiveInt(options.mapLogLength, MEMORY_DEFAULTS.mapLogLength, 'mapLogLength'),
      now: this.now,
      assertOpen: () => {
        if (this.closed) throw new StoreError('memory store is closed')
      },
    })
    this.timer = setInterval(() => this.sweep(), sweepIntervalMs)
    this.timer.unref()

    this.counters = {
      incr: async (key, by, windowMs) => {
        const id = this.id('c', key)
        const inc = checkIncrement(by)
        const win = checkTtl(windowMs, 'windowMs')
        const now = this.now()
        const e = this.lookup(id, now)
        if (e?.t === 'c') {
          e.value += inc
          return { value: e.value, ttlMs: ttlLeft(e.exp, now) }
        }
        this.insert(id, { t: 'c', value: inc, exp: now + win })
        return { value: inc, ttlMs: win }
      },
      get: async (key): Promise<CounterValue> => {
        const now = this.now()
        const e = this.lookup(this.id('c', key), now)
        return e?.t === 'c' ? { value: e.value, ttlMs: ttlLeft(e.exp, now) } : { value: 0, ttlMs: 0 }
      },
      reset: async (key) => {
        this.drop(this.id('c', key))
      },
    }

    this.kv = {
      get: async (key) => {
        const e = this.lookup(this.id('k', key), this.now())
        return e?.t === 'k' ? e.value : undefined
      },
      set: async (key, value, ttlMs) => {
        const id = this.id('k', key)
        checkString(value, 'value')
        const ttl = checkOptionalTtl(ttlMs)
        const now = this.now()
        this.drop(id)
        this.insert(id, { t: 'k', value, exp: ttl === undefined ? Number.POSITIVE_INFINITY : now + ttl })
      },
      setIfAbsent: async (key, value, ttlMs) => {
        const id = this.id('k', key)
        checkString(value, 'value')
        const ttl = checkOptionalTtl(ttlMs)
        const now = this.now()
        if (this.lookup(id, now) !== undefined) return false
        this.insert(id, { t: 'k', value, exp: ttl === undefined ? Number.POSITIVE_INFINITY : now + ttl })
        return true
      },
      delete: async (key) => {
        const id = this.id('k', key)
        const existed = this.lookup(id, this.now()) !== undefined
        this.drop(id)
        return existed
      },
    }

    this.sets = {
      add: async (key, member, ttlMs) => {
        const id = this.id('s', key)
        checkString(member, 'member')
        const ttl = checkOptionalTtl(ttlMs)
        const now = this.now()
        const memberExp = ttl === undefined ? Number.POSITIVE_INFINITY : now + ttl
        const e = this.lookup(id, now)
        if (e?.t !== 's') {
          this.insert(id, { t: 's', exp: memberExp, members: new Map([[member, memberExp]]) })
          return true
        }
        const old = e.members.get(member)
        const isNew = old === undefined || old <= now
        if (old !== undefined)
          e.members.delete(member) // re-insert: it becomes the newest
        else this.weight++
        if (isNew && e.members.size >= this.maxSetMembers) {
          // Full: drop the oldest member to make room.
          const oldest = e.members.keys().next()
          if (!oldest.done) {
            e.members.delete(oldest.value)
            this.weight--
          }
        }
        e.members.set(member, memberExp)
        if (memberExp > e.exp) e.exp = memberExp
        this.evict(id)
        return isNew
      },
      has: async (key, member) => {
        const now = this.now()
        const e = this.lookup(this.id('s', key), now)
        if (e?.t !== 's') return false
        const exp = e.members.get(member)
        return exp !== undefined && exp > now
      },
      remove: async (key, member) => {
        const id = this.id('s', key)
        const now = this.now()
        const e = this.lookup(id, now)
        if (e?.t !== 's') return false
        const exp = e.members.get(member)
        if (exp === undefined) return false
        e.members.delete(member)
        this.weight--
        if (e.members.size === 0) this.drop(id)
        return exp > now
      },
      members: async (key, limit) => {
        const id = this.id('s', key)
        const max = checkLimit(limit)
        const now = this.now()
        const e = this.lookup(id, now)
        if (e?.t !== 's') return []
        const out: string[] = []
        for (const [member, exp] of e.members) {
          if (out.length >= max) break
          if (exp > now) out.push(member)
        }
        return out
      },
      size: async (key) => {
        const id = this.id('s', key)
        const now = this.now()
        const e = this.lookup(id, now)
        if (e?.t !== 's') return 0
        this.pruneSet(id, e, now)
        return e.members.size
      },
    }

    this.hashes = {
      update: async (key, update, ttlMs) => {
        const id = this.id('h', key)
        const ops = hashOps(update)
        const ttl = checkOptionalTtl(ttlMs)
        const now = this.now()
        let e = this.lookup(id, now)
        if (e?.t !== 'h') {
          e = { t: 'h', exp: Number.POSITIVE_INFINITY, fields: new Map() }
          this.entries.set(id, e)
        }
        const fields = e.fields
        let dropped = 0
        for (const [op, f, v] of ops) {
          const cur = fields.get(f)
          if (cur === undefined) {
            if (fields.size >= this.maxHashFields) {
              dropped++
              continue
            }
            fields.set(f, v)
            this.weight++
          } else if (op === 'i') fields.set(f, cur + v)
          else if (op === 'x' ? v > cur : v < cur) fields.set(f, v)
        }
        if (ttl !== undefined) e.exp = now + ttl
        if (fields.size === 0) this.drop(id)
        else this.evict(id)
        return dropped
      },
      getAll: async (key) => {
        const e = this.lookup(this.id('h', key), this.now())
        const out: Record<string, number> = {}
        if (e?.t === 'h') for (const [f, v] of e.fields) putField(out, f, v)
        return out
      },
      delete: async (key) => {
        const id = this.id('h', key)
        const existed = this.lookup(id, this.now()) !== undefined
        this.drop(id)
        return existed
      },
    }

    const gcraSync = (key: string, params: GcraParams): GcraResult => {
      const id = this.id('g', key)
      const args = checkGcraParams(params)
      const now = this.now()
      const nowUs = Math.round((params.nowMs ?? now) * 1000)
      const e = this.lookup(id, now)
      const step = gcraStep(e?.t === 'g' ? e.tatUs : undefined, nowUs, args)
      if (step.tatUs !== undefined) {
        // Expiry relative to the store's clock, so that an explicit nowMs cannot expire it early.
        const exp = now + (step.tatUs - nowUs) / 1000
        if (e?.t === 'g') {
          e.tatUs = step.tatUs
          e.exp = exp
        } else {
          this.insert(id, { t: 'g', tatUs: step.tatUs, exp })
        }
      }
      return step.result
    }
    this.gcra = {
      gcra: async (key: string, params: GcraParams): Promise<GcraResult> => gcraSync(key, params),
      gcraSync,
    }
  }

  async ping(): Promise<void> {
    if (this.closed) throw new StoreError('memory store is closed')
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    this.entries.clear()
    this.weight = 0
    this.maps.clear()
  }

  /**
   * Removes every expired entry and set member. Runs every `sweepIntervalMs` on its own; public for
   * tests. Returns the number of entries, members and map entries removed. O(entries + members) ≤
   * O(maxKeys), plus O(map entries).
   */
  sweep(): number {
    const now = this.now()
    let removed = this.maps.sweep()
    for (const [id, e] of this.entries) {
      if (e.exp <= now) {
        removed += weightOf(e)
        this.drop(id)
      } else if (e.t === 's') {
        removed += this.pruneSet(id, e, now)
      }
    }
    return removed
  }

  /** Entries held and their total weight (≤ maxKeys). */
  stats(): { entries: number; weight: number } {
    return { entries: this.entries.size, weight: this.weight }
  }

  private id(kind: Kind, key: string): string {
    if (this.closed) throw new StoreError('memory store is closed')
    return kind + encodeKey(key)
  }

  /** The live entry (touched: it becomes the most recently used), or undefined. */
  private lookup(id: string, now: number): Entry | undefined {
    const e = this.entries.get(id)
    if (e === undefined) return undefined
    if (e.exp <= now) {
      this.drop(id)
      return undefined
    }
    this.entries.delete(id)
    this.entries.set(id, e)
    return e
  }

  private insert(id: string, e: Entry): void {
    this.entries.set(id, e)
    this.weight += weightOf(e)
    this.evict(id)
  }

  private drop(id: string): void {
    const e = this.entries.get(id)
    if (e === undefined) return
    this.entries.delete(id)
    this.weight -= weightOf(e)
  }

  /** Evicts least recently used entries (never `keep`) until the weight fits. */
  private evict(keep: string): void {
    if (this.weight <= this.maxKeys) return
    for (const id of this.entries.keys()) {
      if (this.weight <= this.maxKeys) return
      if (id !== keep) this.drop(id)
    }
  }

  /** Drops a set's expired members (and the set when empty); returns how many went. */
  private pruneSet(id: string, e: SetEntry, now: number): number {
    let removed = 0
    let latest = 0
    for (const [member, exp] of e.members) {
      if (exp <= now) {
        e.members.delete(member)
        removed++
      } else if (exp > latest) latest = exp
    }
    this.weight -= removed
    e.exp = latest
    if (e.members.size === 0) this.drop(id)
    return removed
  }
}

/** An entry's share of `maxKeys`: one per set member and per hash field, else one. */
function weightOf(e: Entry): number {
  return e.t === 's' ? e.members.size : e.t === 'h' ? e.fields.size : 1
}

function ttlLeft(exp: number, now: number): number {
  return exp === Number.POSITIVE_INFINITY ? -1 : Math.max(0, Math.ceil(exp - now))
}

/** A memory store with the given bounds and clock. */
export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryStore(options)
}
