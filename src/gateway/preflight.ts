/**
 * CORS preflights and routing. A preflight (`OPTIONS` with `Origin` and
 * `Access-Control-Request-Method`) asks about the request that will follow, so it is routed like
 * that request — by the method it names — to the route that will take it, when that route has a
 * policy that answers preflights (cors). Otherwise it is routed as the OPTIONS request it is. This
 * is what keeps a route with `methods: [GET]`, or one whose methods come from an OpenAPI spec, from
 * refusing the preflight with 405 before the cors policy could answer it.
 */
import type { IncomingMessage } from 'node:http'
import type { PolicyInstance } from './pipeline/policy.js'
import type { RouteMatcher } from './router.js'

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/

/** The route a preflight goes to; `current` (the OPTIONS match) unless the rule above applies. */
export function preflightRoute<R extends { policies: readonly PolicyInstance[] }>(
  router: RouteMatcher<R>,
  host: string,
  path: string,
  req: IncomingMessage,
  current: R | { allow: string[] } | undefined,
): R | { allow: string[] } | undefined {
  const method = req.headers['access-control-request-method']
  if (typeof method !== 'string' || req.headers.origin === undefined || !METHOD.test(method)) return current
  const m = router.match(host, path, method)
  if (m === undefined || 'allow' in m) return current
  for (const p of m.policies) if (p.answersPreflight === true) return m
  return current
}
