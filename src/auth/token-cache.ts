/**
 * A bounded cache of verified tokens: least recently used entries go first, each entry has its own
 * expiry (never later than the token's `exp`). Keyed by the token's SHA-256, so the cache holds no
 * token. Only successes are cached: a cache can never turn a valid token invalid.
 */
interface Entry<V> {
  value: V
  expiresAt: number
}

export class VerifiedTokenCache<V> {
  private readonly map = new Map<string, Entry<V>>()

  constructor(private readonly maxEntries: number) {}

  /** The value for `key` if present and not expired at `now` (ms); a hit becomes most recent. */
  get(key: string, now: number): V | undefined {
    const e = this.map.get(key)
    if (e === undefined) return undefined
    if (now >= e.expiresAt) {
      this.map.delete(key)
      return undefined
    }
    // Map keeps insertion order: re-inserting makes the entry the most recently used.
    this.map.delete(key)
    this.map.set(key, e)
    return e.value
  }

  set(key: string, value: V, expiresAt: number, now: number): void {
    if (expiresAt <= now) return
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

  clear(): void {
    this.map.clear()
  }

  get size(): number {
    return this.map.size
  }
}
