/**
 * The score, 0–100: `100 × e^(−P/100)`, rounded, where P is the sum of the findings' penalties. A
 * finding costs its severity's weight, a bit more when it has many locations (× (1 + log10 of
 * their number), at most × 3), so a flaw repeated on 200 operations counts as a flaw, not as 200:
 * a spec is not punished for being large. The exponential keeps large, flawed specs apart from
 * each other instead of flooring them all at 0 (one high finding: 90; P = 100: 37; P = 300: 5).
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
  return Math.round(100 * Math.exp(-total / 100))
}
