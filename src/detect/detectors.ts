import { type Params, parseParams } from '../gateway/query.js'
/**
 * The detectors: pure, synchronous state machines over {@link Observation}s, each with bounded
 * tables (TtlLru: at most `maxSubjects` subjects, least recently seen evicted, entries expire with
 * their window). They report a {@link Finding} whenever a threshold is crossed; deduplication and
 * suppression are the engine's (see engine.ts).
 */
import { TtlLru } from '../util/ttl-lru.js'
import type { DetectConfig } from './config.js'

/** What the detectors see of one finished request. */
export interface Observation {
  /** Ms since the epoch. */
  now: number
  ip: string
  /** The authenticated principal's id, when there is one. */
  principal: string | undefined
  /** The identity an authentication attempt was for (principal, account hash, credential hash), when known. */
  identity: string | undefined
  /** True when the response counts as a failed authentication. */
  authFailed: boolean
  status: number
  route: string
  /** The object id of the request (last numeric or UUID path segment), when there is one. */
  objectId: string | undefined
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

/** A threshold crossed: the engine turns it into an alert (and a ban) unless suppressed. */
export interface Finding {
  detector: DetectorId
  /** `ip:<addr>`, `principal:<id>`, `identity:<id>` or `route:<name>`. */
  subject: string
  summary: string
  data: Record<string, number | string>
}

export interface Detector {
  readonly id: DetectorId
  observe(o: Observation, out: Finding[]): void
}

interface WindowCount extends Reported {
  n: number
}

/** A fixed-window counter per subject. */
class WindowCounts {
  private readonly table: TtlLru<WindowCount>
  constructor(
    max: number,
    now: () => number,
    private readonly windowMs: number,
  ) {
    this.table = new TtlLru(max, now)
  }
  /** Adds one; returns the subject's entry for its current window (`n`: the count in it). */
  add(key: string, now: number): WindowCount {
    const e = this.table.get(key, now)
    if (e !== undefined) {
      e.n++
      return e
    }
    const fresh = { n: 1, quietUntil: 0 }
    this.table.set(key, fresh, now + this.windowMs, now)
    return fresh
  }
  get size(): number {
    return this.table.size
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
  const counts = new WindowCounts(c.maxSubjects, now, d.windowSec * 1000)
  const quietMs = c.suppressionSec * 1000
  const check = (subject: string, o: Observation, out: Finding[]) => {
    const e = counts.add(subject, o.now)
    const n = e.n
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
  const windowMs = d.windowSec * 1000
  const table = new TtlLru<Set<string>>(c.maxSubjects, now)
  return {
    id: 'credential-stuffing',
    observe(o, out) {
      if (!o.authFailed || o.identity === undefined) return
      const subject = ipSubject(o)
      let set = table.get(subject, o.now)
      if (set === undefined) {
        set = new Set()
        table.set(subject, set, o.now + windowMs, o.now)
      }
      if (set.size >= d.identities) return // bounded; already past the threshold
      set.add(o.identity)
      if (set.size >= d.identities) {
        out.push({
          detector: 'credential-stuffing',
          subject,
          summary: `${set.size} distinct identities failed authentication from ${subject} within ${d.windowSec} s`,
          data: { identities: set.size, windowSec: d.windowSec },
        })
      }
    },
  }
}

interface EnumState extends Reported {
  objects: Set<string>
  total: number
  denied: number
  /** Sequential walk: the collection path of the last numeric id, the id, the step (±1) and the run length. */
  lastPrefix: string
  lastId: number
  step: number
  run: number
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

export function enumeration(c: Cfg, now: () => number): Detector {
  const d = c.enumeration
  const sequential = (s: EnumState, objectId: string, subject: string, out: Finding[]): void => {
    // The collection prefix and numeric value of the id (`/orders/` and 7 for `/orders/7`).
    const cut = objectId.lastIndexOf('/') + 1
    if (!allDigits(objectId, cut, objectId.length, 15)) return
    const prefix =
      s.lastPrefix.length === cut && objectId.startsWith(s.lastPrefix) ? s.lastPrefix : objectId.slice(0, cut)
    const id = Number(objectId.slice(cut))
    const step = id - s.lastId
    if (prefix === s.lastPrefix && (step === 1 || step === -1) && (s.run === 1 || step === s.step)) {
      s.run++
      s.step = step
    } else if (!(prefix === s.lastPrefix && step === 0)) {
      s.run = 1 // a repeat of the same id neither breaks nor extends a walk
      s.step = 0
    }
    s.lastPrefix = prefix
    s.lastId = id
    if (s.run === d.sequentialRun) {
      const from = id - s.step * (s.run - 1)
      out.push({
        detector: 'enumeration',
        subject,
        summary: `${subject} walked ${s.run} consecutive ids of ${prefix.slice(0, 200)} (${from} to ${id}) within ${d.windowSec} s`,
        data: { sequential: s.run, from, to: id, windowSec: d.windowSec },
      })
    }
  }
  const windowMs = d.windowSec * 1000
  const quietMs = c.suppressionSec * 1000
  const table = new TtlLru<EnumState>(c.maxSubjects, now)
  return {
    id: 'enumeration',
    observe(o, out) {
      if (o.objectId === undefined) return
      const subject = actorSubject(o)
      let s = table.get(subject, o.now)
      if (s === undefined) {
        s = {
          objects: new Set(),
          total: 0,
          denied: 0,
          lastPrefix: '',
          lastId: 0,
          step: 0,
          run: 0,
          quietUntil: 0,
        }
        table.set(subject, s, o.now + windowMs, o.now)
      }
      s.total++
      if (o.status === 403 || o.status === 404) s.denied++
      if (d.sequentialRun > 0) sequential(s, o.objectId, subject, out)
      // At most `objects` ids per subject: past the threshold only the ratio still moves.
      if (s.objects.size < d.objects) s.objects.add(o.objectId)
      if (
        s.objects.size >= d.objects &&
        s.denied / s.total >= d.deniedRatio &&
        mayReport(s, o.now, quietMs)
      ) {
        out.push({
          detector: 'enumeration',
          subject,
          summary: `${subject} touched ${s.objects.size} distinct objects within ${d.windowSec} s, ${s.denied} of ${s.total} requests denied (403/404)`,
          data: { objects: s.objects.size, requests: s.total, denied: s.denied, windowSec: d.windowSec },
        })
      }
    },
  }
}

/**
 * Aligned windows with a moving average (EWMA) of past windows: of the total count, and of the
 * count per active subject. O(1) per observation; empty windows count as zeros (at most 100 are
 * folded in after a long pause: by then the average is near zero anyway).
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

  /** Counts one event at `now` (`newSubject`: the first of its subject in a window); returns the window's total. */
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

export function flood(c: Cfg, now: () => number): Detector {
  const d = c.flood
  const windowMs = d.windowSec * 1000
  const counts = new WindowCounts(c.maxSubjects, now, windowMs)
  const baseline = d.baselineFactor > 0 ? new MovingBaseline(windowMs) : undefined
  const quietMs = c.suppressionSec * 1000
  return {
    id: 'flood',
    observe(o, out) {
      const subject = ipSubject(o)
      const e = counts.add(subject, o.now)
      const n = e.n
      let limit = d.requests
      let typical = -1
      if (baseline !== undefined) {
        baseline.add(o.now, n === 1)
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
  const baseline = new MovingBaseline(d.windowSec * 1000)
  const reported: Reported = { quietUntil: 0 }
  const quietMs = c.suppressionSec * 1000
  return {
    id: 'global-spike',
    observe(o, out) {
      const n = baseline.add(o.now, false)
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
  const windowMs = d.windowSec * 1000
  const table = new TtlLru<Set<string>>(c.maxSubjects, now)
  return {
    id: 'scraping',
    observe(o, out) {
      if (o.page === undefined) return
      const subject = actorSubject(o)
      const key = `${subject}|${o.path}`
      let pages = table.get(key, o.now)
      if (pages === undefined) {
        pages = new Set()
        table.set(key, pages, o.now + windowMs, o.now)
      }
      if (pages.size >= d.pages) return // bounded; already past the threshold
      pages.add(o.page)
      if (pages.size >= d.pages) {
        out.push({
          detector: 'scraping',
          subject,
          summary: `${subject} fetched ${pages.size} distinct pages of ${o.path.slice(0, 200)} within ${d.windowSec} s`,
          data: { pages: pages.size, path: o.path.slice(0, 200), windowSec: d.windowSec },
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

export function errorSpike(c: Cfg, now: () => number): Detector {
  const d = c.errorSpike
  const windowMs = d.windowSec * 1000
  const quietMs = c.suppressionSec * 1000
  // Keyed by the route name itself (the subject string is built only for a finding).
  const table = new TtlLru<{ total: number; errors: number; quietUntil: number }>(c.maxSubjects, now)
  return {
    id: 'error-spike',
    observe(o, out) {
      let s = table.get(o.route, o.now)
      if (s === undefined) {
        s = { total: 0, errors: 0, quietUntil: 0 }
        table.set(o.route, s, o.now + windowMs, o.now)
      }
      s.total++
      if (o.status < 500 || o.status > 599) return
      s.errors++
      if (s.errors >= d.errors && s.errors / s.total >= d.ratio && mayReport(s, o.now, quietMs)) {
        const subject = `route:${o.route}`
        out.push({
          detector: 'error-spike',
          subject,
          summary: `${s.errors} of ${s.total} responses on ${subject} were 5xx within ${d.windowSec} s`,
          data: { errors: s.errors, requests: s.total, windowSec: d.windowSec },
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
