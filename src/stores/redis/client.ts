/**
 * The ioredis client of a Redis store (standalone, Sentinel or Cluster), with the store's Lua
 * scripts defined as commands. The failure settings are the store's contract: no offline queue, no
 * auto-pipelining (the connection batches per turn itself), nothing resent after a reconnect, no
 * retry of a failed command, a capped exponential backoff between reconnection attempts.
 */
import type { ConnectionOptions } from 'node:tls'
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'
import { REDIS_DEFAULTS, type RedisSettings, type RedisStoreOptions, parseRedisUrl } from './options.js'
import { GCRA, MAP_SCRIPTS, SCRIPTS, type ScriptCommands } from './scripts.js'

/** The client with the store's scripts as commands. */
export type Client = (Redis | Cluster) & ScriptCommands

/** Every Lua script of the store, for SCRIPT LOAD on connect. */
const ALL_LUA: readonly string[] = [
  ...Object.values(SCRIPTS),
  GCRA,
  ...Object.values(MAP_SCRIPTS).map((s: { lua: string }) => s.lua),
]

function backoff(maxDelayMs: number): (times: number) => number {
  return (times) => {
    const base = Math.min(maxDelayMs, 50 * 2 ** Math.min(times, 16))
    return Math.round(base * (0.8 + Math.random() * 0.2))
  }
}

/**
 * Builds the client (it connects in the background) and says where it connects, for logs (never a
 * password). Throws a RangeError for contradictory options (cluster and sentinels, a database on a
 * Cluster, sentinels without a name) or a bad URL.
 */
export function createRedisClient(
  options: RedisStoreOptions,
  settings: RedisSettings,
): { client: Client; where: string } {
  const url = options.url ? parseRedisUrl(options.url) : undefined
  const username = options.username ?? url?.username
  const password = options.password ?? url?.password
  const tlsOption = options.tls ?? (url?.tls ? true : undefined)
  const tls: ConnectionOptions | undefined =
    tlsOption === true ? {} : tlsOption === false || tlsOption === undefined ? undefined : tlsOption
  const connectTimeout = settings.connectTimeoutMs
  const retry = backoff(settings.reconnectMaxDelayMs)
  const common: RedisOptions = {
    connectTimeout,
    enableOfflineQueue: false,
    // No auto-pipelining: the store gathers the commands of one event-loop turn itself and sends
    // them with the connections corked (see RedisConnection's flushSends), so they leave in one
    // write and their replies come back in one read. ioredis's auto-pipelining did the same at
    // twice the CPU per flush (a Pipeline per flush, and objects that outlived two scavenges: 6 ms
    // scavenges).
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

  if (options.cluster && options.sentinels) throw new RangeError('redis: set cluster or sentinels, not both')
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
  return { client: client as Client, where }
}

/**
 * Loads the Lua scripts at once (on every ready), so that the first burst of decisions does not
 * each pay an EVALSHA → NOSCRIPT → EVAL round trip (which, on a loaded machine, pushed first calls
 * past commandTimeoutMs). A failure here costs nothing: EVALSHA falls back to EVAL as before. A
 * Cluster loads them per node on first use.
 */
export function loadScripts(client: Redis | Cluster): void {
  if (client instanceof Redis) {
    for (const lua of ALL_LUA) client.script('LOAD', lua).catch(() => undefined)
  }
}
