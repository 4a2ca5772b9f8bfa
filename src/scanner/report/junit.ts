/**
 * The JUnit XML report: one <testsuite> per OWASP category; one <testcase> per finding (with its
 * <failure>), and one per check that found nothing (passing, or <skipped> with the reason). CI
 * systems then list every finding as a failed test of its own.
 */
import type { Finding, OwaspCategory, ScanReport } from '../types.js'
import { OWASP_TITLES } from '../types.js'
import { excerpt, opLabel, requestLine, responseLine, sortFindings } from './shared.js'
import { xmlAttr, xmlEscape } from './xml.js'

export function renderJunit(report: ScanReport): string {
  const byCheck = new Map<string, Finding[]>()
  for (const f of sortFindings(report.findings)) {
    const list = byCheck.get(f.checkId) ?? []
    list.push(f)
    byCheck.set(f.checkId, list)
  }
  const skipped = new Map(report.skipped.map((s) => [s.checkId, s.reason]))
  const suites = new Map<OwaspCategory, { id: string; title: string }[]>()
  for (const c of report.checks) {
    const list = suites.get(c.owasp) ?? []
    list.push({ id: c.id, title: c.title })
    suites.set(c.owasp, list)
  }
  // Findings of a check that is not listed (should not happen) still show up.
  for (const f of report.findings) {
    if (report.checks.some((c) => c.id === f.checkId)) continue
    const list = suites.get(f.owasp) ?? []
    if (!list.some((c) => c.id === f.checkId)) list.push({ id: f.checkId, title: f.title })
    suites.set(f.owasp, list)
  }
  const seconds = (report.durationMs / 1000).toFixed(3)
  const categories = [...suites.keys()].sort(
    (a, b) => Number(a.slice(3, a.indexOf(':'))) - Number(b.slice(3, b.indexOf(':'))),
  )
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>']
  const casesOf = (id: string) => Math.max(1, byCheck.get(id)?.length ?? 0)
  const totalTests = [...suites.values()].flat().reduce((n, c) => n + casesOf(c.id), 0)
  const totalFailures = report.findings.length
  const totalSkipped = [...suites.values()]
    .flat()
    .filter((c) => skipped.has(c.id) && !byCheck.has(c.id)).length
  out.push(
    `<testsuites name="${xmlAttr(`portcullis scan ${report.target}`)}" tests="${totalTests}" ` +
      `failures="${totalFailures}" errors="0" skipped="${totalSkipped}" time="${seconds}">`,
  )
  for (const owasp of categories) {
    const checks = suites.get(owasp) ?? []
    const failures = checks.reduce((n, c) => n + (byCheck.get(c.id)?.length ?? 0), 0)
    const skippedHere = checks.filter((c) => skipped.has(c.id) && !byCheck.has(c.id)).length
    out.push(
      `  <testsuite name="${xmlAttr(`${owasp} ${OWASP_TITLES[owasp] ?? ''}`)}" tests="${checks.reduce((n, c) => n + casesOf(c.id), 0)}" ` +
        `failures="${failures}" errors="0" skipped="${skippedHere}" time="0" timestamp="${xmlAttr(report.startedAt)}">`,
    )
    for (const c of checks) {
      const findings = byCheck.get(c.id) ?? []
      const head = (name: string) =>
        `    <testcase classname="${xmlAttr(`${owasp}.${c.id}`)}" name="${xmlAttr(name)}" time="0"`
      if (findings.length === 0) {
        if (!skipped.has(c.id)) out.push(`${head(`${c.id}: ${c.title}`)}/>`)
        else {
          out.push(`${head(`${c.id}: ${c.title}`)}>`)
          out.push(`      <skipped message="${xmlAttr(skipped.get(c.id) ?? '')}"/>`)
          out.push('    </testcase>')
        }
        continue
      }
      for (const f of findings) {
        const op = opLabel(f)
        const name = `${c.id}: ${f.title}${op ? ` (${op})` : ''}${f.identity ? ` as ${f.identity}` : ''}`
        const message = `[${f.severity}] ${op ? `${op}: ` : ''}${f.summary}`
        out.push(`${head(name)}>`)
        out.push(
          `      <failure message="${xmlAttr(message)}" type="${xmlAttr(f.severity)}">${xmlEscape(failureText(f))}</failure>`,
        )
        out.push('    </testcase>')
      }
    }
    out.push('  </testsuite>')
  }
  out.push('</testsuites>')
  return `${out.join('\n')}\n`
}

function failureText(f: Finding): string {
  const lines = [`${f.title} (${f.severity}, ${f.owasp})`, f.summary]
  if (f.identity) lines.push(`identity: ${f.identity}`)
  for (const ev of f.evidence) {
    lines.push(`proof: ${ev.note}`)
    for (const x of ev.exchanges) {
      lines.push(`  ${requestLine(x)} ${responseLine(x)}`)
      if (x.response?.body) lines.push(`  ${excerpt(x.response.body, 300)}`)
    }
  }
  return lines.join('\n')
}
