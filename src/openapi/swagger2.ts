/**
 * Swagger 2.0 → OpenAPI 3.0.3, in memory, so every consumer of `src/openapi` (the gateway's spec
 * routes and policies, the scanner, the linter) accepts 2.0 documents. The conversion follows the
 * OAS 3.0 migration rules:
 *
 * - `host`, `basePath` and `schemes` become `servers` (no host: a relative server, the base path);
 * - `definitions`, `parameters`, `responses` and `securityDefinitions` move under `components`
 *   (`body` parameters become `components.requestBodies`); local `$ref`s are rewritten to match;
 * - `in: body` becomes `requestBody` (one media type per `consumes` entry, default
 *   `application/json`); `in: formData` parameters become one object schema under
 *   `application/x-www-form-urlencoded`, or `multipart/form-data` when a field is a file or
 *   `consumes` says so; `type: file` becomes `type: string, format: binary`;
 * - non-body parameters get a `schema` from their inline type keywords, and `collectionFormat`
 *   becomes `style`/`explode` (csv: form/simple without explode, ssv: spaceDelimited, pipes:
 *   pipeDelimited, multi: form with explode; tsv has no 3.0 form and is read as csv);
 * - a response's `schema` becomes `content` for each `produces` type, its `examples` become each
 *   media type's `example`, its headers get a `schema`;
 * - `basic` becomes `http`/`basic`, and OAuth2 flows are renamed (`application` →
 *   `clientCredentials`, `accessCode` → `authorizationCode`);
 * - in schemas, `x-nullable` becomes `nullable` and a string `discriminator` becomes
 *   `{ propertyName }`.
 *
 * Only the root document is converted: `$ref`s to other files are kept as written (a 2.0 schema is
 * a valid 3.0 schema for validation, apart from `type: file`). The converter never throws for bad
 * content: what it cannot read it copies as it is, and the model builder reports it.
 *
 * Positions: `pointerMap` maps pointers of the converted document to pointers of the original
 * (longest prefix wins), so a linter finding can name the line of the 2.0 file.
 */
import { escapePointerToken } from './errors.js'

type Obj = Record<string, unknown>

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** True when a parsed document declares `swagger: "2.0"`. */
export function isSwagger2(doc: unknown): boolean {
  return isObject(doc) && (doc.swagger === '2.0' || doc.swagger === 2)
}

export interface Swagger2Conversion {
  /** The OpenAPI 3.0.3 document. */
  document: Obj
  /** Converted pointer prefix → original pointer prefix. */
  pointerMap: Map<string, string>
  /** What could not be converted exactly (tsv collections, ...). */
  warnings: string[]
}

const PARAM_SCHEMA_KEYS = [
  'type',
  'format',
  'items',
  'default',
  'maximum',
  'exclusiveMaximum',
  'minimum',
  'exclusiveMinimum',
  'maxLength',
  'minLength',
  'pattern',
  'maxItems',
  'minItems',
  'uniqueItems',
  'enum',
  'multipleOf',
]

const REF_PREFIXES: [string, string][] = [
  ['#/definitions/', '#/components/schemas/'],
  ['#/responses/', '#/components/responses/'],
]

/**
 * Converts a parsed Swagger 2.0 document. The input is not modified.
 *
 * @example
 * const { document } = convertSwagger2(parseYaml(text))
 * document.openapi // '3.0.3'
 */
export function convertSwagger2(src: Obj): Swagger2Conversion {
  return new Converter(src).run()
}

class Converter {
  private readonly map = new Map<string, string>()
  private readonly warnings: string[] = []
  private readonly bodyParams = new Set<string>()
  private readonly formParams = new Set<string>()
  private readonly globalConsumes: string[]
  private readonly globalProduces: string[]

  constructor(private readonly src: Obj) {
    this.globalConsumes = strings(src.consumes)
    this.globalProduces = strings(src.produces)
    if (isObject(src.parameters)) {
      for (const [name, p] of Object.entries(src.parameters)) {
        if (isObject(p) && p.in === 'body') this.bodyParams.add(name)
        if (isObject(p) && p.in === 'formData') this.formParams.add(name)
      }
    }
  }

  run(): Swagger2Conversion {
    const s = this.src
    const out: Obj = { openapi: '3.0.3' }
    this.map.set('', '')
    for (const [k, v] of Object.entries(s)) {
      if (k.startsWith('x-')) out[k] = v
    }
    out.info = s.info
    this.map.set('/info', '/info')
    const servers = this.servers()
    if (servers.length > 0) out.servers = servers
    if (s.tags !== undefined) {
      out.tags = s.tags
      this.map.set('/tags', '/tags')
    }
    if (s.externalDocs !== undefined) out.externalDocs = s.externalDocs
    if (s.security !== undefined) {
      out.security = s.security
      this.map.set('/security', '/security')
    }
    out.paths = this.paths(s.paths)
    const components = this.components()
    if (Object.keys(components).length > 0) out.components = components
    return { document: out, pointerMap: this.map, warnings: this.warnings }
  }

  private servers(): Obj[] {
    const s = this.src
    const host = typeof s.host === 'string' ? s.host : undefined
    const basePath = typeof s.basePath === 'string' ? s.basePath : ''
    const schemes = strings(s.schemes).filter((x) => /^(https?|wss?)$/i.test(x))
    if (host === undefined) {
      return basePath === '' ? [] : [{ url: basePath }]
    }
    const list = schemes.length > 0 ? schemes : ['https']
    this.map.set('/servers', s.schemes !== undefined ? '/schemes' : '/host')
    return list.map((scheme) => ({ url: `${scheme.toLowerCase()}://${host}${basePath}` }))
  }

  private paths(paths: unknown): unknown {
    if (!isObject(paths)) return paths
    const out: Obj = {}
    for (const [path, item] of Object.entries(paths)) {
      const at = `/paths/${escapePointerToken(path)}`
      this.map.set(at, at)
      if (!isObject(item) || path.startsWith('x-')) {
        out[path] = item
        continue
      }
      out[path] = this.pathItem(item, at)
    }
    return out
  }

  private pathItem(item: Obj, at: string): Obj {
    const out: Obj = {}
    const shared = Array.isArray(item.parameters) ? item.parameters : []
    for (const [k, v] of Object.entries(item)) {
      if (k === 'parameters') continue
      if (['get', 'put', 'post', 'delete', 'options', 'head', 'patch'].includes(k) && isObject(v)) {
        out[k] = this.operation(v, `${at}/${k}`, shared, `${at}/parameters`)
      } else if (k === '$ref' && typeof v === 'string') {
        out[k] = v
      } else out[k] = v
    }
    // Path-level parameters that stay parameters (not body/form) stay at the path level.
    const kept: unknown[] = []
    shared.forEach((p, i) => {
      const kind = this.paramKind(p)
      if (kind === 'body' || kind === 'formData') return
      this.map.set(`${at}/parameters/${kept.length}`, `${at}/parameters/${i}`)
      kept.push(this.parameter(p))
    })
    if (kept.length > 0) out.parameters = kept
    else if (item.parameters !== undefined && !Array.isArray(item.parameters))
      out.parameters = item.parameters
    return out
  }

  /** 'body', 'formData', another `in`, or undefined (unreadable). Follows one `#/parameters/` ref. */
  private paramKind(p: unknown): string | undefined {
    if (!isObject(p)) return undefined
    if (typeof p.$ref === 'string') {
      const name = localName(p.$ref, '#/parameters/')
      if (name !== undefined && this.bodyParams.has(name)) return 'body'
      if (name !== undefined && this.formParams.has(name)) return 'formData'
      return 'ref'
    }
    return typeof p.in === 'string' ? p.in : undefined
  }

  /** A form or body parameter, its `$ref` followed (within the root document). */
  private resolveParam(p: unknown): Obj | undefined {
    if (!isObject(p)) return undefined
    if (typeof p.$ref !== 'string') return p
    const name = localName(p.$ref, '#/parameters/')
    const params = this.src.parameters
    if (name === undefined || !isObject(params)) return undefined
    const v = params[name]
    return isObject(v) ? v : undefined
  }

  private operation(op: Obj, at: string, shared: unknown[], sharedAt: string): Obj {
    this.map.set(at, at)
    const out: Obj = {}
    const consumes = op.consumes !== undefined ? strings(op.consumes) : this.globalConsumes
    const produces = op.produces !== undefined ? strings(op.produces) : this.globalProduces
    const own = Array.isArray(op.parameters) ? op.parameters : []
    // Operation parameters override path-level ones with the same name and location.
    const keyOf = (p: unknown) => {
      const r = this.resolveParam(p)
      return r ? `${String(r.in)}:${String(r.name)}` : undefined
    }
    const ownKeys = new Set(own.map(keyOf).filter((k) => k !== undefined))
    const all: [unknown, string][] = [
      ...shared
        .map((p, i): [unknown, string] => [p, `${sharedAt}/${i}`])
        .filter(([p]) => {
          const k = keyOf(p)
          return k === undefined || !ownKeys.has(k)
        }),
      ...own.map((p, i): [unknown, string] => [p, `${at}/parameters/${i}`]),
    ]
    const params: unknown[] = []
    let body: { param: Obj; at: string; raw: Obj } | undefined
    const form: { param: Obj; at: string }[] = []
    for (const [p, pAt] of all) {
      const kind = this.paramKind(p)
      if (kind === 'body' || kind === 'formData') {
        const r = this.resolveParam(p)
        if (r === undefined) continue
        if (kind === 'body') body = { param: r, at: pAt, raw: p as Obj }
        else form.push({ param: r, at: pAt })
        continue
      }
      // Shared (path-level) plain parameters stay on the path item.
      if (pAt.startsWith(sharedAt)) continue
      this.map.set(`${at}/parameters/${params.length}`, pAt)
      params.push(this.parameter(p))
    }
    for (const [k, v] of Object.entries(op)) {
      switch (k) {
        case 'parameters':
          if (params.length > 0) out.parameters = params
          else if (!Array.isArray(v)) out.parameters = v
          break
        case 'responses':
          out.responses = this.responses(v, `${at}/responses`, produces)
          break
        case 'consumes':
        case 'produces':
          break
        case 'schemes': {
          const host = typeof this.src.host === 'string' ? this.src.host : undefined
          const base = typeof this.src.basePath === 'string' ? this.src.basePath : ''
          if (host !== undefined)
            out.servers = strings(v).map((scheme) => ({ url: `${scheme.toLowerCase()}://${host}${base}` }))
          break
        }
        default:
          out[k] = v
      }
    }
    if (body !== undefined) {
      const rb = this.requestBody(body.param, consumes)
      if (typeof body.raw.$ref === 'string') out.requestBody = { $ref: this.ref(body.raw.$ref) }
      else out.requestBody = rb
      this.mapBody(`${at}/requestBody`, body.at, Object.keys((rb.content as Obj) ?? {}))
    } else if (form.length > 0) {
      out.requestBody = this.formBody(form, consumes, `${at}/requestBody`)
    }
    return out
  }

  private mapBody(rbAt: string, paramAt: string, types: string[]): void {
    this.map.set(rbAt, paramAt)
    for (const t of types) {
      this.map.set(`${rbAt}/content/${escapePointerToken(t)}/schema`, `${paramAt}/schema`)
      this.map.set(`${rbAt}/content/${escapePointerToken(t)}`, paramAt)
    }
  }

  private requestBody(p: Obj, consumes: string[]): Obj {
    const types = consumes.filter((t) => !/form-data|x-www-form-urlencoded/i.test(t))
    const list = types.length > 0 ? types : ['application/json']
    const content: Obj = {}
    for (const t of list) content[t] = { schema: this.schema(p.schema) }
    const out: Obj = { content }
    if (typeof p.description === 'string') out.description = p.description
    if (p.required === true) out.required = true
    for (const [k, v] of Object.entries(p)) if (k.startsWith('x-')) out[k] = v
    return out
  }

  private formBody(form: { param: Obj; at: string }[], consumes: string[], rbAt: string): Obj {
    const hasFile = form.some((f) => f.param.type === 'file')
    const multipart = hasFile || consumes.some((c) => /multipart\/form-data/i.test(c))
    const type = multipart ? 'multipart/form-data' : 'application/x-www-form-urlencoded'
    const properties: Obj = {}
    const required: string[] = []
    const encoding: Obj = {}
    this.map.set(rbAt, form[0]?.at ?? rbAt)
    for (const { param, at } of form) {
      const name = typeof param.name === 'string' ? param.name : ''
      properties[name] = this.paramSchema(param)
      this.map.set(
        `${rbAt}/content/${escapePointerToken(type)}/schema/properties/${escapePointerToken(name)}`,
        at,
      )
      if (param.required === true) required.push(name)
      if (param.type === 'array' && typeof param.collectionFormat === 'string') {
        const style = this.style(param.collectionFormat, 'query')
        if (style !== undefined) encoding[name] = style
      }
    }
    const schema: Obj = { type: 'object', properties }
    if (required.length > 0) schema.required = required
    const media: Obj = { schema }
    if (Object.keys(encoding).length > 0) media.encoding = encoding
    return { content: { [type]: media }, ...(required.length > 0 ? { required: true } : {}) }
  }

  private style(format: string, where: string): { style: string; explode: boolean } | undefined {
    switch (format) {
      case 'csv':
        return { style: where === 'query' || where === 'cookie' ? 'form' : 'simple', explode: false }
      case 'ssv':
        return { style: 'spaceDelimited', explode: false }
      case 'pipes':
        return { style: 'pipeDelimited', explode: false }
      case 'multi':
        return { style: 'form', explode: true }
      case 'tsv':
        this.warnings.push('collectionFormat "tsv" has no OpenAPI 3 equivalent: read as csv')
        return { style: where === 'query' ? 'form' : 'simple', explode: false }
      default:
        return undefined
    }
  }

  /** A non-body parameter (or a `$ref` to one). */
  private parameter(p: unknown): unknown {
    if (!isObject(p)) return p
    if (typeof p.$ref === 'string') return { $ref: this.ref(p.$ref) }
    const out: Obj = {}
    for (const [k, v] of Object.entries(p)) {
      if (PARAM_SCHEMA_KEYS.includes(k) || k === 'collectionFormat') continue
      out[k] = v
    }
    if (p.type !== undefined) out.schema = this.paramSchema(p)
    const where = typeof p.in === 'string' ? p.in : 'query'
    if (p.type === 'array') {
      const st = this.style(typeof p.collectionFormat === 'string' ? p.collectionFormat : 'csv', where)
      if (st !== undefined && where !== 'header' && where !== 'path') {
        out.style = st.style
        out.explode = st.explode
      } else if (st !== undefined && (st.style === 'simple' || st.style === 'form')) {
        out.style = 'simple'
        out.explode = false
      }
    }
    if (where !== 'query') delete out.allowEmptyValue
    return out
  }

  /** The schema of a non-body 2.0 parameter (or form field, or header) from its type keywords. */
  private paramSchema(p: Obj): Obj {
    const schema: Obj = {}
    for (const k of PARAM_SCHEMA_KEYS) {
      if (p[k] === undefined) continue
      schema[k] = k === 'items' ? this.itemsSchema(p[k]) : p[k]
    }
    if (p.type === 'file') {
      schema.type = 'string'
      schema.format = 'binary'
    }
    if (p['x-nullable'] === true) schema.nullable = true
    return schema
  }

  private itemsSchema(items: unknown): unknown {
    if (!isObject(items)) return items
    if (typeof items.$ref === 'string') return { $ref: this.ref(items.$ref) }
    return this.paramSchema(items)
  }

  private responses(v: unknown, at: string, produces: string[]): unknown {
    if (!isObject(v)) return v
    const out: Obj = {}
    for (const [status, r] of Object.entries(v)) {
      const rAt = `${at}/${escapePointerToken(status)}`
      this.map.set(rAt, rAt)
      out[status] = status.startsWith('x-') ? r : this.response(r, rAt, rAt, produces)
    }
    return out
  }

  private response(r: unknown, at: string, srcAt: string, produces: string[]): unknown {
    if (!isObject(r)) return r
    if (typeof r.$ref === 'string') return { $ref: this.ref(r.$ref) }
    const out: Obj = {}
    for (const [k, v] of Object.entries(r)) {
      if (k === 'schema' || k === 'examples' || k === 'headers') continue
      out[k] = v
    }
    if (typeof out.description !== 'string') out.description = ''
    const examples = isObject(r.examples) ? r.examples : {}
    if (r.schema !== undefined) {
      const types = produces.length > 0 ? produces : ['application/json']
      const content: Obj = {}
      for (const t of types) {
        const media: Obj = { schema: this.schema(r.schema) }
        if (examples[t] !== undefined) media.example = examples[t]
        content[t] = media
        this.map.set(`${at}/content/${escapePointerToken(t)}/schema`, `${srcAt}/schema`)
        this.map.set(`${at}/content/${escapePointerToken(t)}`, srcAt)
      }
      out.content = content
    }
    if (isObject(r.headers)) {
      const headers: Obj = {}
      for (const [name, h] of Object.entries(r.headers)) {
        if (!isObject(h)) {
          headers[name] = h
          continue
        }
        const hOut: Obj = { schema: this.paramSchema(h) }
        if (typeof h.description === 'string') hOut.description = h.description
        headers[name] = hOut
      }
      out.headers = headers
    }
    return out
  }

  /** A 2.0 schema as a 3.0 schema: local `$ref`s rewritten, `x-nullable`, `type: file`, discriminator. */
  private schema(v: unknown, depth = 0): unknown {
    if (depth > 500) return v
    if (Array.isArray(v)) return v.map((x) => this.schema(x, depth + 1))
    if (!isObject(v)) return v
    const out: Obj = {}
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string') out.$ref = this.ref(x)
      else if (k === 'x-nullable') {
        if (x === true) out.nullable = true
      } else if (k === 'discriminator' && typeof x === 'string') out.discriminator = { propertyName: x }
      else if (k === 'type' && x === 'file') {
        out.type = 'string'
        out.format = 'binary'
      } else if (k === 'example' || k === 'enum' || k === 'default' || k === 'x-example') out[k] = x
      else if (k === 'properties' && isObject(x)) {
        const props: Obj = {}
        for (const [name, s] of Object.entries(x)) props[name] = this.schema(s, depth + 1)
        out[k] = props
      } else out[k] = typeof x === 'object' ? this.schema(x, depth + 1) : x
    }
    return out
  }

  private ref(ref: string): string {
    for (const [from, to] of REF_PREFIXES) if (ref.startsWith(from)) return to + ref.slice(from.length)
    if (ref.startsWith('#/parameters/')) {
      const name = localName(ref, '#/parameters/') ?? ''
      return this.bodyParams.has(name)
        ? `#/components/requestBodies/${ref.slice('#/parameters/'.length)}`
        : `#/components/parameters/${ref.slice('#/parameters/'.length)}`
    }
    return ref
  }

  private components(): Obj {
    const s = this.src
    const out: Obj = {}
    if (isObject(s.definitions)) {
      const schemas: Obj = {}
      for (const [name, v] of Object.entries(s.definitions)) schemas[name] = this.schema(v)
      out.schemas = schemas
      this.map.set('/components/schemas', '/definitions')
    }
    if (isObject(s.parameters)) {
      const params: Obj = {}
      const bodies: Obj = {}
      for (const [name, p] of Object.entries(s.parameters)) {
        const t = escapePointerToken(name)
        if (isObject(p) && p.in === 'body') {
          const rb = this.requestBody(p, this.globalConsumes)
          bodies[name] = rb
          this.mapBody(`/components/requestBodies/${t}`, `/parameters/${t}`, Object.keys(rb.content as Obj))
        } else if (isObject(p) && p.in === 'formData') {
          // Form fields are inlined into each operation's body where they are used.
        } else {
          params[name] = this.parameter(p)
          this.map.set(`/components/parameters/${t}`, `/parameters/${t}`)
        }
      }
      if (Object.keys(params).length > 0) out.parameters = params
      if (Object.keys(bodies).length > 0) out.requestBodies = bodies
    }
    if (isObject(s.responses)) {
      const responses: Obj = {}
      for (const [name, r] of Object.entries(s.responses)) {
        const t = escapePointerToken(name)
        responses[name] = this.response(
          r,
          `/components/responses/${t}`,
          `/responses/${t}`,
          this.globalProduces,
        )
        this.map.set(`/components/responses/${t}`, `/responses/${t}`)
      }
      out.responses = responses
    }
    if (isObject(s.securityDefinitions)) {
      const schemes: Obj = {}
      for (const [name, d] of Object.entries(s.securityDefinitions)) {
        schemes[name] = securityScheme(d)
        const t = escapePointerToken(name)
        this.map.set(`/components/securitySchemes/${t}`, `/securityDefinitions/${t}`)
      }
      out.securitySchemes = schemes
    }
    return out
  }
}

function securityScheme(d: unknown): unknown {
  if (!isObject(d)) return d
  const extras: Obj = {}
  for (const [k, v] of Object.entries(d)) if (k.startsWith('x-') || k === 'description') extras[k] = v
  if (d.type === 'basic') return { type: 'http', scheme: 'basic', ...extras }
  if (d.type === 'apiKey') return { type: 'apiKey', name: d.name, in: d.in, ...extras }
  if (d.type === 'oauth2') {
    const scopes = isObject(d.scopes) ? d.scopes : {}
    const flow: Obj = { scopes }
    if (d.authorizationUrl !== undefined) flow.authorizationUrl = d.authorizationUrl
    if (d.tokenUrl !== undefined) flow.tokenUrl = d.tokenUrl
    const name =
      d.flow === 'implicit'
        ? 'implicit'
        : d.flow === 'password'
          ? 'password'
          : d.flow === 'application'
            ? 'clientCredentials'
            : d.flow === 'accessCode'
              ? 'authorizationCode'
              : String(d.flow)
    return { type: 'oauth2', flows: { [name]: flow }, ...extras }
  }
  return d
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

function localName(ref: string, prefix: string): string | undefined {
  if (!ref.startsWith(prefix)) return undefined
  return ref.slice(prefix.length).replace(/~1/g, '/').replace(/~0/g, '~')
}

/**
 * The original pointer for a pointer of the converted document: the longest mapped prefix, with
 * the rest of the pointer appended.
 */
export function originalPointer(map: ReadonlyMap<string, string>, pointer: string): string {
  let p = pointer
  for (;;) {
    const hit = map.get(p)
    if (hit !== undefined) return hit + pointer.slice(p.length)
    if (p === '') return pointer
    p = p.slice(0, p.lastIndexOf('/'))
  }
}
