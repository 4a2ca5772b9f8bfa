/**
 * jwt-auth's config rules beyond the schema, for the loader's check (config check, serve,
 * reload): where keys come from, and static keys that can verify something (an HMAC secret long
 * enough for its algorithm, a public key of a supported type).
 */
import { isAbsolute } from 'node:path'
import type { PolicyProblem } from '../../gateway/pipeline/policy.js'
import { checkJwk, KeyError, pemToJwk, prepareJwk } from './keys.js'
import type { JwsAlgorithm, JwtAuthConfig } from './schema.js'

/** RFC 7518 §3.2: an HMAC key at least as long as the hash output. */
const HMAC_MIN_BYTES: Partial<Record<JwsAlgorithm, number>> = { HS256: 32, HS384: 48, HS512: 64 }

export function checkJwtAuth(config: JwtAuthConfig): PolicyProblem[] {
  const out: PolicyProblem[] = []
  const given = [
    config.keys !== undefined,
    config.jwksFile !== undefined,
    config.jwksUrl !== undefined,
    config.discovery,
  ]
  if (given.filter(Boolean).length !== 1)
    out.push({ path: [], message: 'set exactly one of keys, jwksFile, jwksUrl or discovery: true' })
  if (config.jwksFile !== undefined && !isAbsolute(config.jwksFile))
    out.push({ path: ['jwksFile'], message: `must be an absolute path, found "${config.jwksFile}"` })
  if (config.discovery && config.issuer === undefined)
    out.push({
      path: ['discovery'],
      message: 'discovery needs issuer (its /.well-known/openid-configuration)',
    })
  if (config.remote.maxStaleMs < config.remote.refreshIntervalMs)
    out.push({ path: ['remote', 'maxStaleMs'], message: 'must be at least remote.refreshInterval' })
  const allowed = new Set<JwsAlgorithm>(config.algorithms)
  config.keys?.forEach((k, i) => {
    const path = ['keys', i]
    if ((k.pem === undefined) === (k.jwk === undefined)) {
      out.push({ path, message: 'set exactly one of pem or jwk' })
      return
    }
    let raw: unknown
    try {
      raw = k.pem !== undefined ? pemToJwk(k.pem) : JSON.parse(k.jwk as string)
    } catch (err) {
      out.push({
        path: [...path, k.pem !== undefined ? 'pem' : 'jwk'],
        message: err instanceof KeyError ? err.message : 'not JSON',
      })
      return
    }
    const short = shortSecret(raw, allowed, k.alg)
    if (short !== undefined) {
      out.push({
        path: [...path, 'jwk'],
        message: `an HMAC secret of ${short.bytes} bytes is too short for ${short.algs.join(', ')}`,
        hint: `use at least ${short.min} random bytes (RFC 7518 §3.2), e.g. openssl rand -base64 ${short.min}`,
      })
      return
    }
    const p = prepareJwk(raw, allowed, { kid: k.kid, alg: k.alg })
    if (typeof p === 'string') {
      out.push({ path, message: p })
      return
    }
    try {
      checkJwk(p)
    } catch (err) {
      out.push({ path, message: (err as Error).message })
    }
  })
  return out
}

/** An `oct` JWK whose secret is shorter than every HS algorithm it could be used with needs. */
function shortSecret(
  raw: unknown,
  allowed: ReadonlySet<JwsAlgorithm>,
  alg: JwsAlgorithm | undefined,
): { bytes: number; algs: JwsAlgorithm[]; min: number } | undefined {
  if (raw === null || typeof raw !== 'object') return undefined
  const j = raw as { kty?: unknown; k?: unknown; alg?: unknown }
  if (j.kty !== 'oct' || typeof j.k !== 'string') return undefined
  const own = alg ?? (typeof j.alg === 'string' ? (j.alg as JwsAlgorithm) : undefined)
  const algs = (Object.keys(HMAC_MIN_BYTES) as JwsAlgorithm[]).filter(
    (a) => allowed.has(a) && (own === undefined || a === own),
  )
  if (algs.length === 0) return undefined
  const bytes = Buffer.from(j.k, 'base64url').length
  const min = Math.min(...algs.map((a) => HMAC_MIN_BYTES[a] ?? 0))
  return bytes < min ? { bytes, algs, min } : undefined
}
