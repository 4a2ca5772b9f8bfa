/**
 * The `stores:` section of the config, and createStore(): the one place a Store is built from it.
 * (The section is wired into config/schema.ts by the lead; this module only defines it.)
 */
import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import { type Static, Type } from '@sinclair/typebox'
import type { Logger } from 'pino'
import { createMemoryStore, MEMORY_DEFAULTS } from './memory/memory-store.js'
import { createRedisStore, REDIS_DEFAULTS, type RedisStoreOptions } from './redis/redis-store.js'
import type { Store } from './types.js'

const HostPort = Type.Object(
  {
    host: Type.String({ minLength: 1, description: 'Host name or address.' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 6379, description: 'Port.' }),
  },
  { additionalProperties: false },
)

export const RedisTlsConfig = Type.Object(
  {
    ca: Type.Optional(
      Type.String({ minLength: 1, description: 'PEM CA bundle file path (system CAs when absent).' }),
    ),
    cert: Type.Optional(
      Type.String({ minLength: 1, description: 'PEM client certificate file path (mutual TLS).' }),
    ),
    key: Type.Optional(Type.String({ minLength: 1, description: 'PEM client private key file path.' })),
    servername: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Server name for SNI and certificate checks (host when absent).',
      }),
    ),
    rejectUnauthorized: Type.Boolean({
      default: true,
      description: 'Verify the server certificate; turn off only against a test server.',
    }),
  },
  { additionalProperties: false, description: 'Connect to Redis over TLS.' },
)

export const RedisStoreConfig = Type.Object(
  {
    url: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'redis://[user:password@]host[:port][/db] or rediss://… (TLS); wins over host, port and db. ' +
          'A URL with a password belongs in an env: or file: reference.',
      }),
    ),
    host: Type.String({
      minLength: 1,
      default: REDIS_DEFAULTS.host,
      description: 'Redis host (without url).',
    }),
    port: Type.Integer({
      minimum: 1,
      maximum: 65535,
      default: REDIS_DEFAULTS.port,
      description: 'Redis port (without url).',
    }),
    username: Type.Optional(Type.String({ minLength: 1, description: 'ACL user name (Redis 6+).' })),
    password: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'AUTH password; wins over one in url. Use an env: or file: reference; never logged.',
      }),
    ),
    db: Type.Integer({
      minimum: 0,
      default: REDIS_DEFAULTS.db,
      description: 'Database index (standalone and Sentinel; Cluster has only 0).',
    }),
    tls: Type.Optional(RedisTlsConfig),
    keyPrefix: Type.String({
      maxLength: 64,
      pattern: '^[^{}]*$',
      default: REDIS_DEFAULTS.keyPrefix,
      description:
        'Inserted after `pc:` in every key (e.g. `prod:`), so several deployments can share one Redis.',
    }),
    commandTimeoutMs: Type.Integer({
      minimum: 1,
      maximum: 60000,
      default: REDIS_DEFAULTS.commandTimeoutMs,
      description:
        'Deadline of one store operation; past it the operation fails and the policy applies failOpen.',
    }),
    connectTimeoutMs: Type.Integer({
      minimum: 1,
      maximum: 60000,
      default: REDIS_DEFAULTS.connectTimeoutMs,
      description: 'Time to establish a connection.',
    }),
    reconnectMaxDelayMs: Type.Integer({
      minimum: 1,
      maximum: 60000,
      default: REDIS_DEFAULTS.reconnectMaxDelayMs,
      description: 'Longest wait between two reconnection attempts (exponential backoff up to it).',
    }),
    sentinels: Type.Optional(
      Type.Array(HostPort, { minItems: 1, description: 'Sentinel: the sentinels to ask for the master.' }),
    ),
    name: Type.Optional(Type.String({ minLength: 1, description: 'Sentinel: the master group name.' })),
    sentinelPassword: Type.Optional(
      Type.String({ minLength: 1, description: "Sentinel: the sentinels' own password; never logged." }),
    ),
    cluster: Type.Optional(
      Type.Array(HostPort, { minItems: 1, description: 'Redis Cluster: seed nodes (instead of host/port).' }),
    ),
  },
  { additionalProperties: false, default: {}, description: 'The Redis backend.' },
)

export const MemoryStoreConfig = Type.Object(
  {
    maxKeys: Type.Integer({
      minimum: 1,
      default: MEMORY_DEFAULTS.maxKeys,
      description:
        'Most entries kept (a counter, kv or rate-limit key is one, a set counts one per member); the ' +
        'least recently used go first.',
    }),
    sweepIntervalMs: Type.Integer({
      minimum: 100,
      default: MEMORY_DEFAULTS.sweepIntervalMs,
      description: 'How often expired entries are swept (they are also dropped when read).',
    }),
  },
  { additionalProperties: false, default: {}, description: 'The in-memory backend.' },
)

export const MapsStoreConfig = Type.Object(
  {
    maxEntries: Type.Integer({
      minimum: 1,
      maximum: 10_000_000,
      default: MEMORY_DEFAULTS.maxMapEntries,
      description:
        'Most entries of one replicated map (API keys, revocations); every gateway holds a full copy. ' +
        'Adding a new key to a full map fails (expired entries are dropped first).',
    }),
    logLength: Type.Integer({
      minimum: 100,
      maximum: 10_000_000,
      default: MEMORY_DEFAULTS.mapLogLength,
      description:
        "Changes kept per replicated map for the gateways' change feed; a gateway further behind " +
        'reloads the whole map.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Replicated maps: small maps every gateway keeps a local copy of. See docs/stores.md.',
  },
)

export const StoresConfig = Type.Object(
  {
    backend: Type.Union([Type.Literal('memory'), Type.Literal('redis')], {
      default: 'memory',
      description:
        'Where policies keep state (rate limits, lockouts, learned ownership, revocations): `memory` ' +
        'for one gateway, `redis` for several gateways sharing it.',
    }),
    maxSetMembers: Type.Integer({
      minimum: 1,
      default: MEMORY_DEFAULTS.maxSetMembers,
      description: 'Most members of one set; adding to a full set drops the one expiring soonest.',
    }),
    maps: MapsStoreConfig,
    memory: MemoryStoreConfig,
    redis: RedisStoreConfig,
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Shared state for policies. See docs/stores.md.',
  },
)

export type StoresConfig = Static<typeof StoresConfig>

/**
 * Problems that the schema cannot express, as `path: message` strings (empty when fine): for the
 * config loader's rules.
 */
export function checkStoresConfig(config: StoresConfig): string[] {
  const problems: string[] = []
  const r = config.redis
  if (r.cluster && r.sentinels) problems.push('stores.redis: set cluster or sentinels, not both')
  if (r.sentinels && !r.name)
    problems.push('stores.redis.name: required with sentinels (the master group name)')
  if (r.name && !r.sentinels) problems.push('stores.redis.name: only used with sentinels')
  if (r.cluster && r.db !== 0) problems.push('stores.redis.db: Redis Cluster has only database 0')
  if (r.url !== undefined && !/^rediss?:\/\//i.test(r.url)) {
    problems.push('stores.redis.url: must start with redis:// or rediss://')
  }
  if (r.url !== undefined && (r.cluster || r.sentinels)) {
    problems.push('stores.redis.url: not used with cluster or sentinels (set their nodes instead)')
  }
  return problems
}

export interface CreateStoreDeps {
  logger: Logger
  /** Clock of the memory store (a fake one in tests). Redis uses the server's clock. */
  now?: () => number
}

/** The node:tls options of a `tls:` block; reads the PEM files (once, at build time). */
export function redisTlsOptions(tls: Static<typeof RedisTlsConfig>): ConnectionOptions {
  const read = (path: string, what: string): string => {
    try {
      return readFileSync(path, 'utf8')
    } catch (err) {
      throw new Error(`stores.redis.tls.${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code}`)
    }
  }
  return {
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.ca ? { ca: read(tls.ca, 'ca') } : {}),
    ...(tls.cert ? { cert: read(tls.cert, 'cert') } : {}),
    ...(tls.key ? { key: read(tls.key, 'key') } : {}),
    ...(tls.servername ? { servername: tls.servername } : {}),
  }
}

/**
 * Builds the configured store. `config` has its defaults applied (the loader does that). Throws
 * on a configuration that checkStoresConfig() reports. A Redis store connects in the background:
 * call `ping()` to wait for it, or let the first operations fail (and policies apply failOpen).
 */
export function createStore(config: StoresConfig, deps: CreateStoreDeps): Store {
  const problems = checkStoresConfig(config)
  if (problems.length > 0) throw new Error(`invalid stores config: ${problems.join('; ')}`)
  const logger = deps.logger.child({ component: 'stores' })
  if (config.backend === 'memory') {
    return createMemoryStore({
      maxKeys: config.memory.maxKeys,
      maxSetMembers: config.maxSetMembers,
      maxMapEntries: config.maps.maxEntries,
      mapLogLength: config.maps.logLength,
      sweepIntervalMs: config.memory.sweepIntervalMs,
      ...(deps.now ? { now: deps.now } : {}),
    })
  }
  const r = config.redis
  const options: RedisStoreOptions = {
    host: r.host,
    port: r.port,
    db: r.db,
    keyPrefix: r.keyPrefix,
    commandTimeoutMs: r.commandTimeoutMs,
    connectTimeoutMs: r.connectTimeoutMs,
    reconnectMaxDelayMs: r.reconnectMaxDelayMs,
    maxSetMembers: config.maxSetMembers,
    maxMapEntries: config.maps.maxEntries,
    mapLogLength: config.maps.logLength,
    logger,
  }
  if (r.url !== undefined) options.url = r.url
  if (r.username !== undefined) options.username = r.username
  if (r.password !== undefined) options.password = r.password
  if (r.tls !== undefined) options.tls = redisTlsOptions(r.tls)
  if (r.sentinels !== undefined) options.sentinels = r.sentinels
  if (r.name !== undefined) options.name = r.name
  if (r.sentinelPassword !== undefined) options.sentinelPassword = r.sentinelPassword
  if (r.cluster !== undefined) options.cluster = r.cluster
  const store = createRedisStore(options)
  logger.info(
    { backend: 'redis', mode: r.cluster ? 'cluster' : r.sentinels ? 'sentinel' : 'standalone' },
    'state store: redis',
  )
  return store
}
