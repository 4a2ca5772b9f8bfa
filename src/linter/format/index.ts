/** The lint report formats. */
import type { LintReport } from '../types.js'
import { renderJson } from './json.js'
import { renderJunit } from './junit.js'
import { renderSarif } from './sarif.js'
import { renderText } from './text.js'

export const LINT_FORMATS = ['text', 'json', 'sarif', 'junit'] as const
export type LintFormat = (typeof LINT_FORMATS)[number]

export function renderLint(report: LintReport, format: LintFormat, opts: { verbose: boolean }): string {
  switch (format) {
    case 'json':
      return renderJson(report)
    case 'sarif':
      return renderSarif(report)
    case 'junit':
      return renderJunit(report)
    default:
      return renderText(report, opts)
  }
}
