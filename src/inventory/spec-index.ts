/**
 * The specs the inventory compares traffic with: every operation (method + full path template,
 * with the mount prefix of the route that serves the spec), whether it is deprecated or
 * explicitly public, its parameters, and the JSON field paths its request and responses declare
 * (for "undeclared sensitive data"). Built once at start; the spec files are read with the shared
 * OpenAPI loader (bounded, local `$ref`s).
 */
import { dirname } from 'node:path'
import { keySegment } from './classify/scan.js'
import {
  loadOpenApi,
  type OpenApiSpec,
  type Operation,
  PathMatcher,
  type SpecDocuments,
} from '../openapi/index.js'

export interface SpecSource {
  /** Absolute path of the spec file. */
  file: string
  /** Path prefix the spec's paths are served under (`''` for none). */
  prefix: string
}

export interface SpecOperation {
  method: string
  /** Full template: prefix + the spec's path. */
  template: string
  operationId: string | undefined
  deprecated: boolean
  /** The operation says `security: []` (or an empty requirement): public on purpose. */
  public: boolean
  /** The operation (or document) requires credentials. */
  secured: boolean
  parameters: { name: string; in: string; required: boolean }[]
  /** Declared JSON field paths of the request body (`$.a.b`, `$.items[]`). */
  requestFields: ReadonlySet<string>
  /** Declared JSON field paths by response status (`200`, `2XX`, `default`). */
  responseFields: ReadonlyMap<string, ReadonlySet<string>>
  /** `x-data-classes` on the operation: classes it declares it handles on purpose. */
  declaredClasses: ReadonlySet<string>
  specFile: string
}

export type SpecMatch =
  | { kind: 'found'; op: SpecOperation }
  /** The path is in a spec, the method is not. */
  | { kind: 'method'; template: string }
  | { kind: 'none' }

const MAX_FIELD_PATHS = 2000
const MAX_SCHEMA_DEPTH = 12

/** The operations of several specs, matchable by method and path. */
export class SpecIndex {
  readonly operations: SpecOperation[] = []
  /** Why a spec could not be read (file: message), for the log and the report. */
  readonly problems: string[] = []
  private readonly matcher = new PathMatcher<SpecOperation>()
  private readonly seen = new Set<string>()

  constructor(sources: readonly SpecSource[]) {
    for (const src of sources) {
      let spec: OpenApiSpec
      try {
        spec = loadOpenApi(src.file, { rootDir: dirname(src.file) })
      } catch (err) {
        this.problems.push(`${src.file}: ${(err as Error).message.split('\n')[0]}`)
        continue
      }
      const prefix = src.prefix.replace(/\/+$/, '')
      for (const op of spec.operations) {
        const template = prefix + (op.path === '/' && prefix !== '' ? '' : op.path) || '/'
        const key = `${op.method} ${template}`
        if (this.seen.has(key)) continue
        this.seen.add(key)
        const info = describe(op, template, spec.documents, src.file)
        this.operations.push(info)
        this.matcher.add(template, op.method, info)
      }
    }
  }

  get size(): number {
    return this.operations.length
  }

  /** The spec operation a request falls under. */
  match(method: string, path: string): SpecMatch {
    if (this.operations.length === 0) return { kind: 'none' }
    const m = this.matcher.match(path, method === 'HEAD' ? 'GET' : method)
    if (m.kind === 'found') return { kind: 'found', op: m.match.value }
    if (m.kind === 'method') return { kind: 'method', template: m.template }
    return { kind: 'none' }
  }

  /** The spec operation with this method and template, if any. */
  byTemplate(method: string, template: string): SpecOperation | undefined {
    return this.operations.find((o) => o.method === method && o.template === template)
  }
}

function describe(op: Operation, template: string, docs: SpecDocuments, file: string): SpecOperation {
  const sec = op.raw.security
  const explicitPublic =
    Array.isArray(sec) &&
    (sec.length === 0 || sec.some((r) => r !== null && typeof r === 'object' && Object.keys(r).length === 0))
  const responseFields = new Map<string, ReadonlySet<string>>()
  for (const r of op.responses) {
    const paths = new Set<string>()
    for (const mt of r.content)
      if (mt.schema !== undefined) schemaPaths(mt.schema, mt.schemaLocation, docs, paths)
    responseFields.set(r.status, paths)
  }
  const requestFields = new Set<string>()
  for (const mt of op.requestBody?.content ?? []) {
    if (mt.schema !== undefined) schemaPaths(mt.schema, mt.schemaLocation, docs, requestFields)
  }
  const xdc = op.raw['x-data-classes']
  return {
    method: op.method,
    template,
    operationId: op.operationId,
    deprecated: op.deprecated,
    public: explicitPublic,
    secured: !explicitPublic && op.security !== undefined && op.security.length > 0,
    parameters: op.parameters.map((p) => ({ name: p.name, in: p.in, required: p.required })),
    requestFields,
    responseFields,
    declaredClasses: new Set(Array.isArray(xdc) ? xdc.filter((x): x is string => typeof x === 'string') : []),
    specFile: file,
  }
}

/** Collects the property paths a schema declares (following `$ref`s, allOf/anyOf/oneOf, items). */
function schemaPaths(
  schema: unknown,
  at: { file: string; pointer: string } | undefined,
  docs: SpecDocuments,
  out: Set<string>,
): void {
  const visiting = new Set<unknown>()
  const walk = (
    s: unknown,
    loc: { file: string; pointer: string } | undefined,
    path: string,
    depth: number,
  ) => {
    if (out.size >= MAX_FIELD_PATHS || depth > MAX_SCHEMA_DEPTH) return
    if (s === null || typeof s !== 'object' || Array.isArray(s)) return
    let o = s as Record<string, unknown>
    let here = loc
    for (let hops = 0; typeof o.$ref === 'string' && hops < 16; hops++) {
      if (here === undefined) return
      try {
        here = docs.target(o.$ref as string, here)
        const v = docs.at(here.file, here.pointer)
        if (v === null || typeof v !== 'object') return
        o = v as Record<string, unknown>
      } catch {
        return
      }
    }
    if (visiting.has(o)) return
    visiting.add(o)
    out.add(path)
    const child = (k: string) => (here ? { file: here.file, pointer: `${here.pointer}/${k}` } : undefined)
    const props = o.properties
    if (props !== null && typeof props === 'object') {
      for (const [k, v] of Object.entries(props as Record<string, unknown>)) {
        walk(
          v,
          child(`properties/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`),
          `${path}.${keySegment(k)}`,
          depth + 1,
        )
      }
    }
    if (o.items !== undefined) walk(o.items, child('items'), `${path}[]`, depth + 1)
    for (const comb of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = o[comb]
      if (Array.isArray(list))
        for (let i = 0; i < list.length; i++) walk(list[i], child(`${comb}/${i}`), path, depth + 1)
    }
    visiting.delete(o)
  }
  walk(schema, at, '$', 0)
}

/** The declared response field paths for a status: exact, then `NXX`, then `default`. */
export function declaredResponseFields(op: SpecOperation, status: number): ReadonlySet<string> | undefined {
  return (
    op.responseFields.get(String(status)) ??
    op.responseFields.get(`${String(status)[0]}XX`) ??
    op.responseFields.get('default')
  )
}
