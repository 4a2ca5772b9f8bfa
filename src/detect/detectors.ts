/**
 * The detectors: pure, synchronous state machines over {@link Observation}s, each with bounded
 * tables (TtlLru: at most `maxSubjects` subjects, least recently seen evicted, an entry expires a
 * window after its subject's last event). They report a {@link Finding} whenever a threshold is
 * crossed; deduplication and suppression are the engine's (see engine.ts).
 *
 * Every count is over a sliding window (sliding.ts): the last `windowSec` before each event,
 * whatever the alignment, so no burst hides across a window boundary. The moving baselines
 * (flood, global-spike) average past aligned windows; what they are compared with is sliding.
 */
import { type Params, parseParams } from '../gateway/query.js'
import { TtlLru } from '../util/ttl-lru.js'
import type { DetectConfig } from './config.js'
import { SLOTS, SlidingCount, SlidingSet } from './sliding.js'

/** What the detectors see of one finished request. */
export interface Observation {
  /** Ms since the epoch. */
  now: number
  ip: string
  /** The authenticated principal's id, when there is one. */
  principal: string | undefined
  /** The identity an authentication attempt was for (principal, account hash, credential hash), when known. */
  identity: string | undefined
  /**
   * True when the request was a failed authentication attempt: its status counts as a failure
   * (`failureStatuses`, or those of brute-force-lockout on its route), or it was refused because
   * its source is locked out (an attempt all the same).
   */
  authFailed: boolean
  status: number
  route: string
  /** The object id of the request (last numeric or UUID path segment), when there is one. */
  objectId: string | undefined
  /**
   * The gateway knows the object is the principal's: object-ownership checked it (binding,
   * learned owner or lookup), or its id is the principal's own id.
   */
  owned: boolean
  /** The canonical path (no query). */
  path: string
  /** The paging key of the request (values of the paging query parameters), when it has one. */
  page: string | undefined
  /** `ip:<ip>`, built once per observation by the first detector that needs it (see ipSubject). */
  ipSubject?: string
}

/** `ip:<addr>` of an observation, built once and shared by the detectors. */
function ipSubject(o: Observation): string {
  if (o.ipSubject === undefined) o.ipSubject = `ip:${o.ip}`
  return o.ipSubject
}

/** The actor of an observation: `principal:<id>` when authenticated, else `ip:<addr>`. */
function actorSubject(o: Observation): string {
  return o.principal !== undefined ? `principal:${o.principal}` : ipSubject(o)
}

/**
 * Past a threshold, a detector reports again at most once per suppression period per subject (the
 * engine would drop the repeats anyway): a flood of requests past its limit then costs a counter
 * increment each, not a finding with a formatted summary each.
 */
interface Reported {
  quietUntil: number
}
function mayReport(s: Reported, now: number, suppressionMs: number): boolean {
  if (now < s.quietUntil) return false
  s.quietUntil = now + suppressionMs
  return true
}

export type DetectorId =
  | 'brute-force'
  | 'credential-stuffing'
  | 'enumeration'
  | 'flood'
  | 'global-spike'
  | 'scraping'
  | 'error-spike'
  | 'audit-truncation'

/** A threshold crossed: the engine turns it into an alert (and a ban) unless suppressed. */
export interface Finding {
  detector: DetectorId
  /** `ip:<addr>`, `principal:<id>`, `account:<hash>`, `credential:<hash>`, `route:<name>`, `global` or `audit:<instance>`. */
  subject: string
  summary: string
  data: Record<string, number | string>
  /** Raise the alert only, whatever the detector's action (evidence too weak for a ban). */
  alertOnly?: boolean
}

export interface Detector {
  readonly id: DetectorId
  observe(o: Observation, out: Finding[]): void
}

/** A table entry: `until` is when the TtlLru lets it go (renewed while its subject is active). */
interface Entry {
  until: number
}

/**
 * A bounded table of per-subject state whose entries live at least `keepMs` after their
 * subject's last event: the deadline is pushed to `now + 2 × keepMs` whenever less than `keepMs`
 * is left, so an active subject costs a TtlLru write at most once per `keepMs`.
 */
class SubjectTable<V extends Entry> {
  private readonly lru: TtlLru<V>
  constructor(
    max: number,
    now: () => number,
    private readonly keepMs: number,
  ) {
    this.lru = new TtlLru(max, now)
  }
  get(key: string, now: number, make: () => V): V {
    let v = this.lru.get(key, now)
    if (v === undefined) {
      v = make()
      v.until = now + 2 * this.keepMs
      this.lru.set(key, v, v.until, now)
    } else if (v.until - now < this.keepMs) {
      v.until = now + 2 * this.keepMs
      this.lru.set(key, v, v.until, now)
    }
    return v
  }
  get size(): number {
    return this.lru.size
  }
}

interface CountEntry extends Entry, Reported {
  c: SlidingCount
}

/** A sliding count per subject. */
class SubjectCounts {
  private readonly table: SubjectTable<CountEntry>
  private readonly bucketMs: number
  constructor(max: number, now: () => number, windowMs: number) {
    this.bucketMs = windowMs / SLOTS
    this.table = new SubjectTable(max, now, windowMs + this.bucketMs)
  }
  /** Adds one at `now`; returns the subject's entry and its count in the window. */
  add(key: string, now: number): { e: CountEntry; n: number } {
    const e = this.table.get(key, now, () => ({
      c: new SlidingCount(this.bucketMs),
      quietUntil: 0,
      until: 0,
    }))
    return { e, n: e.c.add(now) }
  }
}

interface SetEntry extends Entry, Reported {
  s: SlidingSet
}

/** A sliding set of distinct values per subject, each at most `cap` values. */
class SubjectSets {
  private readonly table: SubjectTable<SetEntry>
  constructor(
    max: number,
    now: () => number,
    private readonly windowMs: number,
    private readonly cap: number,
  ) {
    this.table = new SubjectTable(max, now, windowMs)
  }
  /** Adds `value` for `key` at `now`; returns the subject's entry and the distinct values within the window. */
  add(key: string, value: string, now: number): { e: SetEntry; n: number } {
    const e = this.table.get(key, now, () => ({
      s: new SlidingSet(this.windowMs, this.cap),
      quietUntil: 0,
      until: 0,
    }))
    return { e, n: e.s.add(value, now) }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The last path segment when it is numeric or a UUID (the object id of a REST path), else undefined. */
export function objectIdOf(path: string): string | undefined {
  let end = path.length
  if (end > 1 && path.charCodeAt(end - 1) === 47) end-- // a trailing '/'
  const start = path.lastIndexOf('/', end - 1) + 1
  if (start <= 0 || end - start > 64) return undefined
  if (allDigits(path, start, end, 40)) return end === path.length ? path : path.slice(0, end)
  if (end - start !== 36) return undefined
  const seg = path.slice(start, end)
  if (UUID.test(seg)) return `${path.slice(0, start)}${seg.toLowerCase()}`
  return undefined
}

type Cfg = DetectConfig

export function bruteForce(c: Cfg, now: () => number): Detector {
  const d = c.bruteForce
  const counts = new SubjectCounts(c.maxSubjects, now, d.windowSec * 1000)
  const quietMs = c.suppressionSec * 1000
  const check = (subject: string, o: Observation, out: Finding[]) => {
    const { e, n } = counts.add(subject, o.now)
    if (n >= d.failures && mayReport(e, o.now, quietMs)) {
      out.push({
        detector: 'brute-force',
        subject,
        summary: `${n} failed authentications from ${subject} within ${d.windowSec} s`,
        data: { failures: n, windowSec: d.windowSec },
      })
    }
  }
  return {
    id: 'brute-force',
    observe(o, out) {
      if (!o.authFailed) return
      check(ipSubject(o), o, out)
      if (o.identity !== undefined) check(o.identity, o, out)
    },
  }
}

export function credentialStuffing(c: Cfg, now: () => number): Detector {
  const d = c.credentialStuffing
  const sets = new SubjectSets(c.maxSubjects, now, d.windowSec * 1000, d.identities)
  const quietMs = c.suppressionSec * 1000
  return {
    id: 'credential-stuffing',
    observe(o, out) {
      if (!o.authFailed || o.identity === undefined) return
      const subject = ipSubject(o)
      const { e, n } = sets.add(subject, o.identity, o.now)
      if (n >= d.identities && mayReport(e, o.now, quietMs)) {
        out.push({
          detector: 'credential-stuffing',
          subject,
          summary: `${n} distinct identities failed authentication from ${subject} within ${d.windowSec} s`,
          data: { identities: n, windowSec: d.windowSec },
        })
      }
    },
  }
}

/** True when `s[from..to)` is 1 to `max` ASCII digits. */
function allDigits(s: string, from: number, to: number, max: number): boolean {
  if (to <= from || to - from > max) return false
  for (let i = from; i < to; i++) {
    const ch = s.charCodeAt(i)
    if (ch < 48 || ch > 57) return false
  }
  return true
}

/** A walk over consecutive numeric ids of one collection. */
interface Walk {
  prefix: string
  id: number
  /** +1 or -1 once two steps were taken; 0 before. */
  step: number
  run: number
  at: number
}

const newWalk = (): Walk => ({ prefix: '', id: 0, step: 0, run: 0, at: Number.NEGATIVE_INFINITY })

/**
 * Takes one step of a walk: `id` on collection `prefix` at `now`. A step continues the walk when
 * it is the next id in the walk's direction and comes within `windowMs` of the step before (no
 * window boundary: a walk is as long as it goes on without a pause of `windowMs`); a repeat of the
 * last id neither breaks nor extends it. Returns the run length.
 */
function walkStep(w: Walk, prefix: string, id: number, now: number, windowMs: number): number {
  const recent = now - w.at <= windowMs
  const same = recent && prefix === w.prefix
  const step = id - w.id
  if (same && (step === 1 || step === -1) && (w.run === 1 || step === w.step)) {
    w.run++
    w.step = step
  } else if (!(same && step === 0)) {
    w.run = 1
    w.step = 0
  }
  w.prefix = prefix
  w.id = id
  w.at = now
  return w.run
}

interface EnumState extends Entry, Reported {
  /** Distinct foreign objects (refused 403/404) within the window. */
  foreign: SlidingSet
  /** A walk over refused ids. */
  refusedWalk: Walk
  /** A walk over ids not known to be the actor's (refused, or allowed with an owner the gateway does not know). */
  openWalk: Walk
}

/** The distinct-foreign-objects threshold of the enumeration config (see config.ts). */
export function foreignObjectsThreshold(d: DetectConfig['enumeration']): number {
  if (d.foreignObjects !== undefined) return d.foreignObjects
  if (d.objects !== undefined) return Math.max(2, Math.ceil(d.objects * (d.deniedRatio ?? 0.5)))
  return 25
}

/**
 * BOLA enumeration, per actor (principal, else IP). What counts is what the gateway knows of each
 * object: a request **refused** (403/404) is a probe of an object that is not the actor's; a
 * request **allowed** for an object the gateway knows is the actor's (object-ownership checked
 * it, or the id is the principal's own) is not evidence of anything; a request allowed for an
 * object whose owner the gateway does not know is ambiguous.
 *
 * - `foreignObjects` distinct refused objects within the window alert, however many requests for
 *   the actor's own objects are mixed in (padding does not dilute anything);
 * - a walk of `sequentialRun` consecutive refused ids alerts;
 * - a walk of `sequentialRunAllowed` consecutive ids not known to be the actor's (refused, or
 *   allowed with an owner the gateway does not know) alerts, as an alert only (never a ban or
 *   step-up): it may be a user reading her own objects in order through a route the gateway does
 *   not check ownership on.
 * Allowed requests for the actor's own objects never count.
 */
export function enumeration(c: Cfg, now: () => number): Detector {
  const d = c.enumeration
  const windowMs = d.windowSec * 1000
  const quietMs = c.suppressionSec * 1000
  const threshold = foreignObjectsThreshold(d)
  const table = new SubjectTable<EnumState>(c.maxSubjects, now, windowMs)
  const make = (): EnumState => ({
    foreign: new SlidingSet(windowMs, threshold),
    refusedWalk: newWalk(),
    openWalk: newWalk(),
    quietUntil: 0,
    until: 0,
  })
  const walk = (
    w: Walk,
    run: number,
    kind: 'refused' | 'open',
    objectId: string,
    o: Observation,
    subject: string,
    out: Finding[],
  ): void => {
    // The collection prefix and numeric value of the id (`/orders/` and 7 for `/orders/7`).
    const cut = objectId.lastIndexOf('/') + 1
    if (!allDigits(objectId, cut, objectId.length, 15)) return
    const prefix =
      w.prefix.length === cut && objectId.startsWith(w.prefix) ? w.prefix : objectId.slice(0, cut)
    const id = Number(objectId.slice(cut))
    if (walkStep(w, prefix, id, o.now, windowMs) !== run) return
    const from = id - w.step * (run - 1)
    const what = kind === 'refused' ? 'refused ids' : 'ids not known to be its own'
    out.push({
      detector: 'enumeration',
      subject,
      summary: `${subject} walked ${run} consecutive ${what} of ${prefix.slice(0, 200)} (${from} to ${id})`,
      data: { sequential: run, from, to: id, answers: kind, windowSec: d.windowSec },
      ...(kind === 'open' ? { alertOnly: true } : {}),
    })
  }
  return {
    id: 'enumeration',
    observe(o, out) {
      const objectId = o.objectId
      if (objectId === undefined) return
      const refused = o.status === 403 || o.status === 404
      // Allowed for the actor's own object, or neither allowed nor refused (401, 429, 5xx): no evidence.
      if (!refused && (o.owned || o.status < 200 || o.status >= 400)) return
      const subject = actorSubject(o)
      const s = table.get(subject, o.now, make)
      // Refused and allowed-of-unknown-owner ids together make the open walk: an attacker's walk
      // over an API that answers some ids and refuses others is one walk.
      if (d.sequentialRunAllowed > 0)
        walk(s.openWalk, d.sequentialRunAllowed, 'open', objectId, o, subject, out)
      if (!refused) return
      if (d.sequentialRun > 0) walk(s.refusedWalk, d.sequentialRun, 'refused', objectId, o, subject, out)
      const n = s.foreign.add(objectId, o.now)
      if (n >= threshold && mayReport(s, o.now, quietMs)) {
        out.push({
          detector: 'enumeration',
          subject,
          summary: `${subject} was refused ${n} distinct objects (403/404) within ${d.windowSec} s`,
          data: { foreignObjects: n, windowSec: d.windowSec },
        })
      }
    },
  }
}

/**
 * Aligned windows with a moving average (EWMA) of past windows: of the total count, and of the
 * count per active subject. O(1) per observation; empty windows count as zeros (at most 100 are
 * folded in after a long pause: by then the average is near zero anyway). This is the baseline
 * only: the counts compared with it are sliding.
 */
export class MovingBaseline {
  private start = -1
  private total = 0
  private active = 0
  private avgTotal = 0
  private avgPerSubject = 0
  /** Completed windows seen. */
  windows = 0

  constructor(
    private readonly windowMs: number,
    private readonly alpha = 0.3,
  ) {}

  /** The aligned window `now` falls in. */
  windowOf(now: number): number {
    return Math.floor(now / this.windowMs)
  }

  private roll(now: number): void {
    const w = Math.floor(now / this.windowMs)
    if (this.start === -1) {
      this.start = w
      return
    }
    if (w <= this.start) return
    const skipped = Math.min(w - this.start, 100)
    // The first completed window seeds the averages (an average started at 0 would sit low for a while).
    const a = this.windows === 0 ? 1 : this.alpha
    this.avgTotal += a * (this.total - this.avgTotal)
    this.avgPerSubject += a * ((this.active > 0 ? this.total / this.active : 0) - this.avgPerSubject)
    for (let i = 1; i < skipped; i++) {
      this.avgTotal -= this.alpha * this.avgTotal
      this.avgPerSubject -= this.alpha * this.avgPerSubject
    }
    this.windows += w - this.start
    this.start = w
    this.total = 0
    this.active = 0
  }

  /** Counts one event at `now` (`newSubject`: the first of its subject in this aligned window); returns the window's total. */
  add(now: number, newSubject: boolean): number {
    this.roll(now)
    if (newSubject) this.active++
    return ++this.total
  }

  get averageTotal(): number {
    return this.avgTotal
  }

  get averagePerSubject(): number {
    return this.avgPerSubject
  }
}

interface FloodEntry extends CountEntry {
  /** The aligned baseline window of the subject's last request (-1: none yet). */
  window: number
}

export function flood(c: Cfg, now: () => number): Detector {
  const d = c.flood
  const windowMs = d.windowSec * 1000
  const bucketMs = windowMs / SLOTS
  const table = new SubjectTable<FloodEntry>(c.maxSubjects, now, windowMs + bucketMs)
  const make = (): FloodEntry => ({ c: new SlidingCount(bucketMs), window: -1, quietUntil: 0, until: 0 })
  const baseline = d.baselineFactor > 0 ? new MovingBaseline(windowMs) : undefined
  const quietMs = c.suppressionSec * 1000
  return {
    id: 'flood',
    observe(o, out) {
      const subject = ipSubject(o)
      const e = table.get(subject, o.now, make)
      const n = e.c.add(o.now)
      let limit = d.requests
      let typical = -1
      if (baseline !== undefined) {
        const w = baseline.windowOf(o.now)
        baseline.add(o.now, e.window !== w)
        e.window = w
        if (baseline.windows >= d.warmupWindows) {
          const adaptive = Math.max(
            d.baselineMinRequests,
            Math.ceil(d.baselineFactor * baseline.averagePerSubject),
          )
          if (adaptive < limit) {
            limit = adaptive
            typical = baseline.averagePerSubject
          }
        }
      }
      if (n >= limit && mayReport(e, o.now, quietMs)) {
        const why =
          typical < 0
            ? ''
            : `, ${Math.round(n / Math.max(typical, 1))}x the typical ${typical.toFixed(1)} per IP`
        out.push({
          detector: 'flood',
          subject,
          summary: `${n} requests from ${subject} within ${d.windowSec} s${why}`,
          data: { requests: n, windowSec: d.windowSec, threshold: limit },
        })
      }
    },
  }
}

export function globalSpike(c: Cfg): Detector {
  const d = c.globalSpike
  const windowMs = d.windowSec * 1000
  const baseline = new MovingBaseline(windowMs)
  const recent = new SlidingCount(windowMs / SLOTS)
  const reported: Reported = { quietUntil: 0 }
  const quietMs = c.suppressionSec * 1000
  return {
    id: 'global-spike',
    observe(o, out) {
      baseline.add(o.now, false)
      const n = recent.add(o.now)
      if (n < d.minRequests || baseline.windows < d.warmupWindows) return
      const typical = baseline.averageTotal
      if (n >= d.factor * typical && mayReport(reported, o.now, quietMs)) {
        out.push({
          detector: 'global-spike',
          subject: 'global',
          summary: `${n} requests within ${d.windowSec} s on this gateway, ${(n / Math.max(typical, 1)).toFixed(1)}x the moving average of ${Math.round(typical)}`,
          data: { requests: n, average: Math.round(typical), windowSec: d.windowSec },
        })
      }
    },
  }
}

export function scraping(c: Cfg, now: () => number): Detector {
  const d = c.scraping
  const sets = new SubjectSets(c.maxSubjects, now, d.windowSec * 1000, d.pages)
  const quietMs = c.suppressionSec * 1000
  return {
    id: 'scraping',
    observe(o, out) {
      if (o.page === undefined) return
      const subject = actorSubject(o)
      const { e, n } = sets.add(`${subject}|${o.path}`, o.page, o.now)
      if (n >= d.pages && mayReport(e, o.now, quietMs)) {
        out.push({
          detector: 'scraping',
          subject,
          summary: `${subject} fetched ${n} distinct pages of ${o.path.slice(0, 200)} within ${d.windowSec} s`,
          data: { pages: n, path: o.path.slice(0, 200), windowSec: d.windowSec },
        })
      }
    },
  }
}

/** The paging key of a raw query string: the values of `params`, in order; undefined when none is present. */
export function pageKeyOf(query: string, params: readonly string[]): string | undefined {
  if (query.length === 0 || query.length > 4096) return undefined
  let key: string | undefined
  let q: Params
  try {
    q = parseParams(query)
  } catch {
    return undefined // refused by the policies that read it, or never read: no paging key
  }
  for (const p of params) {
    const v = q.get(p)
    if (v === undefined) continue
    key = key === undefined ? `${p}=${v}` : `${key}&${p}=${v}`
  }
  return key === undefined ? undefined : key.slice(0, 256)
}

interface RouteErrors extends Entry, Reported {
  total: SlidingCount
  errors: SlidingCount
}

export function errorSpike(c: Cfg, now: () => number): Detector {
  const d = c.errorSpike
  const windowMs = d.windowSec * 1000
  const bucketMs = windowMs / SLOTS
  const quietMs = c.suppressionSec * 1000
  // Keyed by the route name itself (the subject string is built only for a finding).
  const table = new SubjectTable<RouteErrors>(c.maxSubjects, now, windowMs + bucketMs)
  const make = (): RouteErrors => ({
    total: new SlidingCount(bucketMs),
    errors: new SlidingCount(bucketMs),
    quietUntil: 0,
    until: 0,
  })
  return {
    id: 'error-spike',
    observe(o, out) {
      const s = table.get(o.route, o.now, make)
      const total = s.total.add(o.now)
      if (o.status < 500 || o.status > 599) return
      const errors = s.errors.add(o.now)
      if (errors >= d.errors && errors / total >= d.ratio && mayReport(s, o.now, quietMs)) {
        const subject = `route:${o.route}`
        out.push({
          detector: 'error-spike',
          subject,
          summary: `${errors} of ${total} responses on ${subject} were 5xx within ${d.windowSec} s`,
          data: { errors, requests: total, windowSec: d.windowSec },
        })
      }
    },
  }
}

/** The enabled detectors of a config. */
export function buildDetectors(c: Cfg, now: () => number): Detector[] {
  const out: Detector[] = []
  if (c.bruteForce.enabled) out.push(bruteForce(c, now))
  if (c.credentialStuffing.enabled) out.push(credentialStuffing(c, now))
  if (c.enumeration.enabled) out.push(enumeration(c, now))
  if (c.flood.enabled) out.push(flood(c, now))
  if (c.globalSpike.enabled) out.push(globalSpike(c))
  if (c.scraping.enabled) out.push(scraping(c, now))
  if (c.errorSpike.enabled) out.push(errorSpike(c, now))
  return out
}
