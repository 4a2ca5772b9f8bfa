import { resolve } from 'node:path'
import type { Static } from '@sinclair/typebox'
import {
  NOT_REVOKED,
  openRevocations,
  REVOCATION_UNAVAILABLE,
  REVOKED,
  type Revocations,
} from '../../auth/revocation.js'
import { parseEndpoint } from '../../auth/endpoint.js'
import { NOT_CANONICAL, type TokenIdentity, tokenIdentity } from '../../auth/jws-canonical.js'
import { setVerifiedTokenId, tokenHash, tokenStateKey } from '../../auth/token.js'
import { acquireAuthInstance, type BuiltAuth, type SharedAuthInstances } from '../../auth/shared-instance.js'
import { VerdictCache } from '../../auth/verdict-cache.js'
import { bearerFront } from '../../auth/bearer-front.js'
import { GatewayError } from '../../gateway/errors.js'
import type { Principal, RequestContext } from '../../gateway/pipeline/context.js'
import { definePolicy, type PolicyDeps } from '../../gateway/pipeline/policy.js'
import { IntrospectionClient, IntrospectionFailure, type IntrospectionResponse } from './client.js'
import { OAuth2IntrospectionConfig } from './schema.js'

export { parseEndpoint } from '../../auth/endpoint.js'

/** What an active token resolves to; cached and shared by every request with that token. */
interface ActiveEntry {
  principal: Principal
  scopes: ReadonlySet<string>
  /** The response's `jti` member, for the revocation lists. */
  jti: string | undefined
  /** The token's identity (the cache key) and its other ECDSA spelling's hash, for revocation. */
  ident?: TokenIdentity
}

type Outcome = { active: true; entry: ActiveEntry; expiresAt: number } | { active: false; reason: string }

/** Response members never copied into the principal's claims (not RFC 7662 members; defence in depth). */
const NOT_CLAIMS = new Set(['token', 'access_token', 'refresh_token', 'id_token', 'client_secret'])

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const x of Object.values(v as object)) deepFreeze(x)
  }
  return v
}

type Config = Static<typeof OAuth2IntrospectionConfig>

/** Built instances by config object, with how many routes hold each. */
const shared: SharedAuthInstances = new WeakMap()

/** Everything the policy does for one config; create() shares it between routes. */
function build(config: Config, { logger, now, routeName, store, baseDir, audit }: PolicyDeps): BuiltAuth {
  const where = `oauth2-introspection (route ${routeName})`
  const endpoint = parseEndpoint(config.endpoint, where)
  if (config.clientId === undefined || config.clientId === '') {
    throw new Error(`${where}: \`clientId\` is required`)
  }
  if (config.clientSecret === undefined || config.clientSecret === '') {
    throw new Error(`${where}: \`clientSecret\` is required`)
  }
  const header = config.tokenHeader.toLowerCase()
  const tokenKey = tokenStateKey(header)
  const _maxTokenBytes = config.maxTokenBytes
  const required = config.requiredScopes
  const audience = config.audience.length > 0 ? new Set(config.audience) : undefined
  const issuer = config.issuer
  const maxTtlMs = config.cache.maxTtlSec * 1000
  const negativeTtlMs = config.cache.negativeTtlSec * 1000
  const realm = `realm="${config.realm}"`
  const challengeScope = `Bearer ${realm}, error="insufficient_scope", scope="${required.join(' ')}"`

  /** The revocation file and the shared list; opened last (below), once nothing else can throw. */
  let revocations: Revocations | undefined
  const client = new IntrospectionClient({
    endpoint,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    authMethod: config.clientAuthMethod,
    tokenTypeHint: config.tokenTypeHint,
    timeoutMs: config.timeoutMs,
    connections: config.connections,
    maxResponseBytes: config.maxResponseBytes,
  })
  const cache = new VerdictCache<ActiveEntry, Outcome>({
    maxEntries: config.cache.maxEntries,
    maxTtlMs,
    maxNegativeEntries: config.cache.maxNegativeEntries,
    negativeTtlMs,
    now,
  })
  const front = bearerFront({
    method: 'oauth2-introspection',
    header,
    maxTokenBytes: config.maxTokenBytes,
    realm: config.realm,
    audit,
    logger,
    now,
    outageMessage: 'token introspection failed; requests are refused (503) until it works',
  })
  const { extract, missing, invalid, refused } = front

  /** Turns an endpoint answer into an outcome; malformed members throw IntrospectionFailure. */
  const evaluate = (r: IntrospectionResponse): Outcome => {
    if (r.active !== true) return { active: false, reason: 'inactive' }
    const str = (name: string): string | undefined => {
      const v = r[name]
      if (v === undefined) return undefined
      if (typeof v !== 'string')
        throw new IntrospectionFailure(`the response member "${name}" is not a string`)
      return v
    }
    const t = now()
    const expRaw = r.exp
    if (expRaw !== undefined && (typeof expRaw !== 'number' || !Number.isFinite(expRaw))) {
      throw new IntrospectionFailure('the response member "exp" is not a number')
    }
    const expMs = expRaw === undefined ? undefined : expRaw * 1000
    if (expMs !== undefined && expMs <= t) return { active: false, reason: 'active, but exp is past' }
    const sub = str('sub')
    const username = str('username')
    const clientId = str('client_id')
    const scope = str('scope')
    const iss = str('iss')
    const audRaw = r.aud
    let aud: readonly string[] = []
    if (typeof audRaw === 'string') aud = [audRaw]
    else if (Array.isArray(audRaw) && audRaw.every((a) => typeof a === 'string')) aud = audRaw as string[]
    else if (audRaw !== undefined) throw new IntrospectionFailure('the response member "aud" is malformed')
    if (issuer !== false && iss !== issuer) return { active: false, reason: 'issuer mismatch' }
    if (audience !== undefined && !aud.some((a) => audience.has(a))) {
      return { active: false, reason: 'audience mismatch' }
    }
    const id = sub || username || clientId
    if (!id) return { active: false, reason: 'no sub, username or client_id in the response' }
    const scopes = scope === undefined ? [] : scope.split(' ').filter((s) => s !== '')
    const claims: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(r)) if (!NOT_CLAIMS.has(k)) claims[k] = v
    const principal: Principal = Object.freeze({
      id,
      type: sub ? 'user' : 'service',
      scopes: Object.freeze(scopes),
      roles: Object.freeze([]),
      claims: deepFreeze(claims),
      authMethod: 'oauth2-introspection',
    })
    const cap = t + maxTtlMs
    // RFC 7662 §2.2 / RFC 7519: jti is a string. Revocation by jti compares strings: a token with
    // another kind of jti could never be found in the list, so it is refused where revocation applies.
    if (r.jti !== undefined && typeof r.jti !== 'string' && revocations !== undefined) {
      return { active: false, reason: 'jti is not a string' }
    }
    const jti = typeof r.jti === 'string' ? r.jti : undefined
    return {
      active: true,
      entry: { principal, scopes: new Set(scopes), jti },
      expiresAt: expMs !== undefined && expMs < cap ? expMs : cap,
    }
  }

  /** One call to the endpoint for the token; the result is cached (by identity) before anyone sees it. */
  const introspect = async (ident: TokenIdentity, token: string, ctx: RequestContext): Promise<Outcome> => {
    const key = ident.id
    let outcome: Outcome
    try {
      outcome = evaluate(await client.introspect(token))
    } catch (err) {
      const reason = err instanceof IntrospectionFailure ? err.message : 'unexpected error'
      front.outage(reason, ctx)
      throw err instanceof IntrospectionFailure ? err : new IntrospectionFailure(reason)
    }
    if (outcome.active) {
      outcome.entry.ident = ident
      cache.accept(key, outcome.entry, outcome.expiresAt)
    } else {
      cache.refuse(key)
      logger.debug({ requestId: ctx.id, route: ctx.routeName, reason: outcome.reason }, 'token refused')
    }
    return outcome
  }

  const stateUnavailable = () =>
    new GatewayError('GW_ERR_STATE_UNAVAILABLE', {
      detail: 'the revocation list cannot be checked right now',
      headers: { 'retry-after': '5' },
    })
  /** Throws for a revoked token (401) or an unusable shared list (503). */
  const checkRevoked = (ctx: RequestContext, jti: string | undefined, ident: TokenIdentity): void => {
    const verdict = revocations?.check(jti, ident.id, ident.alt)
    if (verdict === REVOKED) {
      logger.info({ requestId: ctx.id, route: ctx.routeName }, 'oauth2-introspection: revoked token refused')
      refused(ctx, 'revoked')
      throw invalid()
    }
    if (verdict === REVOCATION_UNAVAILABLE) throw stateUnavailable()
  }

  const admit = (ctx: RequestContext, entry: ActiveEntry): Principal => {
    for (let i = 0; i < required.length; i++) {
      if (!entry.scopes.has(required[i] as string)) {
        // Set for the log phase: it can tell who was refused.
        ctx.principal = entry.principal
        throw new GatewayError('GW_ERR_FORBIDDEN', {
          detail: 'the access token lacks a required scope',
          headers: { 'www-authenticate': challengeScope },
        })
      }
    }
    return entry.principal
  }

  const resolveAsync = async (
    ctx: RequestContext,
    ident: TokenIdentity,
    token: string,
  ): Promise<Principal> => {
    const flight = cache.once(ident.id, () => introspect(ident, token, ctx))
    let outcome: Outcome
    try {
      outcome = await flight
    } catch (err) {
      refused(
        ctx,
        err instanceof IntrospectionFailure ? `introspection failed: ${err.message}` : 'introspection failed',
        'GW_ERR_AUTH_UNAVAILABLE',
      )
      throw new GatewayError('GW_ERR_AUTH_UNAVAILABLE', {
        detail: 'the access token cannot be verified right now',
        cause: err,
      })
    }
    if (!outcome.active) {
      refused(ctx, outcome.reason)
      throw invalid()
    }
    checkRevoked(ctx, outcome.entry.jti, ident)
    setVerifiedTokenId(ctx, tokenKey, ident.id)
    return admit(ctx, outcome.entry)
  }

  /**
   * The principal the request's token proves; undefined when the request carries no bearer token;
   * throws a GatewayError for a token that is there but not acceptable (401), lacks a required
   * scope (403) or cannot be checked (503). Synchronous on a cache hit.
   */
  const authenticate = (ctx: RequestContext): Principal | undefined | Promise<Principal> => {
    const token = extract(ctx)
    if (token === undefined) return undefined
    // The cache is keyed by the token's identity (the SHA-256 of its canonical form, also the
    // `sha256:` revocation entry). A canonical spelling hits by its raw hash at once; only other
    // spellings pay for the canonical form, and a JWS-shaped token in a non-canonical base64url
    // spelling is refused before any call.
    const raw = tokenHash(token)
    let hit = cache.get(raw)
    let ident: TokenIdentity
    if (hit !== undefined) ident = hit.ident ?? { id: raw, alt: undefined }
    else {
      const found = tokenIdentity(token, raw)
      if (found === NOT_CANONICAL) {
        refused(ctx, 'non-canonical token encoding')
        throw invalid()
      }
      ident = found
      if (ident.id !== raw) hit = cache.get(ident.id)
    }
    const key = ident.id
    if (hit !== undefined) {
      checkRevoked(ctx, hit.jti, ident)
      setVerifiedTokenId(ctx, tokenKey, key)
      return admit(ctx, hit)
    }
    if (cache.isRefused(key)) {
      refused(ctx, 'inactive (cached)')
      throw invalid()
    }
    if (revocations !== undefined) {
      const verdict = revocations.check(undefined, key, ident.alt)
      // Before the shared list's first snapshot: wait for it (bounded), then decide.
      const wait = verdict === REVOCATION_UNAVAILABLE ? revocations.whenReady() : undefined
      if (wait !== undefined) {
        return wait.then(() => {
          checkRevoked(ctx, undefined, ident)
          return resolveAsync(ctx, ident, token)
        })
      }
      if (verdict !== NOT_REVOKED) checkRevoked(ctx, undefined, ident) // throws
    }
    return resolveAsync(ctx, ident, token)
  }

  try {
    const file = config.revocation.file
    revocations = openRevocations(
      { ...config.revocation, file: file === undefined ? undefined : resolve(baseDir, file) },
      { store, logger, where },
    )
  } catch (err) {
    cache.close()
    void client.close()
    const code = (err as NodeJS.ErrnoException).code
    throw new Error(`${where}: revocation.file: ${code ?? (err as Error).message}`)
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
      revocations?.close()
      await client.close()
    },
  }
}

/**
 * OAuth 2.0 Token Introspection (RFC 7662) for opaque access tokens. The token is sent to the
 * authorization server's introspection endpoint; active answers are cached (by SHA-256 of the
 * token, until `exp` at the latest), concurrent requests for one token share one call, and every
 * failure to get an answer fails closed with 503.
 */
export const oauth2Introspection = definePolicy({
  id: 'oauth2-introspection',
  priority: 7950,
  authenticates: true,
  description:
    'Authenticates opaque bearer tokens with an RFC 7662 introspection endpoint (cached, single flight, fail closed) and makes the token owner the principal.',
  schema: OAuth2IntrospectionConfig,
  create(config, deps) {
    // Routes holding the same (global) config object share one instance: one cache, one pool.
    return acquireAuthInstance(shared, config, () => build(config, deps))
  },
})
