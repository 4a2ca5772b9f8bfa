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
}

export type DetectorId = 'brute-force' | 'credential-stuffing' | 'enumeration' | 'flood' | 'error-spike'

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

/** A fixed-window counter per subject. */
class WindowCounts {
  private readonly table: TtlLru<{ n: number }>
  constructor(
    max: number,
    now: () => number,
    private readonly windowMs: number,
  ) {
    this.table = new TtlLru(max, now)
  }
  /** Adds one; returns the count in the subject's current window. */
  add(key: string, now: number): number {
    const e = this.table.get(key)
    if (e !== undefined) return ++e.n
    this.table.set(key, { n: 1 }, now + this.windowMs)
    return 1
  }
  get size(): number {
    return this.table.size
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const NUMERIC = /^[0-9]{1,40}$/

/** The last path segment when it is numeric or a UUID (the object id of a REST path), else undefined. */
export function objectIdOf(path: string): string | undefined {
  let end = path.length
  if (end > 1 && path.charCodeAt(end - 1) === 47) end-- // a trailing '/'
  const start = path.lastIndexOf('/', end - 1) + 1
  if (start <= 0 || end - start > 64) return undefined
  const seg = path.slice(start, end)
  if (NUMERIC.test(seg) || UUID.test(seg)) return `${path.slice(0, start)}${seg.toLowerCase()}`
  return undefined
}

type Cfg = DetectConfig

export function bruteForce(c: Cfg, now: () => number): Detector {
  const d = c.bruteForce
  const counts = new WindowCounts(c.maxSubjects, now, d.windowSec * 1000)
  const check = (subject: string, o: Observation, out: Finding[]) => {
    const n = counts.add(subject, o.now)
    if (n >= d.failures) {
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
      check(`ip:${o.ip}`, o, out)
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
      const subject = `ip:${o.ip}`
      let set = table.get(subject)
      if (set === undefined) {
        set = new Set()
        table.set(subject, set, o.now + windowMs)
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

interface EnumState {
  objects: Set<string>
  total: number
  denied: number
}

export function enumeration(c: Cfg, now: () => number): Detector {
  const d = c.enumeration
  const windowMs = d.windowSec * 1000
  const table = new TtlLru<EnumState>(c.maxSubjects, now)
  return {
    id: 'enumeration',
    observe(o, out) {
      if (o.objectId === undefined) return
      const subject = o.principal !== undefined ? `principal:${o.principal}` : `ip:${o.ip}`
      let s = table.get(subject)
      if (s === undefined) {
        s = { objects: new Set(), total: 0, denied: 0 }
        table.set(subject, s, o.now + windowMs)
      }
      s.total++
      if (o.status === 403 || o.status === 404) s.denied++
      // At most `objects` ids per subject: past the threshold only the ratio still moves.
      if (s.objects.size < d.objects) s.objects.add(o.objectId)
      if (s.objects.size >= d.objects && s.denied / s.total >= d.deniedRatio) {
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

export function flood(c: Cfg, now: () => number): Detector {
  const d = c.flood
  const counts = new WindowCounts(c.maxSubjects, now, d.windowSec * 1000)
  return {
    id: 'flood',
    observe(o, out) {
      const subject = `ip:${o.ip}`
      const n = counts.add(subject, o.now)
      if (n >= d.requests) {
        out.push({
          detector: 'flood',
          subject,
          summary: `${n} requests from ${subject} within ${d.windowSec} s`,
          data: { requests: n, windowSec: d.windowSec },
        })
      }
    },
  }
}

export function errorSpike(c: Cfg, now: () => number): Detector {
  const d = c.errorSpike
  const windowMs = d.windowSec * 1000
  const table = new TtlLru<{ total: number; errors: number }>(c.maxSubjects, now)
  return {
    id: 'error-spike',
    observe(o, out) {
      const subject = `route:${o.route}`
      let s = table.get(subject)
      if (s === undefined) {
        s = { total: 0, errors: 0 }
        table.set(subject, s, o.now + windowMs)
      }
      s.total++
      if (o.status < 500 || o.status > 599) return
      s.errors++
      if (s.errors >= d.errors && s.errors / s.total >= d.ratio) {
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
  if (c.errorSpike.enabled) out.push(errorSpike(c, now))
  return out
}
