/**
 * Durations in the config (docs/config.md, "Durations"). A duration field of the schema is named
 * with its unit (`timeoutMs`, `windowSec`, `retentionDays`: a number in that unit, the form the code
 * reads). In a config file it is written without the unit in its name and in the one
 * duration grammar (src/util/duration.ts): `timeout: 5s`, `window: 1m`, `retention: 30d`. This pass
 * runs before schema validation and rewrites the second form into the first, guided by the schema
 * (so it knows that `window` is `windowSec` here and `windowMs` there). The unit-named field is the
 * schema's own form: a config object built in code (the embedding API, `createGateway({...})`)
 * writes it, but a config file may not (`timeoutMs: 5000` is the old form, refused with the new one
 * in the message: `timeout: 5s`). The forms that say two things, or not enough, are refused with
 * the duration form in the message:
 * - a unit-named field in a config file (`timeoutMs: 5000`, `timeoutMs: 5s`: the old form),
 * - a duration string in a unit-named field of a config object (`timeoutMs: 5s`),
 * - a bare number in a unit-less duration field (`timeout: 5000`: milliseconds or seconds?; 0 is 0),
 * - both spellings of one field (`timeout` and `timeoutMs`),
 * - a duration that is not a whole number of the field's unit (`window: 1500ms` for `windowSec`).
 */
import type { TSchema } from '@sinclair/typebox'
import { DURATION_FORMS, formatDuration, parseDuration } from '../util/duration.js'
import type { Problem, Seg } from './messages.js'

/** Unit suffixes of duration fields, with their size in milliseconds. */
const SUFFIXES: readonly (readonly [string, number])[] = [
  ['Ms', 1],
  ['Sec', 1000],
  ['Seconds', 1000],
  ['Days', 86_400_000],
]

/** A rewrite done: where the value now is, and how the user wrote it (for messages). */
export interface DurationRewrite {
  /** The path of the unit-named field (`routes[0].timeoutMs`). */
  segs: Seg[]
  /** The key as written (`timeout`). */
  written: string
  value: string
}

interface Schema {
  type?: string | string[]
  properties?: Record<string, Schema>
  patternProperties?: Record<string, Schema>
  additionalProperties?: boolean | Schema
  items?: Schema
  anyOf?: Schema[]
  oneOf?: Schema[]
  allOf?: Schema[]
}

function members(s: Schema): Schema[] {
  return [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]
}

function isNumeric(s: Schema | undefined): boolean {
  if (s === undefined) return false
  if (s.type === 'integer' || s.type === 'number') return true
  return members(s).some(isNumeric)
}

function isInteger(s: Schema): boolean {
  return s.type === 'integer' || members(s).some(isInteger)
}

/** The unit of a duration field named `key` (undefined: not a duration field). */
export function durationUnitOf(key: string, s: TSchema | undefined): number | undefined {
  if (!isNumeric(s as Schema | undefined)) return undefined
  for (const [suffix, size] of SUFFIXES) if (key.length > suffix.length && key.endsWith(suffix)) return size
  return undefined
}

/** `timeoutMs` → `timeout`: the name a duration field is written with. */
export function durationStem(key: string): string {
  for (const [suffix] of SUFFIXES)
    if (key.length > suffix.length && key.endsWith(suffix)) return key.slice(0, -suffix.length)
  return key
}

/** The object schemas a node may be validated against (union members, allOf parts). */
function objectSchemas(s: Schema | undefined, out: Schema[] = []): Schema[] {
  if (s === undefined || typeof s !== 'object') return out
  if (s.properties || s.patternProperties || typeof s.additionalProperties === 'object') out.push(s)
  for (const m of members(s)) objectSchemas(m, out)
  return out
}

function arrayItems(s: Schema | undefined): Schema[] {
  if (s === undefined || typeof s !== 'object') return []
  return [...(s.items !== undefined ? [s.items] : []), ...members(s).flatMap(arrayItems)]
}

/** The schema of member `key` among the candidate object schemas (the first that declares it). */
function memberSchema(objs: readonly Schema[], key: string): Schema | undefined {
  for (const o of objs) {
    const p = o.properties?.[key]
    if (p !== undefined) return p
  }
  for (const o of objs) {
    // TypeBox's Record patterns are the schema's own, never user input
    for (const [pattern, p] of Object.entries(o.patternProperties ?? {}))
      if (new RegExp(pattern).test(key)) return p
    if (typeof o.additionalProperties === 'object') return o.additionalProperties
  }
  return undefined
}

function declares(objs: readonly Schema[], key: string): boolean {
  return objs.some((o) => o.properties?.[key] !== undefined)
}

/** How the document was written, which decides whether the unit-named form is refused. */
export interface DurationOptions {
  /**
   * The document is a config object built in code (the embedding API): its duration fields are
   * the schema's unit-named numbers (`timeoutMs: 5000`). Otherwise (a config file, the default)
   * that form is the old one and refused.
   */
  programmatic?: boolean
  /** Whether the key at `segs` was written JSON-style (`"timeoutMs": 5000`), for the suggestion. */
  jsonStyle?: (segs: readonly Seg[]) => boolean
}

/**
 * Rewrites the unit-less duration fields of `node` (the parsed, substituted config) into their
 * unit-named fields, in place, and pushes a problem for each refused form. Returns the rewrites.
 *
 * @example
 * const problems: Problem[] = []
 * const doc = { upstreams: { api: { targets: [], connectTimeout: '2s' } } }
 * normalizeDurations(doc, GatewayConfig, problems) // doc.upstreams.api.connectTimeoutMs === 2000
 */
export function normalizeDurations(
  node: unknown,
  schema: TSchema,
  problems: Problem[],
  opts: DurationOptions = {},
): DurationRewrite[] {
  const rewrites: DurationRewrite[] = []
  walk(node, schema, problems, [], rewrites, opts)
  return rewrites
}

function walk(
  node: unknown,
  schema: TSchema,
  problems: Problem[],
  segs: Seg[],
  rewrites: DurationRewrite[],
  opts: DurationOptions,
): void {
  if (node === null || typeof node !== 'object') return
  const s = schema as Schema
  if (Array.isArray(node)) {
    const item = arrayItems(s)[0]
    if (item !== undefined)
      node.forEach((v, i) => {
        walk(v, item as TSchema, problems, [...segs, i], rewrites, opts)
      })
    return
  }
  const objs = objectSchemas(s)
  if (objs.length === 0) return
  const obj = node as Record<string, unknown>
  const renamed = new Map<string, string>()
  for (const key of Object.keys(obj)) {
    const value = obj[key]
    const here = [...segs, key]
    if (declares(objs, key)) {
      const member = memberSchema(objs, key)
      const unit = durationUnitOf(key, member as TSchema)
      if (unit !== undefined && opts.programmatic !== true) {
        // both spellings (`timeout` and `timeoutMs`): reported once, at `timeout`, below
        const both = Object.hasOwn(obj, durationStem(key)) && !declares(objs, durationStem(key))
        if (!both) problems.push(oldForm(key, value, unit, here, opts))
        continue
      }
      if (unit !== undefined && typeof value === 'string') {
        const base = durationStem(key)
        const shown = parseDuration(value) !== undefined ? value : example(unit)
        problems.push({
          segs: here,
          message: `\`${key}\` takes a number of ${unitName(unit)}; a duration is written without the unit in the name: \`${base}: ${shown}\``,
        })
        continue
      }
      walk(value, member as TSchema, problems, here, rewrites, opts)
      continue
    }
    // A unit-less spelling of a declared unit-named duration field?
    const target = durationFieldFor(objs, key)
    if (target === undefined) {
      // a member of a record (upstreams, policies by id, …), or an unknown field the schema reports
      const member = memberSchema(objs, key)
      if (member !== undefined) walk(value, member as TSchema, problems, here, rewrites, opts)
      continue
    }
    if (Object.hasOwn(obj, target.name)) {
      problems.push({
        segs: here,
        atKey: true,
        message:
          opts.programmatic === true
            ? `\`${key}\` and \`${target.name}\` are the same setting: keep \`${key}\` (a duration: ${DURATION_FORMS})`
            : `\`${target.name}\` is the old form of \`${key}\`, which is also set: remove \`${target.name}\` (a duration: ${DURATION_FORMS})`,
      })
      continue
    }
    if (typeof value === 'number' && value !== 0) {
      problems.push({
        segs: here,
        message: `a duration needs its unit: write \`${key}: ${value}${unitSuffix(target.unit)}\` (durations: ${DURATION_FORMS})`,
      })
      continue
    }
    // 0 needs no unit (YAML reads it as a number)
    const ms = value === 0 ? 0 : typeof value === 'string' ? parseDuration(value) : undefined
    if (ms === undefined) {
      const found =
        typeof value === 'string'
          ? JSON.stringify(value.slice(0, 40))
          : value === null
            ? 'null'
            : typeof value
      problems.push({ segs: here, message: `expected a duration (${DURATION_FORMS}), found ${found}` })
      continue
    }
    const inUnit = ms / target.unit
    if (!Number.isInteger(inUnit) && isInteger(target.schema)) {
      const near = formatDuration(Math.max(1, Math.round(inUnit)) * target.unit)
      problems.push({
        segs: here,
        message: `\`${key}\` is counted in whole ${unitName(target.unit)}: ${value} is not one (e.g. \`${key}: ${near}\`)`,
      })
      continue
    }
    obj[key] = inUnit
    renamed.set(key, target.name)
    rewrites.push({ segs: [...segs, target.name], written: key, value: String(value) })
  }
  if (renamed.size > 0) {
    // rename in place, keeping the order the fields were written in
    const entries = Object.entries(obj)
    for (const [k] of entries) delete obj[k]
    for (const [k, v] of entries) obj[renamed.get(k) ?? k] = v
  }
}

/**
 * The problem for a unit-named duration field in a config file (`timeoutMs: 5000`): the old form,
 * located at its key, the message naming the new form with the same value converted
 * (`write \`timeout: 5s\``) when the value converts to a duration exactly.
 */
function oldForm(key: string, value: unknown, unit: number, segs: Seg[], opts: DurationOptions): Problem {
  const stem = durationStem(key)
  let written: string | undefined
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
    const d = formatDuration(value * unit)
    if (parseDuration(d) === value * unit) written = d
  } else if (typeof value === 'string' && parseDuration(value) !== undefined) written = value
  const json = opts.jsonStyle?.(segs) === true
  const suggestion =
    written === undefined
      ? `write \`${stem}\` as a duration (${DURATION_FORMS})`
      : json
        ? `write \`"${stem}": ${written === '0' ? '0' : `"${written}"`}\``
        : `write \`${stem}: ${written}\``
  const what = typeof value === 'number' ? ` (a number of ${unitName(unit)})` : ''
  return { segs, atKey: true, message: `the old form${what}; ${suggestion}` }
}

function durationFieldFor(
  objs: readonly Schema[],
  key: string,
): { name: string; unit: number; schema: Schema } | undefined {
  for (const [suffix, size] of SUFFIXES) {
    const name = key + suffix
    if (!declares(objs, name)) continue
    const m = memberSchema(objs, name)
    if (m !== undefined && durationUnitOf(name, m as TSchema) === size) return { name, unit: size, schema: m }
  }
  return undefined
}

function unitName(unit: number): string {
  return unit === 1 ? 'milliseconds' : unit === 1000 ? 'seconds' : 'days'
}

function unitSuffix(unit: number): string {
  return unit === 1 ? 'ms' : unit === 1000 ? 's' : 'd'
}

function example(unit: number): string {
  return unit === 1 ? '500ms' : unit === 1000 ? '30s' : '7d'
}
