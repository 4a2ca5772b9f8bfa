/**
 * Bans: the replicated map `bans` (see stores/mirror.ts), checked early in the request phase by the
 * `ban` policies. A key is `ip:<address>` or `principal:<id>`; the value is JSON
 * `{ reason, by, until }` (`until`: ms since the epoch) and the entry expires at `until`.
 *
 * Writers: the admin API (POST/DELETE /v1/bans) and the detectors (action `ban`). A write goes to
 * the store, and is also noted in this process's {@link localBans} so that this gateway refuses the
 * source at once (the next request, not the next mirror poll); other gateways see it within one
 * mirror poll (250 ms).
 */
import type { Store } from '../stores/types.js'

export const BANS_MAP = 'bans'

/** Longest ban accepted: 366 days. */
export const MAX_BAN_SECONDS = 31_622_400
export const MAX_BAN_REASON_LENGTH = 256
/** Longest subject (address or principal id) in a ban key. */
export const MAX_BAN_SUBJECT_LENGTH = 512

export interface BanRecord {
  reason: string
  /** Who banned: `admin token`, or `detector:<id>`. */
  by: string
  /** Ms since the epoch. */
  until: number
}

/**
 * `ip` and `principal` entries refuse the source (403 GW_ERR_BANNED); a `step-up` entry (key
 * `step-up:<principal id>`) refuses the principal with 401 GW_ERR_STEP_UP_REQUIRED unless its
 * credential shows multi-factor authentication.
 */
export type BanKind = 'ip' | 'principal' | 'step-up'

const CONTROL = /[\u0000-\u001f\u007f]/

/** The map key for a subject, or undefined when the subject is empty, too long or has control characters. */
export function banKey(kind: BanKind, subject: string): string | undefined {
  if (subject.length === 0 || subject.length > MAX_BAN_SUBJECT_LENGTH || CONTROL.test(subject))
    return undefined
  return `${kind}:${subject}`
}

/** Parses a ban id (`ip:…` / `principal:…` / `step-up:…`); undefined when it is not one. */
export function parseBanKey(id: string): { kind: BanKind; subject: string } | undefined {
  const i = id.indexOf(':')
  if (i <= 0) return undefined
  const kind = id.slice(0, i)
  if (kind !== 'ip' && kind !== 'principal' && kind !== 'step-up') return undefined
  const subject = id.slice(i + 1)
  return banKey(kind, subject) === undefined ? undefined : { kind, subject }
}

export function encodeBan(r: BanRecord): string {
  return JSON.stringify({ reason: r.reason, by: r.by, until: r.until })
}

/** Decodes a stored value; a value that is not a ban record gives a placeholder (still a ban: fail closed). */
export function decodeBan(value: string, expiresAt: number | undefined): BanRecord {
  try {
    const o = JSON.parse(value) as Partial<BanRecord> | null
    if (o && typeof o === 'object') {
      return {
        reason: typeof o.reason === 'string' ? o.reason : '',
        by: typeof o.by === 'string' ? o.by : 'unknown',
        until: typeof o.until === 'number' && Number.isFinite(o.until) ? o.until : (expiresAt ?? 0),
      }
    }
  } catch {
    // fall through
  }
  return { reason: '', by: 'unknown', until: expiresAt ?? 0 }
}

/** Bans this process wrote lately (key → until), so that it applies them before its mirror's next poll. */
const LOCAL_MAX = 10_000
const local = new WeakMap<Store, Map<string, number>>()

/** This process's recent ban writes for `store`: key → trusted until (bounded; the oldest go first). */
export function localBans(store: Store): Map<string, number> {
  let m = local.get(store)
  if (m === undefined) {
    m = new Map()
    local.set(store, m)
  }
  return m
}

/**
 * How long a local note is trusted (ms): after that the mirror alone decides, so that a ban removed
 * on another gateway is lifted here too.
 */
export const LOCAL_BAN_TRUST_MS = 5000

/** Notes a ban written (or removed: `until` undefined) by this process at `now`. */
export function noteLocalBan(store: Store, key: string, until: number | undefined, now: number): void {
  const m = localBans(store)
  m.delete(key)
  if (until === undefined) return
  m.set(key, Math.min(until, now + LOCAL_BAN_TRUST_MS))
  while (m.size > LOCAL_MAX) {
    const first = m.keys().next()
    if (first.done) break
    m.delete(first.value)
  }
}

/**
 * Writes a ban to the store (and notes it locally first, so this gateway refuses the source at once).
 * Rejects with the store's error (StoreError when unavailable, RangeError when the map is full).
 */
export async function writeBan(store: Store, key: string, record: BanRecord, now: number): Promise<void> {
  const ttl = Math.max(1, record.until - now)
  noteLocalBan(store, key, record.until, now)
  await store.maps.set(BANS_MAP, key, encodeBan(record), ttl)
}
