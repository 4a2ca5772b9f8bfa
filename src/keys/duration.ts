/** Durations as the `keys` CLI takes them: `90s`, `15m`, `24h`, `30d`, `2w`, or `0`. */

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
/** 100 years: far enough for any key, near enough for Date to represent. */
export const MAX_DURATION_MS = 100 * 365 * 86_400_000

/** Milliseconds, or undefined when `s` is not a duration. */
export function parseDuration(s: string): number | undefined {
  if (s === '0') return 0
  const m = /^(\d{1,9})([smhdw])$/.exec(s)
  if (!m) return undefined
  const ms = Number(m[1]) * (UNITS[m[2] as string] as number)
  return ms <= MAX_DURATION_MS ? ms : undefined
}
