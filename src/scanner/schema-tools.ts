/**
 * What the scanner needs from an operation's schemas: `$ref`s inlined (bounded), a minimal valid
 * value generated from a schema (examples first), and the properties a response schema declares.
 * Schemas come from the loaded spec (src/openapi); nothing here fetches or compiles.
 */
import type { Location, MediaType, OpenApiSpec, Operation } from '../openapi/index.js'

export type Schema = Record<string, unknown>

const MAX_REF_DEPTH = 6
const MAX_NODES = 20_000
const KEEP_AS_IS = new Set(['example', 'examples', 'enum', 'const', 'default'])

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function esc(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1')
}

/**
 * Returns a copy of `schema` with `$ref`s inlined, `$ref` nesting cut at a small depth (a cycle
 * becomes `{}`), and a node budget so a hostile spec cannot blow it up.
 */
export function resolveSchema(spec: OpenApiSpec, schema: unknown, loc: Location | undefined): unknown {
  const budget = { nodes: 0 }
  const expand = (value: unknown, at: Location | undefined, refDepth: number): unknown => {
    if (++budget.nodes > MAX_NODES) return {}
    if (Array.isArray(value)) {
      return value.map((v, i) => expand(v, at && { file: at.file, pointer: `${at.pointer}/${i}` }, refDepth))
    }
    if (!isObject(value)) return value
    let cur = value
    let curAt = at
    if (typeof value.$ref === 'string') {
      if (!at || refDepth >= MAX_REF_DEPTH) return {}
      try {
        const r = spec.documents.deref<unknown>(value, at)
        if (!isObject(r.value)) return r.value
        cur = r.value
        curAt = { file: r.file, pointer: r.pointer }
        refDepth++
      } catch {
        return {}
      }
    }
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(cur)) {
      if (k === '$ref') continue
      out[k] = KEEP_AS_IS.has(k)
        ? v
        : expand(v, curAt && { file: curAt.file, pointer: `${curAt.pointer}/${esc(k)}` }, refDepth)
    }
    return out
  }
  return expand(schema, loc, 0)
}

const JSONISH = /^application\/(?:[\w.+-]+\+)?json$|^\*\/\*$|^application\/\*$/

function jsonMedia(content: readonly MediaType[]): MediaType | undefined {
  return content.find((m) => JSONISH.test(m.type)) ?? content.find((m) => m.type.includes('json'))
}

function mediaExample(spec: OpenApiSpec, m: MediaType): unknown {
  try {
    const raw = spec.documents.at(m.location.file, m.location.pointer)
    if (!isObject(raw)) return undefined
    if (raw.example !== undefined) return raw.example
    if (isObject(raw.examples)) {
      for (const ex of Object.values(raw.examples)) {
        const r = spec.documents.deref<unknown>(ex, m.location)
        if (isObject(r.value) && r.value.value !== undefined) return r.value.value
      }
    }
  } catch {
    return undefined
  }
  return undefined
}

export interface BodyShape {
  schema: Schema | undefined
  example: unknown
  contentType: string
}

/** The JSON request body of an operation: its schema (resolved) and example, if any. */
export function requestBody(spec: OpenApiSpec, op: Operation): BodyShape | undefined {
  if (!op.requestBody) return undefined
  const m = jsonMedia(op.requestBody.content)
  if (!m) return undefined
  const schema = resolveSchema(spec, m.schema, m.schemaLocation)
  return {
    schema: isObject(schema) ? schema : undefined,
    example: mediaExample(spec, m),
    contentType: m.type,
  }
}

const FORM = /^application\/x-www-form-urlencoded$|^multipart\/form-data$/

/**
 * The request body of an operation, JSON or form-encoded (`encoding`), whichever the spec offers
 * (JSON first): for operations such as logins that real APIs often take as forms.
 */
export function requestBodyAny(
  spec: OpenApiSpec,
  op: Operation,
): (BodyShape & { encoding: 'json' | 'form' }) | undefined {
  const json = requestBody(spec, op)
  if (json) return { ...json, encoding: 'json' }
  const m = op.requestBody?.content.find((x) => FORM.test(x.type))
  if (!m || m.type.startsWith('multipart/')) return undefined
  const schema = resolveSchema(spec, m.schema, m.schemaLocation)
  return {
    schema: isObject(schema) ? schema : undefined,
    example: mediaExample(spec, m),
    contentType: m.type,
    encoding: 'form',
  }
}

/** The JSON response schema for a status (exact, then `2XX`, then `default`). */
export function responseSchema(spec: OpenApiSpec, op: Operation, status: number): Schema | undefined {
  const s = String(status)
  const r =
    op.responses.find((x) => x.status === s) ??
    op.responses.find((x) => x.status.toUpperCase() === `${s[0]}XX`) ??
    op.responses.find((x) => x.status === 'default')
  if (!r) return undefined
  const m = jsonMedia(r.content)
  if (!m || m.schema === undefined) return undefined
  const schema = resolveSchema(spec, m.schema, m.schemaLocation)
  return isObject(schema) ? schema : undefined
}

/** The first non-null type of a schema (`type` may be a list in 3.1). */
export function schemaType(schema: Schema): string | undefined {
  const t = schema.type
  if (typeof t === 'string') return t
  if (Array.isArray(t)) return t.find((x) => x !== 'null') as string | undefined
  if (isObject(schema.properties)) return 'object'
  if (schema.items !== undefined) return 'array'
  return undefined
}

/** Merges `allOf` branches (properties, required) into one object schema; first branch of anyOf/oneOf. */
export function flatten(schema: Schema, depth = 0): Schema {
  if (depth > 8) return schema
  let out: Schema = { ...schema }
  const branches: Schema[] = []
  if (Array.isArray(schema.allOf)) branches.push(...(schema.allOf.filter(isObject) as Schema[]))
  for (const k of ['oneOf', 'anyOf'] as const) {
    const list = schema[k]
    if (Array.isArray(list)) {
      const first = list.find((b) => isObject(b) && b.type !== 'null')
      if (isObject(first)) branches.push(first)
    }
  }
  for (const b of branches) {
    const f = flatten(b, depth + 1)
    out = {
      ...f,
      ...out,
      properties: {
        ...(isObject(f.properties) ? f.properties : {}),
        ...(isObject(out.properties) ? out.properties : {}),
      },
      required: [
        ...(Array.isArray(f.required) ? f.required : []),
        ...(Array.isArray(out.required) ? out.required : []),
      ],
    }
  }
  delete out.allOf
  delete out.oneOf
  delete out.anyOf
  return out
}

function stringFor(s: Schema, name: string): string {
  const format = typeof s.format === 'string' ? s.format : ''
  let v: string
  if (format === 'email' || /e-?mail/i.test(name)) v = 'scanner@example.com'
  else if (format === 'uri' || format === 'url' || /url$|uri$/i.test(name)) v = 'https://example.com/'
  else if (format === 'date') v = '2026-01-01'
  else if (format === 'date-time') v = '2026-01-01T00:00:00Z'
  else if (format === 'uuid') v = '00000000-0000-4000-8000-000000000000'
  else if (format === 'ipv4') v = '192.0.2.1'
  else if (typeof s.pattern === 'string' && /^\^\[A-Z\]\{3\}\$$/.test(s.pattern)) v = 'EUR'
  else v = 'portcullis-scan'
  const min = typeof s.minLength === 'number' ? s.minLength : 0
  const max = typeof s.maxLength === 'number' ? s.maxLength : Number.POSITIVE_INFINITY
  while (v.length < min) v += 'x'
  if (v.length > max) v = v.slice(0, Math.max(min, max))
  return v
}

function numberFor(s: Schema, integer: boolean): number {
  let v = 1
  if (typeof s.minimum === 'number') v = Math.max(v, s.minimum)
  if (typeof s.exclusiveMinimum === 'number') v = Math.max(v, s.exclusiveMinimum + 1)
  if (typeof s.maximum === 'number') v = Math.min(v, s.maximum)
  return integer ? Math.ceil(v) : v
}

/**
 * A minimal valid value for a schema: its example, default, const or first enum value when it has
 * one; otherwise generated from the type and bounds. For objects, `all` includes every
 * non-readOnly property (not only the required ones) at the top level.
 */
export function generateValue(schema: unknown, name = '', depth = 0, all = true): unknown {
  if (!isObject(schema) || depth > 8) return undefined
  const s = flatten(schema)
  if (s.example !== undefined) return s.example
  if (Array.isArray(s.examples) && s.examples.length > 0) return s.examples[0]
  if (s.default !== undefined) return s.default
  if (s.const !== undefined) return s.const
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum.find((x) => x !== null) ?? s.enum[0]
  switch (schemaType(s)) {
    case 'object': {
      const out: Record<string, unknown> = {}
      const props = isObject(s.properties) ? s.properties : {}
      const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : [])
      for (const [k, p] of Object.entries(props)) {
        if (isObject(p) && p.readOnly === true) continue
        if (!required.has(k) && !(all && depth === 0)) continue
        const v = generateValue(p, k, depth + 1, all)
        if (v !== undefined) out[k] = v
      }
      return out
    }
    case 'array': {
      const n = typeof s.minItems === 'number' ? Math.min(Math.max(s.minItems, 1), 5) : 1
      const item = generateValue(s.items, name, depth + 1, all)
      return item === undefined ? [] : Array.from({ length: n }, () => item)
    }
    case 'string':
      return stringFor(s, name)
    case 'integer':
      return numberFor(s, true)
    case 'number':
      return numberFor(s, false)
    case 'boolean':
      return false
    case 'null':
      return null
    default:
      return undefined
  }
}

/**
 * The property names an object schema declares, or undefined when it allows any property
 * (no `properties`, or `additionalProperties`/`patternProperties` that admit others).
 */
export function declaredProperties(
  schema: Schema,
): { names: Set<string>; props: Record<string, Schema> } | undefined {
  const s = flatten(schema)
  if (!isObject(s.properties)) return undefined
  const ap = s.additionalProperties
  if (ap === true || isObject(ap) || isObject(s.patternProperties)) return undefined
  if (s.unevaluatedProperties === true || isObject(s.unevaluatedProperties)) return undefined
  const props: Record<string, Schema> = {}
  for (const [k, v] of Object.entries(s.properties)) if (isObject(v)) props[k] = v
  return { names: new Set(Object.keys(s.properties)), props }
}

/** The readOnly property names of an object schema. */
export function readOnlyProperties(schema: Schema): string[] {
  const s = flatten(schema)
  if (!isObject(s.properties)) return []
  return Object.entries(s.properties)
    .filter(([, p]) => isObject(p) && p.readOnly === true)
    .map(([k]) => k)
}

/** A JSON pointer (RFC 6901) lookup. */
export function pointerGet(value: unknown, pointer: string): unknown {
  if (pointer === '') return value
  if (!pointer.startsWith('/')) return undefined
  let cur = value
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(cur)) cur = cur[Number(token)]
    else if (isObject(cur) && Object.hasOwn(cur, token)) cur = cur[token]
    else return undefined
  }
  return cur
}

export { isObject }
