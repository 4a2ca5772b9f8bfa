/**
 * The one duration grammar of Portcullis (config, CLI flags, admin API): a whole number and a unit,
 * `500ms`, `30s`, `5m`, `1h`, `7d` (and `2w`), or `0`. No spaces, no fractions, no compound forms
 * (`1h30m`: write `90m`), no bare numbers: a duration always says its unit.
 */

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}
/** 100 years: beyond any sensible duration, within what Date and timers represent exactly. */
export const MAX_DURATION_MS = 100 * 365 * 86_400_000
const GRAMMAR = /^(\d{1,12})(ms|s|m|h|d|w)$/

/** The grammar, for messages: what a duration looks like. */
export const DURATION_FORMS = '500ms, 30s, 5m, 1h, 7d'

/** Milliseconds, or undefined when `s` is not a duration (or is over MAX_DURATION_MS). */
export function parseDuration(s: string): number | undefined {
  if (s === '0') return 0
  if (s.length > 16) return undefined
  const m = GRAMMAR.exec(s)
  if (!m) return undefined
  const ms = Number(m[1]) * (UNITS[m[2] as string] as number)
  return ms <= MAX_DURATION_MS ? ms : undefined
}

/** A duration in the largest unit that writes it exactly: 90000 → `90s`, 3600000 → `1h`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return String(ms)
  if (ms === 0) return '0'
  if (!Number.isInteger(ms)) return `${ms}ms`
  for (const [u, f] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % f === 0) return `${ms / f}${u}`
  }
  return `${ms}ms`
}
