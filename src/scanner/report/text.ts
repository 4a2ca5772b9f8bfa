/** The text report: findings grouped by severity, worst first, each with proof, why and how to fix. */
import type { Exchange, Finding, ScanReport, Severity } from '../types.js'
import { OWASP_TITLES } from '../types.js'
import {
  checkById,
  countBySeverity,
  excerpt,
  opLabel,
  printable,
  requestLine,
  responseLine,
  SEVERITIES,
  sortFindings,
  summaryLine,
} from './shared.js'

const ANSI: Record<Severity | 'dim' | 'bold', string> = {
  critical: '\x1b[1;35m',
  high: '\x1b[1;31m',
  medium: '\x1b[33m',
  low: '\x1b[36m',
  info: '\x1b[2m',
  dim: '\x1b[2m',
  bold: '\x1b[1m',
}
const RESET = '\x1b[0m'

export function renderText(report: ScanReport, opts: { color: boolean }): string {
  const paint = (style: keyof typeof ANSI, s: string): string =>
    opts.color ? `${ANSI[style]}${s}${RESET}` : s
  // Everything that came from the target (or the spec) goes through `safe`: no ANSI escapes or other
  // control characters from a hostile response reach the terminal.
  const safe = printable
  const checks = checkById(report)
  const out: string[] = []
  out.push(paint('bold', `Portcullis scan of ${safe(report.target)}`))
  out.push(
    `spec: ${safe(report.spec)} · ${report.safe ? 'safe mode' : 'UNSAFE mode'} · identities: ` +
      `${report.identities.map(safe).join(', ') || '(none)'} · ${report.startedAt} → ${report.finishedAt}`,
  )
  out.push('')
  if (report.unreachable) {
    out.push(paint('high', `NO VERDICT: ${safe(report.unreachable)}`), '')
  }
  if (report.baseline)
    out.push(
      `baseline ${safe(report.baseline.file)}: ${report.baseline.new} new, ${report.baseline.unchanged} unchanged`,
      '',
    )
  const counts = countBySeverity(report.findings)
  const sorted = sortFindings(report.findings)
  for (const sev of SEVERITIES) {
    if (counts[sev] === 0) continue
    out.push(paint(sev, `${sev.toUpperCase()} (${counts[sev]})`))
    out.push(paint(sev, '─'.repeat(40)))
    for (const f of sorted) if (f.severity === sev) out.push(...renderFinding(f), '')
  }
  if (report.findings.length === 0) out.push('No findings.', '')
  if (report.skipped.length > 0) {
    out.push(paint('bold', 'Skipped checks'))
    for (const s of report.skipped) out.push(`  ${safe(s.checkId)}: ${safe(s.reason)}`)
    out.push('')
  }
  if (report.blocked && report.blocked.length > 0) {
    out.push(paint('bold', 'Not called in safe mode'))
    for (const b of report.blocked) out.push(`  ${safe(b.operation)}: ${safe(b.reason)}`)
    out.push('')
  }
  if (report.notes && report.notes.length > 0) {
    out.push(paint('bold', 'Notes'))
    for (const n of report.notes) out.push(`  ${safe(n)}`)
    out.push('')
  }
  out.push(paint('bold', summaryLine(report)))
  return `${out.join('\n')}\n`

  function renderFinding(f: Finding): string[] {
    const lines: string[] = []
    const check = checks.get(f.checkId)
    lines.push(
      `${paint(f.severity, `[${f.severity.toUpperCase()}]`)}${f.baselineState === 'unchanged' ? ' (in the baseline)' : ''} ${paint('bold', safe(f.title))}  ` +
        paint('dim', `${f.owasp} ${OWASP_TITLES[f.owasp] ?? ''} · ${safe(f.checkId)}`),
    )
    const op = opLabel(f)
    if (op || f.identity) {
      const opText = op
        ? `operation: ${safe(op)}${f.operation?.operationId ? ` (${safe(f.operation.operationId)})` : ''}`
        : ''
      lines.push(
        `  ${[opText, f.identity ? `identity: ${safe(f.identity)}` : ''].filter(Boolean).join(' · ')}`,
      )
    }
    lines.push(...indent(safe(f.summary), '  '))
    if (f.evidence.length > 0) {
      lines.push(paint('bold', '  Proof:'))
      for (const ev of f.evidence) {
        lines.push(`    ${safe(ev.note)}`)
        for (const x of ev.exchanges) lines.push(...renderExchange(x))
      }
    }
    if (check) {
      lines.push(paint('bold', '  Why it matters:'), ...indent(safe(check.why), '    '))
      lines.push(paint('bold', '  How to fix:'), ...indent(safe(check.fix), '    '))
      if (check.fixExample) lines.push(...indent(safe(check.fixExample), paint('dim', '    │ ')))
    }
    return lines
  }

  function renderExchange(x: Exchange): string[] {
    const lines = [`      ${safe(requestLine(x))}`]
    if (x.request.body) lines.push(...indent(safe(excerpt(x.request.body, 300)), '        > '))
    lines.push(`      ${safe(responseLine(x))}`)
    if (x.response?.body) lines.push(...indent(safe(excerpt(x.response.body, 400)), '        < '))
    return lines
  }
}

function indent(text: string, prefix: string): string[] {
  return text.split('\n').map((l) => `${prefix}${l}`)
}
