import { checkJwtAuth } from './check.js'
import { resolve } from 'node:path'
import {
  type CompactJWSHeaderParameters,
  type CryptoKey,
  errors,
  type JWTPayload,
  type JWTVerifyOptions,
  jwtVerify,
} from 'jose'
import type { Logger } from 'pino'
import { compilePrincipalBuilder } from '../../auth/principal.js'
import { openRevocations, REVOCATION_UNAVAILABLE, REVOKED, type Revocations } from '../../auth/revocation.js'
import {
  compileTokenExtractor,
  isToken68,
  TOKEN_MALFORMED,
  TOKEN_MISSING,
  type TokenExtractor,
  tokenHash,
} from '../../auth/token.js'
import { type AuditEmitter, noopAudit, requestFields } from '../../audit/event.js'
import { TtlLru } from '../../util/ttl-lru.js'
import { type ErrorCode, GatewayError } from '../../gateway/errors.js'
import type { Principal, RequestContext } from '../../gateway/pipeline/context.js'
import { definePolicy, type PolicyDeps, type PolicyInstance } from '../../gateway/pipeline/policy.js'
import type { Store } from '../../stores/types.js'
import type { KeyRecord } from './keys.js'
import { type CompiledRequirement, compileRequirements } from './requirements.js'
import { JwtAuthConfig } from './schema.js'
import { acquireKeySource, type KeySource, KeysUnavailableError, type SourceHandle } from './sources.js'

/** A token without a kid is tried against at most this many keys of its algorithm. */
const MAX_KEYS_WITHOUT_KID = 4
/** Retry-After on 503 when no keys are usable. */
const RETRY_AFTER_SEC = '5'

interface CachedToken {
  principal: Principal
  jti: string | undefined
  /** The key that verified the token: a hit needs it in the current key set. */
  key: KeyRecord
}

/** No key fits the token's header: an invalid token, never a reason to fetch keys again. */
class NoKeyError extends Error {}

/** Counters, for tests and the bench. */
export interface JwtAuthStats {
  /** Signature verifications started (each one is a jose jwtVerify with a resolved key). */
  verifications: number
  cacheHits: number
  rejected: number
}

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, '')}"`
}

/**
 * One jwt-auth instance (one per route). The cache-hit path is synchronous: extract, hash, look
 * up, check the key and the revocation list, set the principal. A miss verifies with jose.
 */
export class JwtAuth implements PolicyInstance {
  readonly stats: JwtAuthStats = { verifications: 0, cacheHits: 0, rejected: 0 }
  private readonly extract: TokenExtractor
  private readonly handle: SourceHandle
  private readonly source: KeySource
  /** The revocation file and the shared list (undefined when neither is configured). */
  private readonly revocations: Revocations | undefined
  /**
   * Verified tokens by SHA-256 (the cache holds no token), each until min(exp, maxTtl); only
   * successes are cached, so a cache can never turn a valid token invalid.
   */
  private readonly cache: TtlLru<CachedToken> | undefined
  private readonly maxTtlMs: number
  private readonly verifyOptions: JWTVerifyOptions
  private readonly skewSec: number
  private readonly maxLifetimeSec: number | undefined
  private readonly requirements: CompiledRequirement[]
  private readonly buildPrincipal: (claims: Record<string, unknown>) => Principal | undefined
  /** The challenge for a missing token (used by a route's `authentication: anyOf`). */
  readonly challenge: string
  readonly stripRequestHeaders: readonly string[] | undefined
  private readonly challenges: {
    missing: Record<string, string>
    invalid: Record<string, string>
    malformed: Record<string, string>
    expired: Record<string, string>
    unavailable: Record<string, string>
    stateUnavailable: Record<string, string>
  }
  private readonly stepUpChallenge: Map<CompiledRequirement, Record<string, string>>

  constructor(
    config: JwtAuthConfig,
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly routeName: string,
    /** The configured store, for the shared revocation list (none: the file only). */
    store?: Store,
    private readonly audit: AuditEmitter = noopAudit,
  ) {
    this.extract = compileTokenExtractor({
      header: config.token.header,
      scheme: config.token.scheme,
      cookie: config.token.cookie,
      maxBytes: config.token.maxBytes,
    })
    this.requirements = compileRequirements(config.requireClaims)
    if (config.principal.serviceClaim !== undefined && config.principal.serviceValues.length === 0) {
      throw new Error('jwt-auth: principal.serviceClaim needs serviceValues')
    }
    this.buildPrincipal = compilePrincipalBuilder({
      idClaim: config.principal.idClaim,
      rolesClaims: config.principal.rolesClaims,
      serviceClaim:
        config.principal.serviceClaim === undefined
          ? undefined
          : { claim: config.principal.serviceClaim, values: config.principal.serviceValues },
      authMethod: 'jwt',
    })
    const required = new Set(['exp', ...config.requiredClaims])
    this.verifyOptions = {
      algorithms: [...config.algorithms],
      issuer: config.issuer,
      audience: config.audience,
      clockTolerance: config.clockSkewSec,
      requiredClaims: [...required],
      typ: config.typ,
    }
    this.skewSec = config.clockSkewSec
    this.maxLifetimeSec = config.maxLifetimeSec
    this.maxTtlMs = config.cache.maxTtlSec * 1000
    this.cache = config.cache.enabled ? new TtlLru<CachedToken>(config.cache.maxEntries, now) : undefined
    const realm = `Bearer realm=${quote(config.realm)}`
    const h = (v: string) => Object.freeze({ 'www-authenticate': v })
    this.challenge = realm
    this.stripRequestHeaders =
      config.token.forward || config.token.cookie !== undefined
        ? undefined
        : [config.token.header.toLowerCase()]
    this.challenges = {
      missing: h(realm),
      invalid: h(`${realm}, error="invalid_token"`),
      malformed: h(`${realm}, error="invalid_request"`),
      expired: h(`${realm}, error="invalid_token", error_description="The access token expired"`),
      unavailable: Object.freeze({ 'retry-after': RETRY_AFTER_SEC }),
      stateUnavailable: Object.freeze({ 'retry-after': RETRY_AFTER_SEC }),
    }
    this.stepUpChallenge = new Map(
      this.requirements.map((r) => [
        r,
        h(
          `${realm}, error="insufficient_user_authentication", error_description="A different authentication level is required"${
            r.acrValues ? `, acr_values=${quote(r.acrValues.join(' '))}` : ''
          }`,
        ),
      ]),
    )
    if (config.audience === undefined) {
      logger.warn(
        { route: routeName },
        'jwt-auth: no audience configured: tokens issued for any API are accepted',
      )
    }
    if (config.issuer === undefined && config.keys === undefined) {
      logger.warn({ route: routeName }, 'jwt-auth: no issuer configured: iss is not checked')
    }
    // Keys last: the checks above throw before any fetch loop or file watch starts.
    this.handle = acquireKeySource(config, logger, now)
    this.source = this.handle.source
    try {
      this.revocations = openRevocations(config.revocation, {
        store,
        logger,
        where: `jwt-auth (route ${routeName})`,
      })
    } catch (err) {
      this.handle.release()
      const code = (err as NodeJS.ErrnoException).code
      throw new Error(`jwt-auth: revocation.file: ${code ?? (err as Error).message}`)
    }
  }

  onRequest(ctx: RequestContext): void | Promise<void> {
    const r = this.authenticate(ctx)
    if (r === undefined) throw this.refuse(ctx, 'GW_ERR_AUTH_MISSING', 'no token', this.challenges.missing)
    if (r instanceof Promise) {
      return r.then((p) => {
        ctx.principal = p
      })
    }
    ctx.principal = r
  }

  /**
   * The principal the request's token proves; undefined when the request carries no token;
   * throws a GatewayError for a token that is there but not acceptable. Synchronous on a cache hit.
   */
  authenticate(ctx: RequestContext): Principal | undefined | Promise<Principal> {
    const token = this.extract(ctx.req)
    if (typeof token !== 'string') {
      if (token === TOKEN_MISSING) return undefined
      throw this.refuse(
        ctx,
        'GW_ERR_AUTH_INVALID',
        token === TOKEN_MALFORMED ? 'malformed credentials' : 'token too large',
        token === TOKEN_MALFORMED ? this.challenges.malformed : this.challenges.invalid,
      )
    }
    const hash = tokenHash(token)
    const cache = this.cache
    if (cache !== undefined) {
      const hit = cache.get(hash)
      if (hit !== undefined) {
        const keys = this.source.current()
        if (keys?.records.has(hit.key)) {
          const verdict = this.revocations?.check(hit.jti, hash)
          if (verdict === REVOKED) {
            cache.delete(hash)
            throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'revoked', this.challenges.invalid)
          }
          if (verdict === REVOCATION_UNAVAILABLE) throw this.revocationUnavailable(ctx)
          this.stats.cacheHits++
          return hit.principal
        }
        // The key that verified it is gone (rotated out) or the keys are stale: verify again.
        cache.delete(hash)
      }
    }
    const rv = this.revocations
    if (rv !== undefined) {
      const verdict = rv.check(undefined, hash)
      if (verdict === REVOKED) {
        throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'revoked (token hash)', this.challenges.invalid)
      }
      if (verdict === REVOCATION_UNAVAILABLE) {
        // Before the shared list's first snapshot: wait for it (bounded), then decide.
        const wait = rv.whenReady()
        if (wait === undefined) throw this.revocationUnavailable(ctx)
        return wait.then(() => {
          const again = rv.check(undefined, hash)
          if (again === REVOKED) {
            throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'revoked (token hash)', this.challenges.invalid)
          }
          if (again === REVOCATION_UNAVAILABLE) throw this.revocationUnavailable(ctx)
          return this.verify(ctx, token, hash)
        })
      }
    }
    return this.verify(ctx, token, hash)
  }

  /** 503: the shared revocation list cannot be trusted now (not synced yet, or stale). */
  private revocationUnavailable(ctx: RequestContext): GatewayError {
    return this.refuse(
      ctx,
      'GW_ERR_STATE_UNAVAILABLE',
      'shared revocation list unavailable',
      this.challenges.stateUnavailable,
    )
  }

  private async verify(ctx: RequestContext, token: string, hash: string): Promise<Principal> {
    if (!isToken68(token))
      throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'malformed token', this.challenges.invalid)
    const now = this.now()
    const options: JWTVerifyOptions = { ...this.verifyOptions, currentDate: new Date(now) }
    let used: KeyRecord | undefined
    let others: KeyRecord[] = []
    const source = this.source
    const getKey = async (header: CompactJWSHeaderParameters): Promise<CryptoKey> => {
      // jose has checked `alg` against the allowlist before calling this. jku, x5u, jwk and x5c
      // are never looked at: keys come from the configured source only.
      if (header.kid !== undefined && typeof header.kid !== 'string')
        throw new NoKeyError('kid is not a string')
      const kid = header.kid
      let set = source.current() ?? (await source.ready())
      let found = set.candidates(kid, header.alg)
      if (found.length === 0 && kid !== undefined && !set.hasKid(kid)) {
        set = await source.refreshForUnknownKid()
        found = set.candidates(kid, header.alg)
      }
      if (found.length === 0)
        throw new NoKeyError(
          kid === undefined
            ? 'no key for the algorithm'
            : set.hasKid(kid)
              ? 'kid of a key of another algorithm'
              : 'unknown kid',
        )
      if (kid === undefined && found.length > MAX_KEYS_WITHOUT_KID)
        throw new NoKeyError('no kid, too many keys')
      used = found[0] as KeyRecord
      others = found.slice(1)
      this.stats.verifications++
      return used.key
    }
    let payload: JWTPayload
    try {
      payload = (await jwtVerify(token, getKey, options)).payload
    } catch (err) {
      let recovered: JWTPayload | undefined
      // Without a kid, several keys may fit: try the others (bounded by MAX_KEYS_WITHOUT_KID).
      if (err instanceof errors.JWSSignatureVerificationFailed) {
        for (const k of others) {
          this.stats.verifications++
          try {
            recovered = (await jwtVerify(token, k.key, options)).payload
            used = k
            break
          } catch (e) {
            if (!(e instanceof errors.JWSSignatureVerificationFailed)) throw this.fromJose(ctx, e)
          }
        }
      }
      if (recovered === undefined) throw this.fromJose(ctx, err)
      payload = recovered
    }
    const key = used as KeyRecord
    this.logger.debug(
      { requestId: ctx.id, route: this.routeName, kid: key.kid, alg: key.alg },
      'jwt verified',
    )
    const nowSec = now / 1000
    const exp = payload.exp as number // required, and a number (jose checked)
    const iat = payload.iat
    if (iat !== undefined && iat > nowSec + this.skewSec) {
      throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'iat in the future', this.challenges.invalid)
    }
    if (this.maxLifetimeSec !== undefined) {
      if (typeof iat !== 'number')
        throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'no iat', this.challenges.invalid)
      if (exp - iat > this.maxLifetimeSec) {
        throw this.refuse(
          ctx,
          'GW_ERR_AUTH_INVALID',
          `lifetime ${exp - iat} s over maxLifetimeSec`,
          this.challenges.invalid,
        )
      }
    }
    const jti = typeof payload.jti === 'string' ? payload.jti : undefined
    const verdict = this.revocations?.check(jti, hash)
    if (verdict === REVOKED) {
      throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'revoked (jti)', this.challenges.invalid)
    }
    if (verdict === REVOCATION_UNAVAILABLE) throw this.revocationUnavailable(ctx)
    for (const r of this.requirements) {
      if (!r.test(payload)) {
        throw this.refuse(
          ctx,
          'GW_ERR_STEP_UP_REQUIRED',
          `step-up: ${r.describe}`,
          this.stepUpChallenge.get(r) as Record<string, string>,
        )
      }
    }
    const principal = this.buildPrincipal(payload)
    if (principal === undefined)
      throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'no principal id', this.challenges.invalid)
    this.cache?.set(hash, { principal, jti, key }, Math.min(exp * 1000, now + this.maxTtlMs))
    return principal
  }

  /** Maps a verification failure to the client's error; the reason goes to the log only. */
  private fromJose(ctx: RequestContext, err: unknown): GatewayError {
    if (err instanceof KeysUnavailableError) {
      return this.refuse(
        ctx,
        'GW_ERR_AUTH_UNAVAILABLE',
        `keys unavailable: ${err.message}`,
        this.challenges.unavailable,
      )
    }
    if (err instanceof NoKeyError)
      return this.refuse(ctx, 'GW_ERR_AUTH_INVALID', err.message, this.challenges.invalid)
    if (err instanceof errors.JWTExpired) {
      return this.refuse(ctx, 'GW_ERR_TOKEN_EXPIRED', 'expired', this.challenges.expired)
    }
    let reason: string
    // Never log the error object of a claim failure: it carries the claims.
    if (err instanceof errors.JWTClaimValidationFailed) reason = `claim ${err.claim}: ${err.reason}`
    else if (err instanceof errors.JOSEAlgNotAllowed) reason = 'algorithm not allowed'
    else if (err instanceof errors.JWSSignatureVerificationFailed) reason = 'bad signature'
    else if (err instanceof errors.JOSEError) reason = `${err.code}: ${err.message}`
    else if (err instanceof TypeError) reason = `key/algorithm: ${err.message}`
    else {
      reason = 'unexpected verification failure'
      this.logger.warn({ requestId: ctx.id, errName: (err as Error)?.name }, 'jwt-auth: unexpected error')
    }
    return this.refuse(ctx, 'GW_ERR_AUTH_INVALID', reason, this.challenges.invalid)
  }

  private refuse(
    ctx: RequestContext,
    code: ErrorCode,
    reason: string,
    headers: Record<string, string>,
  ): GatewayError {
    this.stats.rejected++
    const level =
      code === 'GW_ERR_AUTH_MISSING' ? 'debug' : code === 'GW_ERR_AUTH_UNAVAILABLE' ? 'warn' : 'info'
    this.logger[level]({ requestId: ctx.id, route: this.routeName, code, reason }, 'jwt-auth: refused')
    // A token that was there and was refused; a missing one is the request's `deny` record only.
    if (code !== 'GW_ERR_AUTH_MISSING') {
      this.audit.emit({
        type: 'auth.failure',
        ...requestFields(ctx),
        decision: code === 'GW_ERR_AUTH_UNAVAILABLE' ? 'error' : 'deny',
        code,
        reason,
        data: { method: 'jwt' },
      })
    }
    return new GatewayError(code, { headers })
  }

  close(): void {
    this.cache?.clear()
    this.revocations?.close()
    this.handle.release()
  }
}

/**
 * JWT bearer authentication (OWASP API2): verifies the token's signature with keys from the
 * configured source (static, JWKS file, JWKS URL or OIDC discovery), its claims, revocation and
 * step-up requirements, and sets the principal.
 */
export const jwtAuth = definePolicy({
  id: 'jwt-auth',
  priority: 8000,
  check: (config) => checkJwtAuth(config),
  authenticates: true,
  description:
    'Verifies a JWT bearer token (signature with keys from static PEM/JWK, a JWKS file, a JWKS URL or OIDC discovery; exp/nbf/iss/aud/typ; lifetime; revocation; step-up claims) and sets the principal.',
  schema: JwtAuthConfig,
  create(config, deps: PolicyDeps) {
    // File paths are relative to the config file's directory.
    const at = (p: string | undefined) => (p === undefined ? undefined : resolve(deps.baseDir, p))
    const resolved = {
      ...config,
      ...(config.jwksFile !== undefined ? { jwksFile: at(config.jwksFile) } : {}),
      revocation: {
        ...config.revocation,
        ...(config.revocation.file !== undefined ? { file: at(config.revocation.file) } : {}),
      },
    } as typeof config
    return new JwtAuth(resolved, deps.logger, deps.now, deps.routeName, deps.store, deps.audit)
  },
})
