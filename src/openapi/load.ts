/**
 * Loads an OpenAPI 3.0 or 3.1 document, or a Swagger 2.0 one (converted to 3.0 in memory, see
 * swagger2.ts), (YAML or JSON, `$ref`s across local files) into a model
 * of its operations, shared by the gateway's validation, the scanner and the linter. Nothing is
 * compiled here: see schema.ts (SchemaCompiler) and matcher.ts (PathMatcher).
 *
 * Every problem found is reported at once in one SpecError (file, JSON pointer, message).
 */
import { type DocumentOptions, type Location, SpecDocuments, short } from './documents.js'
import { joinPointer, SpecError, type SpecProblem } from './errors.js'

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const

export type ParameterIn = 'path' | 'query' | 'header' | 'cookie'
export type ParameterStyle =
  | 'matrix'
  | 'label'
  | 'simple'
  | 'form'
  | 'spaceDelimited'
  | 'pipeDelimited'
  | 'deepObject'

export interface Parameter {
  name: string
  in: ParameterIn
  required: boolean
  style: ParameterStyle
  explode: boolean
  allowEmptyValue: boolean
  allowReserved: boolean
  deprecated: boolean
  /** The schema (as written; may hold `$ref`s) and where it is written; undefined when absent. */
  schema: unknown
  schemaLocation: Location | undefined
  /** With `content` instead of `schema`: the one media type the value is serialized in. */
  contentType: string | undefined
  location: Location
}

export interface MediaType {
  /** Lower-case media type or range as written (`application/json`, `application/*`, `*` + `/*`). */
  type: string
  schema: unknown
  schemaLocation: Location | undefined
  /** The `encoding` object (form and multipart bodies), by property name. */
  encoding: ReadonlyMap<string, Encoding>
  location: Location
}

/** One entry of a media type's `encoding` object. */
export interface Encoding {
  /** Allowed part media types, lower-case (`image/png`, `image/*`), when given. */
  contentTypes: string[] | undefined
  /** For application/x-www-form-urlencoded fields. */
  style: ParameterStyle | undefined
  explode: boolean | undefined
}

export interface RequestBody {
  required: boolean
  content: MediaType[]
  location: Location
}

export interface Response {
  /** `200`, `2XX` or `default`. */
  status: string
  content: MediaType[]
  /** Response header names, lower-case. */
  headers: string[]
  location: Location
}

export interface Operation {
  /** The operationId, or `METHOD /path/template` when the spec gives none. */
  id: string
  operationId: string | undefined
  /** Upper-case HTTP method. */
  method: string
  /** The path template as written in `paths`. */
  path: string
  parameters: Parameter[]
  requestBody: RequestBody | undefined
  responses: Response[]
  /** Effective security requirements (the operation's, else the document's). */
  security: readonly Record<string, readonly string[]>[] | undefined
  tags: string[]
  deprecated: boolean
  /** The operation object as written (extensions such as `x-portcullis-roles` live here). */
  raw: Readonly<Record<string, unknown>>
  location: Location
}

export interface OpenApiSpec {
  /** The `openapi` field (`3.0.3` for a converted Swagger 2.0 document: see `documents.convertedFrom`). */
  openapi: string
  version: '3.0' | '3.1'
  documents: SpecDocuments
  operations: Operation[]
  warnings: string[]
}

export interface LoadOptions extends DocumentOptions {}

/**
 * Loads a spec; throws SpecError with every problem found.
 *
 * @example
 * const spec = loadOpenApi('examples/demo/openapi.yaml')
 * for (const op of spec.operations) console.log(op.method, op.path, op.id)
 */
export function loadOpenApi(file: string, options: LoadOptions = {}): OpenApiSpec {
  const docs = new SpecDocuments(file, options)
  return new ModelBuilder(docs).build()
}

const STYLES: Record<ParameterIn, readonly ParameterStyle[]> = {
  path: ['simple', 'label', 'matrix'],
  query: ['form', 'spaceDelimited', 'pipeDelimited', 'deepObject'],
  header: ['simple'],
  cookie: ['form'],
}
const DEFAULT_STYLE: Record<ParameterIn, ParameterStyle> = {
  path: 'simple',
  query: 'form',
  header: 'simple',
  cookie: 'form',
}
const TEMPLATE_VAR = /\{([^{}/]+)\}/g

class ModelBuilder {
  private readonly problems: SpecProblem[] = []
  private readonly warnings: string[] = []
  private readonly ids = new Map<string, string>()

  constructor(private readonly docs: SpecDocuments) {}

  build(): OpenApiSpec {
    const file = this.docs.rootFile
    const root = this.docs.root
    if (!isObject(root))
      throw new SpecError([{ file, pointer: '', message: 'the document must be an object' }])
    const openapi = root.openapi
    if (typeof openapi !== 'string' || !/^3\.[01]\.\d+(-.+)?$/.test(openapi)) {
      const found = typeof openapi === 'string' ? `"${short(openapi)}"` : typeof openapi
      const msg =
        root.swagger !== undefined
          ? `expected "swagger": "2.0", "openapi": "3.0.x" or "3.1.x", found "swagger": ${JSON.stringify(root.swagger)?.slice(0, 40)}`
          : `expected "openapi": "3.0.x" or "3.1.x", found ${found}`
      throw new SpecError([{ file, pointer: '/openapi', message: msg }])
    }
    const version = openapi.startsWith('3.0') ? '3.0' : '3.1'
    const operations: Operation[] = []
    const paths = root.paths
    if (paths === undefined) {
      if (version === '3.0') this.problem({ file, pointer: '/paths' }, '"paths" is required in OAS 3.0')
    } else if (!isObject(paths)) this.problem({ file, pointer: '/paths' }, '"paths" must be an object')
    else {
      const docSecurity = Array.isArray(root.security)
        ? (root.security as Record<string, string[]>[])
        : undefined
      for (const [path, item] of Object.entries(paths)) {
        if (path.startsWith('x-')) continue
        const at = { file, pointer: joinPointer('/paths', path) }
        this.guard(() => this.pathItem(path, item, at, docSecurity, operations))
      }
    }
    if (this.problems.length > 0) throw new SpecError(this.problems)
    for (const w of this.docs.conversionWarnings) this.warnings.push(`Swagger 2.0 conversion: ${w}`)
    return { openapi, version, documents: this.docs, operations, warnings: this.warnings }
  }

  private pathItem(
    path: string,
    value: unknown,
    at: Location,
    docSecurity: Record<string, string[]>[] | undefined,
    out: Operation[],
  ): undefined {
    if (!path.startsWith('/')) return this.problem(at, 'a path must start with "/"')
    if (/[{}]/.test(path.replace(TEMPLATE_VAR, '')))
      return this.problem(at, 'unbalanced "{" or "}" in the path template')
    const vars = [...path.matchAll(TEMPLATE_VAR)].map((m) => m[1] as string)
    if (new Set(vars).size !== vars.length) return this.problem(at, 'a path template variable is used twice')
    const item = this.docs.deref(value, at)
    if (!isObject(item.value)) return this.problem(item, 'a path item must be an object')
    const shared = this.parameters(item.value.parameters, {
      file: item.file,
      pointer: joinPointer(item.pointer, 'parameters'),
    })
    for (const m of HTTP_METHODS) {
      const opValue = item.value[m]
      if (opValue === undefined) continue
      const opAt = { file: item.file, pointer: joinPointer(item.pointer, m) }
      this.guard(() => {
        if (!isObject(opValue)) return this.problem(opAt, 'an operation must be an object')
        const own = this.parameters(opValue.parameters, {
          file: opAt.file,
          pointer: joinPointer(opAt.pointer, 'parameters'),
        })
        const params = new Map<string, Parameter>()
        for (const p of [...shared, ...own])
          params.set(`${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`, p)
        const parameters = [...params.values()]
        for (const v of vars) {
          if (!parameters.some((p) => p.in === 'path' && p.name === v)) {
            this.problem(opAt, `path template variable "${short(v)}" has no path parameter`)
          }
        }
        for (const p of parameters) {
          if (p.in === 'path' && !vars.includes(p.name)) {
            this.problem(p.location, `path parameter "${short(p.name)}" is not in the path template`)
          }
        }
        const operationId = typeof opValue.operationId === 'string' ? opValue.operationId : undefined
        const id = operationId ?? `${m.toUpperCase()} ${path}`
        const prev = this.ids.get(id)
        if (prev !== undefined) this.problem(opAt, `operationId "${short(id)}" is also used at ${prev}`)
        this.ids.set(id, `${opAt.file}#${opAt.pointer}`)
        const security = Array.isArray(opValue.security)
          ? (opValue.security as Record<string, string[]>[])
          : docSecurity
        out.push({
          id,
          operationId,
          method: m.toUpperCase(),
          path,
          parameters,
          requestBody:
            opValue.requestBody === undefined
              ? undefined
              : this.requestBody(opValue.requestBody, {
                  file: opAt.file,
                  pointer: joinPointer(opAt.pointer, 'requestBody'),
                }),
          responses: this.responses(opValue.responses, {
            file: opAt.file,
            pointer: joinPointer(opAt.pointer, 'responses'),
          }),
          security,
          tags: Array.isArray(opValue.tags)
            ? opValue.tags.filter((t): t is string => typeof t === 'string')
            : [],
          deprecated: opValue.deprecated === true,
          raw: opValue,
          location: opAt,
        })
      })
    }
  }

  private parameters(value: unknown, at: Location): Parameter[] {
    if (value === undefined) return []
    if (!Array.isArray(value)) {
      this.problem(at, '"parameters" must be an array')
      return []
    }
    const out: Parameter[] = []
    const seen = new Set<string>()
    value.forEach((v, i) => {
      this.guard(() => {
        const p = this.parameter(v, { file: at.file, pointer: joinPointer(at.pointer, i) })
        if (!p) return
        const key = `${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`
        if (seen.has(key))
          return this.problem(p.location, `parameter "${short(p.name)}" in ${p.in} is declared twice`)
        seen.add(key)
        out.push(p)
      })
    })
    return out
  }

  private parameter(value: unknown, at: Location): Parameter | undefined {
    const r = this.docs.deref(value, at)
    const v = r.value
    if (!isObject(v)) return this.problem(r, 'a parameter must be an object')
    const name = v.name
    const where = v.in
    if (typeof name !== 'string' || name === '') return this.problem(r, 'a parameter needs a "name"')
    if (where !== 'path' && where !== 'query' && where !== 'header' && where !== 'cookie') {
      return this.problem(
        { file: r.file, pointer: joinPointer(r.pointer, 'in') },
        '"in" must be path, query, header or cookie',
      )
    }
    if (where === 'path' && v.required !== true) {
      return this.problem(
        { file: r.file, pointer: joinPointer(r.pointer, 'required') },
        'a path parameter must have "required": true',
      )
    }
    const style = v.style === undefined ? DEFAULT_STYLE[where] : v.style
    if (typeof style !== 'string' || !STYLES[where].includes(style as ParameterStyle)) {
      return this.problem(
        { file: r.file, pointer: joinPointer(r.pointer, 'style') },
        `style "${String(style)}" is not allowed for ${where} parameters`,
      )
    }
    let contentType: string | undefined
    let schema = v.schema
    let schemaLocation: Location | undefined =
      schema === undefined ? undefined : { file: r.file, pointer: joinPointer(r.pointer, 'schema') }
    if (v.content !== undefined) {
      if (!isObject(v.content) || Object.keys(v.content).length !== 1) {
        return this.problem(
          { file: r.file, pointer: joinPointer(r.pointer, 'content') },
          '"content" must hold exactly one media type',
        )
      }
      if (schema !== undefined) return this.problem(r, 'a parameter has "schema" or "content", not both')
      const [type, media] = Object.entries(v.content)[0] as [string, unknown]
      contentType = type.toLowerCase()
      const mAt = { file: r.file, pointer: joinPointer(r.pointer, 'content', type) }
      const m = this.docs.deref(media, mAt)
      if (isObject(m.value) && m.value.schema !== undefined) {
        schema = m.value.schema
        schemaLocation = { file: m.file, pointer: joinPointer(m.pointer, 'schema') }
      }
    }
    return {
      name,
      in: where,
      required: v.required === true,
      style: style as ParameterStyle,
      explode: typeof v.explode === 'boolean' ? v.explode : style === 'form',
      allowEmptyValue: v.allowEmptyValue === true,
      allowReserved: v.allowReserved === true,
      deprecated: v.deprecated === true,
      schema,
      schemaLocation,
      contentType,
      location: { file: r.file, pointer: r.pointer },
    }
  }

  private content(value: unknown, at: Location): MediaType[] {
    if (value === undefined) return []
    if (!isObject(value)) {
      this.problem(at, '"content" must be an object')
      return []
    }
    const out: MediaType[] = []
    for (const [type, media] of Object.entries(value)) {
      const mAt = { file: at.file, pointer: joinPointer(at.pointer, type) }
      const m = this.docs.deref(media, mAt)
      if (!isObject(m.value)) {
        this.problem(m, 'a media type object must be an object')
        continue
      }
      const t = type.toLowerCase().split(';')[0]?.trim() ?? ''
      if (!/^[a-z0-9!#$&^_.+*-]+\/[a-z0-9!#$&^_.+*-]+$/.test(t)) {
        this.problem(mAt, `"${short(type)}" is not a media type`)
        continue
      }
      out.push({
        type: t,
        encoding: this.encoding(m.value.encoding, {
          file: m.file,
          pointer: joinPointer(m.pointer, 'encoding'),
        }),
        schema: m.value.schema,
        schemaLocation:
          m.value.schema === undefined
            ? undefined
            : { file: m.file, pointer: joinPointer(m.pointer, 'schema') },
        location: { file: m.file, pointer: m.pointer },
      })
    }
    return out
  }

  private encoding(value: unknown, at: Location): Map<string, Encoding> {
    const out = new Map<string, Encoding>()
    if (value === undefined) return out
    if (!isObject(value)) {
      this.problem(at, '"encoding" must be an object')
      return out
    }
    for (const [name, e] of Object.entries(value)) {
      const eAt = { file: at.file, pointer: joinPointer(at.pointer, name) }
      if (!isObject(e)) {
        this.problem(eAt, 'an encoding object must be an object')
        continue
      }
      let contentTypes: string[] | undefined
      if (e.contentType !== undefined) {
        if (typeof e.contentType !== 'string') {
          this.problem(
            { file: eAt.file, pointer: joinPointer(eAt.pointer, 'contentType') },
            'must be a string',
          )
          continue
        }
        contentTypes = e.contentType
          .split(',')
          .map((x) => x.split(';')[0]?.trim().toLowerCase() ?? '')
          .filter((x) => x !== '')
      }
      const style = e.style
      if (
        style !== undefined &&
        (typeof style !== 'string' || !STYLES.query.includes(style as ParameterStyle))
      ) {
        this.problem(
          { file: eAt.file, pointer: joinPointer(eAt.pointer, 'style') },
          `style "${String(style)}" is not allowed for form fields`,
        )
        continue
      }
      out.set(name, {
        contentTypes,
        style: style as ParameterStyle | undefined,
        explode: typeof e.explode === 'boolean' ? e.explode : undefined,
      })
    }
    return out
  }

  private requestBody(value: unknown, at: Location): RequestBody | undefined {
    const r = this.docs.deref(value, at)
    if (!isObject(r.value)) return this.problem(r, 'a request body must be an object')
    return {
      required: r.value.required === true,
      content: this.content(r.value.content, { file: r.file, pointer: joinPointer(r.pointer, 'content') }),
      location: { file: r.file, pointer: r.pointer },
    }
  }

  private responses(value: unknown, at: Location): Response[] {
    if (value === undefined) return []
    if (!isObject(value)) {
      this.problem(at, '"responses" must be an object')
      return []
    }
    const out: Response[] = []
    for (const [status, resp] of Object.entries(value)) {
      if (status.startsWith('x-')) continue
      const rAt = { file: at.file, pointer: joinPointer(at.pointer, status) }
      if (!/^([1-5](\d\d|XX)|default)$/.test(status)) {
        this.problem(rAt, `"${short(status)}" is not a status code, a range (2XX) or "default"`)
        continue
      }
      this.guard(() => {
        const r = this.docs.deref(resp, rAt)
        if (!isObject(r.value)) return this.problem(r, 'a response must be an object')
        out.push({
          status,
          content: this.content(r.value.content, {
            file: r.file,
            pointer: joinPointer(r.pointer, 'content'),
          }),
          headers: isObject(r.value.headers) ? Object.keys(r.value.headers).map((h) => h.toLowerCase()) : [],
          location: { file: r.file, pointer: r.pointer },
        })
      })
    }
    return out
  }

  private problem(at: Location, message: string): undefined {
    this.problems.push({ file: at.file, pointer: at.pointer, message })
    return undefined
  }

  /** Runs a step; a SpecError it throws is recorded so the other steps still run. */
  private guard(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      if (!(err instanceof SpecError)) throw err
      this.problems.push(...err.problems)
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}
