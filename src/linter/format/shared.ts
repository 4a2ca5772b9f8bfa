/** What every output format shares: file names shown relative to the working directory, counts. */
import { isAbsolute, relative } from 'node:path'
import type { Finding, LintReport, Severity, SpecLocation } from '../types.js'
import { SEVERITIES } from '../types.js'

/** A spec file as the user sees it: relative to the working directory when below it. */
export function displayFile(file: string, cwd = process.cwd()): string {
  if (!isAbsolute(file)) return file
  const rel = relative(cwd, file)
  return rel.startsWith('..') || isAbsolute(rel) ? file : rel.split('\\').join('/')
}

export function position(l: SpecLocation): string {
  const f = displayFile(l.file)
  return l.line ? `${f}:${l.line}:${l.column ?? 1}` : `${f}#${l.pointer}`
}

export function counts(findings: readonly Finding[]): Record<Severity, number> {
  const out = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>
  for (const f of findings) out[f.severity]++
  return out
}

export function summary(report: LintReport): string {
  const c = counts(report.findings)
  const locations = report.findings.reduce((n, f) => n + f.locations.length, 0)
  return (
    `score ${report.score}/100 · ${report.findings.length} finding${report.findings.length === 1 ? '' : 's'} ` +
    `(${SEVERITIES.map((s) => `${c[s]} ${s}`).join(', ')}) at ${locations} location${locations === 1 ? '' : 's'}`
  )
}

/** Drops control characters (a spec's text is untrusted: no terminal escapes in our output). */
export function clean(s: string): string {
  return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '?')
}
