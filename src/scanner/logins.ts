/**
 * Where and how the API logs users in. A login counts for the user-enumeration, lockout and
 * rate-limit checks whether it is declared in auth.yaml (an identity's `login`), by the spec's
 * security schemes (OAuth2 password and client-credentials flows: their `tokenUrl`), or found by
 * its shape (a POST on a login-like path whose JSON or form body has a user and a password field).
 * Also: the sign-up operation the scanner can register a throwaway account with.
 */
import type { OpenApiSpec, Operation } from '../openapi/index.js'
import type { AuthConfig } from './identities.js'
import { flatten, generateValue, isObject, requestBodyAny } from './schema-tools.js'
import type { LoginInfo } from './types.js'

export const LOGIN_PATH =
  /(^|\/)(login|log-in|signin|sign-in|authenticate|auth\/token|token|tokens|sessions?|oauth2?\/token|connect\/token)(\/|$)/i
export const PASSWORD_FIELD = /^(pass(word)?|passwd|pwd|secret|pin|client_?secret)$|pass(word)?$/i
export const USER_FIELD =
  /^(user(name)?|email|e-?mail|login|name|account|user_?id|userid|user_?name|client_?id|phone|handle|identifier)$/i

function fieldsOf(schema: unknown): string[] {
  if (!isObject(schema)) return []
  const s = flatten(schema)
  return isObject(s.properties) ? Object.keys(s.properties) : []
}

/** The user and password fields among some field names, if both are there. */
export function credentialFields(names: readonly string[]): { user: string; password: string } | undefined {
  const password = names.find((k) => PASSWORD_FIELD.test(k) && !/confirm|repeat|old|new/i.test(k))
  const user =
    names.find((k) => k !== password && USER_FIELD.test(k)) ??
    names.find((k) => k !== password && /user|mail|login/i.test(k))
  return password && user ? { user, password } : undefined
}

function scalarBase(body: unknown, skip: readonly string[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {}
  if (!isObject(body)) return out
  for (const [k, v] of Object.entries(body)) {
    if (skip.includes(k)) continue
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v
  }
  return out
}

/** A path of the target from an OAuth2 tokenUrl (relative, or absolute on the target's origin). */
function tokenPath(tokenUrl: unknown, target: URL): string | undefined {
  if (typeof tokenUrl !== 'string' || tokenUrl === '') return undefined
  try {
    const u = new URL(tokenUrl, target)
    if (u.origin !== target.origin) return undefined
    const base = target.pathname.replace(/\/+$/, '')
    const p = base && u.pathname.startsWith(`${base}/`) ? u.pathname.slice(base.length) : u.pathname
    return p.startsWith('/') ? p : undefined
  } catch {
    return undefined
  }
}

/**
 * Every login the scan knows, most trusted first: auth.yaml's identities' logins, then the
 * spec's OAuth2 password / client-credentials token URLs, then login-shaped operations.
 */
export function discoverLogins(spec: OpenApiSpec, auth: AuthConfig | undefined, target: URL): LoginInfo[] {
  const out: LoginInfo[] = []
  const add = (l: LoginInfo) => {
    if (!out.some((x) => x.method === l.method && x.path === l.path)) out.push(l)
  }
  for (const id of Object.values(auth?.identities ?? {})) {
    const login = id.login
    if (!login) continue
    const body = login.form ?? login.json
    const names = isObject(body) ? Object.keys(body) : []
    const f = credentialFields(names)
    if (!f) continue
    const user = (body as Record<string, unknown>)[f.user]
    const same = out.find((x) => x.method === (login.method ?? 'POST').toUpperCase() && x.path === login.path)
    if (same && typeof user === 'string') {
      same.knownUsers = [...new Set([...(same.knownUsers ?? []), user])]
      continue
    }
    add({
      method: (login.method ?? 'POST').toUpperCase(),
      path: login.path,
      encoding: login.form ? 'form' : 'json',
      userField: f.user,
      passwordField: f.password,
      base: scalarBase(body, [f.user, f.password]),
      tokenPointer: login.tokenPointer,
      ...(typeof user === 'string' ? { exampleUser: user, knownUsers: [user] } : {}),
      source: 'auth.yaml',
    })
  }
  const schemes = (spec.documents.root as { components?: { securitySchemes?: Record<string, unknown> } })
    ?.components?.securitySchemes
  for (const scheme of Object.values(schemes ?? {})) {
    if (!isObject(scheme) || scheme.type !== 'oauth2' || !isObject(scheme.flows)) continue
    const password = isObject(scheme.flows.password)
      ? tokenPath(scheme.flows.password.tokenUrl, target)
      : undefined
    if (password)
      add({
        method: 'POST',
        path: password,
        encoding: 'form',
        userField: 'username',
        passwordField: 'password',
        base: { grant_type: 'password' },
        tokenPointer: '/access_token',
        source: 'security-scheme',
      })
    const cc = isObject(scheme.flows.clientCredentials)
      ? tokenPath(scheme.flows.clientCredentials.tokenUrl, target)
      : undefined
    if (cc)
      add({
        method: 'POST',
        path: cc,
        encoding: 'form',
        userField: 'client_id',
        passwordField: 'client_secret',
        base: { grant_type: 'client_credentials' },
        tokenPointer: '/access_token',
        source: 'security-scheme',
      })
  }
  for (const op of spec.operations) {
    if (op.method !== 'POST' || !LOGIN_PATH.test(op.path)) continue
    const shape = requestBodyAny(spec, op)
    const f = credentialFields(fieldsOf(shape?.schema))
    if (!shape || !f) continue
    const example = shape.example ?? generateValue(shape.schema)
    const exampleUser = isObject(example) && typeof example[f.user] === 'string' ? example[f.user] : undefined
    add({
      method: 'POST',
      path: op.path,
      encoding: shape.encoding,
      userField: f.user,
      passwordField: f.password,
      base: scalarBase(example, [f.user, f.password]),
      ...(typeof exampleUser === 'string' ? { exampleUser } : {}),
      source: 'spec',
    })
  }
  // Refine: the spec's own example user for a login declared in auth.yaml, and drop client
  // credentials when a password login exists (user enumeration is about users).
  return out
}

/** The operation behind a login, when the spec documents it. */
export function loginOperation(ops: readonly Operation[], login: LoginInfo): Operation | undefined {
  return ops.find((o) => o.method === login.method && o.path === login.path)
}

/** The body of a login attempt. */
export function loginBody(login: LoginInfo, user: string, password: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(login.base)) out[k] = String(v)
  out[login.userField] = user
  out[login.passwordField] = password
  return out
}

const SIGNUP = /(^|[/_-])(register|registration|sign-?up|signup|join|create-?account|enrol+)([/_-]|$)/i

/** A sign-up operation: a POST named like one (or on a users collection) with a user and a password field. */
export function findSignup(
  spec: OpenApiSpec,
  logins: readonly LoginInfo[],
): { op: Operation; user: string; password: string; email?: string } | undefined {
  for (const op of spec.operations) {
    if (op.method !== 'POST' || op.path.includes('{')) continue
    if (logins.some((l) => l.path === op.path)) continue
    const named =
      SIGNUP.test(op.path) ||
      SIGNUP.test(op.operationId ?? '') ||
      /(^|\/)(users|accounts|members|customers)\/?$/i.test(op.path)
    if (!named) continue
    const shape = requestBodyAny(spec, op)
    const names = fieldsOf(shape?.schema)
    const f = credentialFields(names)
    if (!f) continue
    const email = names.find((k) => /^e-?mail(_?address)?$/i.test(k) && k !== f.user)
    return { op, user: f.user, password: f.password, ...(email ? { email } : {}) }
  }
  return undefined
}
