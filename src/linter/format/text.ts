/** The human report: a summary line, then each finding with its locations as file:line:col. */
import type { LintReport } from '../types.js'
import { CATEGORY_TITLES } from '../types.js'
import { clean, displayFile, position, summary } from './shared.js'

const SHOWN = 5

function gatewayText(report: LintReport, verbose: boolean): string[] {
  const g = report.gateway
  if (g === undefined) return []
  const lines = [
    `Gateway config ${clean(displayFile(g.config))}: ${g.operations.length} operations, ${g.gaps.length} gap${g.gaps.length === 1 ? '' : 's'}`,
  ]
  for (const c of g.operations) {
    if (c.gaps.length === 0 && !verbose) continue
    lines.push(`  ${c.operation}  (route ${c.route ?? 'none'}; policies: ${c.policies.join(', ') || 'none'})`)
    if (c.gaps.length === 0) lines.push('    no gap')
    for (const gap of c.gaps) {
      lines.push(`    ${gap.severity.toUpperCase()} ${gap.id}: ${clean(gap.message)}`)
      lines.push('      add:')
      for (const l of gap.fix.split('\n')) lines.push(`        ${clean(l)}`)
    }
  }
  if (g.gaps.length === 0) lines.push('  every operation gets the protections its design asks for')
  return lines
}

export function renderText(report: LintReport, opts: { verbose: boolean }): string {
  const lines: string[] = []
  const version =
    report.specVersion === '2.0' ? 'Swagger 2.0 (read as OpenAPI 3.0)' : `OpenAPI ${report.specVersion}`
  lines.push(
    `portcullis lint ${clean(report.spec)}: ${version}, ${report.operations} operations, ${report.rules.length} rules, ${report.durationMs} ms`,
  )
  lines.push(summary(report))
  for (const f of report.findings) {
    lines.push('')
    lines.push(
      `${f.severity.toUpperCase().padEnd(8)} ${f.rule}  ${clean(f.message)}  [${CATEGORY_TITLES[f.category]}]`,
    )
    const shown = opts.verbose ? f.locations : f.locations.slice(0, SHOWN)
    for (const l of shown) {
      const what = l.note ?? l.operation ?? ''
      lines.push(`  ${position(l)}${what ? `  ${clean(what)}` : ''}`)
    }
    if (shown.length < f.locations.length)
      lines.push(`  … and ${f.locations.length - shown.length} more (--verbose lists them all)`)
  }
  if (report.gateway) lines.push('', ...gatewayText(report, opts.verbose))
  for (const w of report.warnings) lines.push(`warning: ${clean(w)}`)
  if (report.findings.length > 0)
    lines.push('', 'Rules explained: docs/lint/rules/<rule>.md (portcullis lint --help)')
  return `${lines.join('\n')}\n`
}
