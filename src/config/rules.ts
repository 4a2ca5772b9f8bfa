/**
 * Cross-field rules that the schema cannot express (listeners, upstream targets, routes,
 * authentication lists, trusted proxies, stores), and warnings for secrets written in the file.
 * Policies' own rules are their `check` (config/policy-checks.ts).
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import { canonicalizeTarget } from '../gateway/hygiene.js'
import { BUILTIN_POLICIES, policyById } from '../policies/registry.js'
import { checkStoresConfig } from '../stores/config.js'
import { formatPath, type Problem, type Seg, valueAt } from './messages.js'
import type { GatewayConfig } from './schema.js'

function readable(path: string): string | undefined {
  try {
    readFileSync(path)
    return undefined
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'unreadable'
  }
}

/** Top-level secrets that belong in an ${env:} or ${file:} reference rather than in the file. */
const SECRET_FIELDS: readonly (readonly Seg[])[] = [
  ['admin', 'token'],
  ['stores', 'redis', 'password'],
  ['stores', 'redis', 'sentinelPassword'],
  ['audit', 'http', 'token'],
]

/** Warnings for secrets written into the config file itself (it is often committed or shared). */
export function plainSecrets(c: GatewayConfig, secretPaths: ReadonlySet<string>): Problem[] {
  return SECRET_FIELDS.filter(
    (segs) => valueAt(c, segs as Seg[]) !== undefined && !secretPaths.has(formatPath(segs)),
  )
    .concat(
      urlHasPassword(c.stores.redis.url) && !secretPaths.has('stores.redis.url')
        ? [['stores', 'redis', 'url']]
        : [],
    )
    .map((segs) => ({
      segs: [...segs],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the ${…} syntax is the advice itself
      message: 'a secret written in the config file; use ${env:NAME} or ${file:PATH} instead',
    }))
}

function urlHasPassword(url: string | undefined): boolean {
  if (url === undefined) return false
  try {
    return new URL(url).password !== ''
  } catch {
    return false
  }
}

export function rules(c: GatewayConfig, baseDir: string): { errors: Problem[]; warnings: Problem[] } {
  const errors: Problem[] = []
  const warnings: Problem[] = []
  const seen = new Map<string, number>()
  c.listeners.forEach((l, i) => {
    if (seen.has(l.name))
      errors.push({ segs: ['listeners', i, 'name'], message: `duplicate listener name "${l.name}"` })
    seen.set(l.name, i)
    if (l.port !== 0) {
      const key = `${l.host}:${l.port}`
      if (seen.has(key)) errors.push({ segs: ['listeners', i, 'port'], message: `${key} is used twice` })
      seen.set(key, i)
      if (c.admin.enabled && c.admin.port === l.port) {
        errors.push({ segs: ['admin', 'port'], message: `port ${l.port} is also listener "${l.name}"'s` })
      }
    }
    if (l.tls) {
      for (const f of ['cert', 'key'] as const) {
        const code = readable(resolve(baseDir, l.tls[f]))
        if (code)
          errors.push({ segs: ['listeners', i, 'tls', f], message: `cannot read ${l.tls[f]}: ${code}` })
      }
      const ca = l.tls.clientAuth?.ca
      const caCode = ca === undefined ? undefined : readable(resolve(baseDir, ca))
      if (caCode) {
        errors.push({
          segs: ['listeners', i, 'tls', 'clientAuth', 'ca'],
          message: `cannot read ${ca}: ${caCode}`,
        })
      }
    }
  })
  if (c.admin.enabled && isIP(c.admin.host) && !/^(127\.|::1$)/.test(c.admin.host)) {
    warnings.push({
      segs: ['admin', 'host'],
      message: `admin listener bound to ${c.admin.host}, not loopback`,
    })
  }
  for (const [name, u] of Object.entries(c.upstreams)) {
    u.targets.forEach((t, i) => {
      const segs = ['upstreams', name, 'targets', i, 'url']
      let url: URL
      try {
        url = new URL(t.url)
      } catch {
        errors.push({ segs, message: `expected an http(s) URL, found string "${t.url.slice(0, 60)}"` })
        return
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        errors.push({ segs, message: `expected http: or https:, found ${url.protocol}` })
      }
      if (url.username || url.password)
        errors.push({ segs, message: 'credentials in a target URL are not allowed' })
      if (url.search || url.hash) errors.push({ segs, message: 'a target URL takes no query or fragment' })
    })
    if (u.tls.ca) {
      const code = readable(resolve(baseDir, u.tls.ca))
      if (code)
        errors.push({ segs: ['upstreams', name, 'tls', 'ca'], message: `cannot read ${u.tls.ca}: ${code}` })
    }
    if (!u.tls.rejectUnauthorized) {
      warnings.push({
        segs: ['upstreams', name, 'tls', 'rejectUnauthorized'],
        message: 'upstream TLS is not verified',
      })
    }
  }
  // API keys in URLs end up in browser history, Referer headers and logs in front of the gateway.
  const queryKey = (p: unknown) =>
    (p as { 'api-key-auth'?: { queryParam?: string; enabled?: boolean } } | undefined)?.['api-key-auth']
  const warnQueryKey = (entry: ReturnType<typeof queryKey>, segs: Seg[]) => {
    if (entry?.queryParam !== undefined && entry.enabled !== false) {
      warnings.push({
        segs: [...segs, 'api-key-auth', 'queryParam'],
        message:
          'API keys accepted in the query string: URLs leak into browser history, Referer headers and proxy logs; prefer the header',
      })
    }
  }
  warnQueryKey(queryKey(c.policies), ['policies'])
  c.routes.forEach((r, i) => {
    warnQueryKey(queryKey(r.policies), ['routes', i, 'policies'])
  })
  // api-key-auth: `store` (a file) goes with source: file only; source: store needs Redis, because
  // `portcullis keys` cannot reach a memory store inside a gateway process.
  const checkKeySource = (p: unknown, segs: Seg[]) => {
    const e = (
      p as { 'api-key-auth'?: { source?: string; store?: string; enabled?: boolean } } | undefined
    )?.['api-key-auth']
    if (e === undefined || e.enabled === false) return
    const at = [...segs, 'api-key-auth']
    if (e.source === 'store') {
      if (e.store !== undefined)
        errors.push({
          segs: [...at, 'store'],
          message: 'not used with source: store (the key records are in the stores: backend); remove it',
        })
      if (c.stores.backend !== 'redis') {
        errors.push({
          segs: [...at, 'source'],
          message: `source: store needs stores.backend: redis, found ${c.stores.backend} (portcullis keys cannot write to a memory store inside a gateway process)`,
        })
      }
    } else if (e.store === undefined) {
      errors.push({
        segs: at,
        message: 'missing required field "store" (the key store file, with source: file)',
        covers: [...at, 'store'],
      })
    }
  }
  checkKeySource(c.policies, ['policies'])
  c.routes.forEach((r, i) => {
    checkKeySource(r.policies, ['routes', i, 'policies'])
  })
  for (const problem of checkStoresConfig(c.stores)) {
    const m = /^stores\.redis(?:\.(\w+))?: (.*)$/.exec(problem)
    errors.push({
      segs: m ? ['stores', 'redis', ...(m[1] ? [m[1]] : [])] : ['stores'],
      message: m ? (m[2] as string) : problem,
    })
  }
  const routeNames = new Set<string>()
  c.routes.forEach((r, i) => {
    if (routeNames.has(r.name))
      errors.push({ segs: ['routes', i, 'name'], message: `duplicate route name "${r.name}"` })
    routeNames.add(r.name)
    const shadow = c.routes.slice(0, i).findIndex((earlier) => shadows(earlier.match, r.match))
    if (shadow !== -1) {
      errors.push({
        segs: ['routes', i, 'match'],
        message: `never reached: routes[${shadow}] ("${(c.routes[shadow] as GatewayConfig['routes'][number]).name}") comes first and takes every request this route would (same hosts and pathPrefix, its methods include these); reorder or change the match`,
      })
    }
    if (!Object.hasOwn(c.upstreams, r.upstream)) {
      const known = Object.keys(c.upstreams)
      errors.push({
        segs: ['routes', i, 'upstream'],
        message: `expected one of the upstreams (${known.join(', ') || 'none defined'}), found "${r.upstream}"`,
      })
    }
    try {
      const canon = canonicalizeTarget(r.match.pathPrefix, { allowSemicolon: true, maxUrlLength: 8192 })
      if (canon.path !== r.match.pathPrefix || r.match.pathPrefix.includes('?')) {
        errors.push({
          segs: ['routes', i, 'match', 'pathPrefix'],
          message: `expected a canonical path, found "${r.match.pathPrefix}" (canonical: "${canon.path}")`,
        })
      }
    } catch (err) {
      errors.push({
        segs: ['routes', i, 'match', 'pathPrefix'],
        message: (err as Error & { detail?: string }).detail ?? 'invalid',
      })
    }
    const auth = r.authentication
    if (auth) {
      const ids = auth.anyOf ?? auth.allOf ?? []
      if ((auth.anyOf === undefined) === (auth.allOf === undefined)) {
        errors.push({
          segs: ['routes', i, 'authentication'],
          message: 'expected exactly one of anyOf or allOf',
        })
      }
      const merged = { ...c.policies, ...(r.policies ?? {}) } as Record<
        string,
        { enabled?: boolean } | undefined
      >
      const key = auth.anyOf ? 'anyOf' : 'allOf'
      ids.forEach((id, j) => {
        const segs = ['routes', i, 'authentication', key, j]
        const def = policyById(id)
        if (!def?.authenticates) {
          const known = BUILTIN_POLICIES.filter((p) => p.authenticates).map((p) => p.id)
          errors.push({
            segs,
            message: `expected an authentication policy (${known.join(', ')}), found "${id}"`,
          })
        } else if (merged[id] === undefined || merged[id]?.enabled === false) {
          errors.push({ segs, message: `"${id}" is not enabled on this route: configure it under policies` })
        }
      })
    }
    r.match.hosts?.forEach((h, j) => {
      if (!/^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(h)) {
        errors.push({
          segs: ['routes', i, 'match', 'hosts', j],
          message: `expected a lower-case host name or *.domain, found "${h.slice(0, 60)}"`,
        })
      }
    })
  })
  c.proxy.trustedProxies.forEach((p, i) => {
    const [addr, bits] = p.split('/')
    const fam = isIP(addr ?? '')
    const n = bits === undefined ? undefined : Number(bits)
    if (fam === 0 || (n !== undefined && (!Number.isInteger(n) || n < 0 || n > (fam === 4 ? 32 : 128)))) {
      errors.push({
        segs: ['proxy', 'trustedProxies', i],
        message: `expected an IP address or CIDR, found "${p}"`,
      })
      return
    }
  })
  return { errors, warnings }
}

type Match = GatewayConfig['routes'][number]['match']

/**
 * Whether a route matching `a`, listed before one matching `b`, takes every request `b` would: the
 * same hosts (or both any host), the same path prefix, and `a`'s methods include `b`'s (a route
 * driven by a spec, or without `methods`, takes every method).
 */
function shadows(a: Match, b: Match): boolean {
  const hosts = (m: Match) => (m.hosts === undefined ? '*' : [...new Set(m.hosts)].sort().join(','))
  if (hosts(a) !== hosts(b) || a.pathPrefix !== b.pathPrefix) return false
  const methodsA = a.openapi !== undefined || a.methods === undefined ? undefined : new Set(a.methods)
  if (methodsA === undefined) return true
  const methodsB = b.openapi !== undefined ? undefined : b.methods
  return methodsB?.every((m) => methodsA.has(m)) === true
}
