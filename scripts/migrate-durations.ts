/**
 * Rewrites the old unit-named duration fields of Portcullis configs (`timeoutMs: 5000`,
 * `windowSec: 60`, `retentionDays: 30`) into the duration form a config file takes
 * (`timeout: 5s`, `window: 1m`, `retention: 30d`; docs/config.md, "Durations").
 *
 *   node dist/scripts/migrate-durations.js [--check] FILE...
 *
 * What it edits, by file type:
 * - `.yaml`, `.yml`, `.json`: the whole file;
 * - `.md`: fenced blocks marked yaml, yml, json, jsonc, sh, bash, shell, console or text (and
 *   unmarked ones); never ts/js blocks, whose config objects keep the schema's form;
 * - `.ts`, `.mjs`, `.js`: string and template literals only (config text a test writes to a file),
 *   never object literals (a config object given to `createGateway` keeps the schema's form) unless
 *   `--objects` is given: for a file whose objects become a config file (`stringify(...)` written
 *   and loaded), `maxWaitMs: 5000` becomes `maxWait: '5s'`.
 *
 * Only the names of the schema's duration fields are rewritten, and only a plain whole number
 * value (a value written through `${env:…}` or a template placeholder is listed, not changed).
 * `--check` changes nothing and exits 1 when something would change. Review the diff: a name can
 * also be a field of something that is not a Portcullis config (an OpenAPI example, say).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import type { TSchema } from '@sinclair/typebox'
import ts from 'typescript'
import { durationStem, durationUnitOf } from '../src/config/durations.js'
import { GatewayConfig } from '../src/config/schema.js'
import { formatDuration, parseDuration } from '../src/util/duration.js'

interface Node {
  properties?: Record<string, Node>
  patternProperties?: Record<string, Node>
  additionalProperties?: boolean | Node
  items?: Node
  anyOf?: Node[]
  oneOf?: Node[]
  allOf?: Node[]
  if?: Node
  then?: Node
  else?: Node
}

/** Every unit-named duration field of the config schema, with its unit in milliseconds. */
export function durationFields(schema: TSchema = GatewayConfig): Map<string, number> {
  const out = new Map<string, number>()
  const seen = new Set<object>()
  const walk = (s: Node | boolean | undefined): void => {
    if (s === undefined || typeof s !== 'object' || seen.has(s)) return
    seen.add(s)
    for (const [k, v] of Object.entries(s.properties ?? {})) {
      const unit = durationUnitOf(k, v as TSchema)
      if (unit !== undefined) out.set(k, unit)
      walk(v)
    }
    for (const v of Object.values(s.patternProperties ?? {})) walk(v)
    walk(s.additionalProperties)
    walk(s.items)
    for (const m of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) walk(m)
    walk(s.if)
    walk(s.then)
    walk(s.else)
  }
  walk(schema as Node)
  return out
}

const FIELDS = durationFields()
const NAMES = [...FIELDS.keys()].sort((a, b) => b.length - a.length).join('|')
// A key (bare or double-quoted) and its value; the value ends at a delimiter.
const KEY = new RegExp(
  `(^|[\\s{,\\['\`])(")?\\b(${NAMES})\\b(")?(\\s*:[ \\t]*)([^\\s,}\\]#'"\`]*)([ \\t]+(?=#))?`,
  'gm',
)

export interface Rewrite {
  /** 1-based line of the key in the file. */
  line: number
  from: string
  to: string | undefined
}

/** Rewrites the fields in `text[start, end)`; `to: undefined` marks one left as it was. */
function rewriteRange(text: string, start: number, end: number, out: Rewrite[]): string {
  const part = text.slice(start, end)
  let result = ''
  let pos = 0
  for (const m of part.matchAll(KEY)) {
    const [all, lead = '', q1, name = '', q2, colon = '', value = '', pad = ''] = m
    const at = m.index + lead.length
    const line = text.slice(0, start + at).split('\n').length
    const unit = FIELDS.get(name) as number
    const from = all.slice(lead.length).trimEnd()
    const ms = /^\d{1,15}$/.test(value) ? Number(value) * unit : Number.NaN
    const d = formatDuration(ms)
    if (parseDuration(d) !== ms) {
      out.push({ line, from, to: undefined })
      continue
    }
    const quoted = q1 === '"' && q2 === '"'
    const stem = durationStem(name)
    const to = quoted ? `"${stem}"${colon}${d === '0' ? '0' : `"${d}"`}` : `${stem}${colon}${d}`
    out.push({ line, from, to })
    // a comment after it stays in its column
    const keep = pad === '' ? '' : ' '.repeat(Math.max(1, pad.length + from.length - to.length))
    result += part.slice(pos, at) + to + keep
    pos = m.index + all.length
  }
  return result + part.slice(pos)
}

const MD_LANGS = new Set(['', 'yaml', 'yml', 'json', 'jsonc', 'sh', 'bash', 'shell', 'console', 'text'])

/** The [start, end) ranges of `text` that may hold config text, by file type. */
function ranges(file: string, text: string): [number, number][] {
  if (/\.(ya?ml|json)$/.test(file)) return [[0, text.length]]
  if (file.endsWith('.md')) {
    const out: [number, number][] = []
    const fence = /^([ \t]*)(```+|~~~+)[ \t]*([\w-]*)[^\n]*\n([\s\S]*?)^\1\2[ \t]*$/gm
    for (let m = fence.exec(text); m !== null; m = fence.exec(text)) {
      if (!MD_LANGS.has((m[3] ?? '').toLowerCase())) continue
      const body = m[4] ?? ''
      const start = m.index + m[0].indexOf(body, m[0].indexOf('\n'))
      out.push([start, start + body.length])
    }
    return out
  }
  if (/\.(ts|mjs|js)$/.test(file)) {
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
    const out: [number, number][] = []
    const visit = (n: ts.Node): void => {
      if (
        ts.isStringLiteral(n) ||
        ts.isNoSubstitutionTemplateLiteral(n) ||
        ts.isTemplateHead(n) ||
        ts.isTemplateMiddle(n) ||
        ts.isTemplateTail(n)
      )
        out.push([n.getStart(sf), n.getEnd()])
      ts.forEachChild(n, visit)
    }
    visit(sf)
    return out.sort((a, b) => a[0] - b[0])
  }
  return []
}

/** Object literal members `name: <number>` of the duration fields in a TS/JS file, rewritten. */
function objectEdits(
  file: string,
  text: string,
  out: Rewrite[],
): { start: number; end: number; to: string }[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const edits: { start: number; end: number; to: string }[] = []
  const visit = (n: ts.Node): void => {
    if (ts.isPropertyAssignment(n) && (ts.isIdentifier(n.name) || ts.isStringLiteral(n.name))) {
      const name = n.name.text
      const unit = FIELDS.get(name)
      if (unit !== undefined) {
        const line = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1
        const from = n.getText(sf)
        const init = n.initializer
        const ms = ts.isNumericLiteral(init) ? Number(init.text) * unit : Number.NaN
        const d = formatDuration(ms)
        if (parseDuration(d) !== ms) out.push({ line, from, to: undefined })
        else {
          const to = `${durationStem(name)}: ${d === '0' ? '0' : `'${d}'`}`
          out.push({ line, from, to })
          edits.push({ start: n.getStart(sf), end: n.getEnd(), to })
        }
      }
    }
    ts.forEachChild(n, visit)
  }
  visit(sf)
  return edits
}

/** The migrated text of `file` and what changed (or was left: `to` undefined). */
export function migrateText(
  file: string,
  text: string,
  objects = false,
): { text: string; rewrites: Rewrite[] } {
  const rewrites: Rewrite[] = []
  let out = ''
  let pos = 0
  const seen = new Set<number>()
  for (const [start, end] of ranges(file, text)) {
    if (start < pos || seen.has(start)) continue
    seen.add(start)
    out += text.slice(pos, start) + rewriteRange(text, start, end, rewrites)
    pos = end
  }
  out += text.slice(pos)
  if (objects && /\.(ts|mjs|js)$/.test(file)) {
    // object members never overlap literals' text, so they are applied to the result
    const edits = objectEdits(file, out, rewrites).sort((a, b) => b.start - a.start)
    for (const e of edits) out = out.slice(0, e.start) + e.to + out.slice(e.end)
  }
  return { text: out, rewrites }
}

function main(argv: string[]): number {
  const check = argv.includes('--check')
  const objects = argv.includes('--objects')
  const files = argv.filter((a) => !a.startsWith('--'))
  let changed = 0
  for (const file of files) {
    const before = readFileSync(file, 'utf8')
    const { text, rewrites } = migrateText(file, before, objects)
    for (const r of rewrites)
      console.log(
        `${file}:${r.line}: ${r.from}${r.to === undefined ? '  (left: not a plain number)' : ` → ${r.to}`}`,
      )
    if (text !== before) {
      changed++
      if (!check) writeFileSync(file, text)
    }
  }
  console.log(`${changed} file(s) ${check ? 'to change' : 'changed'}`)
  return check && changed > 0 ? 1 : 0
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = main(process.argv.slice(2))
