import { type Params, parseParams, withoutParams } from '../../gateway/query.js'
/**
 * Request validation against one compiled operation: parameters (path, query, header, cookie)
 * and bodies. Produces a list of violations; the policy decides (by mode) what to do with them.
 */
import { isUtf8 } from 'node:buffer'
import type { IncomingMessage } from 'node:http'
import type { ErrorObject, ValidateFunction } from 'ajv'
import { type JsonLimits, JsonGuardError, parseJsonGuarded } from '../../openapi/json-guard.js'
import { forgetJson, guardedJsonOf } from '../../openapi/shared-json.js'
import {
  type CompiledMedia,
  type CompiledOperation,
  type CompiledParam,
  explodedObject,
  type Shape,
} from './compiled.js'
import type { Part } from './multipart.js'

export type ViolationKind =
  | 'schema'
  | 'pollution'
  | 'unknown-query'
  | 'undeclared-property'
  | 'media-type'
  | 'malformed'

export interface Violation {
  kind: ViolationKind
  in: 'path' | 'query' | 'header' | 'cookie' | 'body'
  /** Parameter name (for parameters) — input-derived, cut by the renderer. */
  name?: string
  /** JSON pointer in the value. */
  pointer: string
  /** What was expected. */
  expected: string
}

/**
 * Decoded name → values of urlencoded text (a query or a form body), read by the gateway's one
 * parser (src/gateway/query.ts); undefined when it refuses the text (bad percent-encoding,
 * not UTF-8, more than `maxParams` parameters).
 */
export function parseQuery(
  raw: string,
  maxParams = Number.MAX_SAFE_INTEGER,
): Map<string, string[]> | undefined {
  let params: Params
  try {
    params = parseParams(raw, { maxParams })
  } catch {
    return undefined
  }
  return groupParams(params)
}

function groupParams(params: Params): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const { name, value } of params.list) {
    const list = out.get(name)
    if (list) list.push(value)
    else out.set(name, [value])
  }
  return out
}

/** Typed value of one string by the allowed types (the first that fits; else the string). */
function scalar(s: string, types: readonly string[]): unknown {
  for (const t of types) {
    if (t === 'integer' && /^-?\d{1,16}$/.test(s)) return Number(s)
    if (t === 'number' && /^-?(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+)?$/.test(s) && s.length <= 64) return Number(s)
    if (t === 'boolean' && (s === 'true' || s === 'false')) return s === 'true'
    if (t === 'null' && s === '') return null
    if (t === 'string') return s
  }
  return s
}

const DELIM: Record<string, string> = { form: ',', simple: ',', spaceDelimited: ' ', pipeDelimited: '|' }

/** A serialized (non-exploded) value → typed data by the schema's shape. */
function typed(raw: string, shape: Shape, style: string): unknown {
  const d = DELIM[style] ?? ','
  if (shape.types.includes('array')) return raw === '' ? [] : raw.split(d).map((x) => scalar(x, shape.items))
  if (shape.types.includes('object')) {
    const parts = raw.split(',')
    if (parts.length % 2 !== 0) return raw
    const o: Record<string, unknown> = {}
    for (let i = 0; i < parts.length; i += 2) {
      const k = parts[i] as string
      if (k === '__proto__' || k === 'constructor' || k === 'prototype') return raw
      o[k] = scalar(parts[i + 1] as string, shape.props.get(k) ?? ['string'])
    }
    return o
  }
  return scalar(raw, shape.types)
}

/** Errors of a schema check as violations. */
export function schemaViolations(
  where: Violation['in'],
  name: string | undefined,
  errors: ErrorObject[] | null | undefined,
): Violation[] {
  const out: Violation[] = []
  for (const e of errors ?? []) {
    if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') {
      const prop = String(
        (e.params as { additionalProperty?: string; unevaluatedProperty?: string }).additionalProperty ??
          (e.params as { unevaluatedProperty?: string }).unevaluatedProperty,
      )
      out.push({
        kind: 'undeclared-property',
        in: where,
        name,
        pointer: `${e.instancePath}/${prop.replace(/~/g, '~0').replace(/\//g, '~1')}`,
        expected: 'no undeclared property',
      })
      continue
    }
    // Composition keywords repeat what their branches said.
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'allOf' || e.keyword === 'if') {
      if (out.length > 0 || (errors?.length ?? 0) > 1) continue
    }
    let expected = e.message ?? 'valid value'
    // A property schema compiled to `false`: readOnly in a request, writeOnly in a response.
    if (e.keyword === 'false schema') expected = 'no such property here (readOnly/writeOnly)'
    if (e.keyword === 'enum')
      expected = `one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`
    if (e.keyword === 'const')
      expected = `${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`
    out.push({ kind: 'schema', in: where, name, pointer: e.instancePath, expected })
  }
  return out
}

function check(cp: CompiledParam, value: unknown, out: Violation[]): void {
  const v = cp.validate
  if (!v || v(value)) return
  out.push(...schemaViolations(cp.param.in, cp.param.name, v.errors))
}

function pollution(cp: CompiledParam, out: Violation[]): void {
  out.push({
    kind: 'pollution',
    in: cp.param.in,
    name: cp.param.name,
    pointer: '',
    expected: 'a single value (repeated parameter)',
  })
}

function parseCookies(header: string | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>()
  if (!header) return out
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    const name = part.slice(0, eq).trim()
    let value = part.slice(eq + 1).trim()
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1)
    const list = out.get(name)
    if (list) list.push(value)
    else out.set(name, [value])
  }
  return out
}

function headerCount(req: IncomingMessage, lower: string): number {
  let n = 0
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === lower) n++
  return n
}

const IGNORED_HEADERS = new Set(['accept', 'content-type', 'authorization'])

export interface ParamResult {
  violations: Violation[]
  /** Query names the operation does not declare. */
  unknownQuery: string[]
}

/** Path, query, header and cookie parameters. */
export function validateParams(
  op: CompiledOperation,
  req: IncomingMessage,
  query: string | (() => Params),
  pathParams: Record<string, string>,
): ParamResult {
  const out: Violation[] = []
  let params: Params | undefined
  try {
    params = typeof query === 'string' ? parseParams(query, { maxParams: Number.MAX_SAFE_INTEGER }) : query()
  } catch {
    params = undefined
  }
  const q = params === undefined ? undefined : groupParams(params)
  if (!q || !params) {
    out.push({ kind: 'schema', in: 'query', pointer: '', expected: 'valid percent-encoding' })
    return { violations: out, unknownQuery: [] }
  }
  let cookies: Map<string, string[]> | undefined
  for (const cp of op.params) {
    const p = cp.param
    if (p.in === 'path') {
      const raw = pathParams[p.name]
      if (raw === undefined) continue
      let v = raw
      if (p.style === 'label') v = raw.startsWith('.') ? raw.slice(1) : raw
      else if (p.style === 'matrix') v = raw.startsWith(`;${p.name}=`) ? raw.slice(p.name.length + 2) : raw
      check(cp, contentOr(cp, v, p.style), out)
      continue
    }
    if (p.in === 'header') {
      const lower = p.name.toLowerCase()
      if (IGNORED_HEADERS.has(lower)) continue
      const n = headerCount(req, lower)
      if (n === 0) {
        if (p.required)
          out.push({ kind: 'schema', in: 'header', name: p.name, pointer: '', expected: 'required header' })
        continue
      }
      if (n > 1 && !cp.shape.types.includes('array')) {
        pollution(cp, out)
        continue
      }
      const value = req.headers[lower]
      check(cp, contentOr(cp, Array.isArray(value) ? value.join(',') : String(value), 'simple'), out)
      continue
    }
    if (p.in === 'cookie') {
      cookies ??= parseCookies(req.headers.cookie)
      const values = cookies.get(p.name)
      if (!values) {
        if (p.required)
          out.push({ kind: 'schema', in: 'cookie', name: p.name, pointer: '', expected: 'required cookie' })
        continue
      }
      if (values.length > 1) {
        pollution(cp, out)
        continue
      }
      check(cp, contentOr(cp, values[0] as string, 'form'), out)
      continue
    }
    // query
    if (p.style === 'deepObject') {
      const prefix = `${p.name}[`
      const o: Record<string, unknown> = {}
      let any = false
      for (const [k, vs] of q) {
        if (!k.startsWith(prefix) || !k.endsWith(']')) continue
        const prop = k.slice(prefix.length, -1)
        if (vs.length > 1) {
          pollution(cp, out)
          continue
        }
        if (prop === '__proto__' || prop === 'constructor' || prop === 'prototype' || prop.includes('[')) {
          out.push({ kind: 'schema', in: 'query', name: p.name, pointer: '', expected: 'a flat object' })
          continue
        }
        o[prop] = scalar(vs[0] as string, cp.shape.props.get(prop) ?? ['string'])
        any = true
      }
      if (any) check(cp, o, out)
      else if (p.required)
        out.push({ kind: 'schema', in: 'query', name: p.name, pointer: '', expected: 'required parameter' })
      continue
    }
    if (explodedObject(cp)) {
      const o: Record<string, unknown> = {}
      let any = false
      for (const [k, types] of cp.shape.props) {
        const vs = q.get(k)
        if (!vs) continue
        if (vs.length > 1) pollution(cp, out)
        else o[k] = scalar(vs[0] as string, types)
        any = true
      }
      if (any) check(cp, o, out)
      else if (p.required)
        out.push({ kind: 'schema', in: 'query', name: p.name, pointer: '', expected: 'required parameter' })
      continue
    }
    if (params.ambiguity(p.name) !== undefined) {
      // Another spelling of a declared name (`ID`, `id[]`) or one hidden after a ';': some
      // server may read it as this parameter, unvalidated.
      pollution(cp, out)
      continue
    }
    const vs = q.get(p.name)
    if (!vs) {
      if (p.required)
        out.push({ kind: 'schema', in: 'query', name: p.name, pointer: '', expected: 'required parameter' })
      continue
    }
    const isArray = cp.shape.types.includes('array')
    if (isArray && p.explode && p.style === 'form') {
      check(
        cp,
        vs.map((x) => scalar(x, cp.shape.items)),
        out,
      )
      continue
    }
    if (vs.length > 1) {
      pollution(cp, out)
      continue
    }
    const v = vs[0] as string
    if (v === '' && !p.allowEmptyValue && !cp.shape.types.includes('string') && !isArray) {
      out.push({ kind: 'schema', in: 'query', name: p.name, pointer: '', expected: 'a value' })
      continue
    }
    check(cp, contentOr(cp, v, p.style), out)
  }
  const unknownQuery: string[] = []
  for (const name of q.keys()) {
    if (op.queryNames.has(name)) continue
    if (op.deepObjects.some((d) => name.startsWith(`${d}[`))) continue
    unknownQuery.push(name)
  }
  return { violations: out, unknownQuery }
}

/** A `content`-serialized parameter is JSON; others are typed by style and schema. */
function contentOr(cp: CompiledParam, raw: string, style: string): unknown {
  const ct = cp.param.contentType
  if (ct && (ct === 'application/json' || ct.endsWith('+json'))) {
    try {
      return parseJsonGuarded(raw)
    } catch {
      return raw
    }
  }
  return typed(raw, cp.shape, style)
}

/** A Content-Type header's media type (see mediaTypeOf). */
export interface MediaType {
  readonly type: string
  readonly charset: string | undefined
}

// The answers for the Content-Type values seen: an API sends a handful, and each request asks
// several times (validation, property filter, leak guard, request and response). Bounded: past
// MEDIA_MEMO values it is emptied and filled again. The answers are frozen (shared).
const MEDIA_MEMO = 256
const mediaMemo = new Map<string, MediaType>()

/** The media type of a Content-Type header: type/subtype lower-case, and its charset if any. */
export function mediaTypeOf(header: string | undefined): MediaType | undefined {
  if (header === undefined) return undefined
  let mt = mediaMemo.get(header)
  if (mt === undefined) {
    mt = Object.freeze(parseMediaType(header))
    if (header.length <= 256) {
      if (mediaMemo.size >= MEDIA_MEMO) mediaMemo.clear()
      mediaMemo.set(header, mt)
    }
  }
  return mt
}

function parseMediaType(header: string): MediaType {
  const parts = header.split(';')
  const type = (parts[0] as string).trim().toLowerCase()
  if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type)) return { type: '', charset: undefined }
  let charset: string | undefined
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=')
    if (eq !== -1 && p.slice(0, eq).trim().toLowerCase() === 'charset') {
      charset = p
        .slice(eq + 1)
        .trim()
        .replace(/^"|"$/g, '')
        .toLowerCase()
    }
  }
  return { type, charset }
}

/** The operation's media type entry for a request media type: exact, then `type/*`, then `*` + `/*`. */
export function pickMedia(media: readonly CompiledMedia[], type: string): CompiledMedia | undefined {
  const exact = media.find((m) => m.type === type)
  if (exact) return exact
  const range = `${type.slice(0, type.indexOf('/'))}/*`
  return media.find((m) => m.type === range) ?? media.find((m) => m.type === '*/*')
}

/** Parses and validates a JSON body; `strip` removes undeclared properties (then validates again). */
export function validateJsonBody(
  bytes: Buffer,
  validate: ValidateFunction | undefined,
  limits: JsonLimits,
  strip: boolean,
): { violations: Violation[]; value: unknown; stripped: boolean } {
  if (!isUtf8(bytes)) {
    return {
      violations: [{ kind: 'malformed', in: 'body', pointer: '', expected: 'UTF-8 JSON' }],
      value: undefined,
      stripped: false,
    }
  }
  let value: unknown
  try {
    value = guardedJsonOf(bytes, limits)
  } catch (err) {
    if (!(err instanceof JsonGuardError)) throw err
    return {
      violations: [
        {
          kind: 'malformed',
          in: 'body',
          pointer: err.pointer,
          expected: `valid JSON within limits (${err.message})`,
        },
      ],
      value: undefined,
      stripped: false,
    }
  }
  if (!validate || validate(value)) return { violations: [], value, stripped: false }
  let violations = schemaViolations('body', undefined, validate.errors)
  let stripped = false
  if (strip && violations.some((v) => v.kind === 'undeclared-property')) {
    // The parse is shared with the route's other policies (src/openapi/shared-json.ts): it is
    // edited below, so it is theirs no more.
    forgetJson(bytes)
    for (const e of validate.errors ?? []) {
      if (e.keyword !== 'additionalProperties' && e.keyword !== 'unevaluatedProperties') continue
      const parent = at(value, e.instancePath)
      const prop =
        (e.params as { additionalProperty?: string; unevaluatedProperty?: string }).additionalProperty ??
        (e.params as { unevaluatedProperty?: string }).unevaluatedProperty
      if (parent && typeof parent === 'object' && prop !== undefined && Object.hasOwn(parent, prop)) {
        delete (parent as Record<string, unknown>)[prop]
        stripped = true
      }
    }
    violations = validate(value) ? [] : schemaViolations('body', undefined, validate.errors)
  }
  return { violations, value, stripped }
}

function at(value: unknown, pointer: string): unknown {
  let cur = value
  if (pointer === '') return cur
  for (const raw of pointer.slice(1).split('/')) {
    const k = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return undefined
    cur = (cur as Record<string, unknown>)[k]
  }
  return cur
}

const FORBIDDEN_FORM_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/** Whether a media type matches one of an `encoding.contentType` list (exact, `type/*`, `*` + `/*`). */
function mediaAllowed(type: string, allowed: readonly string[]): boolean {
  const range = `${type.slice(0, type.indexOf('/'))}/*`
  return allowed.some((a) => a === type || a === range || a === '*/*')
}

function isJsonType(t: string): boolean {
  return t === 'application/json' || /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.-]+\+json$/.test(t)
}

/**
 * An `application/x-www-form-urlencoded` body: fields typed by the schema's properties (array
 * properties from repeated fields; a repeated singular field is pollution), then validated;
 * `strip` removes undeclared fields. The media type's `encoding` object is honoured per field:
 * `style` (`form`, `spaceDelimited`, `pipeDelimited` with `explode: false` split one field into an
 * array, or `key,value` pairs into an object; `deepObject` reads `field[key]=value`) and a JSON
 * `contentType` (the field's value is parsed with the JSON guards).
 */
export function validateFormBody(
  bytes: Buffer,
  media: CompiledMedia,
  limits: JsonLimits,
  strip: boolean,
): { violations: Violation[]; body: Buffer | undefined } {
  const malformed = (expected: string) => ({
    violations: [{ kind: 'malformed' as const, in: 'body' as const, pointer: '', expected }],
    body: undefined,
  })
  if (!isUtf8(bytes)) return malformed('UTF-8 form fields')
  const text = bytes.toString('utf8')
  if (text.includes('\0')) return malformed('no NUL byte')
  const fields = parseQuery(text)
  if (!fields) return malformed('valid percent-encoding')
  if (fields.size > limits.maxKeys) return malformed(`at most ${limits.maxKeys} fields`)
  const out: Violation[] = []
  const value: Record<string, unknown> = {}
  const pollute = (name: string) =>
    out.push({
      kind: 'pollution',
      in: 'body',
      name,
      pointer: '',
      expected: 'a single value (repeated field)',
    })
  for (const [name, values] of fields) {
    if (FORBIDDEN_FORM_KEYS.has(name)) return malformed(`no field named "${name}"`)
    for (const v of values) {
      if (v.length > limits.maxStringLength)
        return malformed(`fields of at most ${limits.maxStringLength} characters`)
      if (v.includes('\0')) return malformed('no NUL character')
    }
    // deepObject: `address[city]=x` is the property `city` of the field `address`.
    const br = name.indexOf('[')
    if (br > 0 && name.endsWith(']')) {
      const prop = name.slice(0, br)
      if (media.encoding.get(prop)?.style === 'deepObject') {
        const key = name.slice(br + 1, -1)
        if (FORBIDDEN_FORM_KEYS.has(prop) || FORBIDDEN_FORM_KEYS.has(key) || key.includes('['))
          return malformed('a flat object in a deepObject field')
        if (values.length > 1) {
          pollute(prop)
          continue
        }
        const existing = value[prop]
        const o =
          existing !== null && typeof existing === 'object' && !Array.isArray(existing)
            ? (existing as Record<string, unknown>)
            : {}
        o[key] = scalar(values[0] as string, media.shape.propProps.get(prop)?.get(key) ?? ['string'])
        value[prop] = o
        continue
      }
    }
    const types = media.shape.props.get(name) ?? ['string']
    const enc = media.encoding.get(name)
    const ct = enc?.contentTypes?.[0]
    if (ct !== undefined && isJsonType(ct)) {
      if (values.length > 1) {
        pollute(name)
        continue
      }
      try {
        value[name] = parseJsonGuarded(values[0] as string, limits)
      } catch (err) {
        if (!(err instanceof JsonGuardError)) throw err
        return malformed(`a JSON field within limits (${err.message})`)
      }
      continue
    }
    const style = enc?.style ?? 'form'
    const explode = enc?.explode ?? style === 'form'
    if (types.includes('array')) {
      const items = media.shape.propItems.get(name) ?? ['string']
      let list = values
      if (!explode) {
        if (values.length > 1) {
          pollute(name)
          continue
        }
        const v = values[0] as string
        list = v === '' ? [] : v.split(DELIM[style] ?? ',')
      }
      if (list.length > limits.maxArrayLength)
        return malformed(`at most ${limits.maxArrayLength} values per field`)
      value[name] = list.map((v) => scalar(v, items))
    } else if (values.length > 1) {
      pollute(name)
    } else if (types.includes('object') && !explode && style === 'form') {
      const parts = (values[0] as string).split(',')
      const o: Record<string, unknown> = {}
      if (parts.length % 2 !== 0) value[name] = values[0]
      else {
        for (let i = 0; i < parts.length; i += 2) {
          const k = parts[i] as string
          if (FORBIDDEN_FORM_KEYS.has(k)) return malformed('no forbidden key in an object field')
          o[k] = scalar(parts[i + 1] as string, media.shape.propProps.get(name)?.get(k) ?? ['string'])
        }
        value[name] = o
      }
    } else value[name] = scalar(values[0] as string, types)
  }
  if (out.length > 0 || !media.validate || media.validate(value)) return { violations: out, body: undefined }
  let violations = schemaViolations('body', undefined, media.validate.errors)
  let body: Buffer | undefined
  if (strip && violations.some((v) => v.kind === 'undeclared-property')) {
    const drop = rootUndeclared(media.validate.errors)
    for (const name of drop) delete value[name]
    violations = media.validate(value) ? [] : schemaViolations('body', undefined, media.validate.errors)
    body = Buffer.from(withoutParams(text, drop))
  }
  return { violations, body }
}

/** Names of undeclared properties at the root of the value. */
function rootUndeclared(errors: ErrorObject[] | null | undefined): Set<string> {
  const drop = new Set<string>()
  for (const e of errors ?? []) {
    if (e.instancePath !== '') continue
    const p = e.params as { additionalProperty?: string; unevaluatedProperty?: string }
    const name = p.additionalProperty ?? p.unevaluatedProperty
    if (name !== undefined) drop.add(name)
  }
  return drop
}

/** Whether a multipart part is a file (counted, never read): declared as one, or undeclared with a filename. */
export function isFilePart(media: CompiledMedia, name: string, filename: string | undefined): boolean {
  return media.shape.propFiles.has(name) || (filename !== undefined && !media.shape.props.has(name))
}

/**
 * The parts of a `multipart/form-data` body (see multipart.ts), checked against the schema: each
 * field typed by its property (text parts by type, JSON parts — by their Content-Type, or for
 * object properties — parsed with the JSON guards; file parts stand as an empty string), repeated
 * names only for array properties (else pollution), each part's Content-Type against the
 * `encoding` object's `contentType`, then the schema. `strip` removes undeclared parts: the body
 * is rebuilt from the kept parts' bytes.
 */
export function validateMultipartBody(
  raw: Buffer,
  parts: readonly Part[],
  boundary: string,
  media: CompiledMedia,
  limits: JsonLimits,
  strip: boolean,
): { violations: Violation[]; body: Buffer | undefined } {
  const malformed = (expected: string, pointer = '') => ({
    violations: [{ kind: 'malformed' as const, in: 'body' as const, pointer, expected }],
    body: undefined,
  })
  const out: Violation[] = []
  const value: Record<string, unknown> = {}
  const seen = new Set<string>()
  for (const part of parts) {
    const name = part.name
    if (FORBIDDEN_FORM_KEYS.has(name)) return malformed(`no part named "${name}"`)
    const pointer = `/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`
    const types = media.shape.props.get(name) ?? []
    const isArray = types.includes('array')
    const itemTypes = isArray ? (media.shape.propItems.get(name) ?? []) : types
    const defaultType = part.file
      ? 'application/octet-stream'
      : itemTypes.includes('object') && !itemTypes.includes('string')
        ? 'application/json'
        : 'text/plain'
    const ct = part.contentType ?? defaultType
    const allowed = media.encoding.get(name)?.contentTypes
    if (allowed && !mediaAllowed(ct, allowed)) {
      out.push({
        kind: 'media-type',
        in: 'body',
        name,
        pointer,
        expected: `Content-Type ${allowed.join(', ')}`,
      })
      continue
    }
    let item: unknown = ''
    if (!part.file) {
      const bytes = part.text ?? Buffer.alloc(0)
      if (
        part.charset !== undefined &&
        part.charset !== 'utf-8' &&
        part.charset !== 'utf8' &&
        part.charset !== 'us-ascii'
      )
        out.push({ kind: 'media-type', in: 'body', name, pointer, expected: 'a UTF-8 part' })
      if (!isUtf8(bytes)) return malformed('UTF-8 text parts', pointer)
      const text = bytes.toString('utf8')
      if (text.includes('\0')) return malformed('no NUL character', pointer)
      if (text.length > limits.maxStringLength)
        return malformed(`parts of at most ${limits.maxStringLength} characters`, pointer)
      if (isJsonType(ct)) {
        try {
          item = parseJsonGuarded(text, limits)
        } catch (err) {
          if (!(err instanceof JsonGuardError)) throw err
          return malformed(`a JSON part within limits (${err.message})`, pointer)
        }
      } else item = scalar(text, itemTypes.length > 0 ? itemTypes : ['string'])
    }
    if (isArray) {
      const list = (value[name] as unknown[] | undefined) ?? []
      if (list.length >= limits.maxArrayLength)
        return malformed(`at most ${limits.maxArrayLength} parts per field`)
      list.push(item)
      value[name] = list
      continue
    }
    if (seen.has(name)) {
      out.push({
        kind: 'pollution',
        in: 'body',
        name,
        pointer: '',
        expected: 'a single part (repeated name)',
      })
      continue
    }
    seen.add(name)
    value[name] = item
  }
  if (out.length > 0 || !media.validate || media.validate(value)) return { violations: out, body: undefined }
  let violations = schemaViolations('body', undefined, media.validate.errors)
  let body: Buffer | undefined
  if (strip && violations.some((v) => v.kind === 'undeclared-property')) {
    const drop = rootUndeclared(media.validate.errors)
    for (const name of drop) delete value[name]
    violations = media.validate(value) ? [] : schemaViolations('body', undefined, media.validate.errors)
    const pieces: Buffer[] = []
    for (const p of parts) {
      if (drop.has(p.name)) continue
      pieces.push(Buffer.from(`--${boundary}\r\n`, 'latin1'), raw.subarray(p.start, p.end), CRLF)
    }
    pieces.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'))
    body = Buffer.concat(pieces)
  }
  return { violations, body }
}

const CRLF = Buffer.from('\r\n')

/** A `text/plain` body: UTF-8 without NUL, within the string limit, validated as a string. */
export function validateTextBody(bytes: Buffer, media: CompiledMedia, limits: JsonLimits): Violation[] {
  if (!isUtf8(bytes)) return [{ kind: 'malformed', in: 'body', pointer: '', expected: 'UTF-8 text' }]
  const text = bytes.toString('utf8')
  if (text.includes('\0'))
    return [{ kind: 'malformed', in: 'body', pointer: '', expected: 'no NUL character' }]
  if (text.length > limits.maxStringLength) {
    return [
      {
        kind: 'malformed',
        in: 'body',
        pointer: '',
        expected: `at most ${limits.maxStringLength} characters`,
      },
    ]
  }
  if (!media.validate || media.validate(text)) return []
  return schemaViolations('body', undefined, media.validate.errors)
}
