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
import { BlockList, isIP } from 'node:net'
import type { Store } from '../stores/types.js'
import { formatCidr, parseCidr } from '../util/cidr.js'

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
 * `ip`, `cidr` and `principal` entries refuse the source (403 GW_ERR_BANNED); a `cidr` entry (key
 * `cidr:<network>/<bits>`, see {@link normalizeCidr}) refuses every address in the network; a `step-up` entry (key
 * `step-up:<principal id>`) refuses the principal with 401 GW_ERR_STEP_UP_REQUIRED unless its
 * credential shows multi-factor authentication.
 */
export type BanKind = 'ip' | 'cidr' | 'principal' | 'step-up'

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
  if (kind !== 'ip' && kind !== 'cidr' && kind !== 'principal' && kind !== 'step-up') return undefined
  const subject = id.slice(i + 1)
  if (kind === 'cidr' && normalizeCidr(subject) !== subject) return undefined
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

/** Changes of the local notes (any store): a CIDR list rebuilds when it moved. */
let localVersion = 0

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
  localVersion++
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

// ---- CIDR bans: the one place that parses, normalizes and matches network bans. ----

/** Shortest prefix a CIDR ban may have: a broader one would refuse most of the Internet. */
export const MIN_CIDR_BITS = { ipv4: 8, ipv6: 16 } as const

/**
 * A CIDR (`10.1.2.3/8`, `2001:db8::1/32`) in canonical form — the network address with the host
 * bits cleared (`10.0.0.0/8`, `2001:db8::/32`) — or undefined when it is not a CIDR, or its prefix
 * is shorter than {@link MIN_CIDR_BITS}. Parsed by the shared CIDR module (src/util/cidr.ts).
 */
export function normalizeCidr(text: string): string | undefined {
  if (typeof text !== 'string' || text.length > 64 || !text.includes('/')) return undefined
  const c = parseCidr(text)
  if (c === undefined || c.prefix < MIN_CIDR_BITS[c.family]) return undefined
  return formatCidr(c)
}

/**
 * The CIDR bans of a ban list as one BlockList, rebuilt only when the list changes (a mirror
 * change, a local write, or the earliest ban expiring). `matches` is a BlockList check when there
 * are CIDR bans, a size test otherwise.
 */
export class CidrBans {
  private list: BlockList | undefined
  private count = 0
  private stale = true
  /** When the earliest ban in the list ends (rebuild then). */
  private nextExpiry = Number.POSITIVE_INFINITY
  private seenLocal = -1

  constructor(
    private readonly entries: () => Iterable<[string, { expiresAt?: number }]>,
    private readonly local: Map<string, number>,
    private readonly now: () => number,
  ) {}

  /** The ban list changed: rebuild before the next check. */
  invalidate(): void {
    this.stale = true
  }

  private rebuild(t: number): void {
    this.stale = false
    this.nextExpiry = Number.POSITIVE_INFINITY
    const list = new BlockList()
    let n = 0
    const add = (key: string, until: number | undefined) => {
      if (!key.startsWith('cidr:')) return
      if (until !== undefined && until <= t) return
      const cidr = key.slice(5)
      const slash = cidr.lastIndexOf('/')
      const addr = cidr.slice(0, slash)
      const fam = isIP(addr)
      if (fam === 0) return
      list.addSubnet(addr, Number(cidr.slice(slash + 1)), fam === 4 ? 'ipv4' : 'ipv6')
      n++
      if (until !== undefined && until < this.nextExpiry) this.nextExpiry = until
    }
    for (const [k, e] of this.entries()) add(k, e.expiresAt)
    for (const [k, until] of this.local) add(k, until)
    this.list = n > 0 ? list : undefined
    this.count = n
  }

  /** The number of CIDR bans (after a rebuild). */
  get size(): number {
    return this.count
  }

  /** True when `ip` is inside a banned network. */
  matches(ip: string): boolean {
    if (this.stale || this.seenLocal !== localVersion) {
      this.seenLocal = localVersion
      this.rebuild(this.now())
    }
    if (this.list === undefined) return false
    if (this.nextExpiry !== Number.POSITIVE_INFINITY) {
      const t = this.now()
      if (t >= this.nextExpiry) this.rebuild(t)
    }
    const list = this.list
    if (list === undefined) return false
    const fam = isIP(ip)
    return fam !== 0 && list.check(ip, fam === 4 ? 'ipv4' : 'ipv6')
  }
}
