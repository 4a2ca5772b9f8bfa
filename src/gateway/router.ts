/** Route table: host (exact, wildcard, any) × canonical path prefix × methods. */
import type { RouteConfig } from '../config/schema.js'

export interface RouteMatcher<R> {
  /** The matching route, or `{ allow }` when only the method differs, or undefined. */
  match(host: string, path: string, method: string): R | { allow: string[] } | undefined
}

interface Entry<R> {
  route: R
  /** Routes driven by an OpenAPI spec pick among their operations themselves (any method). */
  resolve: ((path: string, method: string) => R) | undefined
  exactHosts: Set<string> | undefined
  wildcardSuffixes: string[] | undefined
  prefix: string
  methods: Set<string> | undefined
  hostRank: number
}

function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true
  if (!path.startsWith(prefix)) return false
  if (path.length === prefix.length) return true
  // Segment boundary: '/api' matches '/api/x' but not '/apix'; '/api/' matches '/api/x'.
  return prefix.charCodeAt(prefix.length - 1) === 0x2f || path.charCodeAt(prefix.length) === 0x2f
}

function hostMatches<R>(e: Entry<R>, host: string): boolean {
  if (e.exactHosts === undefined) return true
  if (e.exactHosts.has(host)) return true
  if (e.wildcardSuffixes) {
    for (const s of e.wildcardSuffixes) if (host.length > s.length && host.endsWith(s)) return true
  }
  return false
}

/**
 * Builds the matcher. Most specific first: routes naming exact hosts, then wildcard hosts, then
 * any host; within each, the longest prefix; config order breaks ties.
 */
export function buildRouter<R>(
  routes: readonly { config: RouteConfig; route: R; resolve?: (path: string, method: string) => R }[],
): RouteMatcher<R> {
  const entries: Entry<R>[] = routes.map(({ config, route, resolve }) => {
    const hosts = config.match.hosts
    const exact = hosts?.filter((h) => !h.startsWith('*.'))
    const wild = hosts?.filter((h) => h.startsWith('*.')).map((h) => h.slice(1))
    return {
      route,
      resolve,
      exactHosts: hosts ? new Set(exact) : undefined,
      wildcardSuffixes: wild && wild.length > 0 ? wild : undefined,
      prefix: config.match.pathPrefix,
      methods: config.match.methods ? new Set(config.match.methods) : undefined,
      hostRank: hosts === undefined ? 2 : wild && wild.length > 0 && exact?.length === 0 ? 1 : 0,
    }
  })
  const sorted = entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.hostRank - b.e.hostRank || b.e.prefix.length - a.e.prefix.length || a.i - b.i)
    .map((x) => x.e)
  return {
    match(host, path, method) {
      let allow: string[] | undefined
      for (let i = 0; i < sorted.length; i++) {
        const e = sorted[i] as Entry<R>
        if (!prefixMatches(e.prefix, path) || !hostMatches(e, host)) continue
        if (e.resolve) return e.resolve(path, method)
        if (e.methods === undefined || e.methods.has(method)) return e.route
        if (method === 'HEAD' && e.methods.has('GET')) return e.route
        allow ??= []
        for (const m of e.methods) if (!allow.includes(m)) allow.push(m)
      }
      return allow ? { allow } : undefined
    },
  }
}
