/**
 * One operation's statistics as this gateway counts them, and their form as a flat record of
 * integer fields — the form they take in the store's hashes, where several gateways merge:
 *
 *   n  requests          dn denied by the gateway     er  errors (5xx, upstream failures)
 *   au with credentials  uo answered < 400 without credentials
 *   t0 first seen (min)  t1 last seen (max)           h:<i> HyperLogLog register i (max)
 *   s:<status>           e:<GW_ERR code>              l:<bucket> latency histogram
 *   ct:<req|res>:<type>  content types (samples)      q:<name> query parameter names
 *   qt:<name>|<type>     query value types (samples)  pp:<i>|<type> path parameter types (samples)
 *   sm:<where>           sampled messages             f:<where>|<path>|<type> JSON fields
 *   c:<where>|<class>    data class seen               cp:<where>|<class>|<path> where in the message
 *
 * `where` is `req`, `res:<status>`, `query`, `reqh` (request headers) or `resh`. Every field but
 * t0 (min), t1 and h:* (max) adds up. Each prefix is bounded per operation (see {@link LIMITS}).
 */
import { HLL_M, hllAdd, latencyBucket } from './sketch.js'

/** Distinct fields kept per operation, by prefix. */
export const LIMITS: Record<string, number> = {
  's:': 40,
  'e:': 40,
  'ct:': 16,
  'q:': 64,
  'qt:': 128,
  'pp:': 32,
  'sm:': 40,
  'f:': 150,
  'c:': 80,
  'cp:': 80,
}

/** How a field merges: `min`, `max`, or `sum`. */
export function mergeKind(field: string): 'min' | 'max' | 'sum' {
  if (field === 't0') return 'min'
  if (field === 't1' || field.startsWith('h:')) return 'max'
  return 'sum'
}

/** Merges `from` into `into` field by field. */
export function mergeFields(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const f of Object.keys(from)) {
    const v = from[f] as number
    const cur = Object.hasOwn(into, f) ? (into[f] as number) : undefined
    let next: number
    if (cur === undefined) next = v
    else {
      const k = mergeKind(f)
      next = k === 'sum' ? cur + v : k === 'max' ? Math.max(cur, v) : Math.min(cur, v)
    }
    Object.defineProperty(into, f, { value: next, enumerable: true, writable: true, configurable: true })
  }
}

function prefixOf(field: string): string {
  const i = field.indexOf(':')
  return i === -1 ? '' : field.slice(0, i + 1)
}

export class OpStats {
  readonly key: string
  n = 0
  dn = 0
  er = 0
  au = 0
  uo = 0
  t0 = 0
  t1 = 0
  readonly status = new Map<number, number>()
  readonly latency = new Map<number, number>()
  readonly hll = new Uint8Array(HLL_M)
  /** Every other field (its full name) → count since the last flush. */
  readonly bag = new Map<string, number>()
  /** Names admitted per prefix (kept across flushes, so the bound holds over time). */
  private readonly admitted = new Map<string, Set<string>>()
  /** Requests seen since start (not reset by a flush): drives the warm-up sampling. */
  seen = 0
  /** Upstream responses seen since start: drives the warm-up sampling of response bodies. */
  resSeen = 0
  lastQueryNames: string[] = []
  lastPrincipal: string | undefined = undefined
  lastQuery = ''
  /** Something was counted since the last flush. */
  dirty = false

  constructor(key: string) {
    this.key = key
  }

  /** Counts one finished request (the hot path: a few Map operations). */
  count(
    now: number,
    status: number,
    durationMs: number,
    decision: string,
    errorCode: string | undefined,
    principal: string | undefined,
    credentialed: boolean,
  ): void {
    this.n++
    this.seen++
    this.dirty = true
    if (this.t0 === 0 || now < this.t0) this.t0 = now
    if (now > this.t1) this.t1 = now
    this.status.set(status, (this.status.get(status) ?? 0) + 1)
    const b = latencyBucket(durationMs)
    this.latency.set(b, (this.latency.get(b) ?? 0) + 1)
    if (decision === 'denied') this.dn++
    else if (decision === 'error') this.er++
    if (errorCode !== undefined) this.add(`e:${errorCode}`, 1)
    if (credentialed) this.au++
    else if (status < 400) this.uo++
    if (principal !== undefined && principal !== this.lastPrincipal) {
      this.lastPrincipal = principal
      hllAdd(this.hll, principal)
    }
  }

  /** Adds to a bag field, unless its prefix is full and the field is new. */
  add(field: string, by: number): void {
    const cur = this.bag.get(field)
    if (cur !== undefined) {
      this.bag.set(field, cur + by)
      this.dirty = true
      return
    }
    const p = prefixOf(field)
    const limit = LIMITS[p]
    if (limit !== undefined) {
      let set = this.admitted.get(p)
      if (set === undefined) {
        set = new Set()
        this.admitted.set(p, set)
      }
      if (!set.has(field)) {
        if (set.size >= limit) return
        set.add(field)
      }
    }
    this.bag.set(field, by)
    this.dirty = true
  }

  /** Registers as flushed last time (to send only those that grew). */
  private flushedHll = new Uint8Array(HLL_M)

  /**
   * Everything counted as a field record (see the module comment). `delta`: only what changed
   * since the last {@link reset} (HyperLogLog registers that grew), for a flush to the store.
   */
  toFields(delta = false): Record<string, number> {
    const out: Record<string, number> = {}
    const put = (f: string, v: number) =>
      Object.defineProperty(out, f, { value: v, enumerable: true, writable: true, configurable: true })
    if (this.n) put('n', this.n)
    if (this.dn) put('dn', this.dn)
    if (this.er) put('er', this.er)
    if (this.au) put('au', this.au)
    if (this.uo) put('uo', this.uo)
    if (this.t0) put('t0', this.t0)
    if (this.t1) put('t1', this.t1)
    for (const [s, c] of this.status) put(`s:${s}`, c)
    for (const [b, c] of this.latency) put(`l:${b}`, c)
    for (const [f, c] of this.bag) put(f, c)
    for (let i = 0; i < HLL_M; i++) {
      const r = this.hll[i] as number
      if (r > 0 && (!delta || r > (this.flushedHll[i] as number))) put(`h:${i}`, r)
    }
    return out
  }

  /** After a flush: counts start again from zero (first/last seen and the sketch are kept). */
  reset(): void {
    this.n = 0
    this.dn = 0
    this.er = 0
    this.au = 0
    this.uo = 0
    this.status.clear()
    this.latency.clear()
    this.bag.clear()
    this.flushedHll.set(this.hll)
    this.dirty = false
  }

  /** Folds another operation's counts into this one (a collapse merged their templates). */
  absorb(o: OpStats): void {
    this.n += o.n
    this.dn += o.dn
    this.er += o.er
    this.au += o.au
    this.uo += o.uo
    this.seen += o.seen
    if (o.t0 && (!this.t0 || o.t0 < this.t0)) this.t0 = o.t0
    if (o.t1 > this.t1) this.t1 = o.t1
    for (const [s, c] of o.status) this.status.set(s, (this.status.get(s) ?? 0) + c)
    for (const [b, c] of o.latency) this.latency.set(b, (this.latency.get(b) ?? 0) + c)
    for (const [f, c] of o.bag) this.add(f, c)
    for (let i = 0; i < HLL_M; i++)
      if ((o.hll[i] as number) > (this.hll[i] as number)) this.hll[i] = o.hll[i] as number
    this.dirty = true
  }
}
