import type { Static, TObject } from '@sinclair/typebox'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { AuditEmitter } from '../../audit/event.js'
import type { GatewayConfig, RouteConfig } from '../../config/schema.js'
import type { Store } from '../../stores/types.js'
import type { Principal, RequestContext, ResponseHead } from './context.js'

/** What a policy gets once, at pipeline build time. */
export interface PolicyDeps {
  logger: Logger
  /** Milliseconds since the epoch; a fake clock in tests. */
  now: () => number
  /** Name of the route the instance is built for ('*' for global policies). */
  routeName: string
  /**
   * Shared state (counters, key-value, sets, GCRA): in memory, or Redis when several gateways
   * share it. Operations reject with StoreError when the backend cannot answer in time; each
   * stateful policy states what it does then (its `failOpen` setting).
   */
  store: Store
  /** The config file's directory: relative file paths in a policy's config are resolved against it. */
  baseDir: string
  /**
   * The audit log (src/audit): `emit` records a security event (an authentication failure, a
   * lockout). Never throws, never blocks; a no-op when the audit log is off. Events carry ids and
   * hashes only, never a credential.
   */
  audit: AuditEmitter
  /**
   * The gateway's Prometheus registry, for a policy's own series. It outlives reloads: get the
   * metric if registered (`registry.getSingleMetric(name)`), else create it. Absent in unit tests
   * that do not need it.
   */
  metrics?: Registry
  /**
   * Writes a per-request refusal line (info), sampled per `key` (e.g. `authorize:GW_ERR_FORBIDDEN`;
   * the route is added) so an attack cannot flood the log: see src/gateway/refusal-log.ts. Absent
   * in unit tests: use `logRefusal(deps)`.
   */
  refusals?: (key: string, obj: Record<string, unknown>, msg: string) => void
}

/** The sampled refusal logger of a policy's deps, or its plain logger where there is none (unit tests). */
export function logRefusal(
  deps: PolicyDeps,
): (key: string, obj: Record<string, unknown>, msg: string) => void {
  return deps.refusals ?? ((_key, obj, msg) => deps.logger.info(obj, msg))
}

/** What a policy's `prepare` gets. */
export interface PrepareDeps {
  logger: Logger
  baseDir: string
  /** Name of the route ('*' for global policies). */
  routeName: string
}

/** What the log phase receives about each finished request. */
export interface LogEntry {
  ctx: RequestContext
  status: number
  durationMs: number
  decision: 'allowed' | 'denied' | 'error'
  errorCode: string | undefined
}

/** What a policy's `check` gets: the whole config and the route the policy is checked for. */
export interface PolicyCheckContext {
  baseDir: string
  logger: Logger
  /** The route the policy is enabled on (a global policy is checked once per route). */
  route: RouteConfig
  config: GatewayConfig
}

/**
 * A problem `check` found. `path` is relative to the policy's config (`['rules', 0, 'match']`);
 * the loader prefixes where the policy is written and reports `file:line:col`.
 */
export interface PolicyProblem {
  path: readonly (string | number)[]
  message: string
  /** How to fix it, when the message alone does not say. */
  hint?: string
}

/**
 * Thrown by `create` for problems with the policy's config (a dry build of `checkByBuilding`
 * turns them into PolicyProblems). Each problem string starts with its path relative to the
 * policy's config when it has one (`rules[0].match: give at least one key`). The CLI reports it
 * as a config problem (exit 2).
 */
export class PolicyConfigError extends Error {
  override name = 'ConfigError'
  readonly problems: readonly string[]
  constructor(policy: string, route: string, problems: readonly string[]) {
    super(`invalid config: route ${route}, ${policy}:\n${problems.map((p) => `  ${p}`).join('\n')}`)
    this.problems = problems
  }
}

/** A policy instance, built once per route. Every hook is optional. */
export interface PolicyInstance {
  /** Request phase, in priority order (higher first). Throw a GatewayError to deny. */
  onRequest?(ctx: RequestContext): void | Promise<void>
  /**
   * Response phase, in reverse priority order, for upstream and gateway-made responses alike.
   * Synchronous: it edits the response head before it is written.
   */
  onResponse?(ctx: RequestContext, res: ResponseHead): void
  /**
   * Response body phase: when any policy of a route defines it, the route's responses are
   * buffered (up to `responseBodyLimit`) and passed through it before they are sent. The body is
   * as the upstream sent it: a hook that rewrites bodies must refuse (or pass unchanged) one with a
   * `content-encoding`; the gateway never decodes, and keeps the header.
   */
  onResponseBody?(ctx: RequestContext, res: ResponseHead, body: Buffer): Buffer | Promise<Buffer>
  /** Log phase: after every request, denied ones too. Errors here are swallowed and logged. */
  onLog?(entry: LogEntry): void
  /**
   * Authentication policies: the principal this request's credential proves, `undefined` when the
   * request carries no credential of this kind; throws a GatewayError when it carries one that is
   * invalid. Used by a route's `authentication: { anyOf | allOf }`; the policy's own `onRequest`
   * usually calls it and requires a principal.
   */
  authenticate?(ctx: RequestContext): Principal | undefined | Promise<Principal | undefined>
  /** The WWW-Authenticate challenge for a missing credential of this kind, e.g. `Bearer realm="api"`. */
  challenge?: string
  /**
   * Request headers removed before the request goes upstream, on every request of the route
   * (credentials the upstream must not see, identity headers a client must not be able to forge).
   */
  stripRequestHeaders?: readonly string[]
  /** Query parameters (by decoded name) removed before the request goes upstream, on every request of the route. */
  stripQueryParams?: readonly string[]
  /**
   * cors: this policy answers CORS preflights itself (a request hook throws a PolicyAnswer), so a
   * preflight is routed to its route by Access-Control-Request-Method (see gateway/preflight.ts).
   */
  answersPreflight?: boolean
  /** Release timers, connections. */
  close?(): void | Promise<void>
}

export interface PolicyDefinition<S extends TObject = TObject> {
  /** Stable kebab-case id, the key under `policies:` in the config. */
  id: string
  /** Request-phase order: higher runs first. */
  priority: number
  /**
   * On for every route unless the config sets `enabled: false` (fail closed: a user who writes a
   * `policies:` block for something else does not lose it by accident).
   */
  defaultEnabled?: boolean
  /** True for authentication policies (they implement `authenticate`); a route's `authentication:` may list them. */
  authenticates?: boolean
  /** One paragraph for the docs. */
  description: string
  /** Config schema: an object, every field with a description and a default (`enabled` is added). */
  schema: S
  /**
   * Asynchronous work `create` needs done first (fetching remote documents), on every load and
   * reload, before the runtime is built; a rejection fails the start or the reload (the old config
   * keeps serving). Optional.
   */
  prepare?(config: Static<S>, deps: PrepareDeps): Promise<void>
  /**
   * Rules the schema cannot express, run by the config loader for every route the policy is
   * enabled on, after `prepare`: `portcullis config check`, `serve` and every reload run the same
   * checks, so a config that passes `config check` starts. Returns every problem (none: []).
   * `create` may assume they passed.
   */
  check?(config: Static<S>, ctx: PolicyCheckContext): PolicyProblem[]
  /**
   * The policy's rules are part of compiling its config: the loader's check is a dry build of
   * `create` (pipeline/check.ts), its PolicyConfigError's problems reported. Only for a `create`
   * without outside effects (no timers, connections or watches before the first request).
   */
  checkByBuilding?: boolean
  /** Validate, compile and resolve everything once; nothing here runs per request. */
  create(config: Static<S>, deps: PolicyDeps): PolicyInstance
}

/**
 * Declares a policy. The identity function exists for type inference of `config`.
 *
 * @example
 * export const noop = definePolicy({ id: 'noop', priority: 0, description: 'Does nothing.',
 *   schema: Type.Object({}), create: () => ({}) })
 */
export function definePolicy<S extends TObject>(def: PolicyDefinition<S>): PolicyDefinition<S> {
  return def
}
