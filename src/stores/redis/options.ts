/**
 * The Redis store's options and key naming: the options and their defaults, the settings checked
 * from them, `redis://` URLs, and how keys, replicated maps and map values are laid out in Redis.
 * No I/O here (see connection.ts for the client).
 */
import type { ConnectionOptions } from 'node:tls'
import type { Logger } from 'pino'
import { checkMapName, encodeKey, escapeText, hasLoneSurrogate, unescapeText } from '../keys.js'
import type { MapEntry } from '../types.js'

export interface RedisNode {
  host: string
  port: number
}

export interface RedisStoreOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). Wins over host, port, db. */
  url?: string
  /** Default 127.0.0.1. */
  host?: string
  /** Default 6379. */
  port?: number
  /** ACL user name (Redis 6+). */
  username?: string
  /** Password (AUTH). Wins over a password in `url`. Never logged. */
  password?: string
  /** Database index (standalone and Sentinel only). Default 0. */
  db?: number
  /** TLS: `true` for the system CAs, or node:tls options (CA, client certificate, servername). */
  tls?: boolean | ConnectionOptions
  /** Inserted after `pc:` in every key, e.g. `prod:`; must not contain `{` or `}`. Default ''. */
  keyPrefix?: string
  /** Deadline of one operation in ms; past it the operation rejects with a StoreError. Default 200. */
  commandTimeoutMs?: number
  /** Time to establish a connection in ms. Default 1000. */
  connectTimeoutMs?: number
  /** Longest wait between two reconnection attempts in ms. Default 1000. */
  reconnectMaxDelayMs?: number
  /** Most members of one set; adding to a full set drops the soonest-expiring one. Default 10,000. */
  maxSetMembers?: number
  /** Most fields of one hash; an update's new fields past it are dropped. Default 10,000. */
  maxHashFields?: number
  /** Most entries of one replicated map; a set of a new key into a full one rejects. Default 100,000. */
  maxMapEntries?: number
  /** Changes kept per replicated map (its stream, trimmed with `MAXLEN ~`). Default 10,000. */
  mapLogLength?: number
  /** Sentinel: the sentinels to ask for the master of `name`. */
  sentinels?: RedisNode[]
  /** Sentinel: the master group name. */
  name?: string
  /** Sentinel: the sentinels' own password, if any. Never logged. */
  sentinelPassword?: string
  /** Cluster: seed nodes. Mutually exclusive with `sentinels`. */
  cluster?: RedisNode[]
  /** Where connection state changes are logged (never a password). Default: silent. */
  logger?: Logger
}

export const REDIS_DEFAULTS = {
  host: '127.0.0.1',
  port: 6379,
  db: 0,
  keyPrefix: '',
  commandTimeoutMs: 200,
  connectTimeoutMs: 1000,
  reconnectMaxDelayMs: 1000,
  maxSetMembers: 10_000,
  maxHashFields: 10_000,
  maxMapEntries: 100_000,
  mapLogLength: 10_000,
} as const

/** Most changes one `maps.changes()` call returns (a Lua `unpack` of the changed keys is bounded). */
export const MAX_CHANGES_PER_CALL = 5000

/** HSCAN batch of a map snapshot. */
export const SNAPSHOT_SCAN_COUNT = 1000

/** Most GCRA decisions in one script call (its KEYS and ARGV stay far below Lua's stack limits). */
export const MAX_GCRA_BATCH = 512

/**
 * The numeric options checked, with their defaults applied; the limits as the decimal strings the
 * scripts take.
 */
export interface RedisSettings {
  keyPrefix: string
  commandTimeoutMs: number
  connectTimeoutMs: number
  reconnectMaxDelayMs: number
  maxSetMembers: string
  maxHashFields: string
  maxMapEntries: string
  mapLogLength: string
}

/** Checks the key prefix and the numeric options (RangeError on the first bad one). */
export function redisSettings(options: RedisStoreOptions): RedisSettings {
  const keyPrefix = checkKeyPrefix(options.keyPrefix ?? REDIS_DEFAULTS.keyPrefix)
  const commandTimeoutMs = positive(
    options.commandTimeoutMs,
    REDIS_DEFAULTS.commandTimeoutMs,
    'commandTimeoutMs',
  )
  const connectTimeoutMs = positive(
    options.connectTimeoutMs,
    REDIS_DEFAULTS.connectTimeoutMs,
    'connectTimeoutMs',
  )
  const reconnectMaxDelayMs = positive(
    options.reconnectMaxDelayMs,
    REDIS_DEFAULTS.reconnectMaxDelayMs,
    'reconnectMaxDelayMs',
  )
  const maxSetMembers = String(positive(options.maxSetMembers, REDIS_DEFAULTS.maxSetMembers, 'maxSetMembers'))
  const maxHashFields = String(positive(options.maxHashFields, REDIS_DEFAULTS.maxHashFields, 'maxHashFields'))
  const maxMapEntries = String(positive(options.maxMapEntries, REDIS_DEFAULTS.maxMapEntries, 'maxMapEntries'))
  const mapLogLength = String(positive(options.mapLogLength, REDIS_DEFAULTS.mapLogLength, 'mapLogLength'))
  return {
    keyPrefix,
    commandTimeoutMs,
    connectTimeoutMs,
    reconnectMaxDelayMs,
    maxSetMembers,
    maxHashFields,
    maxMapEntries,
    mapLogLength,
  }
}

function positive(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer`)
  return v
}

/** Checks a key prefix: at most 64 characters, no braces (they would break the hash tag). */
export function checkKeyPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || prefix.length > 64 || /[{}]/.test(prefix)) {
    throw new RangeError('keyPrefix must be a string of at most 64 characters without { or }')
  }
  return prefix
}

/** Connection settings taken from a `redis://` or `rediss://` URL. */
export interface UrlParts {
  host: string
  port: number
  username?: string
  password?: string
  db?: number
  tls: boolean
}

/** Parses a Redis URL. Errors never quote the URL (it may hold a password). */
export function parseRedisUrl(url: string): UrlParts {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new RangeError('redis url is not a valid URL (expected redis://host:port or rediss://host:port)')
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new RangeError(`redis url scheme must be redis: or rediss:, got ${u.protocol}`)
  }
  const parts: UrlParts = {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1') || REDIS_DEFAULTS.host,
    port: u.port ? Number(u.port) : REDIS_DEFAULTS.port,
    tls: u.protocol === 'rediss:',
  }
  if (u.username) parts.username = decodeURIComponent(u.username)
  if (u.password) parts.password = decodeURIComponent(u.password)
  const db = u.pathname.replace(/^\//, '')
  if (db !== '') {
    if (!/^\d+$/.test(db)) throw new RangeError('redis url path must be a database number')
    parts.db = Number(db)
  }
  return parts
}

/** The key spaces: counters, kv, sets, gcra, hashes. */
export type KeyKind = 'c' | 'k' | 's' | 'g' | 'h'

/**
 * The Redis key of `key` in one key space: `pc:<keyPrefix><kind>:{<encoded key>}`. The encoded
 * key has no braces and is never empty (see encodeKey), so the hash tag is exactly the key: every
 * Redis key of one logical item (its counter, set, gcra state) maps to the same Cluster slot.
 */
export function redisKey(keyPrefix: string, kind: KeyKind, key: string): string {
  return `pc:${keyPrefix}${kind}:{${encodeKey(key)}}`
}

/** The Redis keys of one replicated map (see {@link redisMapKeys}). */
export interface MapKeys {
  data: string
  log: string
  meta: string
  epoch: string
}

/**
 * The Redis keys of a replicated map: its hash `pc:<keyPrefix>m:{<map>}:data`, its change stream
 * `…:log`, and `…:meta` (a lower bound of the hash's earliest expiry, kept by `set`). Map names are
 * `[a-z0-9-]{1,64}`, so the hash tag is exactly the name: all three are in one Cluster slot and one
 * script can touch them together.
 */
export function redisMapKeys(keyPrefix: string, map: string): MapKeys {
  const base = `pc:${keyPrefix}m:{${checkMapName(map)}}`
  return { data: `${base}:data`, log: `${base}:log`, meta: `${base}:meta`, epoch: `${base}:epoch` }
}

/** A map value as stored after its expiry: `|value`, or `%` + escaped value when UTF-8 cannot carry it. */
export function mapTail(value: string): string {
  return hasLoneSurrogate(value) ? `%${escapeText(value)}` : `|${value}`
}

/** A stored map value (`<expiresAt or 0>|value` or `<expiresAt or 0>%escaped`) as an entry. */
export function decodeMapValue(stored: string): MapEntry | undefined {
  let i = 0
  while (i < stored.length && stored.charCodeAt(i) >= 48 && stored.charCodeAt(i) <= 57) i++
  const sep = stored[i]
  if (i === 0 || (sep !== '|' && sep !== '%')) return undefined
  const exp = Number(stored.slice(0, i))
  const raw = stored.slice(i + 1)
  const value = sep === '|' ? raw : unescapeText(raw)
  return exp > 0 ? { value, expiresAt: exp } : { value }
}

/** A Redis map cursor: `<epoch>:<stream id>` (the epoch tells one incarnation of the map from another). */
export const MAP_CURSOR = /^([A-Za-z0-9_-]{16}):(\d{1,20}-\d{1,20})$/
