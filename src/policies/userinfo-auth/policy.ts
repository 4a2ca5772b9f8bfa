import type { Static } from '@sinclair/typebox'
import { parseEndpoint } from '../../auth/endpoint.js'
import { compilePointer, pointerTokens } from '../../auth/json-pointer.js'
import { stringList } from '../../auth/principal.js'
import { NOT_CANONICAL, tokenIdentity } from '../../auth/jws-canonical.js'
import { setVerifiedTokenId, tokenHash, tokenStateKey } from '../../auth/token.js'
import { acquireAuthInstance, type BuiltAuth, type SharedAuthInstances } from '../../auth/shared-instance.js'
import { VerdictCache } from '../../auth/verdict-cache.js'
import { bearerFront } from '../../auth/bearer-front.js'
import { GatewayError } from '../../gateway/errors.js'
import type { Principal, RequestContext } from '../../gateway/pipeline/context.js'
import { definePolicy, type PolicyDeps } from '../../gateway/pipeline/policy.js'
import { UserinfoClient, UserinfoFailure } from './client.js'
import { UserinfoAuthConfig } from './schema.js'

type Config = Static<typeof UserinfoAuthConfig>

type Outcome = { valid: true; principal: Principal } | { valid: false; reason: string }

/** At most one warning per this interval about failing endpoint calls (the rest are counted). */
/** Member names never kept in the principal's claims (a user record may carry its password hash). */
export const SECRET_NAME = /password|secret|token|hash/i

/** Sets an own member: a member named `__proto__` (JSON.parse makes it an own one) stays a plain member. */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
}

/** A copy of a JSON value without members named like secrets, at any depth. */
function withoutSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutSecrets)
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) if (!SECRET_NAME.test(k)) setOwn(out, k, withoutSecrets(x))
    return out
  }
  return v
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const x of Object.values(v as object)) deepFreeze(x)
  }
  return v
}

/** Builds principal.claims from an answer: the whole answer, or the listed pointers at their place. */
function compileClaims(pointers: readonly string[] | undefined, where: string) {
  if (pointers === undefined)
    return (r: Record<string, unknown>) => withoutSecrets(r) as Record<string, unknown>
  const picks = pointers.map((p) => {
    const tokens = pointerTokens(p)
    if (tokens.length === 0) throw new Error(`${where}: \`claims\` entries must name a member, not ''`)
    if (tokens.some((t) => SECRET_NAME.test(t))) {
      throw new Error(`${where}: \`claims\` must not keep a member named like a secret (${p})`)
    }
    return { tokens, get: compilePointer(p) }
  })
  return (r: Record<string, unknown>) => {
    const out: Record<string, unknown> = {}
    for (const { tokens, get } of picks) {
      const v = get(r)
      if (v === undefined) continue
      let cur = out
      for (let i = 0; i < tokens.length - 1; i++) {
        const t = tokens[i] as string
        const next = Object.hasOwn(cur, t) ? cur[t] : undefined
        if (next === null || typeof next !== 'object' || Array.isArray(next)) setOwn(cur, t, {})
        cur = Object.getOwnPropertyDescriptor(cur, t)?.value as Record<string, unknown>
      }
      setOwn(cur, tokens[tokens.length - 1] as string, withoutSecrets(v))
    }
    return out
  }
}

/** Built instances by config object, with how many routes hold each. */
const shared: SharedAuthInstances = new WeakMap()

/** Everything the policy does for one config; create() shares it between routes. */
function build(config: Config, { logger, now, routeName, audit }: PolicyDeps): BuiltAuth {
  const where = `userinfo-auth (route ${routeName})`
  const endpoint = parseEndpoint(config.endpoint, where)
  const header = config.tokenHeader.toLowerCase()
  const tokenKey = tokenStateKey(header)
  const getId = compilePointer(config.idPointer)
  const rolesPointers =
    typeof config.rolesPointers === 'string' ? [config.rolesPointers] : config.rolesPointers
  const getRoles = rolesPointers.map(compilePointer)
  const getScopes = config.scopesPointer === undefined ? undefined : compilePointer(config.scopesPointer)
  const buildClaims = compileClaims(config.claims, where)
  const maxTtlMs = config.cache.maxTtlSec * 1000
  const negativeTtlMs = config.cache.negativeTtlSec * 1000
  const client = new UserinfoClient({
    endpoint,
    method: config.method,
    timeoutMs: config.timeoutMs,
    connections: config.connections,
    maxResponseBytes: config.maxResponseBytes,
  })
  const cache = new VerdictCache<Principal, Outcome>({
    maxEntries: config.cache.maxEntries,
    maxTtlMs,
    maxNegativeEntries: config.cache.maxNegativeEntries,
    negativeTtlMs,
    now,
  })
  const front = bearerFront({
    method: 'userinfo-auth',
    header,
    maxTokenBytes: config.maxTokenBytes,
    realm: config.realm,
    audit,
    logger,
    now,
    outageMessage: 'userinfo call failed; requests are refused (503) until it works',
  })
  const { extract, missing, invalid, refused } = front

  /** Turns a 200 answer into a principal; an answer without an id is the endpoint's fault (503). */
  const toPrincipal = (record: Record<string, unknown>): Principal => {
    const raw = getId(record)
    const id =
      typeof raw === 'string' ? raw : typeof raw === 'number' && Number.isFinite(raw) ? String(raw) : ''
    if (id === '') throw new UserinfoFailure(`the answer has no string or number id at ${config.idPointer}`)
    const roles = new Set<string>()
    for (const g of getRoles) for (const r of stringList(g(record), false)) roles.add(r)
    const scopes = getScopes === undefined ? [] : [...new Set(stringList(getScopes(record), true))]
    return deepFreeze({
      id,
      type: 'user',
      scopes,
      roles: [...roles],
      claims: buildClaims(record),
      authMethod: 'userinfo',
    })
  }

  /** One endpoint call for `key`; the result is cached before anyone sees it. */
  const call = async (key: string, token: string, ctx: RequestContext): Promise<Outcome> => {
    let outcome: Outcome
    try {
      const answer = await client.fetch(token)
      outcome = answer.valid
        ? { valid: true, principal: toPrincipal(answer.record) }
        : { valid: false, reason: `the endpoint refused the token (${answer.status})` }
    } catch (err) {
      const reason = err instanceof UserinfoFailure ? err.message : 'unexpected error'
      front.outage(reason, ctx)
      throw err instanceof UserinfoFailure ? err : new UserinfoFailure(reason)
    }
    if (outcome.valid) cache.accept(key, outcome.principal, now() + maxTtlMs)
    else {
      cache.refuse(key)
      logger.debug({ requestId: ctx.id, route: ctx.routeName, reason: outcome.reason }, 'token refused')
    }
    return outcome
  }

  const resolveAsync = async (ctx: RequestContext, key: string, token: string): Promise<Principal> => {
    const flight = cache.once(key, () => call(key, token, ctx))
    let outcome: Outcome
    try {
      outcome = await flight
    } catch (err) {
      refused(
        ctx,
        err instanceof UserinfoFailure ? `userinfo failed: ${err.message}` : 'userinfo failed',
        'GW_ERR_AUTH_UNAVAILABLE',
      )
      throw new GatewayError('GW_ERR_AUTH_UNAVAILABLE', {
        detail: 'the access token cannot be verified right now',
        cause: err,
      })
    }
    if (!outcome.valid) {
      refused(ctx, outcome.reason)
      throw invalid()
    }
    setVerifiedTokenId(ctx, tokenKey, key)
    return outcome.principal
  }

  /**
   * The principal the request's token belongs to; undefined when the request carries no token;
   * throws a GatewayError for a token the endpoint refuses (401) or that cannot be checked (503).
   * Synchronous on a cache hit.
   */
  const authenticate = (ctx: RequestContext): Principal | undefined | Promise<Principal> => {
    const token = extract(ctx)
    if (token === undefined) return undefined
    // Keyed by the token's identity (jws-canonical.ts): a canonical spelling hits by its raw hash;
    // a JWS-shaped token in a non-canonical base64url spelling is refused before any call.
    const raw = tokenHash(token)
    let key = raw
    let hit = cache.get(raw)
    if (hit === undefined) {
      const ident = tokenIdentity(token, raw)
      if (ident === NOT_CANONICAL) {
        refused(ctx, 'non-canonical token encoding')
        throw invalid()
      }
      key = ident.id
      if (key !== raw) hit = cache.get(key)
    }
    if (hit !== undefined) {
      setVerifiedTokenId(ctx, tokenKey, key)
      return hit
    }
    if (cache.isRefused(key)) {
      refused(ctx, 'refused (cached)')
      throw invalid()
    }
    return resolveAsync(ctx, key, token)
  }

  return {
    authenticate,
    challenge: front.challenge,
    stripRequestHeaders: config.forwardToken ? undefined : [header],
    onRequest(ctx: RequestContext) {
      const r = authenticate(ctx)
      if (r === undefined) throw missing()
      if (r instanceof Promise) {
        return r.then((p) => {
          ctx.principal = p
        })
      }
      ctx.principal = r // synchronous: a cached token costs no promise
    },
    async close() {
      cache.close()
      await client.close()
    },
  }
}

/**
 * Opaque session tokens checked at a userinfo endpoint (OIDC UserInfo, or an application's own
 * `/me`): the token is sent as a bearer token, the answer becomes the principal. Answers are
 * cached (by SHA-256 of the token, at most `cache.maxTtlSec`), concurrent requests for one token
 * share one call, and every failure to get an answer fails closed with 503.
 */
export const userinfoAuth = definePolicy({
  id: 'userinfo-auth',
  priority: 7940,
  authenticates: true,
  description:
    "Authenticates opaque session tokens by calling a userinfo endpoint (OIDC UserInfo or an app's /me; cached, single flight, fail closed) and makes its answer the principal.",
  schema: UserinfoAuthConfig,
  create(config, deps) {
    // Routes holding the same (global) config object share one instance: one cache, one pool.
    return acquireAuthInstance(shared, config, () => build(config, deps))
  },
})
