/**
 * Admin API: token revocations shared through the store (the replicated map `revocations`). A write
 * goes to the store, then this gateway's mirror is refreshed so that it applies the change at once;
 * other gateways sharing the store (Redis) see it on their mirror's next poll.
 *
 *   GET    /v1/revocations?limit=&cursor=   list (ordered by id, paginated)
 *   POST   /v1/revocations                   { jti | tokenSha256 | token, expiresAt?, reason? } → 201
 *          (`token`: stored as the SHA-256 of its canonical form, see auth/jws-canonical.ts)
 *   GET    /v1/revocations/{id}              one entry (`jti:…` or `sha256:…`, percent-encoded)
 *   DELETE /v1/revocations/{id}              → 204, or 404 when there is no such entry
 */
import {
  decodeRevocationRecord,
  encodeRevocationRecord,
  MAX_JTI_LENGTH,
  MAX_REASON_LENGTH,
  parseRevocationId,
  REVOCATIONS_MAP,
  type RevocationId,
  SharedRevocations,
} from '../auth/revocation.js'
import { decodeBase64urlStrict, NOT_CANONICAL, tokenIdentity } from '../auth/jws-canonical.js'
import { tokenHash } from '../auth/token.js'
import { GatewayError } from '../gateway/errors.js'
import type { MapEntry } from '../stores/types.js'
import type { AdminModule, AdminModuleContext } from './api.js'
import { encodeCursor, invalid, parseListQuery, storeFailure } from './list.js'
import type { AdminRequest, AdminResponse } from './router.js'

/** Longest time a revocation may be asked to last (`expiresAt` beyond it is refused): 366 days. */
export const MAX_REVOCATION_TTL_SECONDS = 31622400
/**
 * Every entry is kept this much longer than asked: jwt-auth accepts a token up to `clockSkewSec`
 * (at most 600 s) past its `exp`, and its revocation must outlive that.
 */
export const REVOCATION_MARGIN_MS = 600_000
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './list.js'

/** An entry as the API shows it. */
export interface RevocationItem {
  id: string
  type: 'jti' | 'sha256' | 'unknown'
  jti?: string
  tokenSha256?: string
  reason?: string
  /** RFC 3339. */
  createdAt?: string
  /** RFC 3339; null: never expires (not written by the API). */
  expiresAt: string | null
}

const BODY_FIELDS = new Set(['jti', 'tokenSha256', 'token', 'expiresAt', 'reason'])
const SHA256_HEX = /^[0-9a-fA-F]{64}$/
/** The bare token: visible ASCII (no scheme, no spaces), as the gateway hashes it. */
const BARE_TOKEN = /^[\x21-\x7e]+$/
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/
const CONTROL = /[\x00-\x1f\x7f]/
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function iso(ms: number): string {
  return new Date(ms).toISOString()
}

function toItem(id: string, entry: MapEntry): RevocationItem {
  const parsed = parseRevocationId(id)
  const rec = decodeRevocationRecord(entry.value)
  const item: RevocationItem = { id, type: parsed?.kind ?? 'unknown', expiresAt: null }
  if (parsed?.kind === 'jti') item.jti = parsed.value
  if (parsed?.kind === 'sha256') item.tokenSha256 = parsed.value
  if (rec.reason !== undefined) item.reason = rec.reason
  if (rec.createdAt !== undefined) item.createdAt = iso(rec.createdAt)
  if (entry.expiresAt !== undefined) item.expiresAt = iso(entry.expiresAt)
  return item
}

/** The `exp` of a JWS compact token, in ms (unverified: it only sets how long the entry stays). */
function jwtExpMs(token: string): number | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  try {
    const bytes = decodeBase64urlStrict(parts[1] as string)
    if (bytes === undefined) return undefined
    const payload = JSON.parse(bytes.toString('utf8')) as unknown
    const exp = (payload as { exp?: unknown } | null)?.exp
    return typeof exp === 'number' && Number.isFinite(exp) && exp > 0 ? exp * 1000 : undefined
  } catch {
    return undefined
  }
}

function parseExpiresAt(v: unknown, now: number): number {
  let ms: number
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v <= 0) throw invalid('expiresAt', 'expected seconds since the epoch')
    ms = v * 1000
  } else if (typeof v === 'string' && RFC3339.test(v)) {
    ms = Date.parse(v)
    if (Number.isNaN(ms)) throw invalid('expiresAt', 'not a valid date-time')
  } else {
    throw invalid(
      'expiresAt',
      'expected seconds since the epoch (a number, as a JWT `exp`) or an RFC 3339 date-time (a string)',
    )
  }
  if (ms <= now) throw invalid('expiresAt', 'is in the past (an expired token needs no revocation)')
  if (ms - now > MAX_REVOCATION_TTL_SECONDS * 1000) {
    throw invalid('expiresAt', `is more than ${MAX_REVOCATION_TTL_SECONDS} seconds (366 days) away`)
  }
  return Math.ceil(ms)
}

/** The entry a POST body asks for (validated): its id, why, until when (ms), and what form was used. */
function parseCreate(
  body: unknown,
  now: number,
  defaultTtlMs: number,
): { id: RevocationId; reason: string | undefined; expiresAt: number; via: string } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new GatewayError('GW_ERR_VALIDATION', { detail: 'the body must be a JSON object' })
  }
  const o = body as Record<string, unknown>
  for (const k of Object.keys(o)) if (!BODY_FIELDS.has(k)) throw invalid(k, 'unknown field')
  const given = (['jti', 'tokenSha256', 'token'] as const).filter((k) => o[k] !== undefined)
  if (given.length === 0) throw invalid('jti', 'one of jti, tokenSha256 or token is required')
  if (given.length > 1) throw invalid(given[1] as string, 'give only one of jti, tokenSha256 or token')
  const via = given[0] as 'jti' | 'tokenSha256' | 'token'
  let id: RevocationId | undefined
  let tokenExp: number | undefined
  if (via === 'jti') {
    const v = o.jti
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_JTI_LENGTH || LONE_SURROGATE.test(v)) {
      throw invalid('jti', `expected a string of 1 to ${MAX_JTI_LENGTH} characters`)
    }
    id = parseRevocationId(`jti:${v}`)
  } else if (via === 'tokenSha256') {
    const v = o.tokenSha256
    if (typeof v !== 'string' || !SHA256_HEX.test(v)) {
      throw invalid('tokenSha256', 'expected the SHA-256 of the token as 64 hex digits')
    }
    id = parseRevocationId(`sha256:${v}`)
  } else {
    const v = o.token
    if (typeof v !== 'string' || !BARE_TOKEN.test(v)) {
      throw invalid('token', 'expected the bare token (visible ASCII, no scheme, no spaces)')
    }
    // The entry is the token's identity (its canonical form, jws-canonical.ts): the SHA-256 of the
    // token for every token the gateway accepts, the low-s spelling's for an ECDSA one.
    const ident = tokenIdentity(v, tokenHash(v))
    if (ident === NOT_CANONICAL) {
      throw invalid(
        'token',
        'a JWS in a non-canonical base64url spelling (padding, unused bits or the standard alphabet): the gateway refuses it anyway; give the token as issued',
      )
    }
    id = parseRevocationId(`sha256:${ident.id}`)
    tokenExp = jwtExpMs(v)
  }
  if (id === undefined) throw invalid(via, 'not a valid revocation') // unreachable: validated above
  let reason: string | undefined
  if (o.reason !== undefined) {
    const r = o.reason
    if (typeof r !== 'string' || r.length > MAX_REASON_LENGTH || CONTROL.test(r) || LONE_SURROGATE.test(r)) {
      throw invalid(
        'reason',
        `expected a string of at most ${MAX_REASON_LENGTH} characters, no control characters`,
      )
    }
    reason = r
  }
  let expiresAt: number
  if (o.expiresAt !== undefined) expiresAt = parseExpiresAt(o.expiresAt, now)
  else if (tokenExp !== undefined && tokenExp > now && tokenExp - now <= MAX_REVOCATION_TTL_SECONDS * 1000) {
    expiresAt = Math.ceil(tokenExp)
  } else expiresAt = now + defaultTtlMs
  return { id, reason, expiresAt, via }
}

/** The revocations part of the admin API. */
export function revocationsModule(ctx: AdminModuleContext): AdminModule {
  const { store, logger, now } = ctx
  const maps = store.maps
  const shared = new SharedRevocations(store, { logger })
  const defaultTtlMs = ctx.config.revocationDefaultTtlSeconds * 1000

  /** After a write: this gateway applies it at once (the write itself has succeeded either way). */
  const refresh = async (req: AdminRequest) => {
    try {
      await shared.refresh()
    } catch (err) {
      logger.warn(
        { requestId: req.id, err: (err as Error).message },
        'revocation stored; this gateway applies it on its next poll of the store',
      )
    }
  }

  const parseId = (req: AdminRequest): RevocationId => {
    const id = parseRevocationId(req.params.id as string)
    if (id === undefined) throw invalid('id', 'expected jti:<value> or sha256:<64 hex digits>')
    return id
  }

  const list = async (req: AdminRequest): Promise<AdminResponse> => {
    const { limit, after } = parseListQuery(req.query, 4 * MAX_JTI_LENGTH)
    try {
      await shared.refresh()
    } catch (err) {
      throw storeFailure(err, 'revocation list')
    }
    const t = now()
    const ids: string[] = []
    const entries = new Map<string, MapEntry>()
    for (const [k, e] of shared.entries()) {
      if (e.expiresAt !== undefined && e.expiresAt <= t) continue
      if (after !== undefined && !(k > after)) continue
      ids.push(k)
      entries.set(k, e)
    }
    ids.sort()
    const page = ids.slice(0, limit)
    const items = page.map((k) => toItem(k, entries.get(k) as MapEntry))
    const body: { items: RevocationItem[]; nextCursor?: string } = { items }
    if (ids.length > limit) body.nextCursor = encodeCursor(page[page.length - 1] as string)
    return { status: 200, body }
  }

  const create = async (req: AdminRequest): Promise<AdminResponse> => {
    const t = now()
    const { id, reason, expiresAt, via } = parseCreate(req.body, t, defaultTtlMs)
    const value = encodeRevocationRecord(reason === undefined ? { createdAt: t } : { reason, createdAt: t })
    const keepUntil = expiresAt + REVOCATION_MARGIN_MS
    const details = { via, expiresAt: iso(keepUntil), ...(reason !== undefined ? { reason } : {}) }
    try {
      await maps.set(REVOCATIONS_MAP, id.id, value, keepUntil - t)
    } catch (err) {
      ctx.recordWrite(req, { action: 'revocation.create', target: id.id, outcome: 'failed', details })
      throw storeFailure(err, 'revocation list')
    }
    ctx.recordWrite(req, { action: 'revocation.create', target: id.id, outcome: 'ok', details })
    await refresh(req)
    return {
      status: 201,
      body: toItem(id.id, { value, expiresAt: keepUntil }),
      headers: { location: `/v1/revocations/${encodeURIComponent(id.id)}` },
    }
  }

  const getOne = async (req: AdminRequest): Promise<AdminResponse> => {
    const id = parseId(req)
    let entry: MapEntry | undefined
    try {
      entry = await maps.get(REVOCATIONS_MAP, id.id)
    } catch (err) {
      throw storeFailure(err, 'revocation list')
    }
    if (entry === undefined)
      throw new GatewayError('GW_ERR_ROUTE_NOT_FOUND', { detail: 'no such revocation' })
    return { status: 200, body: toItem(id.id, entry) }
  }

  const remove = async (req: AdminRequest): Promise<AdminResponse> => {
    const id = parseId(req)
    let existed: boolean
    try {
      existed = await maps.delete(REVOCATIONS_MAP, id.id)
    } catch (err) {
      ctx.recordWrite(req, { action: 'revocation.delete', target: id.id, outcome: 'failed' })
      throw storeFailure(err, 'revocation list')
    }
    ctx.recordWrite(req, {
      action: 'revocation.delete',
      target: id.id,
      outcome: existed ? 'ok' : 'not-found',
    })
    if (!existed) throw new GatewayError('GW_ERR_ROUTE_NOT_FOUND', { detail: 'no such revocation' })
    await refresh(req)
    return { status: 204 }
  }

  return {
    routes: [
      { method: 'GET', path: '/v1/revocations', handler: list },
      { method: 'POST', path: '/v1/revocations', body: true, write: true, handler: create },
      { method: 'GET', path: '/v1/revocations/:id', handler: getOne },
      { method: 'DELETE', path: '/v1/revocations/:id', write: true, handler: remove },
    ],
    close: () => shared.close(),
  }
}
