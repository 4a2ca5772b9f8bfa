/**
 * Routing from an OpenAPI document (a route with `match.openapi`): every operation of the spec
 * becomes a route — its method and path template under the route's `pathPrefix` — named by its
 * operationId (or `METHOD /template`; `<route>.<operationId>` when that name is taken), sharing the
 * route's upstream, policies and authentication. A request under the prefix that matches no
 * operation goes to the route itself, whose first request hook answers 404
 * GW_ERR_ROUTE_NOT_IN_SPEC / 405 GW_ERR_METHOD_NOT_IN_SPEC (`undeclared: block`), or logs it as a
 * shadow-API request and lets it through (`monitor`).
 *
 * The spec is read whenever a runtime is built (start and every reload), so a reload picks up its
 * changes; local `$ref`s only (remote documents are the openapi-validation policy's business).
 */
import { dirname, isAbsolute, resolve } from 'node:path'
import type { Logger } from 'pino'
import type { RouteConfig } from '../config/schema.js'
import { formatProblem, loadOpenApi, PathMatcher, SpecError } from '../openapi/index.js'
import { GatewayError } from './errors.js'
import type { RequestContext } from './pipeline/context.js'

export type RequestHook = (ctx: RequestContext) => void | Promise<void>

export interface SpecRoutes<R> {
  /** The route for a path under the prefix (any method): an operation's, else the fallback. */
  resolve(path: string, method: string): R
  /** The operations' route names, in spec order. */
  names: string[]
}

/**
 * @param operationRoute builds an operation's route (the route's own, renamed)
 * @param fallbackRoute builds the route for requests matching no operation, given the hook that
 *   must run first
 */
export function buildSpecRoutes<R>(
  rc: RouteConfig,
  deps: { baseDir: string; logger: Logger; taken: Set<string> },
  operationRoute: (name: string) => R,
  fallbackRoute: (first: RequestHook) => R,
): SpecRoutes<R> {
  const cfg = rc.match.openapi
  if (!cfg) throw new Error(`route ${rc.name}: no match.openapi`)
  if (rc.match.methods)
    throw configError(rc.name, ['match.methods: not with match.openapi (the spec gives the methods)'])
  const file = isAbsolute(cfg.spec) ? cfg.spec : resolve(deps.baseDir, cfg.spec)
  let operations: ReturnType<typeof loadOpenApi>['operations']
  try {
    operations = loadOpenApi(file, { rootDir: dirname(file) }).operations
  } catch (err) {
    if (!(err instanceof SpecError)) throw err
    throw configError(rc.name, err.problems.map(formatProblem))
  }
  const prefix = rc.match.pathPrefix.replace(/\/$/, '')
  const relative = (path: string): string | undefined =>
    prefix === ''
      ? path
      : path === prefix
        ? '/'
        : path.startsWith(`${prefix}/`)
          ? path.slice(prefix.length)
          : undefined
  const matcher = new PathMatcher<R>()
  const names: string[] = []
  for (const op of operations) {
    let name = op.id
    if (deps.taken.has(name)) name = `${rc.name}.${op.id}`
    deps.taken.add(name)
    names.push(name)
    matcher.add(op.path, op.method, operationRoute(name))
  }
  const logger = deps.logger
  const undeclared = cfg.undeclared
  const first: RequestHook = (ctx) => {
    if (undeclared === 'monitor') {
      logger.warn(
        {
          event: 'shadow-api',
          requestId: ctx.id,
          route: ctx.routeName,
          method: ctx.method,
          path: ctx.path.slice(0, 256),
        },
        "request matches no operation of the route's spec (monitor mode, passed)",
      )
      return
    }
    const rel = relative(ctx.path)
    const m = rel === undefined ? undefined : matcher.match(rel, ctx.method)
    if (m?.kind === 'method')
      throw new GatewayError('GW_ERR_METHOD_NOT_IN_SPEC', { headers: { Allow: m.allowed.join(', ') } })
    throw new GatewayError('GW_ERR_ROUTE_NOT_IN_SPEC')
  }
  const fallback = fallbackRoute(first)
  return {
    names,
    resolve(path, method) {
      const rel = relative(path)
      if (rel === undefined) return fallback
      const m = matcher.match(rel, method)
      return m.kind === 'found' ? m.match.value : fallback
    },
  }
}

function configError(route: string, problems: string[]): Error {
  const err = new Error(
    `invalid config: route ${route}, match.openapi:\n${problems.map((p) => `  ${p}`).join('\n')}`,
  )
  err.name = 'ConfigError'
  return err
}
