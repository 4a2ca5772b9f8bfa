/**
 * JUnit XML: one <testsuite> per category (OWASP item or hygiene), one <testcase> per rule that
 * ran, a <failure> for a rule with a finding (its locations in the text).
 */
import { xmlAttr, xmlEscape } from '../../scanner/report/xml.js'
import type { Category, LintReport } from '../types.js'
import { CATEGORY_TITLES } from '../types.js'
import { displayFile, position } from './shared.js'

export function renderJunit(report: LintReport): string {
  const byRule = new Map(report.findings.map((f) => [f.rule, f]))
  const suites = new Map<Category, typeof report.rules>()
  for (const r of report.rules) suites.set(r.category, [...(suites.get(r.category) ?? []), r])
  const out = ['<?xml version="1.0" encoding="UTF-8"?>']
  const seconds = (report.durationMs / 1000).toFixed(3)
  out.push(
    `<testsuites name="${xmlAttr(`portcullis lint ${report.spec}`)}" tests="${report.rules.length}" failures="${report.findings.length}" errors="0" time="${seconds}">`,
  )
  for (const [cat, rules] of suites) {
    const failures = rules.filter((r) => byRule.has(r.id)).length
    out.push(
      `  <testsuite name="${xmlAttr(CATEGORY_TITLES[cat])}" tests="${rules.length}" failures="${failures}" errors="0" skipped="0" time="0">`,
    )
    for (const r of rules) {
      const head = `    <testcase classname="${xmlAttr(cat)}" name="${xmlAttr(`${r.id}: ${r.title}`)}" time="0"`
      const f = byRule.get(r.id)
      if (f === undefined) {
        out.push(`${head}/>`)
        continue
      }
      const body = [
        f.message,
        ...f.locations.map((l) => `${position(l)} ${l.note ?? l.operation ?? ''}`.trimEnd()),
      ].join('\n')
      out.push(`${head}>`)
      out.push(
        `      <failure message="${xmlAttr(`[${f.severity}] ${f.message}`)}" type="${xmlAttr(f.severity)}">${xmlEscape(body)}</failure>`,
      )
      out.push('    </testcase>')
    }
    out.push('  </testsuite>')
  }
  if (report.gateway) {
    const g = report.gateway
    const failing = g.operations.filter((c) => c.gaps.length > 0).length
    out.push(
      `  <testsuite name="${xmlAttr(`gateway config ${displayFile(g.config)}`)}" tests="${g.operations.length}" failures="${failing}" errors="0" skipped="0" time="0">`,
    )
    for (const c of g.operations) {
      const head = `    <testcase classname="gateway" name="${xmlAttr(c.operation)}" time="0"`
      if (c.gaps.length === 0) {
        out.push(`${head}/>`)
        continue
      }
      out.push(`${head}>`)
      const text = c.gaps.map((x) => `${x.id} (${x.severity}): ${x.message}\nadd:\n${x.fix}`).join('\n\n')
      out.push(
        `      <failure message="${xmlAttr(c.gaps.map((x) => x.id).join(', '))}" type="gateway">${xmlEscape(text)}</failure>`,
      )
      out.push('    </testcase>')
    }
    out.push('  </testsuite>')
  }
  out.push('</testsuites>')
  return `${out.join('\n')}\n`
}
