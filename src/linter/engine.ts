/**
 * The lint engine: load the spec (OpenAPI 3.0/3.1, or Swagger 2.0 converted), run every enabled
 * rule over one shared context, drop what `x-portcullis-lint-ignore` silences, merge grouped
 * rules into one finding each, put `file:line:col` on every location, and score the result.
 */
import { readFileSync } from 'node:fs'
// Not ../openapi/index.js: that also loads the remote fetcher (undici) and the schema compiler (ajv).
import { isRemoteFile } from '../openapi/documents.js'
import { loadOpenApi, type OpenApiSpec } from '../openapi/load.js'
import { LintContext } from './context.js'
import type { checkGateway } from './gateway.js'
import { locatePointers } from './positions.js'
import { RULES } from './rules/index.js'
import type { RulesConfig } from './rules-config.js'
import { score } from './score.js'
import {
  type Finding,
  type Hit,
  type LintReport,
  type Rule,
  type RuleMeta,
  SEVERITY_RANK,
  type SpecLocation,
} from './types.js'

/** Larger than the gateway's defaults: generated specs of big APIs reach tens of MB. */
export const LINT_SPEC_LIMITS = { maxFileBytes: 64 * 1024 * 1024, maxNodes: 12_000_000 }

export interface LintOptions {
  /** Per-rule settings (`--rules FILE`). */
  rules?: RulesConfig
  /** The spec as the user named it (for the report); default: the file path. */
  displayName?: string
  /** Rules to run instead of the built-in set (tests). */
  ruleSet?: readonly Rule[]
  /**
   * A gateway config to check against the spec (`--gateway`), with the checker
   * (`checkGateway` from ./gateway.js: passed in so that linting alone never loads the gateway's
   * config schema, whose compilation costs more than linting a small spec).
   */
  gateway?: { file: string; check: typeof checkGateway }
}

/** The rules that run with a config: enabled ones, with their configured severity. */
export function effectiveRules(config: RulesConfig | undefined, ruleSet: readonly Rule[] = RULES): Rule[] {
  const out: Rule[] = []
  for (const r of ruleSet) {
    const c = config?.rules.get(r.id)
    if (c === 'off') continue
    out.push(c === undefined ? r : { ...r, severity: c })
  }
  return out
}

/**
 * Lints a spec file. Throws SpecError when the spec cannot be loaded.
 *
 * @example
 * const report = lintFile('examples/demo/openapi.yaml')
 * for (const f of report.findings) console.log(f.severity, f.rule, f.message)
 */
export function lintFile(file: string, options: LintOptions = {}): LintReport {
  const started = performance.now()
  const spec = loadOpenApi(file, { limits: LINT_SPEC_LIMITS, keepText: true })
  return lintSpec(spec, options, started, options.displayName ?? file)
}

export function lintSpec(
  spec: OpenApiSpec,
  options: LintOptions,
  started: number,
  displayName: string,
): LintReport {
  const ctx = new LintContext(spec)
  const rules = effectiveRules(options.rules, options.ruleSet)
  const warnings = [...spec.warnings]
  const ignoreCache = new Map<string, ReadonlySet<string>>()
  const ignoreFiles = ctx.documentIndex().ignoreFiles
  const findings: Finding[] = []
  for (const rule of rules) {
    let hits: Hit[]
    try {
      hits = rule.check(ctx)
    } catch (err) {
      // A rule that fails on an odd spec must not hide the others' findings.
      warnings.push(`rule ${rule.id} could not run: ${(err as Error).message.slice(0, 200)}`)
      continue
    }
    const kept: Hit[] = []
    for (const h of hits) {
      if (h.ops && h.ops.length > 0 && h.ops.every((o) => o.ignores.has(rule.id) || o.ignores.has('all')))
        continue
      const locations =
        ignoreFiles.size === 0
          ? h.locations
          : h.locations.filter((l) => !ignoreFiles.has(l.file) || !ignoredAt(ctx, l, rule.id, ignoreCache))
      if (locations.length === 0) continue
      kept.push({ ...h, locations })
    }
    if (kept.length === 0) continue
    // One finding per rule, with every location (each with its own note): a flaw repeated on 200
    // operations is one finding to read, not 200.
    const locations = kept.flatMap((h) =>
      h.locations.map((l, i) => ({
        ...l,
        note: kept.length > 1 && i === 0 ? h.message : (l.note ?? h.message),
      })),
    )
    findings.push(finding(rule, groupMessage(rule, kept, locations.length), dedupe(locations)))
  }
  placeLocations(spec, findings)
  const gateway = options.gateway !== undefined ? options.gateway.check(ctx, options.gateway.file) : undefined
  findings.sort(
    (a, b) =>
      SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] ||
      a.rule.localeCompare(b.rule) ||
      (a.locations[0]?.line ?? 0) - (b.locations[0]?.line ?? 0),
  )
  return {
    tool: { name: 'portcullis', version: toolVersion() },
    spec: displayName,
    specVersion: spec.documents.convertedFrom ?? spec.version,
    operations: spec.operations.length,
    score: score(findings),
    findings,
    rules: rules.map(meta),
    durationMs: Math.round(performance.now() - started),
    warnings,
    ...(gateway ? { gateway } : {}),
  }
}

function meta(r: Rule): RuleMeta {
  const { check: _check, ...m } = r
  return m
}

function finding(rule: Rule, message: string, locations: SpecLocation[]): Finding {
  return {
    rule: rule.id,
    title: rule.title,
    category: rule.category,
    severity: rule.severity,
    message,
    locations,
  }
}

function groupMessage(rule: Rule, hits: Hit[], n: number): string {
  if (hits.length === 1) return (hits[0] as Hit).message
  return `${rule.title}: ${n} location${n === 1 ? '' : 's'}`
}

function dedupe(list: SpecLocation[]): SpecLocation[] {
  const seen = new Set<string>()
  return list.filter((l) => {
    const k = `${l.file}#${l.pointer}|${l.operation ?? ''}|${l.note ?? ''}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

/** `x-portcullis-lint-ignore` on the location or any object above it in its file. */
function ignoredAt(
  ctx: LintContext,
  l: SpecLocation,
  ruleId: string,
  cache: Map<string, ReadonlySet<string>>,
): boolean {
  const doc = ctx.spec.documents.document(l.file)
  if (doc === undefined) return false
  const tokens = l.pointer === '' ? [] : l.pointer.slice(1).split('/')
  let cur: unknown = doc
  let prefix = ''
  for (let i = 0; i <= tokens.length; i++) {
    if (cur === null || typeof cur !== 'object') return false
    let set = cache.get(`${l.file}#${prefix}`)
    if (set === undefined) {
      const v = Array.isArray(cur) ? undefined : (cur as Record<string, unknown>)['x-portcullis-lint-ignore']
      set = new Set(Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : [])
      cache.set(`${l.file}#${prefix}`, set)
    }
    if (set.has(ruleId) || set.has('all')) return true
    if (i === tokens.length) break
    const t = (tokens[i] as string).replace(/~1/g, '/').replace(/~0/g, '~')
    prefix += `/${tokens[i]}`
    cur = (cur as Record<string, unknown>)[t]
  }
  return false
}

/** Maps converted pointers back (Swagger 2.0) and fills line/column from each file's text. */
function placeLocations(spec: OpenApiSpec, findings: Finding[]): void {
  const docs = spec.documents
  const byFile = new Map<string, SpecLocation[]>()
  for (const f of findings) {
    for (const l of f.locations) {
      l.pointer = docs.sourcePointer(l.file, l.pointer)
      if (isRemoteFile(l.file)) continue
      const list = byFile.get(l.file) ?? []
      list.push(l)
      byFile.set(l.file, list)
    }
  }
  for (const [file, list] of byFile) {
    let text = docs.text(file)
    if (text === undefined) {
      try {
        text = readFileSync(file, 'utf8')
      } catch {
        continue
      }
    }
    const pos = locatePointers(
      file,
      list.map((l) => l.pointer),
      text,
    )
    for (const l of list) {
      const p = pos.get(l.pointer)
      l.line = p?.line ?? 0
      l.column = p?.column ?? 0
    }
  }
}

let version: string | undefined
function toolVersion(): string {
  if (version === undefined) {
    try {
      version = (
        JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
          version: string
        }
      ).version
    } catch {
      version = '0.0.0'
    }
  }
  return version
}
