/**
 * Helpers for the API2/4/7/8/9 and injection checks: concrete paths for operations, the
 * authenticated probe operation, the login operation, JSON body fields, masking of excerpts.
 */
import type { Operation, Parameter } from '../../openapi/index.js'
import { loginBody, loginOperation } from '../logins.js'
import { lowestUser } from '../roles.js'
import { findResources } from '../resources.js'
import {
  flatten,
  generateValue,
  isObject,
  requestBody,
  resolveSchema,
  type Schema,
  schemaType,
} from '../schema-tools.js'
import { createdId, rememberCreated } from '../seed.js'
import type { Check, Exchange, Finding, LoginInfo, ScanContext, ScanRequest, ScanResponse } from '../types.js'
import { fillOperation } from './targets.js'

export function is2xx(status: number): boolean {
  return status >= 200 && status < 300
}

export function finding(
  check: Check,
  fields: Omit<Finding, 'checkId' | 'title' | 'severity' | 'owasp'> &
    Partial<Pick<Finding, 'title' | 'severity' | 'owasp'>>,
): Finding {
  return { checkId: check.id, title: check.title, severity: check.severity, owasp: check.owasp, ...fields }
}

export function opOf(op: Operation): NonNullable<Finding['operation']> {
  return { method: op.method, path: op.path, ...(op.operationId ? { operationId: op.operationId } : {}) }
}

/** The lowest-privilege identity with credentials. */
export function firstUser(ctx: ScanContext): string | undefined {
  return lowestUser(ctx)
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
 * A concrete path for an operation as `identity`: path parameters from the identity's objects
 * (matched by position in the templates), else the parameters' examples or generated values.
 */
export function concretePath(
  ctx: ScanContext,
  op: Operation,
  identity: string | undefined,
): string | undefined {
  return fillOperation(ctx, op, identity)?.path
}

/** A regex matching concrete paths of a template (`/orders/{id}` → `^/orders/[^/]+$`). */
export function templateRegex(template: string): RegExp {
  const parts = template.split(/\{[^{}/]+\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${parts.join('[^/]+')}/?$`)
}

/** Required query parameters of an operation with values (id-like ones from the identity's objects). */
export function requiredQuery(ctx: ScanContext, op: Operation, identity?: string): Record<string, string> {
  const filled = fillOperation(ctx, op, identity ?? lowestUser(ctx))?.query
  if (filled) return filled
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

/**
 * Finds (once per scan) an authenticated GET operation to test credentials against, as the
 * lowest-privilege identity that has one (each identity in turn, not only the first).
 */
export function authProbe(ctx: ScanContext): Promise<AuthProbe | undefined> {
  const cached = probes.get(ctx)
  if (cached) return cached
  const p = (async () => {
    const candidates = ctx.operations
      .filter((op) => op.method === 'GET' && requiresAuth(op) && !op.deprecated)
      // Operations without path parameters first: the caller's own data (`/me`, lists).
      .sort((a, b) => Number(a.path.includes('{')) - Number(b.path.includes('{')))
    const who = ctx.identities.filter((i) => !i.anonymous && !i.throwaway).sort((a, b) => a.rank - b.rank)
    for (const { name: identity } of who.slice(0, 3)) {
      const found = await probeAs(ctx, identity, candidates)
      if (found) return found
    }
    return undefined
  })()
  probes.set(ctx, p)
  return p
}

async function probeAs(
  ctx: ScanContext,
  identity: string,
  candidates: Operation[],
): Promise<AuthProbe | undefined> {
  for (const op of candidates.slice(0, 8)) {
    const filled = fillOperation(ctx, op, identity)
    if (!filled) continue
    const { path, query } = filled
    const authed = await ctx.send(identity, { method: 'GET', path, query })
    if (!is2xx(authed.status)) continue
    const anonymous = await ctx.send(undefined, { method: 'GET', path, query })
    if (anonymous.status !== 401 && anonymous.status !== 403) continue
    return { op, path, query, identity, authed, anonymous }
  }
  return undefined
}

/** Whether a response to a tampered credential shows it was accepted like the real one. */
export function acceptedLike(probe: AuthProbe, res: ScanResponse): boolean {
  return is2xx(res.status) && res.status === probe.authed.status
}

export interface LoginOperation {
  /** The operation, when the spec documents it. */
  op: Operation | undefined
  login: LoginInfo
  userField: string
  passwordField: string
  /** A user name the spec or auth.yaml gives, if any. */
  exampleUser: string | undefined
  /** A failed-login request for `user` with `password`. */
  attempt(user: string, password: string): ScanRequest
  /** The operation to name in a finding (the documented one, or the login path). */
  ref: NonNullable<Finding['operation']>
}

/**
 * The login to test (user enumeration, lockout, rate limits): the one auth.yaml's identities use,
 * else the spec's OAuth2 password or client-credentials token URL, else a login-shaped operation.
 * Password logins come before client credentials.
 */
export function findLogin(ctx: ScanContext): LoginOperation | undefined {
  const logins = ctx.logins ?? []
  const login = logins.find((l) => l.userField !== 'client_id') ?? logins[0]
  if (!login) return undefined
  const op = loginOperation(ctx.operations, login)
  return {
    op,
    login,
    userField: login.userField,
    passwordField: login.passwordField,
    exampleUser: login.exampleUser,
    attempt: (user, password) => {
      const body = loginBody(login, user, password)
      return {
        method: login.method,
        path: login.path,
        ...(login.encoding === 'form' ? { form: body } : { json: body }),
        retry429: false,
        relogin: false,
      }
    },
    ref: op ? opOf(op) : { method: login.method, path: login.path },
  }
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
 * Deletes the object a create just made (id from its answer or Location) through the resource's
 * DELETE operation, so probes that had to create leave nothing behind. The object is recorded as
 * the scanner's first (safe mode lets the scanner delete only what it created).
 */
export async function deleteCreated(
  ctx: ScanContext,
  user: string | undefined,
  res: ScanResponse,
  del: Operation | undefined,
): Promise<void> {
  if (!del || !is2xx(res.status) || user === undefined) return
  const r = findResources(ctx.operations).find((x) => x.delete === del)
  if (!r) return
  const id = createdId(r.type, res.json, res.headers.location, r)
  if (id === undefined) return
  const path = rememberCreated(ctx, r, id, user)
  if (!path || path.includes('{')) return
  await ctx.send(user, { method: 'DELETE', path })
}
