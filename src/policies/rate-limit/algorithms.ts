/**
 * The two limiting algorithms over any Store (the shared one, or the local insurance store).
 */
import type { Store } from '../../stores/types.js'

/** One limit's decision for one request. */
export interface Decision {
  allowed: boolean
  /** Requests (of cost 1) still admitted now. */
  remaining: number
  /** Ms until the limit is back to full (gcra) or the current window ends (sliding window). */
  resetMs: number
  /** When denied: ms until the same request would be admitted. */
  retryAfterMs: number
  /** Throttling: ms this admitted request must wait before it goes on (0: at once). */
  delayMs: number
}

/** Parameters of a limit, already scaled (the local insurance limiter takes a share). */
export interface LimitParams {
  algorithm: 'gcra' | 'sliding-window'
  rate: number
  perMs: number
  burst: number
  cost: number
  /** gcra throttling: queue slots (reservations beyond the burst); 0 without throttling. */
  queue: number
}

/** GCRA: one atomic store call. With a queue, the bucket is `burst + queue` deep and the part past
 * `burst` is a reservation: the request is admitted with a delay until its slot comes. */
export async function gcraDecide(store: Store, key: string, p: LimitParams): Promise<Decision> {
  const emissionIntervalMs = p.perMs / p.rate
  const r = await store.gcra.gcra(key, { emissionIntervalMs, burst: p.burst + p.queue, cost: p.cost })
  return gcraDecision(r, p, emissionIntervalMs)
}

/**
 * The GCRA decision without a promise, when the store decides in-process (memory: `gcraSync`);
 * undefined when it cannot (another algorithm, or a store with a round trip).
 */
export function decideSync(store: Store, key: string, p: LimitParams): Decision | undefined {
  const sync = store.gcra.gcraSync
  if (p.algorithm !== 'gcra' || sync === undefined) return undefined
  const emissionIntervalMs = p.perMs / p.rate
  const r = sync(key, { emissionIntervalMs, burst: p.burst + p.queue, cost: p.cost })
  return gcraDecision(r, p, emissionIntervalMs)
}

function gcraDecision(
  r: { allowed: boolean; retryAfterMs: number; remaining: number; resetMs: number },
  p: LimitParams,
  emissionIntervalMs: number,
): Decision {
  if (!r.allowed) {
    return { allowed: false, remaining: 0, resetMs: r.resetMs, retryAfterMs: r.retryAfterMs, delayMs: 0 }
  }
  let delayMs = 0
  if (p.queue > 0) {
    // resetMs is when the bucket is full again = newTat − now; the request's own slot under the
    // plain burst is newTat − interval × burst.
    delayMs = Math.max(0, Math.ceil(r.resetMs - emissionIntervalMs * p.burst))
  }
  return {
    allowed: true,
    remaining: Math.max(0, r.remaining - p.queue),
    resetMs: r.resetMs,
    retryAfterMs: 0,
    delayMs,
  }
}

/**
 * Sliding window (the weighted two-window counter): the estimate is
 * `previous × (1 − elapsed/per) + current`. A request is counted first (atomic increment) and
 * given back when the estimate passes the rate, so concurrent requests never over-admit: each
 * admitted request holds its unit in the current counter. Window boundaries come from `nowMs`
 * (the gateway clock: gateways sharing a store need synchronized clocks).
 */
export async function slidingDecide(
  store: Store,
  key: string,
  p: LimitParams,
  nowMs: number,
): Promise<Decision> {
  const idx = Math.floor(nowMs / p.perMs)
  const elapsed = nowMs - idx * p.perMs
  const windowTtl = p.perMs * 2
  const [cur, prev] = await Promise.all([
    store.counters.incr(`${key}#${idx}`, p.cost, windowTtl),
    store.counters.get(`${key}#${idx - 1}`),
  ])
  const weight = 1 - elapsed / p.perMs
  const prevPart = Math.floor(prev.value * weight)
  const estimate = prevPart + cur.value
  const resetMs = Math.max(1, Math.ceil(p.perMs - elapsed))
  if (estimate <= p.rate) {
    return { allowed: true, remaining: Math.max(0, p.rate - estimate), resetMs, retryAfterMs: 0, delayMs: 0 }
  }
  // Give the unit back, without waiting for it (the decision does not depend on it, and a second
  // round trip could double the wait on a slow store); a failure only makes the limit stricter.
  store.counters.incr(`${key}#${idx}`, -p.cost, windowTtl).catch(() => undefined)
  const current = cur.value - p.cost
  let retryAfterMs = resetMs
  if (current + p.cost <= p.rate && prev.value > 0) {
    // previous × (1 − x/per) + current + cost ≤ rate  ⇔  x ≥ per × (1 − (rate − current − cost)/previous)
    const x = p.perMs * (1 - (p.rate - current - p.cost) / prev.value)
    retryAfterMs = Math.max(1, Math.ceil(x - elapsed))
  }
  return { allowed: false, remaining: 0, resetMs, retryAfterMs, delayMs: 0 }
}

export function decide(store: Store, key: string, p: LimitParams, nowMs: number): Promise<Decision> {
  return p.algorithm === 'gcra' ? gcraDecide(store, key, p) : slidingDecide(store, key, p, nowMs)
}
