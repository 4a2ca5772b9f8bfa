/**
 * The Redis store's replicated maps: per map a hash (`…:data`, values `<expiresAt or 0>|value`), a
 * change stream (`…:log`, trimmed to `mapLogLength`), its earliest-expiry bound (`…:meta`) and its
 * epoch (`…:epoch`, so that a cursor from another incarnation of the map resets); all in one
 * Cluster slot, changed together by one script (see docs/stores.md, Replicated maps).
 */
import { randomBytes } from 'node:crypto'
import {
  checkLimit,
  checkMapKey,
  checkMapValue,
  checkOptionalTtl,
  escapeText,
  unescapeText,
} from '../keys.js'
import { type MapChange, type MapEntry, type MapStore, StoreError } from '../types.js'
import type { RedisConnection } from './connection.js'
import {
  decodeMapValue,
  MAP_CURSOR,
  MAX_CHANGES_PER_CALL,
  type MapKeys,
  mapTail,
  redisMapKeys,
  SNAPSHOT_SCAN_COUNT,
} from './options.js'

/** Limits of the replicated maps, as the decimal strings the scripts take. */
export interface RedisMapLimits {
  /** Most entries of one map. */
  maxMapEntries: string
  /** Changes kept per map (its stream's `MAXLEN ~`). */
  mapLogLength: string
}

/** The replicated maps of a Redis store. */
export function redisMaps(conn: RedisConnection, keyPrefix: string, limits: RedisMapLimits): MapStore {
  const c = conn.c
  const { maxMapEntries, mapLogLength } = limits

  const mapKeys = (map: string): MapKeys => {
    if (conn.closed) throw new StoreError('redis store is closed')
    return redisMapKeys(keyPrefix, map)
  }

  /** Best effort: drops fields a snapshot saw expired (a failure only leaves them for later). */
  const pruneMap = async (data: string, log: string, fields: string[]): Promise<void> => {
    for (let i = 0; i < fields.length; i += 500) {
      const batch = fields.slice(i, i + 500)
      try {
        await conn.run('maps.prune', () => c.pcMapPrune(data, log, ...batch))
      } catch {
        return
      }
    }
  }

  return {
    set: async (map, key, value, ttlMs) => {
      const { data, log, meta } = mapKeys(map)
      const field = escapeText(checkMapKey(key))
      const tail = mapTail(checkMapValue(value))
      const ttl = String(checkOptionalTtl(ttlMs) ?? 0)
      const ok = await conn.run('maps.set', () =>
        c.pcMapSet(data, log, meta, field, ttl, tail, maxMapEntries, mapLogLength),
      )
      if (ok !== 1) throw new RangeError(`map ${map} is full (${maxMapEntries} entries)`)
    },
    get: async (map, key) => {
      const { data, log } = mapKeys(map)
      const field = escapeText(checkMapKey(key))
      const stored = await conn.run('maps.get', () => c.pcMapGet(data, log, field))
      return stored === null ? undefined : decodeMapValue(stored)
    },
    delete: async (map, key) => {
      const { data, log } = mapKeys(map)
      const field = escapeText(checkMapKey(key))
      return (await conn.run('maps.delete', () => c.pcMapDelete(data, log, field, mapLogLength))) === 1
    },
    snapshot: async (map) => {
      const { data, log, epoch: epochKey } = mapKeys(map)
      // The feed position first, then the hash: a change made meanwhile is in the hash or after
      // the cursor (or both, and replaying it is harmless: a change carries the current entry).
      const [streamId, now, epoch] = await conn.run('maps.snapshot', () =>
        c.pcMapHead(data, log, epochKey, mapLogLength, randomBytes(12).toString('base64url')),
      )
      const cursor = `${epoch}:${streamId}`
      const entries = new Map<string, MapEntry>()
      const expired: string[] = []
      let scan = '0'
      do {
        const [next, flat] = await conn.run('maps.snapshot', () =>
          c.hscan(data, scan, 'COUNT', SNAPSHOT_SCAN_COUNT),
        )
        scan = next
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const field = flat[i] as string
          const entry = decodeMapValue(flat[i + 1] as string)
          if (entry === undefined) continue
          if (entry.expiresAt !== undefined && entry.expiresAt <= now) expired.push(field)
          else entries.set(unescapeText(field), entry)
        }
      } while (scan !== '0')
      await pruneMap(data, log, expired)
      return { entries, cursor }
    },
    changes: async (map, cursor, limit) => {
      const { data, log, epoch: epochKey } = mapKeys(map)
      const max = checkLimit(limit)
      if (max < 1) throw new RangeError('limit must be at least 1')
      const m = typeof cursor === 'string' ? MAP_CURSOR.exec(cursor) : null
      if (m === null) return { reset: true }
      const [, epoch, streamId] = m as unknown as [string, string, string]
      const count = String(Math.min(max, MAX_CHANGES_PER_CALL))
      const reply = await conn.run('maps.changes', () =>
        c.pcMapChanges(data, log, epochKey, streamId, count, epoch),
      )
      if (reply[0] !== 1) return { reset: true }
      const now = Number(reply[2])
      const changes: MapChange[] = []
      for (let i = 3; i + 1 < reply.length; i += 2) {
        const stored = reply[i + 1] as string | null
        let entry = stored === null ? undefined : decodeMapValue(stored)
        if (entry?.expiresAt !== undefined && entry.expiresAt <= now) entry = undefined
        changes.push({ key: unescapeText(reply[i] as string), entry })
      }
      return { reset: false, changes, cursor: `${epoch}:${reply[1] as string}` }
    },
  }
}
