/**
 * The Redis store's key spaces (counters, kv, sets, hashes, gcra), each built from the connection:
 * arguments are checked here, keys named by redisKey, and every command sent through the
 * connection's `run` (deadline, per-turn batching, StoreError) or, for GCRA, its per-turn batch.
 */
import { checkGcraParams } from '../gcra.js'
import {
  checkIncrement,
  checkLimit,
  checkOptionalTtl,
  checkString,
  checkTtl,
  escapeText,
  hashOps,
  putField,
  unescapeText,
} from '../keys.js'
import {
  type CounterStore,
  type GcraStore,
  type HashStore,
  type KvStore,
  type SetStore,
  StoreError,
} from '../types.js'
import type { RedisConnection } from './connection.js'
import { type KeyKind, redisKey } from './options.js'

/** The Redis key of `key` in one key space; throws a StoreError once the connection is closed. */
function keyOf(conn: RedisConnection, keyPrefix: string, kind: KeyKind, key: string): string {
  if (conn.closed) throw new StoreError('redis store is closed')
  return redisKey(keyPrefix, kind, key)
}

/** Fixed-window counters: one script call (`pcIncr`, `pcCount`) or a DEL each. */
export function redisCounters(conn: RedisConnection, keyPrefix: string): CounterStore {
  const c = conn.c
  return {
    incr: async (key, by, windowMs) => {
      const k = keyOf(conn, keyPrefix, 'c', key)
      const inc = String(checkIncrement(by))
      const win = String(checkTtl(windowMs, 'windowMs'))
      const [value, ttlMs] = await conn.run('counters.incr', () => c.pcIncr(k, inc, win))
      return { value: Number(value), ttlMs: Number(ttlMs) }
    },
    get: async (key) => {
      const k = keyOf(conn, keyPrefix, 'c', key)
      const [value, ttlMs] = await conn.run('counters.get', () => c.pcCount(k))
      return { value: Number(value), ttlMs: Number(ttlMs) }
    },
    reset: async (key) => {
      const k = keyOf(conn, keyPrefix, 'c', key)
      await conn.run('counters.reset', () => c.del(k))
    },
  }
}

/** Key-value entries: plain GET, SET (PX, NX) and DEL. */
export function redisKv(conn: RedisConnection, keyPrefix: string): KvStore {
  const c = conn.c
  return {
    get: async (key) => {
      const k = keyOf(conn, keyPrefix, 'k', key)
      const v = await conn.run('kv.get', () => c.get(k))
      return v ?? undefined
    },
    set: async (key, value, ttlMs) => {
      const k = keyOf(conn, keyPrefix, 'k', key)
      const v = checkString(value, 'value')
      const ttl = checkOptionalTtl(ttlMs)
      await conn.run('kv.set', () => (ttl === undefined ? c.set(k, v) : c.set(k, v, 'PX', ttl)))
    },
    setIfAbsent: async (key, value, ttlMs) => {
      const k = keyOf(conn, keyPrefix, 'k', key)
      const v = checkString(value, 'value')
      const ttl = checkOptionalTtl(ttlMs)
      const r = await conn.run('kv.setIfAbsent', () =>
        ttl === undefined ? c.set(k, v, 'NX') : c.set(k, v, 'PX', ttl, 'NX'),
      )
      return r === 'OK'
    },
    delete: async (key) => {
      const k = keyOf(conn, keyPrefix, 'k', key)
      return (await conn.run('kv.delete', () => c.del(k))) > 0
    },
  }
}

/** Numeric hashes (escaped field names), at most `maxHashFields` fields each. */
export function redisHashes(conn: RedisConnection, keyPrefix: string, maxHashFields: string): HashStore {
  const c = conn.c
  return {
    update: async (key, update, ttlMs) => {
      const k = keyOf(conn, keyPrefix, 'h', key)
      const ops = hashOps(update)
      const ttl = String(checkOptionalTtl(ttlMs) ?? 0)
      const args: string[] = [ttl, maxHashFields]
      for (const [op, f, v] of ops) args.push(op, escapeText(f), String(v))
      if (ops.length === 0 && ttl === '0') return 0
      return Number(await conn.run('hashes.update', () => c.pcHashUpdate(k, ...args)))
    },
    getAll: async (key) => {
      const k = keyOf(conn, keyPrefix, 'h', key)
      const raw = await conn.run('hashes.getAll', () => c.hgetall(k))
      const out: Record<string, number> = {}
      for (const [f, v] of Object.entries(raw)) putField(out, unescapeText(f), Number(v))
      return out
    },
    delete: async (key) => {
      const k = keyOf(conn, keyPrefix, 'h', key)
      return (await conn.run('hashes.delete', () => c.del(k))) > 0
    },
  }
}

/** Sets with a TTL per member (a sorted set by expiry), at most `maxSetMembers` members each. */
export function redisSets(conn: RedisConnection, keyPrefix: string, maxSetMembers: string): SetStore {
  const c = conn.c
  return {
    add: async (key, member, ttlMs) => {
      const k = keyOf(conn, keyPrefix, 's', key)
      const m = checkString(member, 'member')
      const ttl = String(checkOptionalTtl(ttlMs) ?? 0)
      return (await conn.run('sets.add', () => c.pcSetAdd(k, m, ttl, maxSetMembers))) === 1
    },
    has: async (key, member) => {
      const k = keyOf(conn, keyPrefix, 's', key)
      const m = checkString(member, 'member')
      return (await conn.run('sets.has', () => c.pcSetHas(k, m))) === 1
    },
    remove: async (key, member) => {
      const k = keyOf(conn, keyPrefix, 's', key)
      const m = checkString(member, 'member')
      return (await conn.run('sets.remove', () => c.pcSetRemove(k, m))) === 1
    },
    members: async (key, limit) => {
      const k = keyOf(conn, keyPrefix, 's', key)
      const max = checkLimit(limit)
      if (max === 0) return []
      return conn.run('sets.members', () => c.pcSetMembers(k, String(max)))
    },
    size: async (key) => {
      const k = keyOf(conn, keyPrefix, 's', key)
      return Number(await conn.run('sets.size', () => c.pcSetSize(k)))
    },
  }
}

/** GCRA decisions, batched per turn and Cluster slot by the connection. */
export function redisGcra(conn: RedisConnection, keyPrefix: string): GcraStore {
  return {
    gcra: (key, params) => {
      let k: string
      let a: ReturnType<typeof checkGcraParams>
      try {
        k = keyOf(conn, keyPrefix, 'g', key)
        a = checkGcraParams(params)
      } catch (err) {
        return Promise.reject(err)
      }
      const nowUs = params.nowMs === undefined ? '' : String(Math.round(params.nowMs * 1000))
      return conn.gcra(k, String(a.intervalUs), String(a.burst), String(a.cost), nowUs)
    },
  }
}
