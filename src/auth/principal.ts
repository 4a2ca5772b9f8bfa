/**
 * Builds a Principal from verified token claims (JWT payload, introspection response). Claim
 * paths are compiled once; building a principal happens once per verified token, not per request
 * when the token is cached.
 */
import type { Principal } from '../gateway/pipeline/context.js'

export interface PrincipalOptions {
  /** Claim holding the principal id (default `sub`). */
  idClaim: string
  /** Claims holding roles: arrays of strings or single strings; dotted paths reach nested claims. */
  rolesClaims: readonly string[]
  /** The principal is a service when this claim has one of these values (besides sub = client_id). */
  serviceClaim?: { claim: string; values: readonly string[] } | undefined
  authMethod: string
}

export type ClaimGetter = (claims: Readonly<Record<string, unknown>>) => unknown

/**
 * A getter for a claim path. A name present as a top-level claim wins (namespaced claims such as
 * `https://example.com/roles` contain dots); otherwise dots walk nested objects
 * (`realm_access.roles`).
 */
export function compileClaimPath(path: string): ClaimGetter {
  const segs = path.split('.')
  if (segs.length === 1) return (c) => (Object.hasOwn(c, path) ? c[path] : undefined)
  return (c) => {
    if (Object.hasOwn(c, path)) return c[path]
    let cur: unknown = c
    for (const s of segs) {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, s))
        return undefined
      cur = (cur as Record<string, unknown>)[s]
    }
    return cur
  }
}

/** A claim as a list of strings: an array's string members, or a space-separated string. */
export function stringList(v: unknown, splitSpaces: boolean): string[] {
  if (typeof v === 'string') {
    if (!splitSpaces) return v === '' ? [] : [v]
    return v.split(' ').filter((s) => s !== '')
  }
  if (Array.isArray(v)) return v.filter((s): s is string => typeof s === 'string')
  return []
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o)
    for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}

/**
 * Compiles a principal builder. Returns undefined when the id claim is missing or not a
 * non-empty string (or a number): a principal without an id is not one.
 */
export function compilePrincipalBuilder(
  o: PrincipalOptions,
): (claims: Record<string, unknown>) => Principal | undefined {
  const id = compileClaimPath(o.idClaim)
  const roles = o.rolesClaims.map(compileClaimPath)
  const service = o.serviceClaim
  const serviceGetter = service ? compileClaimPath(service.claim) : undefined
  const serviceValues = service ? new Set(service.values) : undefined
  const authMethod = o.authMethod
  return (claims) => {
    const raw = id(claims)
    const pid = typeof raw === 'string' ? raw : typeof raw === 'number' ? String(raw) : ''
    if (pid === '') return undefined
    const scopes = new Set([...stringList(claims.scope, true), ...stringList(claims.scp, true)])
    const roleSet = new Set<string>()
    for (const g of roles) for (const r of stringList(g(claims), false)) roleSet.add(r)
    let type: Principal['type'] = 'user'
    // RFC 9068 §2.2: in a client-credentials token the subject is the client itself.
    if (typeof claims.client_id === 'string' && claims.sub === claims.client_id) type = 'service'
    else if (serviceGetter && serviceValues) {
      const v = serviceGetter(claims)
      if (stringList(v, false).some((x) => serviceValues.has(x))) type = 'service'
    }
    return deepFreeze({
      id: pid,
      type,
      scopes: [...scopes],
      roles: [...roleSet],
      claims: deepFreeze(claims),
      authMethod,
    })
  }
}

/**
 * A principal's roles: its own (set by its authentication policy) plus the string values of the
 * given claims (dotted paths). Compiled once; the set is cached per principal object.
 */
export function compileRolesOf(
  rolesClaims: readonly string[],
): (p: Principal | undefined) => ReadonlySet<string> {
  const getters = rolesClaims.map(compileClaimPath)
  const cache = new WeakMap<Principal, ReadonlySet<string>>()
  return (p) => {
    if (!p) return NO_ROLES
    let s = cache.get(p)
    if (!s) {
      const set = new Set(p.roles)
      for (const g of getters) for (const r of stringList(g(p.claims), false)) set.add(r)
      s = set
      cache.set(p, s)
    }
    return s
  }
}

const NO_ROLES: ReadonlySet<string> = new Set()
