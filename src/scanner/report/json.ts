/** The JSON report: the ScanReport itself, with a stable key order (sorted keys, arrays as they are). */
import type { ScanReport } from '../types.js'

export function renderJson(report: ScanReport): string {
  return `${JSON.stringify(sortKeys(report), null, 2)}\n`
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key]
      if (v !== undefined) out[key] = sortKeys(v)
    }
    return out
  }
  return value
}
