/**
 * `portcullis keys … --config FILE`: the key records in the Redis state store that a gateway
 * config's `stores:` section names. The config is loaded with the gateway's own loader (so
 * `${env:…}` and `${file:…}` references work and problems are reported as `file:line:col`), and
 * nothing printed ever contains a password: the Redis target is described by host and port only,
 * and every secret value of the section is scrubbed from backend messages.
 */
import { pino } from 'pino'
import { formatProblem, loadConfigFile } from '../../../config/load.js'
import { MapKeyAdmin } from '../../../keys/admin.js'
import { KeyStoreError } from '../../../keys/store.js'
import { createStore, type StoresConfig } from '../../../stores/config.js'
import { parseRedisUrl, RedisStore } from '../../../stores/redis/redis-store.js'
import { scrub } from './scrub.js'

/** The config could not be loaded; its problems were printed already. */
export class ConfigLoadError extends Error {
  override name = 'ConfigLoadError'
}

/** `host:port` of the Redis a `stores.redis` section names (never its credentials). */
export function describeRedis(r: StoresConfig['redis']): string {
  if (r.cluster) return `Redis Cluster ${r.cluster.map((n) => `${n.host}:${n.port}`).join(',')}`
  if (r.sentinels) return `Redis (Sentinel group ${r.name ?? '?'})`
  if (r.url !== undefined) {
    try {
      const u = parseRedisUrl(r.url)
      return `Redis ${u.tls ? 'rediss' : 'redis'}://${u.host}:${u.port}`
    } catch {
      return 'Redis (invalid url)'
    }
  }
  return `Redis ${r.host}:${r.port}`
}

/** Every secret of the section (passwords, a URL and its password), longest first, to scrub. */
function secretsOf(r: StoresConfig['redis']): string[] {
  const out = [r.password, r.sentinelPassword, r.url]
  if (r.url !== undefined) {
    try {
      const u = new URL(r.url)
      out.push(u.password, decodeURIComponent(u.password), u.username ? `${u.username}:${u.password}` : '')
    } catch {
      // not a URL: scrubbed whole
    }
  }
  return out
    .filter((s): s is string => typeof s === 'string' && s.length >= 3)
    .sort((a, b) => b.length - a.length)
}

/**
 * Opens the key records of the Redis store named by `configFile` (and the secrets to scrub from
 * later error messages). Prints the config's problems and
 * throws ConfigLoadError when it does not load; throws a KeyStoreError (a clear message, exit 2)
 * when the store is not Redis or cannot be reached within `readyTimeoutMs`.
 */
export async function openConfigStore(
  configFile: string,
  opts: { readyTimeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ admin: MapKeyAdmin; secrets: string[] }> {
  const loaded = loadConfigFile(configFile, opts.env ? { env: opts.env } : {})
  if (loaded.config === undefined) {
    for (const e of loaded.errors) process.stderr.write(`portcullis: ${formatProblem(e)}\n`)
    throw new ConfigLoadError(`${configFile}: ${loaded.errors.length} config error(s)`)
  }
  const stores = loaded.config.stores
  if (stores.backend !== 'redis') {
    throw new KeyStoreError(
      `${configFile}: stores.backend is ${stores.backend}; keys --config needs stores.backend: redis (a memory store lives inside one gateway process, out of reach of this command)`,
    )
  }
  const target = describeRedis(stores.redis)
  const where = `the map api-keys on ${target} (stores: of ${configFile})`
  const secrets = secretsOf(stores.redis)
  let store: ReturnType<typeof createStore>
  try {
    store = createStore(stores, { logger: pino({ level: 'silent' }) })
  } catch (err) {
    throw new KeyStoreError(`${configFile}: cannot use ${target}: ${scrub((err as Error).message, secrets)}`)
  }
  const timeoutMs = opts.readyTimeoutMs ?? Math.max(3000, stores.redis.connectTimeoutMs * 2)
  if (store instanceof RedisStore && store.client.status !== 'ready') {
    // ioredis retries in the background; the last connection error says why it is not ready. A
    // refused password will not fix itself: give up at once instead of waiting out the timeout.
    const client = store.client
    let last: string | undefined
    let timer: NodeJS.Timeout | undefined
    let onError: ((err: Error) => void) | undefined
    let onReady: (() => void) | undefined
    const ready = await new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs)
      onReady = () => resolve(true)
      onError = (err: Error) => {
        last = err.message
        if (/^(WRONGPASS|NOAUTH|NOPERM|ERR invalid password)/.test(err.message)) resolve(false)
      }
      client.once('ready', onReady)
      client.on('error', onError)
    })
    clearTimeout(timer)
    if (onReady) client.off('ready', onReady)
    if (onError) client.off('error', onError)
    if (!ready) {
      await store.close().catch(() => undefined)
      const why = last === undefined ? `no connection after ${timeoutMs} ms` : scrub(last, secrets)
      throw new KeyStoreError(`cannot reach ${target} (stores: of ${configFile}): ${why}`, 'EUNREACHABLE')
    }
  }
  return { admin: new MapKeyAdmin(store, where), secrets }
}
