/**
 * The score, 0–100: 100 minus a penalty per finding. A finding costs its severity's weight, a bit
 * more when it has many locations (1 + log10 of their number, at most 3 times the weight), so a
 * flaw repeated on 200 operations counts as a flaw, not as 200: one rule cannot sink the score
 * alone, and a spec is not punished for being large. Floored at 0, rounded.
 *
 * | severity | weight |
 * | --- | --- |
 * | critical | 20 |
 * | high | 10 |
 * | medium | 4 |
 * | low | 1 |
 * | info | 0 |
 */
import type { Finding, Severity } from './types.js'

export const SCORE_WEIGHTS: Record<Severity, number> = { critical: 20, high: 10, medium: 4, low: 1, info: 0 }

/** The penalty of one finding. */
export function penalty(f: Pick<Finding, 'severity' | 'locations'>): number {
  const n = Math.max(1, f.locations.length)
  return SCORE_WEIGHTS[f.severity] * Math.min(3, 1 + Math.log10(n))
}

/**
 * @example
 * score([]) // → 100
 * score([{ severity: 'high', locations: [loc] }]) // → 90
 */
export function score(findings: readonly Pick<Finding, 'severity' | 'locations'>[]): number {
  const total = findings.reduce((n, f) => n + penalty(f), 0)
  return Math.max(0, Math.round(100 - total))
}
