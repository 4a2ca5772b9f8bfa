/** The JSON report: the LintReport with file names relative to the working directory. */
import type { LintReport } from '../types.js'
import { displayFile } from './shared.js'

export function renderJson(report: LintReport): string {
  const out = {
    ...report,
    rules: report.rules.map((r) => ({
      id: r.id,
      title: r.title,
      category: r.category,
      severity: r.severity,
    })),
    ...(report.gateway ? { gateway: { ...report.gateway, config: displayFile(report.gateway.config) } } : {}),
    findings: report.findings.map((f) => ({
      ...f,
      locations: f.locations.map((l) => ({ ...l, file: displayFile(l.file) })),
    })),
  }
  return `${JSON.stringify(out, null, 2)}\n`
}
