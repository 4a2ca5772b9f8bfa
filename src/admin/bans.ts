/**
 * Admin API: bans (the replicated map `bans`, see detect/bans.ts). A write goes to the store and is
 * applied on this gateway at once; other gateways sharing the store (Redis) apply it within one
 * mirror poll (250 ms).
 *
 *   GET    /v1/bans?limit=&cursor=          list (ordered by id, paginated)
 *   POST   /v1/bans                          { ip | cidr | principal, duration, reason? } → 201
 *   DELETE /v1/bans/{id}                     → 204, or 404 when there is no such ban
 */
import { DURATION_FORMS, formatDuration, parseDuration } from '../util/duration.js'
import { isIP } from 'node:net'
import {
  BANS_MAP,
  type BanKind,
  type BanRecord,
  banKey,
  decodeBan,
  encodeBan,
  MAX_BAN_REASON_LENGTH,
  MAX_BAN_SECONDS,
  MIN_CIDR_BITS,
  normalizeCidr,
  noteLocalBan,
  parseBanKey,
} from '../detect/bans.js'
import { GatewayError } from '../gateway/errors.js'
import { acquireMapMirror } from '../stores/mirror.js'
import type { MapEntry } from '../stores/types.js'
import type { AdminModule, AdminModuleContext } from './api.js'
import { encodeCursor, invalid, parseListQuery, storeFailure } from './list.js'
import type { AdminRequest, AdminResponse } from './router.js'

export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './list.js'

/** A ban as the API shows it. */
export interface BanItem {
  id: string
  kind: BanKind
  subject: string
  reason: string
  by: string
  /** ISO 8601. */
  until: string
}

const CONTROL = /[\u0000-\u001f\u007f]/
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function toItem(id: string, e: MapEntry): BanItem | undefined {
  const k = parseBanKey(id)
  if (k === undefined) return undefined
  const r = decodeBan(e.value, e.expiresAt)
  return {
    id,
    kind: k.kind,
    subject: k.subject,
    reason: r.reason,
    by: r.by,
    until: new Date(r.until).toISOString(),
  }
}

/**
 * The ban's length: `duration` in the one duration grammar (`10m`, `1h`, `7d`; src/util/duration.ts).
 * A bare number under `duration` is refused with the duration form, and so is `seconds` (a number
 * of seconds: the old form), with the same length written as a duration.
 */
function banSeconds(o: Record<string, unknown>): number {
  if (o.seconds !== undefined) {
    const s = o.seconds
    const d =
      typeof s === 'number' && Number.isSafeInteger(s) && s >= 1 && s <= MAX_BAN_SECONDS
        ? formatDuration(s * 1000)
        : '10m'
    throw invalid('seconds', `the old form; write "duration": "${d}" (${DURATION_FORMS})`)
  }
  const d = o.duration
  if (d === undefined) throw invalid('duration', `required, e.g. "10m" (${DURATION_FORMS})`)
  if (typeof d === 'number')
    throw invalid('duration', `a duration needs its unit, e.g. "10m" (${DURATION_FORMS})`)
  const ms = typeof d === 'string' ? parseDuration(d) : undefined
  if (ms === undefined || ms % 1000 !== 0 || ms < 1000 || ms / 1000 > MAX_BAN_SECONDS)
    throw invalid(
      'duration',
      `expected whole seconds from 1s to ${formatDuration(MAX_BAN_SECONDS * 1000)} (${DURATION_FORMS})`,
    )
  return ms / 1000
}

/** Validates a POST body; returns the key and the record. */
export function parseBanCreate(
  body: unknown,
  actor: string,
  now: number,
): { key: string; record: BanRecord } {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalid('body', 'expected an object')
  const o = body as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (
      k !== 'ip' &&
      k !== 'cidr' &&
      k !== 'principal' &&
      k !== 'duration' &&
      k !== 'seconds' &&
      k !== 'reason'
    )
      throw invalid(k, 'unknown field')
  }
  const given = [o.ip, o.cidr, o.principal].filter((x) => x !== undefined).length
  if (given !== 1) throw invalid('ip', 'give exactly one of ip, cidr, principal')
  let key: string | undefined
  if (o.cidr !== undefined) {
    const c = typeof o.cidr === 'string' ? normalizeCidr(o.cidr.trim().toLowerCase()) : undefined
    if (c === undefined)
      throw invalid(
        'cidr',
        `expected an IPv4 network of /${MIN_CIDR_BITS.ipv4} to /32 or an IPv6 network of /${MIN_CIDR_BITS.ipv6} to /128 (address/bits)`,
      )
    key = banKey('cidr', c)
  } else if (o.ip !== undefined) {
    if (typeof o.ip !== 'string' || isIP(o.ip) === 0) throw invalid('ip', 'expected an IPv4 or IPv6 address')
    key = banKey('ip', o.ip.toLowerCase())
  } else {
    const p = o.principal
    if (typeof p !== 'string' || LONE_SURROGATE.test(p)) throw invalid('principal', 'expected a string')
    key = banKey('principal', p)
    if (key === undefined) throw invalid('principal', 'expected 1 to 512 characters, no control characters')
  }
  if (key === undefined) throw invalid('ip', 'not a valid address')
  const s = banSeconds(o)
  let reason = ''
  if (o.reason !== undefined) {
    const r = o.reason
    if (
      typeof r !== 'string' ||
      r.length > MAX_BAN_REASON_LENGTH ||
      CONTROL.test(r) ||
      LONE_SURROGATE.test(r)
    ) {
      throw invalid(
        'reason',
        `expected a string of at most ${MAX_BAN_REASON_LENGTH} characters, no control characters`,
      )
    }
    reason = r
  }
  return { key, record: { reason, by: actor, until: now + s * 1000 } }
}

/** The bans part of the admin API. */
export function bansModule(ctx: AdminModuleContext): AdminModule {
  const { store, logger, now } = ctx
  const mirror = acquireMapMirror(store, BANS_MAP, { logger })

  const refresh = async (req: AdminRequest) => {
    try {
      await mirror.refresh()
    } catch (err) {
      logger.warn({ requestId: req.id, err: (err as Error).message }, 'ban stored; mirror refresh failed')
    }
  }

  const parseId = (req: AdminRequest): string => {
    const id = req.params.id as string
    if (parseBanKey(id) === undefined)
      throw invalid('id', 'expected ip:<address>, cidr:<network>/<bits> or principal:<id>')
    return id
  }

  const list = async (req: AdminRequest): Promise<AdminResponse> => {
    const { limit, after } = parseListQuery(req.query, 2048)
    try {
      await mirror.refresh()
    } catch (err) {
      throw storeFailure(err, 'ban list')
    }
    const items: BanItem[] = []
    for (const [k, e] of mirror.entries()) {
      if (after !== undefined && !(k > after)) continue
      const item = toItem(k, e)
      if (item) items.push(item)
    }
    items.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    const page = items.slice(0, limit)
    const body: { items: BanItem[]; nextCursor?: string } = { items: page }
    if (items.length > limit) body.nextCursor = encodeCursor((page[page.length - 1] as BanItem).id)
    return { status: 200, body }
  }

  const create = async (req: AdminRequest): Promise<AdminResponse> => {
    const t = now()
    const { key, record } = parseBanCreate(req.body, req.actor, t)
    const details = {
      until: new Date(record.until).toISOString(),
      ...(record.reason ? { reason: record.reason } : {}),
    }
    try {
      await store.maps.set(BANS_MAP, key, encodeBan(record), record.until - t)
    } catch (err) {
      ctx.recordWrite(req, { action: 'ban.create', target: key, outcome: 'failed', details })
      throw storeFailure(err, 'ban list')
    }
    noteLocalBan(store, key, record.until, t)
    ctx.recordWrite(req, { action: 'ban.create', target: key, outcome: 'ok', details })
    await refresh(req)
    return {
      status: 201,
      body: toItem(key, { value: encodeBan(record), expiresAt: record.until }),
      headers: { location: `/v1/bans/${encodeURIComponent(key)}` },
    }
  }

  const remove = async (req: AdminRequest): Promise<AdminResponse> => {
    const id = parseId(req)
    let existed: boolean
    try {
      existed = await store.maps.delete(BANS_MAP, id)
    } catch (err) {
      ctx.recordWrite(req, { action: 'ban.delete', target: id, outcome: 'failed' })
      throw storeFailure(err, 'ban list')
    }
    noteLocalBan(store, id, undefined, now())
    ctx.recordWrite(req, { action: 'ban.delete', target: id, outcome: existed ? 'ok' : 'not-found' })
    if (!existed) throw new GatewayError('GW_ERR_ROUTE_NOT_FOUND', { detail: 'no such ban' })
    await refresh(req)
    return { status: 204 }
  }

  return {
    routes: [
      { method: 'GET', path: '/v1/bans', handler: list },
      { method: 'POST', path: '/v1/bans', body: true, write: true, handler: create },
      { method: 'DELETE', path: '/v1/bans/:id', write: true, handler: remove },
    ],
    close: () => mirror.close(),
  }
}
