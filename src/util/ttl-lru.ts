/**
 * A bounded map with a deadline per entry and least-recently-used eviction (a Map keeps insertion
 * order; a hit moves the entry to the end). Expired entries are dropped when met and by sweep().
 */
export class TtlLru<V> {
  private readonly map = new Map<string, { value: V; expiresAt: number }>()
  private readonly maxEntries: number
  private readonly now: () => number

  constructor(maxEntries: number, now: () => number) {
    this.maxEntries = maxEntries
    this.now = now
  }

  get size(): number {
    return this.map.size
  }

  get(key: string): V | undefined {
    const e = this.map.get(key)
    if (e === undefined) return undefined
    if (e.expiresAt <= this.now()) {
      this.map.delete(key)
      return undefined
    }
    this.map.delete(key)
    this.map.set(key, e)
    return e.value
  }

  /** Stores `value` until `expiresAt` (ms since the epoch); nothing when it is already past. */
  set(key: string, value: V, expiresAt: number): void {
    if (this.maxEntries === 0 || expiresAt <= this.now()) return
    this.map.delete(key)
    this.map.set(key, { value, expiresAt })
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
