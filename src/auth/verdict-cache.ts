/**
 * What the policies that ask an authorization server about each new token (oauth2-introspection,
 * userinfo-auth) keep per token: a bounded cache of accepted tokens and one of refused tokens
 * (kept apart, so junk tokens never evict good ones), swept periodically, keyed by a hash of the
 * token; one call in flight per token (single flight); and a warning about failing calls that is
 * logged at most once per interval.
 */
import type { Logger } from 'pino'
import { TtlLru } from '../util/ttl-lru.js'

const SWEEP_MS = 30_000

export interface VerdictCacheOptions {
  maxEntries: number
  /** 0: accepted tokens are not cached. */
  maxTtlMs: number
  maxNegativeEntries: number
  /** 0: refused tokens are not cached. */
  negativeTtlMs: number
  now: () => number
}

export class VerdictCache<P, O> {
  private readonly accepted: TtlLru<P>
  private readonly refusedTokens: TtlLru<true>
  private readonly inflight = new Map<string, Promise<O>>()
  private readonly sweeper: NodeJS.Timeout | undefined
  private closed = false

  constructor(private readonly o: VerdictCacheOptions) {
    this.accepted = new TtlLru<P>(o.maxTtlMs > 0 ? o.maxEntries : 0, o.now)
    this.refusedTokens = new TtlLru<true>(o.negativeTtlMs > 0 ? o.maxNegativeEntries : 0, o.now)
    if (o.maxTtlMs > 0 || o.negativeTtlMs > 0) {
      this.sweeper = setInterval(() => {
        this.accepted.sweep()
        this.refusedTokens.sweep()
      }, SWEEP_MS)
      this.sweeper.unref()
    }
  }

  /** The cached verdict of an accepted token. */
  get(key: string): P | undefined {
    return this.accepted.get(key)
  }

  /** True when the token was refused within `negativeTtlMs`. */
  isRefused(key: string): boolean {
    return this.refusedTokens.get(key) !== undefined
  }

  /** Remembers an accepted token until `expiresAt` (ms since the epoch); nothing once closed. */
  accept(key: string, value: P, expiresAt: number): void {
    if (!this.closed) this.accepted.set(key, value, expiresAt)
  }

  /** Remembers a refused token for `negativeTtlMs`; nothing once closed. */
  refuse(key: string): void {
    if (!this.closed) this.refusedTokens.set(key, true, this.o.now() + this.o.negativeTtlMs)
  }

  /** The call in flight for `key`, or a new one from `start` that later callers share. */
  once(key: string, start: () => Promise<O>): Promise<O> {
    const flight = this.inflight.get(key)
    if (flight !== undefined) return flight
    const f = start()
    this.inflight.set(key, f)
    const done = () => {
      if (this.inflight.get(key) === f) this.inflight.delete(key)
    }
    f.then(done, done)
    return f
  }

  /** Stops the sweeper and forgets everything. Idempotent. */
  close(): void {
    this.closed = true
    if (this.sweeper !== undefined) clearInterval(this.sweeper)
    this.accepted.clear()
    this.refusedTokens.clear()
    this.inflight.clear()
  }
}

/**
 * A warning logged at most once per `everyMs`; the calls in between are counted and reported with
 * the next one (`suppressedSinceLast`).
 */
export function throttledWarning(
  logger: Logger,
  now: () => number,
  everyMs: number,
  message: string,
): (fields: Record<string, unknown>) => void {
  let last = Number.NEGATIVE_INFINITY
  let suppressed = 0
  return (fields) => {
    const t = now()
    if (t - last < everyMs) {
      suppressed++
      return
    }
    logger.warn({ ...fields, suppressedSinceLast: suppressed }, message)
    last = t
    suppressed = 0
  }
}
