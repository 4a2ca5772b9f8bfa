/** Scan report renderers: `renderReport(report, format, { color })` → the file's text. */
import type { ScanReport } from '../types.js'
import { renderHtml } from './html.js'
import { renderJson } from './json.js'
import { renderJunit } from './junit.js'
import { renderSarif } from './sarif.js'
import { renderText } from './text.js'

export const REPORT_FORMATS = ['text', 'json', 'sarif', 'junit', 'html'] as const
export type ReportFormat = (typeof REPORT_FORMATS)[number]

export function isReportFormat(value: string): value is ReportFormat {
  return (REPORT_FORMATS as readonly string[]).includes(value)
}

/**
 * Renders a report. Only `text` uses colour (ANSI, when `opts.color`); the others are files.
 *
 * @example
 * process.stdout.write(renderReport(report, 'text', { color: process.stdout.isTTY }))
 */
export function renderReport(report: ScanReport, format: ReportFormat, opts: { color: boolean }): string {
  switch (format) {
    case 'text':
      return renderText(report, opts)
    case 'json':
      return renderJson(report)
    case 'sarif':
      return renderSarif(report)
    case 'junit':
      return renderJunit(report)
    case 'html':
      return renderHtml(report)
    default:
      throw new Error(`unknown report format: ${String(format satisfies never)}`)
  }
}
