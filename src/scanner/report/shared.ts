/** Helpers shared by the report renderers: ordering, counts, excerpts. */
import type { CheckInfo, Exchange, Finding, ScanReport, Severity } from '../types.js'
import { SEVERITY_RANK } from '../types.js'

export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info']

/** Findings worst first; within a severity, by check id then operation (stable). */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  return findings
    .map((f, i) => ({ f, i }))
    .sort(
      (a, b) =>
        SEVERITY_RANK[b.f.severity] - SEVERITY_RANK[a.f.severity] ||
        a.f.checkId.localeCompare(b.f.checkId) ||
        opLabel(a.f).localeCompare(opLabel(b.f)) ||
        a.i - b.i,
    )
    .map((x) => x.f)
}

export function countBySeverity(findings: readonly Finding[]): Record<Severity, number> {
  const counts: Record<Severity, number> = { critical: 0, high: 0, medium: 0, low: 0, info: 0 }
  for (const f of findings) counts[f.severity]++
  return counts
}

export function summaryLine(report: ScanReport): string {
  const c = countBySeverity(report.findings)
  const parts = SEVERITIES.map((s) => `${c[s]} ${s}`).join(', ')
  const n = report.findings.length
  return (
    `${n} finding${n === 1 ? '' : 's'} (${parts}) from ${report.checks.length} checks, ` +
    `${report.skipped.length} skipped, ${report.stats.requests} requests, ${report.stats.errors} errors, ` +
    `${(report.durationMs / 1000).toFixed(1)} s`
  )
}

/** `GET /orders/{id}` or '' when the finding has no operation. */
export function opLabel(f: Finding): string {
  return f.operation ? `${f.operation.method.toUpperCase()} ${f.operation.path}` : ''
}

export function checkById(report: ScanReport): Map<string, CheckInfo> {
  return new Map(report.checks.map((c) => [c.id, c]))
}

/** At most `max` characters, with a marker when cut. */
export function excerpt(text: string | undefined, max = 400): string {
  if (text === undefined) return ''
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`
}

/** `GET http://host/path` */
export function requestLine(x: Exchange): string {
  return `${x.request.method.toUpperCase()} ${x.request.url}`
}

/** `→ 200 (12 ms)` or `→ error: …` */
export function responseLine(x: Exchange): string {
  if (x.response) return `→ ${x.response.status} (${Math.round(x.response.durationMs)} ms)`
  return `→ ${x.error ? `error: ${x.error}` : 'no response'}`
}

/** Characters that are never printable in a report: C0/C1 controls except tab and newline, bidi overrides. */
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g

/** Replaces control characters (ANSI escapes from a hostile response included) with U+FFFD. */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, '\ufffd')
}
