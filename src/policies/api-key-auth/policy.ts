import { isAbsolute, resolve } from 'node:path'
import { requestFields } from '../../audit/event.js'
import { GatewayError } from '../../gateway/errors.js'
import type { Principal, RequestContext } from '../../gateway/pipeline/context.js'
import { definePolicy } from '../../gateway/pipeline/policy.js'
import { parseKey } from '../../keys/format.js'
import { acquireKeyStore } from '../../keys/live.js'
import { KeyStoreError } from '../../keys/store.js'
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

/** The value of `name` in a raw query string: absent, once, or more than once (ambiguous). */
function fromQuery(query: string, name: string): Presented {
  if (query === '') return NOT_PRESENT
  let found: Presented = NOT_PRESENT
  let start = 0
  while (start <= query.length) {
    let end = query.indexOf('&', start)
    if (end === -1) end = query.length
    const eq = query.indexOf('=', start)
    const nameEnd = eq === -1 || eq > end ? end : eq
    if (nameEnd - start === name.length && query.startsWith(name, start)) {
      if (found !== NOT_PRESENT) return AMBIGUOUS
      const raw = nameEnd === end ? '' : query.slice(nameEnd + 1, end)
      if (raw.length > MAX_PRESENTED_KEY_LENGTH * 3) return AMBIGUOUS
      try {
        found = raw.includes('%') ? decodeURIComponent(raw) : raw
      } catch {
        return AMBIGUOUS
      }
    }
    start = end + 1
  }
  return found
}

/**
 * API key authentication. Keys are `pcl_…` strings (see src/keys/format.ts) checked against a
 * hashed key store file (src/keys/store.ts) that `portcullis keys` manages and this policy
 * hot-reloads. Every refusal of a presented key is the same 401: nothing tells an unknown key from
 * a wrong, revoked or expired one. The key never reaches a log or an error; its public id may.
 */
export const apiKeyAuth = definePolicy({
  id: 'api-key-auth',
  priority: 7900,
  authenticates: true,
  description:
    'Authenticates requests by API key (`pcl_…`) against a hashed, hot-reloaded key store managed with `portcullis keys`; checks revocation, expiry and scopes (401/403).',
  schema: ApiKeyAuthConfig,
  create(config, deps) {
    // Relative to the config file's directory, like every other path in the config.
    const file = isAbsolute(config.store) ? config.store : resolve(deps.baseDir, config.store)
    const logger = deps.logger
    let acquired: ReturnType<typeof acquireKeyStore>
    try {
      acquired = acquireKeyStore(file, logger, { lastUsedFlushMs: config.lastUsedFlushSeconds * 1000 })
    } catch (err) {
      // A store that cannot be loaded at start (or by a reload that first names it) is a config
      // error: the gateway does not start (exit 2) or the reload is refused. Fail closed.
      if (err instanceof KeyStoreError)
        throw new StoreConfigError(`api-key-auth on route ${deps.routeName}: ${err.message}`)
      throw err
    }
    const { store, release } = acquired
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
      const inQuery = fromQuery(ctx.query, queryParam)
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
      const r = store.keys.verify(parsed.id, parsed.key, t)
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
      store.touch(key.id, t)
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
        release()
      },
    }
  },
})
