/**
 * The linter's data: rules (metadata + a check over the loaded spec), the findings they make, and
 * the report. Severities are the scanner's, so reports and `--fail-on` read the same everywhere.
 */
import type { LintContext, OpInfo } from './context.js'

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info'

export const SEVERITY_RANK: Record<Severity, number> = { critical: 4, high: 3, medium: 2, low: 1, info: 0 }
export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info']

/** An OWASP API Security Top 10 (2023) item, or `hygiene` for spec quality that enables the rest. */
export type Category =
  | 'API1'
  | 'API2'
  | 'API3'
  | 'API4'
  | 'API5'
  | 'API6'
  | 'API7'
  | 'API8'
  | 'API9'
  | 'API10'
  | 'hygiene'

export const CATEGORY_TITLES: Record<Category, string> = {
  API1: 'API1:2023 Broken Object Level Authorization',
  API2: 'API2:2023 Broken Authentication',
  API3: 'API3:2023 Broken Object Property Level Authorization',
  API4: 'API4:2023 Unrestricted Resource Consumption',
  API5: 'API5:2023 Broken Function Level Authorization',
  API6: 'API6:2023 Unrestricted Access to Sensitive Business Flows',
  API7: 'API7:2023 Server Side Request Forgery',
  API8: 'API8:2023 Security Misconfiguration',
  API9: 'API9:2023 Improper Inventory Management',
  API10: 'API10:2023 Unsafe Consumption of APIs',
  hygiene: 'Spec hygiene',
}

/** Where in the spec: file, JSON pointer, and (filled in by the engine) line and column. */
export interface SpecLocation {
  file: string
  pointer: string
  /** 1-based; 0 when the position could not be found. */
  line?: number
  column?: number
  /** `GET /orders/{id}` when the location belongs to one operation. */
  operation?: string
  /** What is wrong at this location (for grouped findings). */
  note?: string
}

/** What a rule's check returns. */
export interface Hit {
  message: string
  locations: SpecLocation[]
  /** Operations concerned: a hit whose every operation ignores the rule is dropped. */
  ops?: OpInfo[]
}

export interface RuleMeta {
  /** kebab-case, stable: used in rules files, `x-portcullis-lint-ignore` and reports. */
  id: string
  title: string
  category: Category
  severity: Severity
  /** Why it matters (one paragraph). */
  why: string
  /** A spec fragment that triggers the rule and the same fragment fixed (YAML). Both are tested. */
  before: string
  after: string
}

export interface Rule extends RuleMeta {
  check(ctx: LintContext): Hit[]
}

export interface Finding {
  rule: string
  title: string
  category: Category
  severity: Severity
  message: string
  /** The first is the primary location. */
  locations: SpecLocation[]
}

export interface LintReport {
  tool: { name: 'portcullis'; version: string }
  /** The spec as given (a path or URL). */
  spec: string
  /** `3.0`, `3.1`, or `2.0` for a converted Swagger document. */
  specVersion: string
  operations: number
  score: number
  findings: Finding[]
  /** Rules that ran (after the rules file). */
  rules: RuleMeta[]
  durationMs: number
  warnings: string[]
  /** The `--gateway` analysis, when asked. */
  gateway?: import('./gateway.js').GatewayReport
}
