/**
 * What the dashboard shows live, fed from the log phase: per-second traffic buckets for the last
 * {@link WINDOW_SEC} seconds (requests, denials and errors by `GW_ERR_*` code, a latency
 * histogram), the rate-limit keys that use their limits most (space-saving top-k), and a live feed
 * of redacted request summaries for server-sent events, built only while someone is watching.
 *
 * Per request: a few array and Map updates. Everything is bounded: the ring, the codes per
 * second, the top-k table, the listeners and their queues. This gateway's traffic only (each
 * gateway has its own).
 */
import { createHash } from 'node:crypto'
import { coarseNow } from '../util/coarse-clock.js'
import type { LogEntry } from '../gateway/pipeline/policy.js'
import { latencyBucket, quantile } from '../inventory/sketch.js'
import { segmentKind } from '../inventory/templater.js'

/** Seconds of history kept. */
export const WINDOW_SEC = 900
const MAX_CODES_PER_SEC = 32
const TOPK = 200
const MAX_LISTENERS = 32

interface Second {
  sec: number
  requests: number
  denied: number
  errors: number
  codes: Map<string, number>
  latency: Map<number, number>
}

/** One point of the overview's series. */
export interface TrafficPoint {
  /** Unix time, seconds. */
  t: number
  requests: number
  denied: number
  errors: number
  p50?: number
  p99?: number
  codes: Record<string, number>
}

/** A request as the live feed shows it: no query values, ids masked, address truncated. */
export interface LiveRequest {
  time: string
  method: string
  /** The path with identifier-like segments replaced (`/users/{id}`) and no query string. */
  path: string
  /** Query parameter names only. */
  query: string[]
  route: string
  status: number
  ms: number
  decision: string
  code?: string
  /** The client address with its last part cut (`203.0.113.x`, `2001:db8:…`). */
  client: string
  /** A short hash of the principal id (never the id), when authenticated. */
  principal?: string
}

export interface RateLimitKey {
  limit: string
  key: string
  requests: number
  denied: number
  /** Estimated overcount from the space-saving sketch. */
  error: number
  lastRemaining?: number
}

function maskPath(path: string): string {
  if (path.length > 512) path = `${path.slice(0, 512)}…`
  return path
    .split('/')
    .map((s) => {
      const k = segmentKind(s)
      return k === undefined ? s : `{${k}}`
    })
    .join('/')
}

/** The client address with its host part cut. */
export function maskIp(ip: string): string {
  if (ip.includes('.') && !ip.includes(':')) {
    const p = ip.split('.')
    return p.length === 4 ? `${p[0]}.${p[1]}.${p[2]}.x` : 'x'
  }
  if (ip.includes(':')) return `${ip.split(':').slice(0, 3).join(':')}:…`
  return ''
}

interface RlState {
  applied?: { limit: { name: string }; key: string; decision?: { allowed: boolean; remaining?: number } }[]
}

type Listener = (r: LiveRequest) => void

export class Telemetry {
  private readonly ring: Second[] = []
  private readonly topk = new Map<string, RateLimitKey>()
  private readonly listeners = new Set<Listener>()
  private readonly salt = createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 16)
  /** Requests since start. */
  total = 0

  constructor(private readonly now: () => number = coarseNow) {
    for (let i = 0; i < WINDOW_SEC; i++) {
      this.ring.push({ sec: -1, requests: 0, denied: 0, errors: 0, codes: new Map(), latency: new Map() })
    }
  }

  /** Log phase. Never throws. */
  observe(entry: LogEntry): void {
    try {
      this.observeUnsafe(entry)
    } catch {
      // the dashboard must never disturb the log phase
    }
  }

  private observeUnsafe(entry: LogEntry): void {
    this.total++
    const sec = Math.floor(this.now() / 1000)
    const s = this.ring[sec % WINDOW_SEC] as Second
    if (s.sec !== sec) {
      s.sec = sec
      s.requests = 0
      s.denied = 0
      s.errors = 0
      s.codes.clear()
      s.latency.clear()
    }
    s.requests++
    if (entry.decision === 'denied') s.denied++
    else if (entry.decision === 'error') s.errors++
    const code = entry.errorCode
    if (code !== undefined && (s.codes.has(code) || s.codes.size < MAX_CODES_PER_SEC)) {
      s.codes.set(code, (s.codes.get(code) ?? 0) + 1)
    }
    const b = latencyBucket(entry.durationMs)
    s.latency.set(b, (s.latency.get(b) ?? 0) + 1)
    const rl = entry.ctx.state['rate-limit'] as RlState | undefined
    if (rl?.applied !== undefined)
      for (const a of rl.applied) this.countKey(a, code === 'GW_ERR_RATE_LIMITED')
    if (this.listeners.size > 0) this.emit(entry)
  }

  /** Space-saving: a new key replaces the smallest when the table is full, inheriting its count as error. */
  private countKey(a: NonNullable<RlState['applied']>[number], limited: boolean): void {
    const id = `${a.limit.name}\u0000${a.key}`
    let e = this.topk.get(id)
    if (e === undefined) {
      let error = 0
      if (this.topk.size >= TOPK) {
        let minId: string | undefined
        let min = Number.POSITIVE_INFINITY
        for (const [k, v] of this.topk) {
          if (v.requests < min) {
            min = v.requests
            minId = k
          }
        }
        if (minId !== undefined) this.topk.delete(minId)
        error = min
      }
      e = { limit: a.limit.name, key: a.key.slice(0, 200), requests: error, denied: 0, error }
      this.topk.set(id, e)
    }
    e.requests++
    const d = a.decision
    if (d && !d.allowed) e.denied++
    else if (limited && d === undefined) e.denied++
    if (d?.remaining !== undefined) e.lastRemaining = d.remaining
  }

  private emit(entry: LogEntry): void {
    const ctx = entry.ctx
    const q =
      ctx.query === ''
        ? []
        : ctx.query
            .split('&')
            .slice(0, 16)
            .map((p) => p.split('=')[0]?.slice(0, 64) ?? '')
    const r: LiveRequest = {
      time: new Date(this.now()).toISOString(),
      method: ctx.method.slice(0, 16),
      path: maskPath(ctx.path !== '' ? ctx.path : '(invalid target)'),
      query: q,
      route: ctx.routeName,
      status: entry.status,
      ms: Math.round(entry.durationMs * 10) / 10,
      decision: entry.decision,
      client: maskIp(ctx.clientIp),
    }
    if (entry.errorCode !== undefined) r.code = entry.errorCode
    const p = ctx.principal?.id
    if (p !== undefined)
      r.principal = createHash('sha256')
        .update(this.salt + p)
        .digest('hex')
        .slice(0, 10)
    for (const l of this.listeners) l(r)
  }

  /** Subscribes to the live feed; returns the unsubscribe function, or undefined when full. */
  subscribe(l: Listener): (() => void) | undefined {
    if (this.listeners.size >= MAX_LISTENERS) return undefined
    this.listeners.add(l)
    return () => this.listeners.delete(l)
  }

  /** The last `seconds` seconds, oldest first (seconds without traffic included, as zeros). */
  series(seconds = 300): TrafficPoint[] {
    const n = Math.min(WINDOW_SEC - 1, Math.max(1, seconds))
    const nowSec = Math.floor(this.now() / 1000)
    const out: TrafficPoint[] = []
    for (let t = nowSec - n + 1; t <= nowSec; t++) {
      const s = this.ring[((t % WINDOW_SEC) + WINDOW_SEC) % WINDOW_SEC] as Second
      if (s.sec !== t) {
        out.push({ t, requests: 0, denied: 0, errors: 0, codes: {} })
        continue
      }
      const p: TrafficPoint = {
        t,
        requests: s.requests,
        denied: s.denied,
        errors: s.errors,
        codes: Object.fromEntries(s.codes),
      }
      const p50 = quantile(s.latency, 0.5)
      const p99 = quantile(s.latency, 0.99)
      if (p50 !== undefined) p.p50 = p50
      if (p99 !== undefined) p.p99 = p99
      out.push(p)
    }
    return out
  }

  /** The rate-limit keys with the most requests (estimates), most first. */
  topKeys(limit = 50): RateLimitKey[] {
    return [...this.topk.values()]
      .sort((a, b) => b.requests - a.requests || b.denied - a.denied)
      .slice(0, limit)
      .map((e) => ({ ...e }))
  }
}
