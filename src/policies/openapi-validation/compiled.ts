/**
 * A spec compiled for request validation: the path matcher and, per operation, the compiled
 * parameter and body validators. Compiled once per spec content and shared by every route that
 * uses the same spec (a bounded cache keyed by file, options and the files' size and mtime).
 */
import { statSync } from 'node:fs'
import type { ValidateFunction } from 'ajv'
import {
  type Encoding,
  isRemoteFile,
  type LoadOptions,
  loadOpenApi,
  type OpenApiSpec,
  type Operation,
  type Location,
  type Parameter,
  PathMatcher,
  SchemaCompiler,
} from '../../openapi/index.js'

/** How a parameter's string value is turned into typed data before validation. */
export interface Shape {
  /** Types the schema allows (empty when unknown: the value stays a string). */
  types: string[]
  /** For arrays: the item types. */
  items: string[]
  /** For objects: each property's types. */
  props: Map<string, string[]>
  /** For objects: the item types of array properties. */
  propItems: Map<string, string[]>
  /** For objects: properties that are files (`format: binary`, or `contentMediaType` without `contentEncoding`), or arrays of them. */
  propFiles: Set<string>
  /** For objects: the property types of object properties (one level, for deepObject form fields). */
  propProps: Map<string, Map<string, string[]>>
}

function emptyShape(): Shape {
  return {
    types: [],
    items: [],
    props: new Map(),
    propItems: new Map(),
    propFiles: new Set(),
    propProps: new Map(),
  }
}

export interface CompiledParam {
  param: Parameter
  shape: Shape
  validate: ValidateFunction | undefined
}

export type BodyKind = 'json' | 'form' | 'multipart' | 'text' | 'other'

export interface CompiledMedia {
  type: string
  kind: BodyKind
  json: boolean
  validate: ValidateFunction | undefined
  /** Property types, for form bodies. */
  shape: Shape
  /** The media type's `encoding` object (form and multipart bodies). */
  encoding: ReadonlyMap<string, Encoding>
}

export function bodyKind(type: string): BodyKind {
  if (isJsonMediaType(type)) return 'json'
  if (type === 'application/x-www-form-urlencoded') return 'form'
  if (type === 'multipart/form-data') return 'multipart'
  if (type === 'text/plain') return 'text'
  return 'other'
}

export interface CompiledResponse {
  /** `200`, `2XX` or `default`. */
  status: string
  /** JSON media types with their compiled (closed) schemas; other media types have no validator. */
  media: CompiledMedia[]
}

export interface CompiledOperation {
  op: Operation
  /** Empty unless compiled with `responses: true`. */
  responses: CompiledResponse[]
  params: CompiledParam[]
  /** Query parameter names the operation declares (deepObject ones match `name[...]`). */
  queryNames: Set<string>
  deepObjects: string[]
  body: { required: boolean; media: CompiledMedia[] } | undefined
}

export interface CompiledApi {
  spec: OpenApiSpec
  matcher: PathMatcher<CompiledOperation>
  byId: Map<string, CompiledOperation>
  warnings: string[]
}

export function isJsonMediaType(t: string): boolean {
  return (
    t === 'application/json' ||
    /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.-]+\+json$/.test(t) ||
    t === '*/*' ||
    t === 'application/*'
  )
}

export interface CompileOptions extends LoadOptions {
  /** Also compile response schemas (for response validation). */
  responses?: boolean
}

export function compileApi(file: string, options: CompileOptions): CompiledApi {
  const spec = loadOpenApi(file, options)
  const compiler = new SchemaCompiler(spec.documents, spec.version)
  const pending: {
    op: Operation
    params: [Parameter, number | undefined][]
    media: [string, number | undefined, Shape, ReadonlyMap<string, Encoding>][]
    responses: [string, [string, number | undefined][]][]
  }[] = []
  for (const op of spec.operations) {
    const params: [Parameter, number | undefined][] = op.parameters.map((p) => [
      p,
      p.schemaLocation ? compiler.add(p.schema, p.schemaLocation, 'declared') : undefined,
    ])
    const media: [string, number | undefined, Shape, ReadonlyMap<string, Encoding>][] = (
      op.requestBody?.content ?? []
    ).map((m) => [
      m.type,
      m.schemaLocation && bodyKind(m.type) !== 'other'
        ? compiler.add(m.schema, m.schemaLocation, 'closed', 'request')
        : undefined,
      shapeOf(spec, m.schema, m.schemaLocation),
      m.encoding,
    ])
    const responses: [string, [string, number | undefined][]][] = options.responses
      ? op.responses.map((r) => [
          r.status,
          r.content.map((m) => [
            m.type,
            m.schemaLocation && isJsonMediaType(m.type)
              ? compiler.add(m.schema, m.schemaLocation, 'closed', 'response')
              : undefined,
          ]),
        ])
      : []
    pending.push({ op, params, media, responses })
  }
  compiler.compile()
  const matcher = new PathMatcher<CompiledOperation>()
  const byId = new Map<string, CompiledOperation>()
  for (const { op, params, media, responses } of pending) {
    const cp: CompiledParam[] = params.map(([param, h]) => ({
      param,
      shape: shapeOf(spec, param.schema, param.schemaLocation),
      validate: h === undefined ? undefined : compiler.get(h).validate,
    }))
    const queryNames = new Set<string>()
    const deepObjects: string[] = []
    for (const p of cp) {
      if (p.param.in !== 'query') continue
      if (p.param.style === 'deepObject') deepObjects.push(p.param.name)
      else if (explodedObject(p)) {
        for (const k of p.shape.props.keys()) queryNames.add(k)
      } else queryNames.add(p.param.name)
    }
    const compiled: CompiledOperation = {
      op,
      responses: responses.map(([status, content]) => ({
        status,
        media: content.map(([type, h]) => ({
          type,
          kind: bodyKind(type),
          json: isJsonMediaType(type),
          validate: h === undefined ? undefined : compiler.get(h).validate,
          shape: emptyShape(),
          encoding: new Map(),
        })),
      })),
      params: cp,
      queryNames,
      deepObjects,
      body: op.requestBody && {
        required: op.requestBody.required,
        media: media.map(([type, h, shape, encoding]) => ({
          type,
          kind: bodyKind(type),
          json: isJsonMediaType(type),
          validate: h === undefined ? undefined : compiler.get(h).validate,
          shape,
          encoding,
        })),
      },
    }
    matcher.add(op.path, op.method, compiled)
    byId.set(op.id, compiled)
  }
  return { spec, matcher, byId, warnings: [...spec.warnings, ...compiler.warnings] }
}

/** A form-style exploded object: its properties are the query parameters (`?min=1&max=2`). */
export function explodedObject(p: CompiledParam): boolean {
  const t = p.shape.types
  return (
    p.param.contentType === undefined &&
    p.param.style === 'form' &&
    p.param.explode &&
    t.includes('object') &&
    !t.includes('array')
  )
}

/** The types a parameter schema allows, looking through `$ref` and `allOf` (bounded). */
function shapeOf(spec: OpenApiSpec, schema: unknown, location: Location | undefined): Shape {
  const shape = emptyShape()
  if (!location) return shape
  const docs = spec.documents
  const resolve = (v: unknown, at: { file: string; pointer: string }) => {
    try {
      return docs.deref<Record<string, unknown>>(v, at)
    } catch {
      return undefined
    }
  }
  const typesOf = (s: Record<string, unknown> | undefined): string[] => {
    if (!s) return []
    const t = s.type
    const out = Array.isArray(t)
      ? t.filter((x): x is string => typeof x === 'string')
      : typeof t === 'string'
        ? [t]
        : []
    if (out.length === 0 && Array.isArray(s.allOf)) {
      for (const b of s.allOf)
        if (b && typeof b === 'object') out.push(...typesOf(b as Record<string, unknown>))
    }
    if (spec.version === '3.0' && s.nullable === true && !out.includes('null')) out.push('null')
    return out
  }
  const root = resolve(schema, location)
  if (!root || typeof root.value !== 'object' || root.value === null) return shape
  shape.types = typesOf(root.value)
  const items = root.value.items
  if (items && typeof items === 'object') shape.items = typesOf(resolve(items, root)?.value)
  const props = root.value.properties
  if (props && typeof props === 'object') {
    for (const [k, v] of Object.entries(props)) {
      const r = resolve(v, root)
      shape.props.set(k, typesOf(r?.value))
      if (isFileSchema(r?.value)) shape.propFiles.add(k)
      const pp = r?.value?.properties
      if (r && pp && typeof pp === 'object') {
        const m = new Map<string, string[]>()
        for (const [k2, v2] of Object.entries(pp)) m.set(k2, typesOf(resolve(v2, r)?.value))
        shape.propProps.set(k, m)
      }
      const it = r?.value?.items
      if (r && it && typeof it === 'object') {
        const ir = resolve(it, r)
        shape.propItems.set(k, typesOf(ir?.value))
        if (isFileSchema(ir?.value)) shape.propFiles.add(k)
      }
    }
  }
  return shape
}

/** A file in a form: OAS 3.0's `format: binary`, or 3.1's `contentMediaType` without `contentEncoding`. */
function isFileSchema(s: Record<string, unknown> | undefined): boolean {
  if (!s) return false
  return s.format === 'binary' || (s.contentMediaType !== undefined && s.contentEncoding === undefined)
}

interface CacheEntry {
  api: CompiledApi
  /** Local files' size and mtime; remote documents are compared by the fetch (`remote`) they came from. */
  stamps: [string, number, number][]
  remote: ReadonlyMap<string, string> | undefined
}
const cache = new Map<string, CacheEntry>()
const CACHE_MAX = 8

/** compileApi, reusing the last result while none of the spec's files changed. */
export function compileApiCached(file: string, options: CompileOptions): CompiledApi {
  const { remote, ...rest } = options
  const key = JSON.stringify([file, rest])
  const hit = cache.get(key)
  const hasRemote = (remote?.size ?? 0) > 0
  if (
    hit &&
    (hasRemote ? hit.remote === remote : (hit.remote?.size ?? 0) === 0) &&
    hit.stamps.every(([f, size, mtime]) => sameStamp(f, size, mtime))
  )
    return hit.api
  const api = compileApi(file, options)
  const stamps: [string, number, number][] = api.spec.documents
    .fileNames()
    .filter((f) => !isRemoteFile(f))
    .map((f) => {
      const st = statSync(f)
      return [f, st.size, st.mtimeMs]
    })
  cache.delete(key)
  cache.set(key, { api, stamps, remote })
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value as string)
  return api
}

function sameStamp(file: string, size: number, mtime: number): boolean {
  try {
    const st = statSync(file)
    return st.size === size && st.mtimeMs === mtime
  } catch {
    return false
  }
}
