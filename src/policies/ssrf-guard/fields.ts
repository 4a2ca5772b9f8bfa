/**
 * Which inputs of a request hold URLs: from the OpenAPI document (`format: uri|url|iri` and their
 * `-reference` forms), computed once per operation as JSON pointer templates and parameter names,
 * and from the config (names, pointers, query parameters, headers, form fields). At request time,
 * the values at those places are collected as candidates for the URL check.
 */
import type { Location, OpenApiSpec, Operation } from '../../openapi/index.js'

/** Where a URL value was found, for the client's error and the audit record. */
export interface UrlCandidate {
  in: 'body' | 'query' | 'header' | 'form'
  /** JSON pointer (body) or name. */
  field: string
  value: string
  /** The field may hold a relative reference (`format: uri-reference`). */
  reference: boolean
}

/** A JSON pointer template: segments, `*` for any array item or object member. */
export interface PointerTemplate {
  segments: readonly string[]
  reference: boolean
}

/** How a named input (parameter or form field) holds URLs. */
export interface NamedTarget {
  reference: boolean
  /** An array of URLs: a non-exploded query value is split on commas. */
  list: boolean
  explode: boolean
}

/** Every URL-valued place of one operation (or of a whole route, from the config). */
export interface Targets {
  query: Map<string, NamedTarget>
  headers: Map<string, NamedTarget>
  form: Map<string, NamedTarget>
  pointers: PointerTemplate[]
  /** Names matched anywhere: JSON properties at any depth, query parameters, form fields. */
  names: Set<string>
}

export function emptyTargets(): Targets {
  return { query: new Map(), headers: new Map(), form: new Map(), pointers: [], names: new Set() }
}

/** True when the targets need the request body. */
export function needsBody(t: Targets): boolean {
  return t.pointers.length > 0 || t.form.size > 0 || t.names.size > 0
}

export function isEmpty(t: Targets): boolean {
  return !needsBody(t) && t.query.size === 0 && t.headers.size === 0
}

/** Two target sets as one (the route's config and the operation's spec). */
export function mergeTargets(a: Targets, b: Targets): Targets {
  return {
    query: new Map([...a.query, ...b.query]),
    headers: new Map([...a.headers, ...b.headers]),
    form: new Map([...a.form, ...b.form]),
    pointers: [...a.pointers, ...b.pointers],
    names: new Set([...a.names, ...b.names]),
  }
}

const URL_FORMATS = new Map([
  ['uri', false],
  ['url', false],
  ['iri', false],
  ['uri-reference', true],
  ['iri-reference', true],
])

/** Bounds on walking a hostile spec. */
const MAX_DEPTH = 48
const MAX_NODES = 50_000
const MAX_TEMPLATES = 512

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

const esc = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1')

/**
 * The places under `schema` that hold URL strings, as pointer templates relative to it (`[]` is
 * the schema itself). Follows `$ref`s, properties, items, prefixItems, additionalProperties,
 * patternProperties and the allOf/anyOf/oneOf branches. A recursive schema (a `$ref` cycle) can
 * nest URLs at any depth, which no template list covers: its URL property names are returned in
 * `anywhere`, to be checked at any depth of the body (an over-approximation, never a gap).
 */
export function urlTemplates(
  spec: OpenApiSpec,
  schema: unknown,
  at: Location | undefined,
): { templates: PointerTemplate[]; anywhere: string[] } {
  let recursive = false
  const out: PointerTemplate[] = []
  const seen = new Set<string>()
  let nodes = 0
  const walk = (
    value: unknown,
    loc: Location | undefined,
    path: string[],
    depth: number,
    refs: Set<string>,
  ) => {
    if (++nodes > MAX_NODES || depth > MAX_DEPTH || out.length >= MAX_TEMPLATES || !isObject(value)) return
    let cur: Record<string, unknown> = value
    let curLoc = loc
    let curRefs = refs
    if (typeof value.$ref === 'string') {
      if (loc === undefined) return
      let r: { value: unknown; file: string; pointer: string }
      try {
        r = spec.documents.deref<unknown>(value, loc)
      } catch {
        return
      }
      const key = `${r.file}#${r.pointer}`
      if (refs.has(key)) {
        recursive = true
        return
      }
      if (!isObject(r.value)) return
      curRefs = new Set(refs).add(key)
      cur = r.value
      curLoc = { file: r.file, pointer: r.pointer }
    }
    const child = (k: string) =>
      curLoc ? { file: curLoc.file, pointer: `${curLoc.pointer}/${esc(k)}` } : undefined
    const f = cur.format
    if (typeof f === 'string' && URL_FORMATS.has(f)) {
      const key = `${path.join('\u0000')}\u0001${f}`
      if (!seen.has(key)) {
        seen.add(key)
        out.push({ segments: [...path], reference: URL_FORMATS.get(f) as boolean })
      }
    }
    if (isObject(cur.properties)) {
      const propsLoc = child('properties')
      for (const [k, v] of Object.entries(cur.properties))
        walk(
          v,
          propsLoc && { file: propsLoc.file, pointer: `${propsLoc.pointer}/${esc(k)}` },
          [...path, k],
          depth + 1,
          curRefs,
        )
    }
    for (const key of ['items', 'additionalProperties'] as const) {
      if (isObject(cur[key])) walk(cur[key], child(key), [...path, '*'], depth + 1, curRefs)
    }
    for (const key of ['prefixItems', 'items'] as const) {
      const list = cur[key]
      if (!Array.isArray(list)) continue
      const l = child(key)
      list.forEach((v, i) => {
        walk(v, l && { file: l.file, pointer: `${l.pointer}/${i}` }, [...path, '*'], depth + 1, curRefs)
      })
    }
    if (isObject(cur.patternProperties)) {
      const pl = child('patternProperties')
      for (const [k, v] of Object.entries(cur.patternProperties))
        walk(
          v,
          pl && { file: pl.file, pointer: `${pl.pointer}/${esc(k)}` },
          [...path, '*'],
          depth + 1,
          curRefs,
        )
    }
    for (const key of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = cur[key]
      if (!Array.isArray(list)) continue
      const l = child(key)
      list.forEach((v, i) => {
        walk(v, l && { file: l.file, pointer: `${l.pointer}/${i}` }, path, depth + 1, curRefs)
      })
    }
  }
  walk(schema, at, [], 0, new Set())
  const anywhere = new Set<string>()
  if (recursive || nodes > MAX_NODES || out.length >= MAX_TEMPLATES)
    for (const t of out) {
      const name = [...t.segments].reverse().find((x) => x !== '*')
      if (name !== undefined) anywhere.add(name)
    }
  return { templates: out, anywhere: [...anywhere] }
}

const JSON_MEDIA = /^application\/(?:[\w.+-]+\+)?json$|^\*\/\*$|^application\/\*$/

/** The URL-valued inputs of one operation, from its spec. */
export function operationTargets(spec: OpenApiSpec, op: Operation): Targets {
  const t = emptyTargets()
  for (const p of op.parameters) {
    if (p.in !== 'query' && p.in !== 'header') continue
    for (const tpl of urlTemplates(spec, p.schema, p.schemaLocation).templates) {
      if (tpl.segments.length > 1 || (tpl.segments.length === 1 && tpl.segments[0] !== '*')) continue
      const target: NamedTarget = {
        reference: tpl.reference,
        list: tpl.segments.length === 1,
        explode: p.explode,
      }
      if (p.in === 'query') t.query.set(p.name, target)
      else t.headers.set(p.name.toLowerCase(), target)
    }
  }
  for (const m of op.requestBody?.content ?? []) {
    const { templates, anywhere } = urlTemplates(spec, m.schema, m.schemaLocation)
    if (m.type === 'application/x-www-form-urlencoded' || m.type === 'multipart/form-data') {
      for (const tpl of templates) {
        const [name, more] = tpl.segments
        if (
          name === undefined ||
          name === '*' ||
          (more !== undefined && more !== '*') ||
          tpl.segments.length > 2
        )
          continue
        t.form.set(name, { reference: tpl.reference, list: more === '*', explode: true })
      }
    } else if (JSON_MEDIA.test(m.type) || m.type.endsWith('+json') || m.type.includes('json')) {
      t.pointers.push(...templates)
      for (const n of anywhere) t.names.add(n)
    }
  }
  return t
}

/** Parses a configured JSON pointer template (`/hooks/*\/url`) into segments. */
export function parsePointer(p: string): string[] {
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/** The targets a route's config names. */
export function configTargets(fields: {
  names: readonly string[]
  jsonPointers: readonly string[]
  query: readonly string[]
  headers: readonly string[]
  form: readonly string[]
}): Targets {
  const named = (): NamedTarget => ({ reference: false, list: false, explode: true })
  return {
    names: new Set(fields.names),
    pointers: fields.jsonPointers.map((p) => ({ segments: parsePointer(p), reference: false })),
    query: new Map(fields.query.map((n) => [n, named()])),
    headers: new Map(fields.headers.map((n) => [n.toLowerCase(), named()])),
    form: new Map(fields.form.map((n) => [n, named()])),
  }
}

/** Pushes the string values at a template (and string items of an array there). */
function atTemplate(
  value: unknown,
  segments: readonly string[],
  i: number,
  pointer: string,
  reference: boolean,
  out: UrlCandidate[],
  budget: { left: number },
): void {
  if (--budget.left < 0) return
  if (i === segments.length) {
    if (typeof value === 'string') out.push({ in: 'body', field: pointer || '/', value, reference })
    else if (Array.isArray(value))
      value.forEach((v, k) => {
        if (typeof v === 'string') out.push({ in: 'body', field: `${pointer}/${k}`, value: v, reference })
      })
    return
  }
  const seg = segments[i] as string
  if (Array.isArray(value)) {
    if (seg === '*')
      value.forEach((v, k) => {
        atTemplate(v, segments, i + 1, `${pointer}/${k}`, reference, out, budget)
      })
    else if (/^(?:0|[1-9]\d*)$/.test(seg) && Number(seg) < value.length)
      atTemplate(value[Number(seg)], segments, i + 1, `${pointer}/${seg}`, reference, out, budget)
    return
  }
  if (!isObject(value)) return
  if (seg === '*') {
    for (const k of Object.keys(value))
      atTemplate(value[k], segments, i + 1, `${pointer}/${esc(k)}`, reference, out, budget)
  } else {
    // Case-insensitively: some JSON binders match property names without case (ASP.NET Core's
    // web defaults, Jackson with ACCEPT_CASE_INSENSITIVE_PROPERTIES), so `IMAGEURL` may be `imageUrl`.
    const lower = seg.toLowerCase()
    for (const k of Object.keys(value))
      if (k === seg || k.toLowerCase() === lower)
        atTemplate(value[k], segments, i + 1, `${pointer}/${esc(k)}`, reference, out, budget)
  }
}

const lowered = new WeakMap<ReadonlySet<string>, Set<string>>()

/**
 * The URL candidates of a parsed JSON body: the values at each template, and the string values of
 * properties named in `names` at any depth. Bounded by `maxVisits` (the guarded parser has already
 * bounded the document itself).
 */
export function jsonCandidates(
  body: unknown,
  templates: readonly PointerTemplate[],
  names: ReadonlySet<string>,
  maxVisits = 1_000_000,
): UrlCandidate[] {
  const out: UrlCandidate[] = []
  const budget = { left: maxVisits }
  for (const t of templates) atTemplate(body, t.segments, 0, '', t.reference, out, budget)
  if (names.size === 0) return out
  // Names compare without case too (see atTemplate).
  let lower = lowered.get(names)
  if (lower === undefined) {
    lower = new Set([...names].map((n) => n.toLowerCase()))
    lowered.set(names, lower)
  }
  const stack: [unknown, string][] = [[body, '']]
  while (stack.length > 0 && --budget.left >= 0) {
    const [v, p] = stack.pop() as [unknown, string]
    if (Array.isArray(v)) {
      for (let k = v.length - 1; k >= 0; k--) stack.push([v[k], `${p}/${k}`])
      continue
    }
    if (!isObject(v)) continue
    for (const k of Object.keys(v)) {
      const child = v[k]
      const cp = `${p}/${esc(k)}`
      if (lower.has(k.toLowerCase())) {
        if (typeof child === 'string') out.push({ in: 'body', field: cp, value: child, reference: false })
        else if (Array.isArray(child))
          child.forEach((x, i) => {
            if (typeof x === 'string')
              out.push({ in: 'body', field: `${cp}/${i}`, value: x, reference: false })
          })
      }
      if (child !== null && typeof child === 'object') stack.push([child, cp])
    }
  }
  return out
}
