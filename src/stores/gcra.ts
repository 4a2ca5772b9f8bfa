/**
 * The generic cell rate algorithm, in integer microseconds so that every step is exact in a double
 * (timestamps near 2^51 µs stay below 2^53). The memory store runs {@link gcraStep}; the Redis
 * store runs the same arithmetic in Lua (redis/scripts.ts): keep the two in step.
 */
import type { GcraParams, GcraResult } from './types.js'

/** Checked, integer-microsecond parameters. */
export interface GcraArgs {
  intervalUs: number
  burst: number
  cost: number
}

/** Largest `emissionIntervalMs × burst` accepted: 100 years. */
const MAX_SPAN_US = 100 * 365 * 24 * 3600 * 1e6

/** Validates the parameters (RangeError for bugs) and converts them to integer µs. */
export function checkGcraParams(p: GcraParams): GcraArgs {
  const { emissionIntervalMs, burst, cost } = p
  if (
    typeof emissionIntervalMs !== 'number' ||
    !Number.isFinite(emissionIntervalMs) ||
    emissionIntervalMs <= 0
  ) {
    throw new RangeError(`emissionIntervalMs must be a positive number, got ${String(emissionIntervalMs)}`)
  }
  if (!Number.isSafeInteger(burst) || burst < 1) {
    throw new RangeError(`burst must be a positive integer, got ${String(burst)}`)
  }
  if (!Number.isSafeInteger(cost) || cost < 0) {
    throw new RangeError(`cost must be a non-negative integer, got ${String(cost)}`)
  }
  if (cost > burst) throw new RangeError(`cost (${cost}) larger than burst (${burst}) is never admitted`)
  const intervalUs = Math.max(1, Math.round(emissionIntervalMs * 1000))
  if (intervalUs * burst > MAX_SPAN_US) {
    throw new RangeError('emissionIntervalMs × burst must not exceed 100 years')
  }
  if (p.nowMs !== undefined && (typeof p.nowMs !== 'number' || !Number.isFinite(p.nowMs) || p.nowMs < 0)) {
    throw new RangeError(`nowMs must be a non-negative number, got ${String(p.nowMs)}`)
  }
  return { intervalUs, burst, cost }
}

/** One GCRA decision: the result and the new stored TAT (undefined: leave the key as it is). */
export interface GcraStep {
  result: GcraResult
  /** The new theoretical arrival time in µs; undefined when nothing is to be written. */
  tatUs: number | undefined
}

/**
 * One step. `storedTatUs` is the key's theoretical arrival time (undefined for a fresh or expired
 * key), `nowUs` the current time; both integer µs.
 *
 * tat = max(stored, now); newTat = tat + interval × cost; allowAt = newTat − interval × burst.
 * Admitted when allowAt ≤ now; then newTat is stored (with a TTL of newTat − now, after which the
 * key equals a fresh one).
 */
export function gcraStep(storedTatUs: number | undefined, nowUs: number, a: GcraArgs): GcraStep {
  const tat = storedTatUs === undefined ? nowUs : Math.max(storedTatUs, nowUs)
  const span = a.intervalUs * a.burst
  const newTat = tat + a.intervalUs * a.cost
  const allowAt = newTat - span
  if (allowAt > nowUs) {
    return {
      result: {
        allowed: false,
        retryAfterMs: Math.ceil((allowAt - nowUs) / 1000),
        remaining: Math.max(0, Math.floor((nowUs - (tat - span)) / a.intervalUs)),
        resetMs: Math.ceil((tat - nowUs) / 1000),
      },
      tatUs: undefined,
    }
  }
  return {
    result: {
      allowed: true,
      retryAfterMs: 0,
      remaining: Math.floor((nowUs - allowAt) / a.intervalUs),
      resetMs: Math.ceil((newTat - nowUs) / 1000),
    },
    tatUs: a.cost > 0 ? newTat : undefined,
  }
}
