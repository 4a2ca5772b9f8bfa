/**
 * Bounded, mergeable sketches for per-operation statistics. Both merge by field-wise max or sum,
 * which is what the store's hashes do (`hashes.update` max / incr), so several gateways add into
 * one sketch without coordination.
 *
 * - Distinct principals: a HyperLogLog with 2^8 registers (256 bytes; standard error ≈ 6.5%,
 *   exact-ish below ~100 by linear counting).
 * - Latency: a log-bucketed histogram (buckets grow by 8%, so a quantile read back is within
 *   ±4% of the true value), at most {@link LATENCY_BUCKETS} buckets from 10 µs to ~10 min.
 */

/** log2 of the number of HyperLogLog registers. */
export const HLL_P = 8
export const HLL_M = 1 << HLL_P

/** 32-bit FNV-1a of a string, then a murmur3 finalizer (FNV alone mixes the low bits poorly). */
export function hash32(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Adds a value to HyperLogLog registers; true when a register grew. */
export function hllAdd(registers: Uint8Array, value: string): boolean {
  const h = hash32(value)
  const idx = h >>> (32 - HLL_P)
  const rest = (h << HLL_P) >>> 0
  // Rank: position of the first 1 bit in the remaining 24 bits (1-based), 25 when all zero.
  const rank = rest === 0 ? 32 - HLL_P + 1 : Math.clz32(rest) + 1
  if (rank > (registers[idx] as number)) {
    registers[idx] = rank
    return true
  }
  return false
}

/** The HyperLogLog cardinality estimate of registers. */
export function hllCount(registers: Uint8Array): number {
  let sum = 0
  let zeros = 0
  for (let i = 0; i < HLL_M; i++) {
    const r = registers[i] as number
    sum += 2 ** -r
    if (r === 0) zeros++
  }
  const alpha = 0.7213 / (1 + 1.079 / HLL_M)
  const raw = (alpha * HLL_M * HLL_M) / sum
  if (raw <= 2.5 * HLL_M && zeros > 0) return Math.round(HLL_M * Math.log(HLL_M / zeros))
  return Math.round(raw)
}

/** Latency histogram: bucket i holds values in (MIN·G^(i-1), MIN·G^i] ms. */
const LAT_MIN_MS = 0.01
const LAT_GROWTH = 1.08
const LN_GROWTH = Math.log(LAT_GROWTH)
export const LATENCY_BUCKETS = 256

/** The bucket of a duration in ms (0 for ≤ 10 µs, capped at the last bucket). */
export function latencyBucket(ms: number): number {
  if (!(ms > LAT_MIN_MS)) return 0
  const i = Math.ceil(Math.log(ms / LAT_MIN_MS) / LN_GROWTH)
  return i >= LATENCY_BUCKETS ? LATENCY_BUCKETS - 1 : i
}

/** A representative value of a bucket (its geometric middle), in ms. */
export function bucketValue(i: number): number {
  if (i <= 0) return LAT_MIN_MS
  return LAT_MIN_MS * LAT_GROWTH ** (i - 0.5)
}

/** The q-quantile (0–1) of a histogram given as bucket → count; undefined when empty. */
export function quantile(buckets: ReadonlyMap<number, number>, q: number): number | undefined {
  let total = 0
  for (const c of buckets.values()) total += c
  if (total === 0) return undefined
  const rank = Math.max(1, Math.ceil(q * total))
  let seen = 0
  for (const i of [...buckets.keys()].sort((a, b) => a - b)) {
    seen += buckets.get(i) as number
    if (seen >= rank) return Math.round(bucketValue(i) * 1000) / 1000
  }
  return undefined
}
