/**
 * The rules file (`--rules FILE`, YAML or JSON): per rule, `off` or a severity.
 *
 * ```yaml
 * rules:
 *   string-unbounded: off
 *   missing-429-response: info
 *   ssrf-url-input: { severity: critical }
 *   info-contact-missing: { enabled: false }
 * ```
 */
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import type { Rule, Severity } from './types.js'
import { SEVERITY_RANK } from './types.js'

export interface RulesConfig {
  rules: Map<string, Severity | 'off'>
}

/** Parses a rules file; throws an Error with every problem (unknown rules, bad values). */
export function parseRulesConfig(text: string, known: readonly Rule[], file = 'rules file'): RulesConfig {
  let doc: unknown
  try {
    doc = parse(text, { maxAliasCount: 100, uniqueKeys: true, prettyErrors: false })
  } catch (err) {
    throw new Error(`${file}: not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`)
  }
  const problems: string[] = []
  const rules = new Map<string, Severity | 'off'>()
  const top = doc === null || doc === undefined ? {} : doc
  if (typeof top !== 'object' || Array.isArray(top))
    throw new Error(`${file}: expected a mapping with "rules:"`)
  for (const k of Object.keys(top))
    if (k !== 'rules') problems.push(`${file}: unknown key "${k.slice(0, 60)}"`)
  const map = (top as Record<string, unknown>).rules ?? {}
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new Error(`${file}: "rules" must be a mapping of rule id to off or a severity`)
  }
  const ids = new Set(known.map((r) => r.id))
  for (const [id, v] of Object.entries(map)) {
    if (!ids.has(id)) {
      problems.push(`${file}: rules.${id.slice(0, 60)}: no such rule`)
      continue
    }
    const value: Record<string, unknown> =
      typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : { severity: v }
    if (value.enabled === false || value.severity === 'off' || value.severity === false) {
      rules.set(id, 'off')
      continue
    }
    const sev = value.severity
    if (typeof sev === 'string' && sev in SEVERITY_RANK) rules.set(id, sev as Severity)
    else if (value.enabled !== true || sev !== undefined)
      problems.push(`${file}: rules.${id}: expected off, critical, high, medium, low or info`)
  }
  if (problems.length > 0) throw new Error(problems.join('\n'))
  return { rules }
}

export function loadRulesConfig(file: string, known: readonly Rule[]): RulesConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new Error(`${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  return parseRulesConfig(text, known, file)
}
