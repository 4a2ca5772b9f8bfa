/**
 * Helpers for the API2/4/7/8/9 and injection checks: concrete paths for operations, the
 * authenticated probe operation, the login operation, JSON body fields, masking of excerpts.
 */
import type { Operation, Parameter } from '../../openapi/index.js'
import { fillPath } from '../resources.js'
import {
  flatten,
  generateValue,
  isObject,
  requestBody,
  resolveSchema,
  type Schema,
  schemaType,
} from '../schema-tools.js'
import type { Check, Exchange, Finding, ScanContext, ScanResponse } from '../types.js'

export function is2xx(status: number): boolean {
  return status >= 200 && status < 300
}

export function finding(
  check: Check,
  fields: Omit<Finding, 'checkId' | 'title' | 'severity' | 'owasp'> &
    Partial<Pick<Finding, 'title' | 'severity'>>,
): Finding {
  return { checkId: check.id, title: check.title, severity: check.severity, owasp: check.owasp, ...fields }
}

export function opOf(op: Operation): NonNullable<Finding['operation']> {
  return { method: op.method, path: op.path, ...(op.operationId ? { operationId: op.operationId } : {}) }
}

/** The first identity that is not anonymous. */
export function firstUser(ctx: ScanContext): string | undefined {
  return ctx.identities.find((i) => !i.anonymous)?.name
}

/** Whether the operation requires credentials (security requirements, none of them empty). */
export function requiresAuth(op: Operation): boolean {
  const sec = op.security
  if (!sec || sec.length === 0) return false
  return sec.every((req) => Object.keys(req).length > 0)
}

/** A value for a path or query parameter: the example, default, enum, or a generated one. */
export function paramValue(ctx: ScanContext, p: Parameter): string {
  const raw = p as unknown as Record<string, unknown>
  const schema = resolveSchema(ctx.spec, p.schema, p.schemaLocation)
  const v = raw.example ?? generateValue(schema, p.name)
  if (v === undefined || v === null || typeof v === 'object') return '1'
  return String(v)
}

/**
 * A concrete path for an operation as `identity`: a path parameter takes the id of one of the
 * identity's seeded objects whose path fits the template, else the parameter's example or a
 * generated value. Undefined when the template cannot be filled.
 */
export function concretePath(
  ctx: ScanContext,
  op: Operation,
  identity: string | undefined,
): string | undefined {
  if (!op.path.includes('{')) return op.path
  const pattern = templateRegex(op.path)
  for (const o of ctx.objects) {
    if (identity !== undefined && o.owner !== identity) continue
    if (pattern.test(o.path)) return o.path
  }
  const values: Record<string, string> = {}
  for (const p of op.parameters) if (p.in === 'path') values[p.name] = paramValue(ctx, p)
  for (const m of op.path.matchAll(/\{([^{}/]+)\}/g)) values[m[1] as string] ??= '1'
  return fillPath(op.path, values)
}

/** A regex matching concrete paths of a template (`/orders/{id}` → `^/orders/[^/]+$`). */
export function templateRegex(template: string): RegExp {
  const parts = template.split(/\{[^{}/]+\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${parts.join('[^/]+')}/?$`)
}

/** Required query parameters of an operation with values. */
export function requiredQuery(ctx: ScanContext, op: Operation): Record<string, string> {
  const q: Record<string, string> = {}
  for (const p of op.parameters) if (p.in === 'query' && p.required) q[p.name] = paramValue(ctx, p)
  return q
}

/** An operation that needs credentials and shows it: 2xx as the identity, 401/403 without. */
export interface AuthProbe {
  op: Operation
  path: string
  query: Record<string, string>
  identity: string
  authed: ScanResponse
  anonymous: ScanResponse
}

const probes = new WeakMap<ScanContext, Promise<AuthProbe | undefined>>()

/** Finds (once per scan) an authenticated GET operation to test credentials against. */
export function authProbe(ctx: ScanContext, identity = firstUser(ctx)): Promise<AuthProbe | undefined> {
  if (identity === undefined) return Promise.resolve(undefined)
  const cached = probes.get(ctx)
  if (cached) return cached
  const p = (async () => {
    const candidates = ctx.operations
      .filter((op) => op.method === 'GET' && requiresAuth(op) && !op.deprecated)
      // Operations without path parameters first: the caller's own data (`/me`, lists).
      .sort((a, b) => Number(a.path.includes('{')) - Number(b.path.includes('{')))
    for (const op of candidates.slice(0, 8)) {
      const path = concretePath(ctx, op, identity)
      if (!path) continue
      const query = requiredQuery(ctx, op)
      const authed = await ctx.send(identity, { method: 'GET', path, query })
      if (!is2xx(authed.status)) continue
      const anonymous = await ctx.send(undefined, { method: 'GET', path, query })
      if (anonymous.status !== 401 && anonymous.status !== 403) continue
      return { op, path, query, identity, authed, anonymous }
    }
    return undefined
  })()
  probes.set(ctx, p)
  return p
}

/** Whether a response to a tampered credential shows it was accepted like the real one. */
export function acceptedLike(probe: AuthProbe, res: ScanResponse): boolean {
  return is2xx(res.status) && res.status === probe.authed.status
}

const LOGIN_PATH = /(^|\/)(login|log-in|signin|sign-in|authenticate|auth\/token|token|sessions?)(\/|$)/i
const PASSWORD_FIELD = /pass(word)?|pwd|secret/i
const USER_FIELD = /^(user(name)?|email|login|name|account|user_?id|e-?mail)$/i

export interface LoginOperation {
  op: Operation
  userField: string
  passwordField: string
  /** The example body (other fields filled), without user and password. */
  base: Record<string, unknown>
  /** A user name the spec's example gives, if any. */
  exampleUser: string | undefined
}

/** The login operation: a POST whose path says login and whose JSON body has a user and a password field. */
export function findLogin(ctx: ScanContext): LoginOperation | undefined {
  for (const op of ctx.operations) {
    if (op.method !== 'POST' || !LOGIN_PATH.test(op.path)) continue
    const shape = requestBody(ctx.spec, op)
    if (!shape?.schema) continue
    const s = flatten(shape.schema)
    const props = isObject(s.properties) ? Object.keys(s.properties) : []
    const passwordField = props.find((k) => PASSWORD_FIELD.test(k))
    const userField = props.find((k) => USER_FIELD.test(k)) ?? props.find((k) => /user|mail|login/i.test(k))
    if (!passwordField || !userField) continue
    const example = shape.example ?? generateValue(shape.schema)
    const base: Record<string, unknown> = isObject(example) ? { ...example } : {}
    const exampleUser = typeof base[userField] === 'string' ? (base[userField] as string) : undefined
    delete base[userField]
    delete base[passwordField]
    return { op, userField, passwordField, base, exampleUser }
  }
  return undefined
}

/** A random value no real account or object has. */
export function randomName(prefix = 'pcl'): string {
  return `${prefix}${Math.random().toString(36).slice(2, 10)}${Date.now().toString(36).slice(-4)}`
}

/** The string properties of a JSON body schema (top level), with their schemas. */
export function stringProperties(schema: Schema | undefined): { name: string; schema: Schema }[] {
  if (!schema) return []
  const s = flatten(schema)
  if (!isObject(s.properties)) return []
  const out: { name: string; schema: Schema }[] = []
  for (const [name, p] of Object.entries(s.properties)) {
    if (!isObject(p)) continue
    const f = flatten(p)
    if (f.readOnly === true) continue
    if (schemaType(f) === 'string') out.push({ name, schema: f })
  }
  return out
}

/** A JSON body for a write operation: its example or a generated value; undefined without a JSON body. */
export function exampleBody(ctx: ScanContext, op: Operation): Record<string, unknown> | undefined {
  const shape = requestBody(ctx.spec, op)
  if (!shape) return undefined
  const v = shape.example ?? generateValue(shape.schema)
  return isObject(v) ? { ...v } : undefined
}

const SECRET_ASSIGNMENT =
  /((?:^|[\s"'{,;&?])[\w.-]{0,40}(?:pass(?:word)?|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|credential|auth)[\w.-]{0,40}["']?[ \t]{0,10}[:=][ \t]{0,10}["']?)([^\s"',;&}]{3,500})/gi

/** Masks secret-looking `name=value` / `"name": "value"` pairs in a body excerpt (value → first 2 chars + ***). */
export function maskSecrets(text: string): string {
  return text
    .replace(SECRET_ASSIGNMENT, (_m, head: string, value: string) =>
      value === '***' ? `${head}${value}` : `${head}${value.slice(0, 2)}***`,
    )
    .replace(/(\b[a-z][a-z0-9+.-]{0,30}:\/\/[^\s:/@"']{1,100}:)([^\s@/"']{1,200})@/gi, '$1***@')
}

/** A copy of an exchange with the response body masked by `maskSecrets`. */
export function maskedExchange(x: Exchange): Exchange {
  if (!x.response?.body) return x
  return { ...x, response: { ...x.response, body: maskSecrets(x.response.body) } }
}

/** Whether the target host is loopback (127/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)
}

/**
 * A typical response of the API for header checks: the authenticated probe's answer when there is
 * one, else the first parameterless GET operation's answer (as the first user).
 */
export async function sampleResponse(
  ctx: ScanContext,
): Promise<{ op: Operation; path: string; identity: string | undefined; res: ScanResponse } | undefined> {
  const probe = await authProbe(ctx)
  if (probe) return { op: probe.op, path: probe.path, identity: probe.identity, res: probe.authed }
  const user = firstUser(ctx)
  for (const op of ctx.operations.filter((o) => o.method === 'GET').slice(0, 5)) {
    const path = concretePath(ctx, op, user)
    if (!path) continue
    const res = await ctx.send(user, { method: 'GET', path, query: requiredQuery(ctx, op) })
    if (res.status < 500) return { op, path, identity: user, res }
  }
  return undefined
}

/**
 * Deletes the object a create just made (id from its answer, `id` or `data.id`) through the
 * resource's DELETE operation, so probes that had to create leave nothing behind.
 */
export async function deleteCreated(
  ctx: ScanContext,
  user: string | undefined,
  res: ScanResponse,
  del: Operation | undefined,
): Promise<void> {
  if (!del || !is2xx(res.status) || !isObject(res.json)) return
  const id = res.json.id ?? (isObject(res.json.data) ? res.json.data.id : undefined)
  if (typeof id !== 'string' && typeof id !== 'number') return
  const path = del.path.replace(/\{[^{}/]+\}$/, encodeURIComponent(String(id)))
  if (path.includes('{')) return
  await ctx.send(user, { method: 'DELETE', path })
}
