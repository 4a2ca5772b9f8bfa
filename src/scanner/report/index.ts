/**
 * PLACEHOLDER (helper SCAN, until SCAN2's renderers are merged): only `json` is rendered here.
 * SCAN2's src/scanner/report/index.ts replaces this file at merge (text, json, sarif, junit, html).
 */
import type { ScanReport } from '../types.js'

export type ReportFormat = 'text' | 'json' | 'sarif' | 'junit' | 'html'

export const REPORT_FORMATS: readonly ReportFormat[] = ['text', 'json', 'sarif', 'junit', 'html']

export function renderReport(
  report: ScanReport,
  format: ReportFormat,
  _opts: { color?: boolean } = {},
): string {
  if (format !== 'json') throw new Error(`the ${format} report is not available in this build (json only)`)
  return `${JSON.stringify(report, null, 2)}\n`
}
