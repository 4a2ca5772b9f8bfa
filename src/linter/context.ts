/**
 * What every rule reads: the loaded spec, each operation with what the rules ask of it (admin?
 * auth flow? public?), the security schemes, and the schemas of requests and responses walked
 * once (`$ref`s followed, cycles cut, each schema location visited once per direction).
 */
import type { Location, OpenApiSpec, Operation } from '../openapi/index.js'
import { isRedirectName } from './names.js'
import type { SpecLocation } from './types.js'

export type Obj = Record<string, unknown>

export function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

const WRITE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Login, token, registration, password reset, one-time codes: public by design, guessable by bots. */
const AUTH_FLOW =
  /(^|[/_-])(login|log-in|signin|sign-in|logon|token|tokens|oauth|auth|authenticate|session|sessions|register|registration|signup|sign-up|password|passwords|forgot|reset|otp|mfa|2fa|verify|verification|magic-link)([/_-]|$)/i
const AUTH_FLOW_ID =
  /^(login|logIn|signIn|signin|authenticate|createSession|createToken|getToken|issueToken|refreshToken|register|signUp|signup|resetPassword|forgotPassword|changePassword|verifyOtp|verifyMfa)/
/** Flows worth automating for a bot: buying, redeeming, booking, inviting, messaging. */
const BUSINESS_FLOW =
  /(^|[/_-])(checkout|orders?|purchases?|payments?|pay|transfers?|coupons?|vouchers?|redeem|promo|gift-?cards?|bookings?|reservations?|tickets?|invites?|invitations?|referrals?|votes?|reviews?|comments?)([/_-]|$)/i
const ADMIN_SEGMENT =
  /^(admin|admins|administration|administrator|internal|manage|management|backoffice|back-office|superuser|sudo)$/i
const ADMIN_TAG = /^(admin|administration|administrator|internal|management|backoffice)\b/i
const PRIVILEGE_SEGMENT =
  /^(roles?|permissions?|privileges?|grants?|impersonat\w*|promote|demote|suspend\w*|ban|unban)$/i

/** An operation, as the rules see it. */
export interface OpInfo {
  op: Operation
  /** `GET /orders/{id}`. */
  label: string
  write: boolean
  /** Why it looks administrative, or undefined. */
  admin: string | undefined
  /** Login, token, registration, reset... */
  authFlow: boolean
  businessFlow: boolean
  /** Effective security: undefined = none declared anywhere; [] = explicitly public. */
  security: readonly Record<string, readonly string[]>[] | undefined
  /** The security allows an anonymous call (`[]`, or an empty requirement `{}`). */
  anonymous: boolean
  /** `x-portcullis-roles`, when given. */
  roles: string[] | undefined
  /** Rule ids in `x-portcullis-lint-ignore` of the operation and its path item. */
  ignores: Set<string>
  location: Location
}

export interface SchemaNode {
  /** The schema, `$ref` followed. */
  schema: Obj
  at: Location
  /** The property or parameter name it describes, when it describes one. */
  name: string | undefined
  /** Property path from the body root (`['user', 'role']`); parameters: `[name]`. */
  path: string[]
  /** The first operation that reached it. */
  op: OpInfo
  /** Response status (responses only). */
  status?: string
  mediaType?: string
  /** Where it came from: `body`, `query`, `path`, `header`, `cookie`, `response`. */
  source: string
}

export interface SchemeInfo {
  name: string
  value: Obj
  at: Location
}

export interface DocumentIndex {
  examples: { file: string; pointer: string; value: unknown }[]
  /** `$ref`s with a URL scheme (`http:`, `https:`...). */
  refs: { file: string; pointer: string; ref: string }[]
  /** Files that contain an `x-portcullis-lint-ignore` anywhere (the engine checks only those). */
  ignoreFiles: Set<string>
}

const MAX_NODES = 400_000

export class LintContext {
  readonly ops: OpInfo[]
  readonly root: Obj
  readonly rootFile: string
  readonly schemes: Map<string, SchemeInfo>
  private requestCache: SchemaNode[] | undefined
  private docIndex: DocumentIndex | undefined
  private readonly refCache = new Map<string, { value: unknown; at: Location } | undefined>()
  private responseCache: SchemaNode[] | undefined

  constructor(readonly spec: OpenApiSpec) {
    this.root = (isObject(spec.documents.root) ? spec.documents.root : {}) as Obj
    this.rootFile = spec.documents.rootFile
    this.schemes = new Map()
    const comp = this.root.components
    if (isObject(comp) && isObject(comp.securitySchemes)) {
      for (const [name, v] of Object.entries(comp.securitySchemes)) {
        const at = { file: this.rootFile, pointer: `/components/securitySchemes/${esc(name)}` }
        try {
          const r = spec.documents.deref(v, at)
          if (isObject(r.value))
            this.schemes.set(name, { name, value: r.value, at: { file: r.file, pointer: r.pointer } })
        } catch {
          // an unresolvable scheme: the undefined-scheme rule reports its use
        }
      }
    }
    this.ops = spec.operations.map((op) => this.info(op))
  }

  private info(op: Operation): OpInfo {
    const security = op.security
    const anonymous =
      security !== undefined && (security.length === 0 || security.some((r) => Object.keys(r).length === 0))
    const rolesRaw = op.raw['x-portcullis-roles']
    const roles = Array.isArray(rolesRaw) ? rolesRaw.map(String) : undefined
    const ignores = new Set<string>()
    for (const v of [op.raw['x-portcullis-lint-ignore'], this.pathItemIgnore(op.path)]) {
      if (Array.isArray(v)) for (const x of v) ignores.add(String(x))
    }
    const segments = op.path.split('/').filter(Boolean)
    const literal = segments.filter((s) => !s.startsWith('{'))
    let admin: string | undefined
    if (roles?.some((r) => /admin|root|superuser|staff/i.test(r)))
      admin = `x-portcullis-roles: [${roles.join(', ')}]`
    else if (op.tags.some((t) => ADMIN_TAG.test(t))) admin = `tag "${op.tags.find((t) => ADMIN_TAG.test(t))}"`
    else if (literal.some((s) => ADMIN_SEGMENT.test(s)))
      admin = `path segment "${literal.find((s) => ADMIN_SEGMENT.test(s))}"`
    else if (/^(admin|internal)[A-Z_]/.test(op.operationId ?? '')) admin = `operationId "${op.operationId}"`
    else if (op.method !== 'GET' && literal.some((s) => PRIVILEGE_SEGMENT.test(s)))
      admin = `${op.method} on "${literal.find((s) => PRIVILEGE_SEGMENT.test(s))}"`
    const authFlow = AUTH_FLOW.test(op.path) || AUTH_FLOW_ID.test(op.operationId ?? '')
    // The thing the operation creates: the last literal segment of its path.
    const lastLiteral = literal[literal.length - 1] ?? ''
    const businessFlow = op.method === 'POST' && BUSINESS_FLOW.test(`/${lastLiteral}/`)
    return {
      op,
      label: `${op.method} ${op.path}`,
      write: WRITE.has(op.method),
      admin,
      authFlow,
      businessFlow,
      security,
      anonymous,
      roles,
      ignores,
      location: op.location,
    }
  }

  private pathItemIgnore(path: string): unknown {
    const paths = this.root.paths
    if (!isObject(paths)) return undefined
    const item = paths[path]
    return isObject(item) ? item['x-portcullis-lint-ignore'] : undefined
  }

  /** A SpecLocation for an operation. */
  opLoc(o: OpInfo, note?: string): SpecLocation {
    return {
      file: o.location.file,
      pointer: o.location.pointer,
      operation: o.label,
      ...(note ? { note } : {}),
    }
  }

  loc(at: Location, o?: OpInfo, note?: string): SpecLocation {
    return {
      file: at.file,
      pointer: at.pointer,
      ...(o ? { operation: o.label } : {}),
      ...(note ? { note } : {}),
    }
  }

  /**
   * One walk over every loaded document (bounded), collecting what the whole-document rules need:
   * example values (`example`, `examples`, `x-example`) and `$ref` strings, with their pointers.
   */
  documentIndex(): DocumentIndex {
    if (this.docIndex) return this.docIndex
    const index: DocumentIndex = { examples: [], refs: [], ignoreFiles: new Set() }
    let visits = 0
    const path: string[] = []
    const pointer = (extra?: string) =>
      `/${[...path, ...(extra === undefined ? [] : [extra])].map(esc).join('/')}`
    const walk = (v: unknown, file: string, depth: number): void => {
      if (++visits > 5_000_000 || depth > 200 || v === null || typeof v !== 'object') return
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          path.push(String(i))
          walk(v[i], file, depth + 1)
          path.pop()
        }
        return
      }
      for (const k of Object.keys(v)) {
        const x = (v as Obj)[k]
        if (k === 'x-portcullis-lint-ignore') index.ignoreFiles.add(file)
        if (k === '$ref' && typeof x === 'string') {
          // Only references that leave the file by URL are kept (a large spec has 100,000+ local ones).
          if (/^[a-z][a-z0-9+.-]*:/i.test(x)) index.refs.push({ file, pointer: pointer(k), ref: x })
        } else if (k === 'example' || k === 'examples' || k === 'x-example' || k === 'x-examples')
          index.examples.push({ file, pointer: pointer(k), value: x })
        else {
          path.push(k)
          walk(x, file, depth + 1)
          path.pop()
        }
      }
    }
    for (const file of this.spec.documents.fileNames()) {
      path.length = 0
      walk(this.spec.documents.document(file), file, 0)
    }
    this.docIndex = index
    return index
  }

  /** The value at a location, or undefined. */
  value(at: Location): unknown {
    try {
      return this.spec.documents.at(at.file, at.pointer)
    } catch {
      return undefined
    }
  }

  /** Follows `$ref`s; undefined when the reference cannot be resolved. */
  deref(value: unknown, at: Location): { value: unknown; at: Location } | undefined {
    const ref = isObject(value) && typeof value.$ref === 'string' ? value.$ref : undefined
    if (ref === undefined) return { value, at }
    // A spec refers to the same few hundred components thousands of times: resolve each once.
    const key = ref.startsWith('#') ? `${at.file}\0${ref}` : undefined
    if (key !== undefined && this.refCache.has(key)) return this.refCache.get(key)
    let out: { value: unknown; at: Location } | undefined
    try {
      const r = this.spec.documents.deref(value, at)
      out = { value: r.value, at: { file: r.file, pointer: r.pointer } }
    } catch {
      out = undefined
    }
    if (key !== undefined) this.refCache.set(key, out)
    return out
  }

  /** Every schema node reachable from request parameters and bodies (readOnly properties left out). */
  requestNodes(): SchemaNode[] {
    if (this.requestCache) return this.requestCache
    const out: SchemaNode[] = []
    const seen = new Set<string>()
    for (const o of this.ops) {
      for (const p of o.op.parameters) {
        if (p.schema === undefined || p.schemaLocation === undefined) continue
        this.walk(
          p.schema,
          p.schemaLocation,
          { name: p.name, path: [p.name], op: o, source: p.in },
          'request',
          out,
          seen,
        )
      }
      for (const m of o.op.requestBody?.content ?? []) {
        if (m.schema === undefined || m.schemaLocation === undefined) continue
        this.walk(
          m.schema,
          m.schemaLocation,
          { name: undefined, path: [], op: o, source: 'body', mediaType: m.type },
          'request',
          out,
          seen,
        )
      }
    }
    this.requestCache = out
    return out
  }

  /** Every schema node reachable from responses (writeOnly properties left out). */
  responseNodes(): SchemaNode[] {
    if (this.responseCache) return this.responseCache
    const out: SchemaNode[] = []
    const seen = new Set<string>()
    for (const o of this.ops) {
      for (const r of o.op.responses) {
        for (const m of r.content) {
          if (m.schema === undefined || m.schemaLocation === undefined) continue
          this.walk(
            m.schema,
            m.schemaLocation,
            { name: undefined, path: [], op: o, source: 'response', status: r.status, mediaType: m.type },
            'response',
            out,
            seen,
          )
        }
      }
    }
    this.responseCache = out
    return out
  }

  /** The schema nodes under one schema (its own walk, not shared with other operations). */
  collect(
    schema: unknown,
    at: Location,
    dir: 'request' | 'response',
    op: OpInfo,
    source = 'body',
    maxPath = Number.POSITIVE_INFINITY,
  ): SchemaNode[] {
    const out: SchemaNode[] = []
    this.walk(schema, at, { name: undefined, path: [], op, source }, dir, out, new Set(), maxPath)
    return out
  }

  private walk(
    schema: unknown,
    at: Location,
    start: Omit<SchemaNode, 'schema' | 'at'>,
    dir: 'request' | 'response',
    out: SchemaNode[],
    seen: Set<string>,
    maxPath = Number.POSITIVE_INFINITY,
  ): void {
    const stack: { v: unknown; at: Location; name: string | undefined; path: string[] }[] = [
      { v: schema, at, name: start.name, path: start.path },
    ]
    while (stack.length > 0 && out.length < MAX_NODES) {
      const cur = stack.pop() as (typeof stack)[number]
      const r = this.deref(cur.v, cur.at)
      if (r === undefined || !isObject(r.value)) continue
      const key = `${r.at.file}#${r.at.pointer}|${cur.name ?? ''}`
      if (seen.has(key)) continue
      seen.add(key)
      const s = r.value
      if (
        dir === 'request' &&
        s.readOnly === true &&
        cur.name !== undefined &&
        cur.path.length > 0 &&
        start.source === 'body'
      )
        continue
      if (dir === 'response' && s.writeOnly === true && cur.name !== undefined) continue
      out.push({ ...start, schema: s, at: r.at, name: cur.name, path: cur.path })
      if (cur.path.length >= maxPath) continue
      const push = (v: unknown, token: string[], name: string | undefined, path: string[]) =>
        stack.push({
          v,
          at: { file: r.at.file, pointer: `${r.at.pointer}/${token.map(esc).join('/')}` },
          name,
          path,
        })
      if (isObject(s.properties)) {
        for (const [k, v] of Object.entries(s.properties)) {
          if (isObject(v) && dir === 'request' && v.readOnly === true) continue
          if (isObject(v) && dir === 'response' && v.writeOnly === true) continue
          push(v, ['properties', k], k, [...cur.path, k])
        }
      }
      if (isObject(s.items)) push(s.items, ['items'], cur.name, cur.path)
      if (Array.isArray(s.prefixItems))
        s.prefixItems.forEach((v, i) => {
          push(v, ['prefixItems', String(i)], cur.name, cur.path)
        })
      if (isObject(s.additionalProperties))
        push(s.additionalProperties, ['additionalProperties'], undefined, [...cur.path, '*'])
      for (const k of ['allOf', 'anyOf', 'oneOf']) {
        const list = s[k]
        if (Array.isArray(list))
          list.forEach((v, i) => {
            push(v, [k, String(i)], cur.name, cur.path)
          })
      }
    }
  }

  /** The declared type(s) of a schema, `allOf` branches included. */
  types(s: Obj): Set<string> {
    const out = new Set<string>()
    if (typeof s.type === 'string') out.add(s.type)
    if (Array.isArray(s.type)) for (const t of s.type) out.add(String(t))
    return out
  }

  /** Query parameters of an operation that carry a URL the client is sent to. */
  redirectParams(o: OpInfo) {
    return o.op.parameters.filter((p) => p.in === 'query' && isRedirectName(p.name))
  }
}

export function esc(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1')
}
