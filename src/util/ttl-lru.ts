/**
 * A bounded map with a deadline per entry and (approximately) least-recently-used eviction. A Map
 * keeps insertion order; a hit moves the entry to the end — but only when it has drifted into the
 * older half of the order (more than half the capacity of writes and moves since it was last
 * placed). A hot key then costs one Map lookup per hit instead of a delete and a set, and an entry
 * that is hit can still never be evicted before at least `maxEntries / 2` other keys have been
 * written. Expired entries are dropped when met and by sweep().
 */
interface Entry<V> {
  value: V
  expiresAt: number
  /** `seq` when the entry was last placed at the end of the order. */
  placed: number
}

export class TtlLru<V> {
  private readonly map = new Map<string, Entry<V>>()
  private readonly maxEntries: number
  private readonly now: () => number
  /** Writes and moves so far: the position of the newest entry in the order. */
  private seq = 0
  private readonly halfCapacity: number

  constructor(maxEntries: number, now: () => number) {
    this.maxEntries = maxEntries
    this.now = now
    this.halfCapacity = Math.max(1, maxEntries >>> 1)
  }

  get size(): number {
    return this.map.size
  }

  /** The value of `key` unless it is missing or expired; `now` defaults to the clock. */
  get(key: string, now: number = this.now()): V | undefined {
    const e = this.map.get(key)
    if (e === undefined) return undefined
    if (e.expiresAt <= now) {
      this.map.delete(key)
      return undefined
    }
    if (this.seq - e.placed >= this.halfCapacity) {
      this.map.delete(key)
      this.map.set(key, e)
      e.placed = ++this.seq
    }
    return e.value
  }

  /** Stores `value` until `expiresAt` (ms since the epoch); nothing when it is already past. */
  set(key: string, value: V, expiresAt: number, now: number = this.now()): void {
    if (this.maxEntries === 0 || expiresAt <= now) return
    this.map.delete(key)
    this.map.set(key, { value, expiresAt, placed: ++this.seq })
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next()
      if (oldest.done) break
      this.map.delete(oldest.value)
    }
  }

  delete(key: string): void {
    this.map.delete(key)
  }

  /** Removes every expired entry; returns how many. */
  sweep(): number {
    const t = this.now()
    let n = 0
    for (const [k, e] of this.map) {
      if (e.expiresAt <= t) {
        this.map.delete(k)
        n++
      }
    }
    return n
  }

  clear(): void {
    this.map.clear()
  }
}
