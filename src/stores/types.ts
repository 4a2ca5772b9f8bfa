/**
 * The shared state layer: narrow interfaces that policies (rate limits, brute-force lockout, learned
 * object ownership, token revocation, detectors) keep their state behind. Two implementations:
 * memory (one gateway, the default) and Redis (several gateways share state).
 *
 * Every key is an arbitrary string (empty, very long, braces, spaces, newlines, any Unicode): the
 * stores encode it themselves. Values and set members are UTF-8 text. Each key space (counters,
 * kv, sets, gcra) is separate: the counter `x` and the kv entry `x` are different things.
 *
 * Failures: when the backend cannot answer (down, unreachable, slower than its command timeout),
 * an operation rejects with a {@link StoreError} (`STORE_UNAVAILABLE`); a policy then applies its
 * `failOpen` setting. Invalid arguments (a negative TTL, a burst of 0) reject with a `RangeError`:
 * those are bugs, not outages.
 */

/** The one error code of the state layer. */
export type StoreErrorCode = 'STORE_UNAVAILABLE'

/**
 * Thrown (as a rejection) when the backend cannot answer in time: disconnected, timed out, refused
 * the command (out of memory, read-only replica, loading). Policies catch it and apply `failOpen`.
 * The message is safe to log (never a password); the backend's error is in `cause`.
 */
export class StoreError extends Error {
  override readonly name = 'StoreError'
  readonly code: StoreErrorCode

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = 'STORE_UNAVAILABLE'
  }
}

/** True for a {@link StoreError} (also across copies of this module). */
export function isStoreError(err: unknown): err is StoreError {
  return err instanceof StoreError || (err instanceof Error && err.name === 'StoreError')
}

/** A counter's value and the time left in its window. */
export interface CounterValue {
  /** Current count (0 when the key does not exist). */
  value: number
  /** Milliseconds until the window ends and the counter disappears (0 when it does not exist). */
  ttlMs: number
}

/**
 * Fixed-window counters: brute-force lockout (failures per user per window), simple quotas.
 */
export interface CounterStore {
  /**
   * Adds `by` (a safe integer, may be negative) to the counter and returns the new value. The first
   * increment creates the key with a time to live of `windowMs`; later ones leave the TTL alone, so
   * the window is fixed, not sliding. Atomic: concurrent increments (from any gateway) are exact.
   */
  incr(key: string, by: number, windowMs: number): Promise<CounterValue>
  /** The counter's value and remaining window; `{ value: 0, ttlMs: 0 }` when absent or expired. */
  get(key: string): Promise<CounterValue>
  /** Deletes the counter (e.g. after a successful login). */
  reset(key: string): Promise<void>
}

/**
 * Small string values with optional expiry: revoked token ids, lockout markers, cached decisions.
 */
export interface KvStore {
  /** The value, or `undefined` when absent or expired. */
  get(key: string): Promise<string | undefined>
  /** Stores the value, replacing any previous one (and its TTL). No `ttlMs`: it never expires. */
  set(key: string, value: string, ttlMs?: number): Promise<void>
  /**
   * Stores the value only when the key is absent (or expired). Atomic: of concurrent callers (on any
   * gateway) exactly one gets `true`. Use it for "first one wins" (nonce replay, learned owner).
   */
  setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean>
  /** Deletes the key; `true` when it existed. */
  delete(key: string): Promise<boolean>
}

/**
 * Sets of strings with a time to live per member: learned object ownership (owner → object ids),
 * identities seen per client, revoked token ids with their expiry. A set is bounded (the store's
 * `maxSetMembers`): when full, adding a new member drops the one that expires soonest (the oldest,
 * when a set's members share one TTL, as a policy's do).
 */
export interface SetStore {
  /**
   * Adds (or refreshes) a member; `ttlMs` is the member's own time to live (none: it stays until
   * removed or evicted). Returns `true` when the member was not in the set.
   */
  add(key: string, member: string, ttlMs?: number): Promise<boolean>
  /** Whether the member is in the set (and not expired). */
  has(key: string, member: string): Promise<boolean>
  /** Removes a member; `true` when it was there. */
  remove(key: string, member: string): Promise<boolean>
  /** At most `limit` live members, in no particular order. */
  members(key: string, limit: number): Promise<string[]>
  /** Number of live members (0 for an absent set). */
  size(key: string): Promise<number>
}

/** Parameters of one {@link GcraStore.gcra} call. */
export interface GcraParams {
  /** Time between two requests at the steady rate, in ms (a limit of 10 per second is 100). */
  emissionIntervalMs: number
  /** Requests admitted at once on a fresh key (a positive integer): the bucket size. */
  burst: number
  /** Units this request uses (a non-negative integer, usually 1; 0 only reads the state). */
  cost: number
  /**
   * The current time in ms since the epoch. Leave it out in production: the memory store uses its
   * clock and the Redis store the Redis server's clock, so gateways with skewed clocks agree.
   */
  nowMs?: number
}

/** The decision of one {@link GcraStore.gcra} call. */
export interface GcraResult {
  /** Whether the request is admitted (its cost was taken). */
  allowed: boolean
  /** When denied, ms to wait before the same request would be admitted (rounded up); else 0. */
  retryAfterMs: number
  /** Cost-1 requests that would still be admitted right now (after this one, when admitted). */
  remaining: number
  /** Ms until the key is back to its full burst (rounded up); 0 for an untouched key. */
  resetMs: number
}

/**
 * Rate limiting with the generic cell rate algorithm: one stored timestamp per key (the theoretical
 * arrival time), so a limit costs one key whatever its rate. Admits `burst` requests at once, then
 * one per `emissionIntervalMs`. Atomic and exact under concurrency; one round trip on Redis.
 */
export interface GcraStore {
  /**
   * Takes `cost` units from the key's bucket when they are available. A `cost` larger than `burst`
   * is never admitted (rejects with a RangeError).
   */
  gcra(key: string, params: GcraParams): Promise<GcraResult>
  /**
   * The same decision, synchronously: offered by stores that decide in-process (memory), so that a
   * caller can decide without a promise. Absent on stores with a round trip (Redis).
   */
  gcraSync?(key: string, params: GcraParams): GcraResult
}

/**
 * One atomic update of a numeric hash (see {@link HashStore.update}). Every value is a safe
 * integer. A field named in several parts of one update gets them in the order incr, max, min.
 */
export interface HashUpdate {
  /** Adds to each field (a missing field counts as 0). */
  incr?: Readonly<Record<string, number>>
  /** Raises each field to at least the value (a missing field takes it). */
  max?: Readonly<Record<string, number>>
  /** Lowers each field to at most the value (a missing field takes it). */
  min?: Readonly<Record<string, number>>
}

/**
 * Numeric hashes that several writers merge into: per-operation aggregates of the API inventory
 * (counts add up, first-seen times take the minimum, last-seen times and sketch registers the
 * maximum), written as deltas by every gateway. A hash is bounded (the store's `maxHashFields`):
 * an update that would add fields to a full hash drops those fields (and says how many); fields it
 * already has are always updated. Field names are any string of at most 1 KiB of UTF-8.
 */
export interface HashStore {
  /**
   * Applies `update` atomically (concurrent updates from any gateway are exact). `ttlMs`: the whole
   * hash expires that long after this update (each update with a TTL renews it; none: the TTL is
   * left as it is). Resolves the number of new fields dropped because the hash was full.
   */
  update(key: string, update: HashUpdate, ttlMs?: number): Promise<number>
  /** Every field and its value; `{}` when the hash is absent or expired. */
  getAll(key: string): Promise<Record<string, number>>
  /** Deletes the hash; `true` when it existed. */
  delete(key: string): Promise<boolean>
}

/** One change in a replicated map's feed: the new value, or `undefined` when the key was deleted. */
export interface MapChange {
  key: string
  /** The entry as {@link MapStore.get} would return it now; `undefined`: deleted (or expired). */
  entry: MapEntry | undefined
}

/** A replicated map's entry: its value and when it expires (ms since the epoch; none: never). */
export interface MapEntry {
  value: string
  expiresAt?: number
}

/** A full copy of a map and the feed position it reflects. */
export interface MapSnapshot {
  entries: Map<string, MapEntry>
  /** Opaque position in the change feed; pass it to {@link MapStore.changes}. */
  cursor: string
}

/** What {@link MapStore.changes} returns. */
export type MapChanges =
  /** The changes after the cursor, oldest first (at most `limit`), and the cursor after them. */
  | { reset: false; changes: MapChange[]; cursor: string }
  /**
   * The feed cannot continue from this cursor (it was trimmed, the backend lost its data or was
   * flushed): take a new snapshot.
   */
  | { reset: true }

/**
 * Replicated maps: small maps of which every gateway keeps a full local copy (see
 * `stores/mirror.ts`), for checks that run on every request and cannot afford a round trip: API
 * key records, token revocations, bans. Writes go to the backend (from any gateway or from the
 * CLI); readers take a snapshot once and then follow the map's change feed. Map names are
 * identifiers (`[a-z0-9-]{1,64}`). A map is bounded (`maxEntries`, per map): a `set` of a new key
 * into a full map rejects with a RangeError after expired entries were dropped. Expired entries
 * are never returned; they are removed from the backend lazily.
 */
export interface MapStore {
  /** Sets (or replaces) an entry; `ttlMs`: it expires then (none: it stays until deleted). */
  set(map: string, key: string, value: string, ttlMs?: number): Promise<void>
  /** The entry, or `undefined` when absent or expired. */
  get(map: string, key: string): Promise<MapEntry | undefined>
  /** Deletes an entry; `true` when it existed (and had not expired). */
  delete(map: string, key: string): Promise<boolean>
  /** All live entries and the feed position they reflect. */
  snapshot(map: string): Promise<MapSnapshot>
  /**
   * The changes after `cursor` (from {@link snapshot} or a previous call), at most `limit`. Each
   * carries the key's current entry, so a key changed several times in one batch comes once, and
   * an empty `changes` with an unchanged cursor means there is nothing new. A cursor that is not
   * one of this store's (garbage, another instance's) gives `reset`. `limit` ≥ 1 (RangeError).
   */
  changes(map: string, cursor: string, limit: number): Promise<MapChanges>
}

/** One backend: every key space, plus its lifecycle. */
export interface Store {
  /** Which implementation this is (for logs and /readyz). */
  readonly backend: 'memory' | 'redis'
  readonly counters: CounterStore
  readonly kv: KvStore
  readonly sets: SetStore
  readonly gcra: GcraStore
  readonly maps: MapStore
  readonly hashes: HashStore
  /** Resolves when the backend answers; rejects with a {@link StoreError} when it does not in time. */
  ping(): Promise<void>
  /**
   * False until the backend has been reachable once (Redis: the first connection is ready); then
   * true for good (a later outage is each policy's `failOpen` matter, not readiness). Absent: an
   * in-process store, always ready.
   */
  hasConnected?(): boolean
  /** Releases connections and timers. Operations after close reject. Idempotent. */
  close(): Promise<void>
}
