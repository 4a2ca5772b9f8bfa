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
import {
  canonicalJwsSegments,
  type JwsSegments,
  jwsIdentity,
  type TokenIdentity,
} from '../../auth/jws-canonical.js'
import { compilePrincipalBuilder } from '../../auth/principal.js'
import { openRevocations, REVOCATION_UNAVAILABLE, REVOKED, type Revocations } from '../../auth/revocation.js'
import {
  compileTokenExtractor,
  setVerifiedTokenId,
  TOKEN_MALFORMED,
  TOKEN_MISSING,
  type TokenExtractor,
  tokenHash,
  tokenStateKey,
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
  /** The token's identity: the cache key, and the hashes revocation entries are looked up by. */
  ident: TokenIdentity
  /** When the entry ends (ms): an alias for the other ECDSA spelling ends with it. */
  expiresAt: number
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
   * Verified tokens by identity (the SHA-256 of the canonical form; the cache holds no token),
   * each until min(exp, maxTtl); only successes are cached, so a cache can never turn a valid
   * token invalid. Every accepted spelling of a token finds the same entry.
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
  /** Where the accepted token's identity is recorded for rate-limit keys (header tokens only). */
  private readonly tokenKey: string | undefined
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
    this.tokenKey = config.token.cookie === undefined ? tokenStateKey(config.token.header) : undefined
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
    const raw = tokenHash(token)
    const cache = this.cache
    // The cache is keyed by identity; a token in its canonical spelling (nearly every request) has
    // its raw hash as identity and hits at once. The other ECDSA spelling, once seen, has an alias
    // entry under its raw hash (the same entry object). Only a first sight pays for the canonical
    // form; entries exist only for verified tokens, so a raw hit is a spelling already accepted.
    let hit = cache?.get(raw)
    let seg: JwsSegments | undefined
    let ident: TokenIdentity | undefined
    if (hit === undefined) {
      seg = canonicalJwsSegments(token)
      if (seg === undefined) {
        throw this.refuse(
          ctx,
          'GW_ERR_AUTH_INVALID',
          'malformed token (not canonical JWS)',
          this.challenges.invalid,
        )
      }
      ident = jwsIdentity(token, seg, raw)
      if (cache !== undefined && ident.id !== raw) {
        hit = cache.get(ident.id)
        if (hit !== undefined) cache.set(raw, hit, hit.expiresAt)
      }
    }
    if (hit !== undefined) {
      const c = cache as TtlLru<CachedToken>
      const keys = this.source.current()
      if (keys?.records.has(hit.key)) {
        const verdict = this.revocations?.check(hit.jti, hit.ident.id, hit.ident.alt)
        if (verdict === REVOKED) {
          c.delete(hit.ident.id)
          c.delete(raw)
          throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'revoked', this.challenges.invalid)
        }
        if (verdict === REVOCATION_UNAVAILABLE) throw this.revocationUnavailable(ctx)
        this.stats.cacheHits++
        if (this.tokenKey !== undefined) setVerifiedTokenId(ctx, this.tokenKey, hit.ident.id)
        return hit.principal
      }
      // The key that verified it is gone (rotated out) or the keys are stale: verify again.
      c.delete(hit.ident.id)
      c.delete(raw)
      ident = hit.ident
      seg ??= canonicalJwsSegments(token) // a hit: the token is canonical
    }
    const segments = seg as JwsSegments
    const id = ident as TokenIdentity
    const rv = this.revocations
    if (rv !== undefined) {
      const verdict = rv.check(undefined, id.id, id.alt)
      if (verdict === REVOKED) {
        throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'revoked (token hash)', this.challenges.invalid)
      }
      if (verdict === REVOCATION_UNAVAILABLE) {
        // Before the shared list's first snapshot: wait for it (bounded), then decide.
        const wait = rv.whenReady()
        if (wait === undefined) throw this.revocationUnavailable(ctx)
        return wait.then(() => {
          const again = rv.check(undefined, id.id, id.alt)
          if (again === REVOKED) {
            throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'revoked (token hash)', this.challenges.invalid)
          }
          if (again === REVOCATION_UNAVAILABLE) throw this.revocationUnavailable(ctx)
          return this.verify(ctx, token, segments, id, raw)
        })
      }
    }
    return this.verify(ctx, token, segments, id, raw)
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

  private async verify(
    ctx: RequestContext,
    token: string,
    seg: JwsSegments,
    ident: TokenIdentity,
    raw: string,
  ): Promise<Principal> {
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
    // RFC 8017 I2OSP: an RSA signature is exactly as long as the modulus. The verifier refuses
    // other lengths too; checked here so that the canonical form does not depend on it.
    if (key.sigChars !== undefined && token.length - seg.dot2 - 1 !== key.sigChars) {
      throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'RSA signature length', this.challenges.invalid)
    }
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
    // RFC 7519 §4.1.7: jti is a string. Revocation by jti compares strings: a token with another
    // kind of jti could never be found in the list, so it is refused wherever revocation applies.
    const rawJti = payload.jti
    if (rawJti !== undefined && typeof rawJti !== 'string' && this.revocations !== undefined) {
      throw this.refuse(ctx, 'GW_ERR_AUTH_INVALID', 'jti is not a string', this.challenges.invalid)
    }
    const jti = typeof rawJti === 'string' ? rawJti : undefined
    const verdict = this.revocations?.check(jti, ident.id, ident.alt)
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
    const expiresAt = Math.min(exp * 1000, now + this.maxTtlMs)
    const entry: CachedToken = { principal, jti, key, ident, expiresAt }
    this.cache?.set(ident.id, entry, expiresAt)
    // Sent in the other ECDSA spelling: an alias under its raw hash, so that it hits at once too.
    if (raw !== ident.id) this.cache?.set(raw, entry, expiresAt)
    if (this.tokenKey !== undefined) setVerifiedTokenId(ctx, this.tokenKey, ident.id)
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
