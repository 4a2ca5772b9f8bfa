/**
 * A Runtime is everything built from one config: upstream pools, compiled routes with their policy
 * instances and hooks, the router. It is immutable once built; a reload builds a new one and
 * swaps it in, and each request keeps the runtime it started with until its log phase has run.
 */
import type { TrafficObserver } from '../inventory/observer.js'
import type { Logger } from 'pino'
import { noopAudit } from '../audit/event.js'
import type { RequestAudit } from '../audit/request.js'
import type { GatewayConfig, RouteConfig } from '../config/schema.js'
import { policyById } from '../policies/registry.js'
import type { Store } from '../stores/types.js'
import type { Tracing } from '../tracing/tracing.js'
import { buildTrustedProxies } from './client-ip.js'
import type { HygieneOptions } from './hygiene.js'
import type { AccessLog } from './logging.js'
import type { GatewayMetrics, RouteMetrics } from './metrics.js'
import { allOfHook, anyOfHook, type Authenticator } from './pipeline/authentication.js'
import type { LogEntry, PolicyDefinition, PolicyInstance } from './pipeline/policy.js'
import { RefusalLog } from './refusal-log.js'
import { buildRouter, type RouteMatcher } from './router.js'
import { buildSpecRoutes } from './spec-routes.js'
import { Upstream } from './upstream/upstream.js'

export interface GatewayDeps {
  /** The gateway's own log (stderr by default). */
  logger: Logger
  /** One JSON line per request; undefined when the access log is off. */
  accessLog: AccessLog | undefined
  metrics: GatewayMetrics
  now?: () => number
  /** Directory relative paths in the config are resolved against. */
  baseDir: string
  /** Shared state for policies (created once per process; see src/stores). */
  store: Store
  /** The audit log's per-request records and policies' emitter; undefined when audit is off. */
  audit?: RequestAudit | undefined
  /** The attack detectors (src/detect), fed every finished request; undefined when off. */
  detect?: { observe(entry: LogEntry): void } | undefined
  // inventory: the API inventory and the dashboard's live data (src/inventory/observer.ts)
  inventory?: TrafficObserver | undefined
  /** OpenTelemetry tracing (src/tracing); undefined when off. */
  tracing?: Tracing | undefined
}

export type RequestHook = NonNullable<PolicyInstance['onRequest']>
export type ResponseHook = NonNullable<PolicyInstance['onResponse']>
export type BodyHook = NonNullable<PolicyInstance['onResponseBody']>
export type LogHook = NonNullable<PolicyInstance['onLog']>

export interface CompiledRoute {
  name: string
  config: RouteConfig
  upstream: Upstream
  stripPrefix: number
  policies: PolicyInstance[]
  requestHooks: RequestHook[]
  /** The policy (or `authentication`) each request hook belongs to, for traces. */
  requestHookNames: string[]
  /** In reverse priority order (as Envoy's encoder chain). */
  responseHooks: ResponseHook[]
  bodyHooks: BodyHook[]
  logHooks: LogHook[]
  metrics: RouteMetrics
  /** Lower-case request headers never forwarded on this route (see PolicyInstance.stripRequestHeaders). */
  stripHeaders: Set<string> | undefined
  /** Query parameter names never forwarded on this route (see PolicyInstance.stripQueryParams). */
  stripQuery: Set<string> | undefined
}

/** One enabled policy of a route: its definition and its config (global merged with the route's). */
export interface EnabledPolicy {
  id: string
  def: PolicyDefinition
  config: unknown
  /** Where its config is written: `policies` (global) or `routes[i].policies`. */
  global: boolean
}

/**
 * The policies enabled on a route, global ones merged with the route's own (the route's entry
 * replaces the global one of the same id). The one place that decides it: the runtime, the config
 * loader's policy checks and `prepare` all use it. Unknown ids are returned with `def` undefined
 * only through `unknown` (the schema refuses them first).
 */
export function enabledPolicies(config: GatewayConfig, rc: RouteConfig): EnabledPolicy[] {
  const merged: Record<string, unknown> = { ...config.policies, ...(rc.policies ?? {}) }
  const out: EnabledPolicy[] = []
  for (const [id, pc] of Object.entries(merged)) {
    if (pc === undefined || (pc as { enabled?: boolean }).enabled === false) continue
    const def = policyById(id)
    if (!def) throw new Error(`unknown policy "${id}"`)
    out.push({ id, def, config: pc, global: !(rc.policies !== undefined && Object.hasOwn(rc.policies, id)) })
  }
  return out
}

/**
 * Runs the `prepare` step of every enabled policy of a config (global and per route), before a
 * Runtime is built from it: asynchronous work such as fetching remote spec documents. Rejects
 * with the first failure.
 */
export async function preparePolicies(
  config: GatewayConfig,
  deps: { logger: Logger; baseDir: string },
): Promise<void> {
  const jobs: Promise<void>[] = []
  for (const rc of config.routes) {
    for (const p of enabledPolicies(config, rc)) {
      if (!p.def.prepare) continue
      jobs.push(
        p.def.prepare(p.config as never, {
          logger: deps.logger.child({ policy: p.id }),
          baseDir: deps.baseDir,
          routeName: rc.name,
        }),
      )
    }
  }
  await Promise.all(jobs)
}

/** A fully built, immutable pipeline for one config. */
export class Runtime {
  readonly config: GatewayConfig
  readonly router: RouteMatcher<CompiledRoute>
  readonly routes: CompiledRoute[]
  readonly upstreams: Map<string, Upstream>
  readonly trusted: ReturnType<typeof buildTrustedProxies>
  readonly hygiene: HygieneOptions
  readonly requestIdHeader: string
  readonly noRouteMetrics: RouteMetrics
  /** Sampled per-request refusal lines of this runtime's policies (config.log.refusals). */
  readonly refusals: RefusalLog
  inFlight = 0
  private retired = false
  private onDrained: (() => void) | undefined

  constructor(config: GatewayConfig, deps: GatewayDeps) {
    this.config = config
    const now = deps.now ?? Date.now
    this.refusals = new RefusalLog(deps.logger, { ...config.log.refusals, now })
    this.upstreams = new Map()
    const built: PolicyInstance[] = []
    const specResolvers = new Map<CompiledRoute, (path: string, method: string) => CompiledRoute>()
    try {
      for (const [name, u] of Object.entries(config.upstreams)) {
        const up = new Upstream(name, u, {
          logger: deps.logger,
          now,
          baseDir: deps.baseDir,
          events: {
            onHealthChange: (upstream, target, healthy) =>
              deps.metrics.targetUp.labels(upstream, target).set(healthy ? 1 : 0),
          },
        })
        this.upstreams.set(name, up)
        for (const t of up.targets) deps.metrics.targetUp.labels(name, t.origin).set(1)
      }
      this.routes = config.routes.map((rc) => {
        const refusals = (key: string, obj: Record<string, unknown>, msg: string) =>
          this.refusals.info(`${key}:${rc.name}`, obj, msg)
        const instances = enabledPolicies(config, rc).map((p) => {
          const inst = p.def.create(p.config as never, {
            logger: deps.logger.child({ policy: p.id }),
            now,
            routeName: rc.name,
            store: deps.store,
            baseDir: deps.baseDir,
            audit: deps.audit?.log ?? noopAudit,
            metrics: deps.metrics.registry,
            refusals,
          })
          built.push(inst)
          return { id: p.id, priority: p.def.priority, inst }
        })
        instances.sort((a, b) => b.priority - a.priority)
        const policies = instances.map((x) => x.inst)
        const upstream = this.upstreams.get(rc.upstream)
        if (!upstream) throw new Error(`route ${rc.name}: unknown upstream ${rc.upstream}`)
        return {
          name: rc.name,
          config: rc,
          upstream,
          stripPrefix:
            rc.stripPrefix && rc.match.pathPrefix !== '/' ? rc.match.pathPrefix.replace(/\/$/, '').length : 0,
          policies,
          ...compileRequestHooks(rc, instances),
          responseHooks: policies.flatMap((p) => (p.onResponse ? [p.onResponse.bind(p)] : [])).reverse(),
          bodyHooks: policies.flatMap((p) => (p.onResponseBody ? [p.onResponseBody.bind(p)] : [])).reverse(),
          logHooks: policies.flatMap((p) => (p.onLog ? [p.onLog.bind(p)] : [])),
          stripHeaders: nameSet(
            policies.flatMap((p) => p.stripRequestHeaders ?? []).map((h) => h.toLowerCase()),
          ),
          stripQuery: nameSet(policies.flatMap((p) => p.stripQueryParams ?? [])),
          metrics: deps.metrics.forRoute(rc.name, rc.upstream),
        }
      })
      // Routes driven by an OpenAPI spec: one route per operation, sharing the route's policies.
      const taken = new Set(config.routes.map((r) => r.name))
      for (const r of this.routes) {
        if (!r.config.match.openapi) continue
        const spec = buildSpecRoutes<CompiledRoute>(
          r.config,
          { baseDir: deps.baseDir, logger: deps.logger, taken },
          (name) => ({ ...r, name, metrics: deps.metrics.forRoute(name, r.config.upstream) }),
          (first) => ({
            ...r,
            requestHooks: [first, ...r.requestHooks],
            requestHookNames: ['openapi-route', ...r.requestHookNames],
          }),
        )
        specResolvers.set(r, spec.resolve)
      }
    } catch (err) {
      for (const p of built) void p.close?.()
      for (const u of this.upstreams.values()) void u.destroy()
      throw err
    }
    this.router = buildRouter(
      this.routes.map((r) => ({ config: r.config, route: r, resolve: specResolvers.get(r) })),
    )
    this.trusted = buildTrustedProxies(config.proxy.trustedProxies)
    this.hygiene = {
      allowSemicolon: config.proxy.allowSemicolonInPath,
      maxUrlLength: config.proxy.maxUrlLength,
    }
    this.requestIdHeader = config.proxy.requestIdHeader
    this.noRouteMetrics = deps.metrics.forRoute('(none)')
  }

  start(): void {
    for (const u of this.upstreams.values()) u.startProbes()
  }

  /** Marks the runtime replaced; resources are released when its last request finishes. */
  retire(): Promise<void> {
    this.retired = true
    return new Promise((resolve) => {
      this.onDrained = resolve
      if (this.inFlight === 0) void this.release()
    })
  }

  requestDone(): void {
    this.inFlight--
    if (this.retired && this.inFlight === 0) void this.release()
  }

  private async release(): Promise<void> {
    const done = this.onDrained
    this.onDrained = undefined
    if (!done) return
    await this.closeAll((u) => u.close())
    done()
  }

  /** Closes everything now (shutdown deadline passed). */
  destroy(): Promise<void> {
    return this.closeAll((u) => u.destroy())
  }

  private async closeAll(closeUpstream: (u: Upstream) => Promise<void>): Promise<void> {
    this.refusals.flush()
    await Promise.all([
      ...[...this.upstreams.values()].map(closeUpstream),
      ...this.routes.flatMap((r) => r.policies.map(async (p) => p.close?.())),
    ]).catch(() => undefined)
  }
}

/**
 * The request hooks of a route in priority order. With `authentication: { anyOf | allOf }`, the
 * listed policies' own hooks are replaced by one combined step at the highest of their priorities.
 */
function compileRequestHooks(
  rc: RouteConfig,
  instances: readonly { id: string; priority: number; inst: PolicyInstance }[],
): { requestHooks: RequestHook[]; requestHookNames: string[] } {
  const auth = rc.authentication
  const ids = auth?.anyOf ?? auth?.allOf
  if (!auth || !ids) {
    const withHook = instances.filter((x) => x.inst.onRequest)
    return {
      requestHooks: withHook.map((x) => (x.inst.onRequest as RequestHook).bind(x.inst)),
      requestHookNames: withHook.map((x) => x.id),
    }
  }
  const listed: Authenticator[] = ids.map((id) => {
    const x = instances.find((i) => i.id === id)
    if (!x)
      throw new Error(`route ${rc.name}: authentication lists "${id}", which is not enabled on the route`)
    if (!x.inst.authenticate) throw new Error(`route ${rc.name}: "${id}" is not an authentication policy`)
    return { id, instance: x.inst as Authenticator['instance'] }
  })
  const combined = auth.anyOf ? anyOfHook(listed) : allOfHook(listed)
  const top = Math.max(...instances.filter((i) => ids.includes(i.id)).map((i) => i.priority))
  const out: RequestHook[] = []
  const names: string[] = []
  const authName = `authentication (${auth.anyOf ? 'anyOf' : 'allOf'}: ${ids.join(', ')})`
  let placed = false
  for (const x of instances) {
    if (!placed && x.priority <= top) {
      out.push(combined)
      names.push(authName)
      placed = true
    }
    if (ids.includes(x.id) || !x.inst.onRequest) continue
    out.push(x.inst.onRequest.bind(x.inst))
    names.push(x.id)
  }
  if (!placed) {
    out.push(combined)
    names.push(authName)
  }
  return { requestHooks: out, requestHookNames: names }
}

function nameSet(names: readonly string[]): Set<string> | undefined {
  return names.length > 0 ? new Set(names) : undefined
}
