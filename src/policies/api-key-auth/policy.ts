import { isAbsolute, resolve } from 'node:path'
import { requestFields } from '../../audit/event.js'
import { GatewayError } from '../../gateway/errors.js'
import type { Principal, RequestContext } from '../../gateway/pipeline/context.js'
import { definePolicy, type PolicyDeps } from '../../gateway/pipeline/policy.js'
import { parseKey } from '../../keys/format.js'
import { acquireKeyStore } from '../../keys/live.js'
import { acquireMapKeySet } from '../../keys/live-map.js'
import { KeyStoreError, readStore } from '../../keys/store.js'
import type { VerifyResult } from '../../keys/verify.js'
import { ApiKeyAuthConfig } from './schema.js'

/** Named like serve's ConfigError so that the CLI reports it as a config problem (exit 2). */
class StoreConfigError extends Error {
  override name = 'ConfigError'
}

/** A presented value longer than this is refused before it is parsed or looked up. */
export const MAX_PRESENTED_KEY_LENGTH = 256

/** What the policy leaves in `ctx.state['api-key-auth']` for later policies. */
export interface ApiKeyState {
  keyId: string
  owner: string
  scopes: readonly string[]
}

const NOT_PRESENT = Symbol('not present')
const AMBIGUOUS = Symbol('ambiguous')
type Presented = string | typeof NOT_PRESENT | typeof AMBIGUOUS

/**
 * The value of `name` in the query (the one parser, ctx.queryParams()): absent, once, or
 * ambiguous (repeated, spelled another way, malformed, or too long to be a key).
 */
function fromQuery(ctx: RequestContext, name: string): Presented {
  if (ctx.query === '') return NOT_PRESENT
  let v: string | undefined
  try {
    v = ctx.queryParams().single(name)
  } catch {
    return AMBIGUOUS
  }
  if (v === undefined) return NOT_PRESENT
  return v.length > MAX_PRESENTED_KEY_LENGTH ? AMBIGUOUS : v
}

/** Where a policy instance checks keys: a key store file, or the state store's replicated map. */
interface KeySource {
  /** Whether keys can be checked now (a store-backed copy that is missing or too old cannot). */
  available(now: number): boolean
  lastSyncAt(): number | undefined
  verify(id: string, key: string, now: number): VerifyResult
  touch(id: string, now: number): void
  release(): void | Promise<void>
}

function fileSource(config: ApiKeyAuthConfig, deps: PolicyDeps, where: string): KeySource {
  if (config.store === undefined) {
    throw new StoreConfigError(`${where}: store (the key store file) is required with source: file`)
  }
  // Relative to the config file's directory, like every other path in the config.
  const file = isAbsolute(config.store) ? config.store : resolve(deps.baseDir, config.store)
  let acquired: ReturnType<typeof acquireKeyStore>
  try {
    acquired = acquireKeyStore(file, deps.logger, { lastUsedFlushMs: config.lastUsedFlushSeconds * 1000 })
  } catch (err) {
    // A store that cannot be loaded at start (or by a reload that first names it) is a config
    // error: the gateway does not start (exit 2) or the reload is refused. Fail closed.
    if (err instanceof KeyStoreError) throw new StoreConfigError(`${where}: ${err.message}`)
    throw err
  }
  const { store, release } = acquired
  return {
    available: () => true,
    lastSyncAt: () => undefined,
    verify: (id, key, now) => store.keys.verify(id, key, now),
    touch: (id, now) => store.touch(id, now),
    release,
  }
}

function storeSource(config: ApiKeyAuthConfig, deps: PolicyDeps, where: string): KeySource {
  if (config.store !== undefined) {
    throw new StoreConfigError(
      `${where}: store (a key store file) is not used with source: store (the records are in the stores: backend); remove it`,
    )
  }
  const { keys, release } = acquireMapKeySet(deps.store, deps.logger, {
    lastUsedFlushMs: config.lastUsedFlushSeconds * 1000,
    now: deps.now,
  })
  const maxStaleMs = config.maxStaleSeconds * 1000
  return {
    available: (now) => keys.available(now, maxStaleMs),
    lastSyncAt: () => keys.lastSyncAt,
    verify: (id, key, now) => keys.verify(id, key, now),
    touch: (id, now) => keys.touch(id, now),
    release,
  }
}

/**
 * API key authentication. Keys are `pcl_…` strings (see src/keys/format.ts) checked against
 * hashed key records that `portcullis keys` manages: a key store file (src/keys/store.ts) that this
 * policy hot-reloads, or the state store's replicated map `api-keys` (src/keys/live-map.ts) that
 * every gateway on the same Redis follows. Every refusal of a presented key is the same 401:
 * nothing tells an unknown key from a wrong, revoked or expired one. The key never reaches a log
 * or an error; its public id may.
 */
export const apiKeyAuth = definePolicy({
  id: 'api-key-auth',
  priority: 7900,
  check(config, ctx) {
    // The key store file must load now, as create() would load it (the rest is in the loader's
    // document rules: which fields go with which source).
    if (config.source !== 'file' || config.store === undefined) return []
    const file = isAbsolute(config.store) ? config.store : resolve(ctx.baseDir, config.store)
    try {
      readStore(file)
      return []
    } catch (err) {
      if (err instanceof KeyStoreError) return [{ path: ['store'], message: err.message }]
      throw err
    }
  },
  authenticates: true,
  description:
    'Authenticates requests by API key (`pcl_…`) against hashed key records managed with `portcullis keys`, in a hot-reloaded file or shared by every gateway through Redis; checks revocation, expiry and scopes (401/403).',
  schema: ApiKeyAuthConfig,
  create(config, deps) {
    const logger = deps.logger
    const where = `api-key-auth on route ${deps.routeName}`
    const source =
      config.source === 'store' ? storeSource(config, deps, where) : fileSource(config, deps, where)
    const header = config.header.toLowerCase()
    const queryParam = config.queryParam
    if (queryParam !== undefined) {
      logger.warn(
        { route: deps.routeName, queryParam },
        'api-key-auth accepts keys in the query string: URLs end up in browser history, proxy and server logs; prefer the header',
      )
    }
    const required = config.requiredScopes
    const challenge = Object.freeze({ 'www-authenticate': `ApiKey realm="${config.realm}"` })
    // One instance of each refusal: identical bodies and headers whatever the cause, no allocation
    // per refused request, and no cause attached that could carry the key.
    const missing = new GatewayError('GW_ERR_AUTH_MISSING', { headers: challenge })
    const invalid = new GatewayError('GW_ERR_AUTH_INVALID', { headers: challenge })
    const forbidden = new GatewayError('GW_ERR_FORBIDDEN', { detail: 'insufficient scope' })
    const unavailable = new GatewayError('GW_ERR_STATE_UNAVAILABLE', { headers: { 'retry-after': '1' } })
    let unavailableLogged = false
    const now = deps.now
    const audit = deps.audit
    /** An audit record for a key that was presented and refused: the reason, the key's public id when it parsed. */
    const refused = (ctx: RequestContext, reason: string, keyId?: string) =>
      audit.emit({
        type: 'auth.failure',
        ...requestFields(ctx),
        decision: 'deny',
        code: 'GW_ERR_AUTH_INVALID',
        reason,
        data: keyId === undefined ? { method: 'api-key' } : { method: 'api-key', keyId },
      })

    const presented = (ctx: RequestContext): Presented => {
      const h = ctx.req.headers[header]
      const inHeader: Presented =
        h === undefined || h === '' ? NOT_PRESENT : typeof h === 'string' ? h : AMBIGUOUS
      if (queryParam === undefined) return inHeader
      const inQuery = fromQuery(ctx, queryParam)
      if (inQuery === NOT_PRESENT || inQuery === '') return inHeader
      return inHeader === NOT_PRESENT ? inQuery : AMBIGUOUS
    }

    /**
     * The principal the request's key proves; undefined when the request carries no key; throws
     * the one 401 for any key that is there but not acceptable, 403 for missing scopes. Also the
     * hook of a route's `authentication: { anyOf | allOf }`.
     */
    const authenticate = (ctx: RequestContext): Principal | undefined => {
      const value = presented(ctx)
      if (value === NOT_PRESENT) return undefined
      if (value === AMBIGUOUS || value.length > MAX_PRESENTED_KEY_LENGTH) {
        logger.debug({ requestId: ctx.id, reason: 'malformed' }, 'api key refused')
        refused(ctx, 'malformed')
        throw invalid
      }
      const parsed = parseKey(value)
      if (!parsed.ok) {
        logger.debug({ requestId: ctx.id, reason: parsed.reason }, 'api key refused')
        refused(ctx, parsed.reason)
        throw invalid
      }
      const t = now()
      if (!source.available(t)) {
        if (!unavailableLogged) {
          unavailableLogged = true
          logger.error(
            {
              route: deps.routeName,
              lastSyncAt: source.lastSyncAt(),
              maxStaleSeconds: config.maxStaleSeconds,
            },
            'api key records unavailable (no copy yet, or older than maxStaleSeconds): requests with a key get 503',
          )
        }
        throw unavailable
      }
      if (unavailableLogged) {
        unavailableLogged = false
        logger.info({ route: deps.routeName }, 'api key records available again')
      }
      const r = source.verify(parsed.id, parsed.key, t)
      if (!r.ok) {
        const level = r.reason === 'mismatch' ? 'warn' : r.reason === 'unknown' ? 'debug' : 'info'
        logger[level]({ requestId: ctx.id, keyId: parsed.id, reason: r.reason }, 'api key refused')
        refused(ctx, r.reason, parsed.id)
        throw invalid
      }
      const key = r.key
      for (let i = 0; i < required.length; i++) {
        if (!key.scopes.includes(required[i] as string)) {
          logger.info(
            { requestId: ctx.id, keyId: key.id, missingScope: required[i] },
            'api key lacks a required scope',
          )
          throw forbidden
        }
      }
      source.touch(key.id, t)
      const state: ApiKeyState = { keyId: key.id, owner: key.owner, scopes: key.scopes }
      ctx.state['api-key-auth'] = state
      return {
        id: key.owner,
        type: 'api-key',
        scopes: key.scopes,
        roles: [],
        claims: Object.freeze({ keyId: key.id }),
        authMethod: 'api-key',
      }
    }

    return {
      authenticate,
      challenge: challenge['www-authenticate'],
      // Removed from every request of the route before it is proxied (not only from authenticated
      // ones), so the upstream never sees a key.
      ...(config.stripHeader ? { stripRequestHeaders: [header] } : {}),
      ...(config.stripHeader && queryParam !== undefined ? { stripQueryParams: [queryParam] } : {}),
      onRequest(ctx) {
        const p = authenticate(ctx)
        if (p === undefined) throw missing
        // With another authentication policy in front (jwt-auth, priority 8000) its principal stays:
        // both credentials were required, the key is in ctx.state['api-key-auth'].
        ctx.principal ??= p
      },
      close() {
        return source.release()
      },
    }
  },
})
