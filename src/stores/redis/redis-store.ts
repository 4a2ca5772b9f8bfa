/**
 * The Redis store: state shared by every gateway connected to one Redis (standalone, Sentinel or
 * Cluster), through ioredis. Failure behaviour: commands are never queued while disconnected
 * (`enableOfflineQueue: false`), never replayed after a reconnect (an INCR must not count twice),
 * and every operation has a deadline (`commandTimeoutMs`): past it, or when Redis cannot answer,
 * the operation rejects with a StoreError and the caller applies its `failOpen`. The client
 * reconnects in the background with a capped exponential backoff, and drops a connection that has
 * stopped answering altogether (a half-open TCP connection would otherwise linger for minutes).
 */
import { randomBytes } from 'node:crypto'
import type { Writable } from 'node:stream'
import type { ConnectionOptions } from 'node:tls'
import calculateSlot from 'cluster-key-slot'
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'
import { type Logger, pino } from 'pino'
import { checkGcraParams } from '../gcra.js'
import {
  checkIncrement,
  checkLimit,
  checkMapKey,
  checkMapName,
  checkMapValue,
  checkOptionalTtl,
  checkString,
  checkTtl,
  encodeKey,
  escapeText,
  hashOps,
  hasLoneSurrogate,
  putField,
  unescapeText,
} from '../keys.js'
import {
  type CounterStore,
  type GcraResult,
  type GcraStore,
  type HashStore,
  type KvStore,
  type MapChange,
  type MapEntry,
  type MapStore,
  type SetStore,
  type Store,
  StoreError,
} from '../types.js'
import { GCRA, MAP_SCRIPTS, SCRIPTS, type ScriptCommands } from './scripts.js'

/** Every Lua script of the store, for SCRIPT LOAD on connect. */
const ALL_LUA: readonly string[] = [
  ...Object.values(SCRIPTS),
  GCRA,
  ...Object.values(MAP_SCRIPTS).map((s: { lua: string }) => s.lua),
]

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
const SNAPSHOT_SCAN_COUNT = 1000

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

/**
 * The Redis keys of a replicated map: its hash `pc:<keyPrefix>m:{<map>}:data`, its change stream
 * `…:log`, and `…:meta` (a lower bound of the hash's earliest expiry, kept by `set`). Map names are
 * `[a-z0-9-]{1,64}`, so the hash tag is exactly the name: all three are in one Cluster slot and one
 * script can touch them together.
 */
export function redisMapKeys(
  keyPrefix: string,
  map: string,
): { data: string; log: string; meta: string; epoch: string } {
  const base = `pc:${keyPrefix}m:{${checkMapName(map)}}`
  return { data: `${base}:data`, log: `${base}:log`, meta: `${base}:meta`, epoch: `${base}:epoch` }
}

/** A map value as stored after its expiry: `|value`, or `%` + escaped value when UTF-8 cannot carry it. */
function mapTail(value: string): string {
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
const MAP_CURSOR = /^([A-Za-z0-9_-]{16}):(\d{1,20}-\d{1,20})$/

/** Checks a key prefix: at most 64 characters, no braces (they would break the hash tag). */
export function checkKeyPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || prefix.length > 64 || /[{}]/.test(prefix)) {
    throw new RangeError('keyPrefix must be a string of at most 64 characters without { or }')
  }
  return prefix
}

type Client = (Redis | Cluster) & ScriptCommands

/** Most GCRA decisions in one script call (its KEYS and ARGV stay far below Lua's stack limits). */
export const MAX_GCRA_BATCH = 512

interface GcraWaiter {
  resolve: (r: GcraResult) => void
  reject: (err: unknown) => void
}

/** The GCRA decisions of one turn and one Cluster slot, sent as one script call. */
interface GcraBatch {
  keys: string[]
  /** four per key: intervalUs, burst, cost, nowUs */
  args: string[]
  waiters: GcraWaiter[]
}

/** Connection settings taken from a `redis://` or `rediss://` URL. */
interface UrlParts {
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

function backoff(maxDelayMs: number): (times: number) => number {
  return (times) => {
    const base = Math.min(maxDelayMs, 50 * 2 ** Math.min(times, 16))
    return Math.round(base * (0.8 + Math.random() * 0.2))
  }
}

/** The message and code of a backend error, without ioredis's extras (a failed AUTH's arguments). */
function sanitize(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err))
  const clean = new Error(err.message)
  clean.name = err.name
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string') Object.assign(clean, { code })
  return clean
}

/** A reply from the server (as opposed to a connection failure): the server is answering. */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError'
}

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

  private readonly c: Client
  private readonly prefix: string
  private readonly timeoutMs: number
  private readonly maxSetMembers: string
  private readonly maxHashFields: string
  private readonly maxMapEntries: string
  private readonly mapLogLength: string
  private readonly logger: Logger
  /** Silence (or a handshake) after which a connection is dropped and reopened. */
  private readonly deadAfterMs: number
  /** When the oldest command still without any reply since was sent (undefined: all answered). */
  private silentSince: number | undefined
  /** When the current connection was established (its handshake may still be running). */
  private connectedAt = Date.now()
  private lastForcedReconnectAt = 0
  /** For logging transitions only (commands go by the client's own status). */
  private state: 'connecting' | 'up' | 'down' = 'connecting'
  private closed = false
  private everReady = false

  constructor(options: RedisStoreOptions = {}) {
    this.prefix = checkKeyPrefix(options.keyPrefix ?? REDIS_DEFAULTS.keyPrefix)
    this.timeoutMs = positive(options.commandTimeoutMs, REDIS_DEFAULTS.commandTimeoutMs, 'commandTimeoutMs')
    const connectTimeout = positive(
      options.connectTimeoutMs,
      REDIS_DEFAULTS.connectTimeoutMs,
      'connectTimeoutMs',
    )
    const maxDelay = positive(
      options.reconnectMaxDelayMs,
      REDIS_DEFAULTS.reconnectMaxDelayMs,
      'reconnectMaxDelayMs',
    )
    this.maxSetMembers = String(
      positive(options.maxSetMembers, REDIS_DEFAULTS.maxSetMembers, 'maxSetMembers'),
    )
    this.maxHashFields = String(
      positive(options.maxHashFields, REDIS_DEFAULTS.maxHashFields, 'maxHashFields'),
    )
    this.maxMapEntries = String(
      positive(options.maxMapEntries, REDIS_DEFAULTS.maxMapEntries, 'maxMapEntries'),
    )
    this.mapLogLength = String(positive(options.mapLogLength, REDIS_DEFAULTS.mapLogLength, 'mapLogLength'))
    this.deadAfterMs = Math.max(1000, this.timeoutMs * 5)
    this.logger = options.logger ?? pino({ level: 'silent' })

    const url = options.url ? parseRedisUrl(options.url) : undefined
    const username = options.username ?? url?.username
    const password = options.password ?? url?.password
    const tlsOption = options.tls ?? (url?.tls ? true : undefined)
    const tls: ConnectionOptions | undefined =
      tlsOption === true ? {} : tlsOption === false || tlsOption === undefined ? undefined : tlsOption
    const retry = backoff(maxDelay)
    const common: RedisOptions = {
      connectTimeout,
      enableOfflineQueue: false,
      // No auto-pipelining: the store gathers the commands of one event-loop turn itself and sends
      // them with the connections corked (see flushSends), so they leave in one write and their
      // replies come back in one read. ioredis's auto-pipelining did the same at twice the CPU per
      // flush (a Pipeline per flush, and objects that outlived two scavenges: 6 ms scavenges).
      enableAutoPipelining: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      enableReadyCheck: true,
      keepAlive: 10_000,
      retryStrategy: retry,
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(tls !== undefined ? { tls } : {}),
    }

    if (options.cluster && options.sentinels)
      throw new RangeError('redis: set cluster or sentinels, not both')
    let client: Redis | Cluster
    let where: string
    if (options.cluster) {
      if (options.cluster.length === 0) throw new RangeError('redis: cluster needs at least one node')
      if ((url?.db ?? options.db ?? 0) !== 0) throw new RangeError('redis: Cluster has no databases but 0')
      // Node connections keep ioredis's defaults for queueing (they connect lazily); the cluster
      // itself refuses commands while it is not ready.
      const nodeOptions: RedisOptions = { ...common }
      delete nodeOptions.enableOfflineQueue
      delete nodeOptions.retryStrategy
      const clusterOptions: ClusterOptions = {
        enableOfflineQueue: false,
        enableReadyCheck: true,
        clusterRetryStrategy: retry,
        slotsRefreshTimeout: connectTimeout,
        redisOptions: nodeOptions,
      }
      client = new Cluster(options.cluster, clusterOptions)
      where = `cluster of ${options.cluster.length} seed node(s)`
    } else if (options.sentinels) {
      if (!options.name) throw new RangeError('redis: sentinels need the master group name (name)')
      client = new Redis({
        ...common,
        sentinels: options.sentinels,
        name: options.name,
        db: url?.db ?? options.db ?? REDIS_DEFAULTS.db,
        sentinelRetryStrategy: retry,
        ...(options.sentinelPassword !== undefined ? { sentinelPassword: options.sentinelPassword } : {}),
        ...(tls !== undefined ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
      })
      where = `sentinel master ${options.name}`
    } else {
      const host = url?.host ?? options.host ?? REDIS_DEFAULTS.host
      const port = url?.port ?? options.port ?? REDIS_DEFAULTS.port
      client = new Redis({ ...common, host, port, db: url?.db ?? options.db ?? REDIS_DEFAULTS.db })
      where = `${host}:${port}`
    }
    for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys: 1, lua })
    // the number of keys is the first argument of each call (a batch of decisions)
    client.defineCommand('pcGcra', { lua: GCRA })
    for (const [name, { keys, lua }] of Object.entries(MAP_SCRIPTS)) {
      client.defineCommand(name, { numberOfKeys: keys, lua })
    }
    this.client = client
    this.c = client as Client

    const log = this.logger
    client.on('ready', () => {
      log.info(
        { store: 'redis', where },
        this.state === 'down' ? 'redis store reconnected' : 'redis store connected',
      )
      this.state = 'up'
      this.everReady = true
      this.silentSince = undefined
      // Load the Lua scripts at once, so that the first burst of decisions does not each pay an
      // EVALSHA → NOSCRIPT → EVAL round trip (which, on a loaded machine, pushed first calls past
      // commandTimeoutMs). A failure here costs nothing: EVALSHA falls back to EVAL as before.
      // (A Cluster loads them per node on first use.)
      if (client instanceof Redis) {
        for (const lua of ALL_LUA) client.script('LOAD', lua).catch(() => undefined)
      }
    })
    client.on('connect', () => {
      this.connectedAt = Date.now()
    })
    client.on('error', (err: Error) => {
      // ioredis emits one per failed attempt: log the transition, not every retry.
      if (this.state !== 'down' && !this.closed) {
        log.warn({ store: 'redis', where, error: err.message }, 'redis store unavailable; reconnecting')
      }
      this.state = 'down'
    })
    client.on('close', () => {
      if (this.state === 'up' && !this.closed) {
        log.warn({ store: 'redis', where }, 'redis store connection lost; reconnecting')
      }
      if (this.state === 'up') this.state = 'down'
    })

    this.counters = {
      incr: async (key, by, windowMs) => {
        const k = this.key('c', key)
        const inc = String(checkIncrement(by))
        const win = String(checkTtl(windowMs, 'windowMs'))
        const [value, ttlMs] = await this.run('counters.incr', () => this.c.pcIncr(k, inc, win))
        return { value: Number(value), ttlMs: Number(ttlMs) }
      },
      get: async (key) => {
        const k = this.key('c', key)
        const [value, ttlMs] = await this.run('counters.get', () => this.c.pcCount(k))
        return { value: Number(value), ttlMs: Number(ttlMs) }
      },
      reset: async (key) => {
        const k = this.key('c', key)
        await this.run('counters.reset', () => this.c.del(k))
      },
    }

    this.kv = {
      get: async (key) => {
        const k = this.key('k', key)
        const v = await this.run('kv.get', () => this.c.get(k))
        return v ?? undefined
      },
      set: async (key, value, ttlMs) => {
        const k = this.key('k', key)
        const v = checkString(value, 'value')
        const ttl = checkOptionalTtl(ttlMs)
        await this.run('kv.set', () => (ttl === undefined ? this.c.set(k, v) : this.c.set(k, v, 'PX', ttl)))
      },
      setIfAbsent: async (key, value, ttlMs) => {
        const k = this.key('k', key)
        const v = checkString(value, 'value')
        const ttl = checkOptionalTtl(ttlMs)
        const r = await this.run('kv.setIfAbsent', () =>
          ttl === undefined ? this.c.set(k, v, 'NX') : this.c.set(k, v, 'PX', ttl, 'NX'),
        )
        return r === 'OK'
      },
      delete: async (key) => {
        const k = this.key('k', key)
        return (await this.run('kv.delete', () => this.c.del(k))) > 0
      },
    }

    this.hashes = {
      update: async (key, update, ttlMs) => {
        const k = this.key('h', key)
        const ops = hashOps(update)
        const ttl = String(checkOptionalTtl(ttlMs) ?? 0)
        const args: string[] = [ttl, this.maxHashFields]
        for (const [op, f, v] of ops) args.push(op, escapeText(f), String(v))
        if (ops.length === 0 && ttl === '0') return 0
        return Number(await this.run('hashes.update', () => this.c.pcHashUpdate(k, ...args)))
      },
      getAll: async (key) => {
        const k = this.key('h', key)
        const raw = await this.run('hashes.getAll', () => this.c.hgetall(k))
        const out: Record<string, number> = {}
        for (const [f, v] of Object.entries(raw)) putField(out, unescapeText(f), Number(v))
        return out
      },
      delete: async (key) => {
        const k = this.key('h', key)
        return (await this.run('hashes.delete', () => this.c.del(k))) > 0
      },
    }

    this.sets = {
      add: async (key, member, ttlMs) => {
        const k = this.key('s', key)
        const m = checkString(member, 'member')
        const ttl = String(checkOptionalTtl(ttlMs) ?? 0)
        return (await this.run('sets.add', () => this.c.pcSetAdd(k, m, ttl, this.maxSetMembers))) === 1
      },
      has: async (key, member) => {
        const k = this.key('s', key)
        const m = checkString(member, 'member')
        return (await this.run('sets.has', () => this.c.pcSetHas(k, m))) === 1
      },
      remove: async (key, member) => {
        const k = this.key('s', key)
        const m = checkString(member, 'member')
        return (await this.run('sets.remove', () => this.c.pcSetRemove(k, m))) === 1
      },
      members: async (key, limit) => {
        const k = this.key('s', key)
        const max = checkLimit(limit)
        if (max === 0) return []
        return this.run('sets.members', () => this.c.pcSetMembers(k, String(max)))
      },
      size: async (key) => {
        const k = this.key('s', key)
        return Number(await this.run('sets.size', () => this.c.pcSetSize(k)))
      },
    }

    this.gcra = {
      gcra: (key, params) => {
        let k: string
        let a: ReturnType<typeof checkGcraParams>
        try {
          k = this.key('g', key)
          a = checkGcraParams(params)
        } catch (err) {
          return Promise.reject(err)
        }
        const nowUs = params.nowMs === undefined ? '' : String(Math.round(params.nowMs * 1000))
        return new Promise<GcraResult>((resolve, reject) => {
          const batch = this.gcraBatch(k)
          batch.keys.push(k)
          batch.args.push(String(a.intervalUs), String(a.burst), String(a.cost), nowUs)
          batch.waiters.push({ resolve, reject })
        })
      },
    }

    this.maps = this.createMaps()
  }

  /** The replicated maps: a hash and a change stream per map (see docs/stores.md). */
  private createMaps(): MapStore {
    return {
      set: async (map, key, value, ttlMs) => {
        const { data, log, meta } = this.mapKeys(map)
        const field = escapeText(checkMapKey(key))
        const tail = mapTail(checkMapValue(value))
        const ttl = String(checkOptionalTtl(ttlMs) ?? 0)
        const ok = await this.run('maps.set', () =>
          this.c.pcMapSet(data, log, meta, field, ttl, tail, this.maxMapEntries, this.mapLogLength),
        )
        if (ok !== 1) throw new RangeError(`map ${map} is full (${this.maxMapEntries} entries)`)
      },
      get: async (map, key) => {
        const { data, log } = this.mapKeys(map)
        const field = escapeText(checkMapKey(key))
        const stored = await this.run('maps.get', () => this.c.pcMapGet(data, log, field))
        return stored === null ? undefined : decodeMapValue(stored)
      },
      delete: async (map, key) => {
        const { data, log } = this.mapKeys(map)
        const field = escapeText(checkMapKey(key))
        return (
          (await this.run('maps.delete', () => this.c.pcMapDelete(data, log, field, this.mapLogLength))) === 1
        )
      },
      snapshot: async (map) => {
        const { data, log, epoch: epochKey } = this.mapKeys(map)
        // The feed position first, then the hash: a change made meanwhile is in the hash or after
        // the cursor (or both, and replaying it is harmless: a change carries the current entry).
        const [streamId, now, epoch] = await this.run('maps.snapshot', () =>
          this.c.pcMapHead(data, log, epochKey, this.mapLogLength, randomBytes(12).toString('base64url')),
        )
        const cursor = `${epoch}:${streamId}`
        const entries = new Map<string, MapEntry>()
        const expired: string[] = []
        let scan = '0'
        do {
          const [next, flat] = await this.run('maps.snapshot', () =>
            this.c.hscan(data, scan, 'COUNT', SNAPSHOT_SCAN_COUNT),
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
        await this.pruneMap(data, log, expired)
        return { entries, cursor }
      },
      changes: async (map, cursor, limit) => {
        const { data, log, epoch: epochKey } = this.mapKeys(map)
        const max = checkLimit(limit)
        if (max < 1) throw new RangeError('limit must be at least 1')
        const m = typeof cursor === 'string' ? MAP_CURSOR.exec(cursor) : null
        if (m === null) return { reset: true }
        const [, epoch, streamId] = m as unknown as [string, string, string]
        const count = String(Math.min(max, MAX_CHANGES_PER_CALL))
        const reply = await this.run('maps.changes', () =>
          this.c.pcMapChanges(data, log, epochKey, streamId, count, epoch),
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

  /** Best effort: drops fields a snapshot saw expired (a failure only leaves them for later). */
  private async pruneMap(data: string, log: string, fields: string[]): Promise<void> {
    for (let i = 0; i < fields.length; i += 500) {
      const batch = fields.slice(i, i + 500)
      try {
        await this.run('maps.prune', () => this.c.pcMapPrune(data, log, ...batch))
      } catch {
        return
      }
    }
  }

  private mapKeys(map: string): { data: string; log: string; meta: string; epoch: string } {
    if (this.closed) throw new StoreError('redis store is closed')
    return redisMapKeys(this.prefix, map)
  }

  /**
   * Resolves once the client is connected and ready (right away when it is), or rejects with a
   * StoreError after `timeoutMs`. Operations issued before that reject: call it at startup when
   * the first requests should not fail over to `failOpen`.
   */
  whenReady(timeoutMs = 5000): Promise<void> {
    const client = this.client
    if (this.closed) return Promise.reject(new StoreError('redis store is closed'))
    if (client.status === 'ready') return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const onReady = () => {
        clearTimeout(timer)
        resolve()
      }
      const timer = setTimeout(() => {
        client.off('ready', onReady)
        reject(new StoreError(`redis store: not ready after ${timeoutMs} ms`))
      }, timeoutMs)
      client.once('ready', onReady)
    })
  }

  async ping(): Promise<void> {
    await this.run('ping', () => this.c.ping())
  }

  hasConnected(): boolean {
    return this.everReady
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const client = this.client
    if (client.status === 'ready') {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        client.quit().catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.timeoutMs)
        }),
      ])
      clearTimeout(timer)
    }
    client.disconnect()
  }

  private key(kind: KeyKind, key: string): string {
    if (this.closed) throw new StoreError('redis store is closed')
    return redisKey(this.prefix, kind, key)
  }

  /**
   * GCRA decisions wait, like every command, for the end of the event-loop turn; those of one turn
   * then travel in one script call (per Cluster slot, at most {@link MAX_GCRA_BATCH}), so that a
   * busy gateway pays one command's overhead per turn, not per request. The script applies them in
   * order, each as if alone: the same decisions as one call each, under one deadline.
   */
  private readonly gcraBatches = new Map<number, GcraBatch>()

  /** The open batch for `key`'s slot, or a new one, sent at the end of this turn. */
  private gcraBatch(key: string): GcraBatch {
    const slot = this.client instanceof Cluster ? calculateSlot(key) : 0
    const open = this.gcraBatches.get(slot)
    if (open !== undefined && open.keys.length < MAX_GCRA_BATCH) return open
    const batch: GcraBatch = { keys: [], args: [], waiters: [] }
    this.gcraBatches.set(slot, batch)
    const detach = () => {
      if (this.gcraBatches.get(slot) === batch) this.gcraBatches.delete(slot)
    }
    this.run('gcra', () => {
      detach()
      return this.c.pcGcra(batch.keys.length, ...batch.keys, ...batch.args)
    }).then(
      (reply) => {
        const w = batch.waiters
        if (!Array.isArray(reply) || reply.length !== 4 * w.length) {
          const err = new StoreError('redis store: gcra: unexpected reply')
          for (const x of w) x.reject(err)
          return
        }
        for (let i = 0; i < w.length; i++) {
          const o = 4 * i
          ;(w[i] as GcraWaiter).resolve({
            allowed: reply[o] === 1,
            retryAfterMs: Number(reply[o + 1]),
            remaining: Number(reply[o + 2]),
            resetMs: Number(reply[o + 3]),
          })
        }
      },
      (err: unknown) => {
        detach() // a deadline that passed before the batch was sent
        for (const x of batch.waiters) x.reject(err)
      },
    )
    return batch
  }

  /** Runs one command (or script) under the deadline; every failure becomes a StoreError. */
  private run<T>(op: string, send: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('redis store is closed'))
    const sentAt = Date.now()
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => {
        if (settled) return
        settled = true
        if (this.silentSince === undefined) this.silentSince = sentAt
        reject(new StoreError(`redis store: ${op} timed out after ${this.timeoutMs} ms`))
        this.checkConnection(Date.now())
      }, this.timeoutMs)
      this.enqueue(() => {
        if (settled) return
        let pending: Promise<T>
        try {
          pending = this.closed ? Promise.reject(new Error('redis store is closed')) : send()
        } catch (err) {
          pending = Promise.reject(err)
        }
        pending.then(
          (value) => {
            this.silentSince = undefined
            if (settled) return
            settled = true
            clearTimeout(timer)
            resolve(value)
          },
          (err: unknown) => {
            if (isReplyError(err)) this.silentSince = undefined
            if (settled) return
            settled = true
            clearTimeout(timer)
            const cause = sanitize(err)
            reject(new StoreError(`redis store: ${op} failed: ${cause.message}`, { cause }))
            if (!isReplyError(err)) this.checkConnection(Date.now())
          },
        )
      })
    })
  }

  /**
   * Commands wait for the end of the current event-loop turn (setImmediate) and are then sent
   * together: ioredis's auto-pipelining flushes on process.nextTick, which runs after every single
   * socket callback, so on its own it batches only the commands of one client read. Deferred to
   * the check phase, the commands of every request read in this turn leave in one write (one
   * pipeline) and their replies come back together. FIFO; the deadline runs from the call.
   */
  private sendQueue: (() => void)[] = []
  private sendScheduled = false
  private readonly flushSends = (): void => {
    this.sendScheduled = false
    const q = this.sendQueue
    this.sendQueue = []
    // Corked, the connections buffer the commands' writes and send them in one writev on uncork.
    const corked = this.corkConnections()
    try {
      for (let i = 0; i < q.length; i++) (q[i] as () => void)()
    } finally {
      for (let i = 0; i < corked.length; i++) (corked[i] as Writable).uncork()
    }
  }
  /** Corks the connections a command may go to (the client's, or every Cluster node's). */
  private corkConnections(): Writable[] {
    const c = this.client
    const out: Writable[] = []
    if (c instanceof Cluster) {
      for (const node of c.nodes('all')) {
        const s = node.stream
        if (s?.writable) {
          s.cork()
          out.push(s)
        }
      }
    } else if (c.stream?.writable) {
      c.stream.cork()
      out.push(c.stream)
    }
    return out
  }
  private enqueue(start: () => void): void {
    this.sendQueue.push(start)
    if (!this.sendScheduled) {
      this.sendScheduled = true
      setImmediate(this.flushSends)
    }
  }

  /**
   * After a failure: when the connection looks ready but nothing has answered for `deadAfterMs`
   * (commands time out: half-open TCP connection, frozen server), or it has been stuck in its
   * handshake that long (a proxy that accepts connections for a dead server), drop it and let
   * ioredis reconnect. `maxRetriesPerRequest: 0` and `autoResendUnfulfilledCommands: false` make
   * sure the commands that were waiting on it fail and are never sent twice. At most once per
   * `deadAfterMs`.
   */
  private checkConnection(now: number): void {
    if (this.closed || now - this.lastForcedReconnectAt < this.deadAfterMs) return
    const status = this.client.status
    const stuck =
      (status === 'ready' && this.silentSince !== undefined && now - this.silentSince >= this.deadAfterMs) ||
      (status === 'connect' && now - this.connectedAt >= this.deadAfterMs)
    if (!stuck) return
    this.lastForcedReconnectAt = now
    this.silentSince = undefined
    this.logger.warn({ store: 'redis', status }, 'redis store: redis stopped answering; reconnecting')
    // disconnect() only half-closes (FIN) and waits for the peer, which is what is not answering:
    // destroy the sockets so that ioredis sees the close now and reconnects with its backoff.
    const c = this.client
    const connections = c instanceof Cluster ? c.nodes('all') : [c]
    for (const r of connections) r.stream?.destroy()
  }
}

function positive(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer`)
  return v
}

/** A Redis store; it connects in the background (operations before it is ready reject). */
export function createRedisStore(options: RedisStoreOptions = {}): RedisStore {
  return new RedisStore(options)
}
