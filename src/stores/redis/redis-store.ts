/**
 * The Redis store: state shared by every gateway connected to one Redis (standalone, Sentinel or
 * Cluster), through ioredis. Failure behaviour: commands are never queued while disconnected
 * (`enableOfflineQueue: false`), never replayed after a reconnect (an INCR must not count twice),
 * and every operation has a deadline (`commandTimeoutMs`): past it, or when Redis cannot answer,
 * the operation rejects with a StoreError and the caller applies its `failOpen`. The client
 * reconnects in the background with a capped exponential backoff, and drops a connection that has
 * stopped answering altogether (a half-open TCP connection would otherwise linger for minutes).
 *
 * The parts: options.ts (options, URL, key naming), client.ts (the ioredis client and its
 * scripts), connection.ts (state, deadlines, per-turn batching), spaces.ts (counters, kv, sets,
 * hashes, gcra), maps.ts (replicated maps); this file composes them.
 */
import type { Cluster, Redis } from 'ioredis'
import type { CounterStore, GcraStore, HashStore, KvStore, MapStore, SetStore, Store } from '../types.js'
import { RedisConnection } from './connection.js'
import { redisMaps } from './maps.js'
import { type RedisStoreOptions, redisSettings } from './options.js'
import { redisCounters, redisGcra, redisHashes, redisKv, redisSets } from './spaces.js'

export {
  checkKeyPrefix,
  decodeMapValue,
  type KeyKind,
  MAX_CHANGES_PER_CALL,
  MAX_GCRA_BATCH,
  parseRedisUrl,
  REDIS_DEFAULTS,
  type RedisNode,
  type RedisStoreOptions,
  redisKey,
  redisMapKeys,
} from './options.js'

/** The Redis implementation of {@link Store}. Use {@link createRedisStore}. */
export class RedisStore implements Store {
  readonly backend = 'redis'
  readonly counters: CounterStore
  readonly kv: KvStore
  readonly sets: SetStore
  readonly gcra: GcraStore
  readonly maps: MapStore
  readonly hashes: HashStore
  /** The ioredis client (standalone/Sentinel `Redis`, or `Cluster`). */
  readonly client: Redis | Cluster

  private readonly connection: RedisConnection

  constructor(options: RedisStoreOptions = {}) {
    const settings = redisSettings(options)
    const conn = new RedisConnection(options, settings)
    const prefix = settings.keyPrefix
    this.connection = conn
    this.client = conn.client
    this.counters = redisCounters(conn, prefix)
    this.kv = redisKv(conn, prefix)
    this.hashes = redisHashes(conn, prefix, settings.maxHashFields)
    this.sets = redisSets(conn, prefix, settings.maxSetMembers)
    this.gcra = redisGcra(conn, prefix)
    this.maps = redisMaps(conn, prefix, settings)
  }

  /**
   * Resolves once the client is connected and ready (right away when it is), or rejects with a
   * StoreError after `timeoutMs`. Operations issued before that reject: call it at startup when
   * the first requests should not fail over to `failOpen`.
   */
  whenReady(timeoutMs = 5000): Promise<void> {
    return this.connection.whenReady(timeoutMs)
  }

  async ping(): Promise<void> {
    const conn = this.connection
    await conn.run('ping', () => conn.c.ping())
  }

  hasConnected(): boolean {
    return this.connection.hasConnected()
  }

  close(): Promise<void> {
    return this.connection.close()
  }
}

/** A Redis store; it connects in the background (operations before it is ready reject). */
export function createRedisStore(options: RedisStoreOptions = {}): RedisStore {
  return new RedisStore(options)
}
