/**
 * The gateway core: config → a built runtime (routes, policies, upstream pools) → handle(req, res).
 * A runtime is immutable once built; hot reload builds a new one and swaps it atomically, and each
 * request keeps the runtime it started with until it finishes.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BlockList, isIPv4 } from 'node:net'
import { Transform, type TransformCallback } from 'node:stream'
import type { Logger } from 'pino'
import { noopAudit } from '../audit/event.js'
import type { RequestAudit } from '../audit/request.js'
import type { Store } from '../stores/types.js'
import type { Dispatcher } from 'undici'
import type { GatewayConfig, RouteConfig } from '../config/schema.js'
import { policyById } from '../policies/registry.js'
import { GatewayError, toProblem } from './errors.js'
import { canonicalizeTarget, type HygieneOptions, parseHost } from './hygiene.js'
import type { AccessLog } from './logging.js'
import type { GatewayMetrics, RouteMetrics } from './metrics.js'
import type { Decision, Principal, RequestContext, ResponseHead } from './pipeline/context.js'
import { allOfHook, anyOfHook, type Authenticator } from './pipeline/authentication.js'
import type { LogEntry, PolicyInstance } from './pipeline/policy.js'
import { buildRouter, type RouteMatcher } from './router.js'
import { buildSpecRoutes } from './spec-routes.js'
import { Upstream, type UpstreamTarget } from './upstream/upstream.js'
import type { BodyTee, TrafficObserver } from '../inventory/observer.js'

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
}

/** Per-listener facts the core needs. */
export interface ListenerInfo {
  name: string
  secure: boolean
  maxHeaderCount: number
}

interface CompiledRoute {
  name: string
  config: RouteConfig
  upstream: Upstream
  stripPrefix: number
  policies: PolicyInstance[]
  requestHooks: NonNullable<PolicyInstance['onRequest']>[]
  responseHooks: NonNullable<PolicyInstance['onResponse']>[]
  bodyHooks: NonNullable<PolicyInstance['onResponseBody']>[]
  logHooks: NonNullable<PolicyInstance['onLog']>[]
  metrics: RouteMetrics
  /** Lower-case request headers never forwarded on this route (see PolicyInstance.stripRequestHeaders). */
  stripHeaders: Set<string> | undefined
  /** Query parameter names never forwarded on this route (see PolicyInstance.stripQueryParams). */
  stripQuery: Set<string> | undefined
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
    const merged: Record<string, unknown> = { ...config.policies, ...(rc.policies ?? {}) }
    for (const [id, pc] of Object.entries(merged)) {
      if (pc === undefined || (pc as { enabled?: boolean }).enabled === false) continue
      const def = policyById(id)
      if (!def?.prepare) continue
      jobs.push(
        def.prepare(pc as never, {
          logger: deps.logger.child({ policy: id }),
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
  readonly trusted: BlockList | undefined
  readonly hygiene: HygieneOptions
  readonly requestIdHeader: string
  readonly noRouteMetrics: RouteMetrics
  inFlight = 0
  private retired = false
  private onDrained: (() => void) | undefined

  constructor(config: GatewayConfig, deps: GatewayDeps) {
    this.config = config
    const now = deps.now ?? Date.now
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
        const merged: Record<string, unknown> = { ...config.policies, ...(rc.policies ?? {}) }
        const instances: { id: string; priority: number; inst: PolicyInstance }[] = []
        for (const [id, pc] of Object.entries(merged)) {
          if (pc === undefined || (pc as { enabled?: boolean }).enabled === false) continue
          const def = policyById(id)
          if (!def) throw new Error(`unknown policy "${id}"`)
          const inst = def.create(pc as never, {
            logger: deps.logger.child({ policy: id }),
            now,
            routeName: rc.name,
            store: deps.store,
            baseDir: deps.baseDir,
            audit: deps.audit?.log ?? noopAudit,
            metrics: deps.metrics.registry,
          })
          built.push(inst)
          instances.push({ id, priority: def.priority, inst })
        }
        instances.sort((a, b) => b.priority - a.priority)
        const policies = instances.map((x) => x.inst)
        const requestHooks = compileRequestHooks(rc, instances)
        const upstream = this.upstreams.get(rc.upstream)
        if (!upstream) throw new Error(`route ${rc.name}: unknown upstream ${rc.upstream}`)
        return {
          name: rc.name,
          config: rc,
          upstream,
          stripPrefix:
            rc.stripPrefix && rc.match.pathPrefix !== '/' ? rc.match.pathPrefix.replace(/\/$/, '').length : 0,
          policies,
          requestHooks,
          responseHooks: policies.flatMap((p) => (p.onResponse ? [p.onResponse.bind(p)] : [])).reverse(),
          bodyHooks: policies.flatMap((p) => (p.onResponseBody ? [p.onResponseBody.bind(p)] : [])).reverse(),
          logHooks: policies.flatMap((p) => (p.onLog ? [p.onLog.bind(p)] : [])),
          stripHeaders: stripSet(policies),
          stripQuery: stripQuerySet(policies),
          metrics: deps.metrics.forRoute(rc.name),
        }
      })
      // Routes driven by an OpenAPI spec: one route per operation, sharing the route's policies.
      const taken = new Set(config.routes.map((r) => r.name))
      for (const r of this.routes) {
        if (!r.config.match.openapi) continue
        const spec = buildSpecRoutes<CompiledRoute>(
          r.config,
          { baseDir: deps.baseDir, logger: deps.logger, taken },
          (name) => ({ ...r, name, metrics: deps.metrics.forRoute(name) }),
          (first) => ({ ...r, requestHooks: [first, ...r.requestHooks] }),
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
    if (config.proxy.trustedProxies.length > 0) {
      this.trusted = new BlockList()
      for (const p of config.proxy.trustedProxies) {
        const [addr, bits] = p.split('/') as [string, string | undefined]
        const fam = isIPv4(addr) ? 'ipv4' : 'ipv6'
        if (bits === undefined) this.trusted.addAddress(addr, fam)
        else this.trusted.addSubnet(addr, Number(bits), fam)
      }
    }
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
    await Promise.all([
      ...[...this.upstreams.values()].map((u) => u.close()),
      ...this.routes.flatMap((r) => r.policies.map(async (p) => p.close?.())),
    ]).catch(() => undefined)
    done()
  }

  /** Closes everything now (shutdown deadline passed). */
  async destroy(): Promise<void> {
    await Promise.all([
      ...[...this.upstreams.values()].map((u) => u.destroy()),
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
): NonNullable<PolicyInstance['onRequest']>[] {
  const auth = rc.authentication
  const ids = auth?.anyOf ?? auth?.allOf
  if (!auth || !ids)
    return instances.flatMap((x) => (x.inst.onRequest ? [x.inst.onRequest.bind(x.inst)] : []))
  const listed: Authenticator[] = ids.map((id) => {
    const x = instances.find((i) => i.id === id)
    if (!x)
      throw new Error(`route ${rc.name}: authentication lists "${id}", which is not enabled on the route`)
    if (!x.inst.authenticate) throw new Error(`route ${rc.name}: "${id}" is not an authentication policy`)
    return { id, instance: x.inst as Authenticator['instance'] }
  })
  const combined = auth.anyOf ? anyOfHook(listed) : allOfHook(listed)
  const top = Math.max(...instances.filter((i) => ids.includes(i.id)).map((i) => i.priority))
  const out: NonNullable<PolicyInstance['onRequest']>[] = []
  let placed = false
  for (const x of instances) {
    if (!placed && x.priority <= top) {
      out.push(combined)
      placed = true
    }
    if (ids.includes(x.id) || !x.inst.onRequest) continue
    out.push(x.inst.onRequest.bind(x.inst))
  }
  if (!placed) out.push(combined)
  return out
}

function stripQuerySet(policies: readonly PolicyInstance[]): Set<string> | undefined {
  const names = policies.flatMap((p) => p.stripQueryParams ?? [])
  return names.length > 0 ? new Set(names) : undefined
}

/** The raw query without the parameters named in `names` (compared after percent-decoding). */
export function withoutQueryParams(query: string, names: ReadonlySet<string>): string {
  const kept: string[] = []
  for (const part of query.split('&')) {
    const eq = part.indexOf('=')
    const raw = (eq === -1 ? part : part.slice(0, eq)).replace(/\+/g, ' ')
    let name = raw
    try {
      name = decodeURIComponent(raw)
    } catch {
      // not valid percent-encoding: compare as is
    }
    if (!names.has(name)) kept.push(part)
  }
  return kept.join('&')
}

function stripSet(policies: readonly PolicyInstance[]): Set<string> | undefined {
  const names = policies.flatMap((p) => p.stripRequestHeaders ?? []).map((h) => h.toLowerCase())
  return names.length > 0 ? new Set(names) : undefined
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
  'http2-settings',
])
const FORWARDING = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-real-ip',
])
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{8,128}$/

class GatewayContext implements RequestContext {
  readonly id: string
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly method: string
  path: string
  query: string
  host: string
  readonly clientIp: string
  readonly secure: boolean
  routeName = '(none)'
  readonly startTime: number
  principal: Principal | undefined = undefined
  readonly state: Record<string, unknown> = {}
  bodyLimit = Number.POSITIVE_INFINITY
  body: Buffer | undefined = undefined
  errorCode: string | undefined = undefined
  route: CompiledRoute | undefined = undefined
  runtime: Runtime
  upstreamHeaderEdits: Map<string, string | undefined> | undefined = undefined
  responseHeaderAdds: [string, string][] | undefined = undefined
  target: UpstreamTarget | undefined = undefined
  fromTrustedProxy: boolean
  decision: Decision = 'allowed'
  bodyTooLarge = false
  /** Aborts the upstream exchange (set once undici starts it). */
  abortUpstream: ((reason: Error) => void) | undefined = undefined
  canRetry = false
  /** Declared response body length while nothing is written; -1 unknown/streaming, -2 ended. */
  wholeBodyBytes = -1
  private controller: Dispatcher.DispatchController | undefined = undefined
  bytesWrittenAtStart: number
  readonly socket: IncomingMessage['socket']
  attempts = 0
  // What the log phase needs of the response, taken when it finished (the log phase itself runs
  // a little later, batched; see Gateway.requestFinished).
  logStatus = 0
  logDurationMs = 0
  logAborted = false
  logBytesOut = 0
  /** inventory: a bounded copy of a sampled response body (undefined for most requests). */
  invTee: BodyTee | undefined = undefined

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    runtime: Runtime,
    secure: boolean,
    id: string,
    clientIp: string,
    trusted: boolean,
  ) {
    this.req = req
    this.res = res
    this.runtime = runtime
    this.method = req.method ?? 'GET'
    this.path = '' // set by prepare(); '' while the target has not been canonicalized
    this.query = ''
    this.host = ''
    this.secure = secure
    this.id = id
    this.clientIp = clientIp
    this.fromTrustedProxy = trusted
    this.startTime = performance.now()
    this.socket = req.socket
    this.bytesWrittenAtStart = req.socket.bytesWritten
  }

  /** True when the client sent a body that has not been read to its end. */
  get unreadBody(): boolean {
    const h = this.req.headers
    const hasBody =
      h['transfer-encoding'] !== undefined ||
      (h['content-length'] !== undefined && h['content-length'] !== '0')
    return hasBody && !this.req.complete
  }

  readBody(onChunk?: (chunk: Buffer) => void): Promise<Buffer> {
    if (this.body) {
      if (!onChunk) return Promise.resolve(this.body)
      try {
        onChunk(this.body)
      } catch (err) {
        return Promise.reject(err)
      }
      return Promise.resolve(this.body)
    }
    const limit = this.bodyLimit
    const req = this.req
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      let size = 0
      const onData = (c: Buffer) => {
        size += c.length
        if (size > limit) {
          cleanup()
          this.bodyTooLarge = true
          reject(
            new GatewayError('GW_ERR_BODY_TOO_LARGE', {
              detail: `limit is ${limit} bytes`,
              closeConnection: true,
            }),
          )
          return
        }
        if (onChunk) {
          try {
            onChunk(c)
          } catch (err) {
            cleanup()
            reject(err)
            return
          }
        }
        chunks.push(c)
      }
      const onEnd = () => {
        cleanup()
        this.body = Buffer.concat(chunks, size)
        resolve(this.body)
      }
      const onError = (err: Error) => {
        cleanup()
        reject(new GatewayError('GW_ERR_BAD_REQUEST', { cause: err, closeConnection: true }))
      }
      const onAborted = () => onError(new Error('client aborted'))
      const cleanup = () => {
        req.off('data', onData)
        req.off('end', onEnd)
        req.off('error', onError)
        req.off('aborted', onAborted)
      }
      req.on('data', onData)
      req.on('end', onEnd)
      req.on('error', onError)
      req.on('aborted', onAborted)
    })
  }

  // ---- undici dispatch handler: the upstream response streams straight into `res`. ----

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.res.destroyed) {
      controller.abort(new Error('client closed the connection'))
      return
    }
    this.abortUpstream = abortWith
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[]>,
  ): void {
    if (status < 200) return // 1xx informational: not forwarded
    const res = this.res
    const gw = res.gateway as Gateway
    if (status === 502 || status === 503 || status === 504) {
      this.route?.upstream.reportFailure(this.target as UpstreamTarget, `status ${status}`)
    }
    let head: ResponseHead
    try {
      head = gw.responseHead(this, status, headers, false)
    } catch (err) {
      controller.abort(err as Error)
      return
    }
    this.invTee = gw.inventory?.responseTee(this, head.status, head.headers) // inventory:
    const cl = head.headers['content-length']
    this.wholeBodyBytes = typeof cl === 'string' ? Number(cl) : typeof cl === 'number' ? cl : -1
    const hold = gw.audit?.beforeResponse(this, head.status)
    if (hold !== undefined) {
      // fsync: always — the head waits for its audit record to be on disk; the upstream is paused
      // (no body arrives) meanwhile.
      controller.pause()
      hold.then(() => {
        if (!res.headersSent && !res.destroyed)
          res.writeHead(head.status, head.headers as Record<string, string>)
        controller.resume()
      })
      return
    }
    res.writeHead(head.status, head.headers as Record<string, string>)
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.res
    if (this.invTee !== undefined) this.invTee.push(chunk) // inventory:
    if (chunk.length === this.wholeBodyBytes) {
      // The whole declared body in one chunk (the common small JSON answer): end with it, so the
      // head and body leave in one write and the end needs no second pass.
      this.wholeBodyBytes = -2
      res.end(chunk)
      return
    }
    this.wholeBodyBytes = -1
    if (!res.write(chunk)) {
      controller.pause()
      res.once('drain', resumeController)
    }
  }

  onResponseEnd(): void {
    if (this.wholeBodyBytes !== -2) this.res.end()
    this.route?.upstream.reportSuccess(this.target as UpstreamTarget)
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.abortUpstream = undefined
    ;(this.res.gateway as Gateway).upstreamFailed(this, err, this.canRetry)
  }

  resumeUpstream(): void {
    this.controller?.resume()
  }

  abortController(reason: Error): void {
    this.controller?.abort(reason)
  }

  setUpstreamHeader(name: string, value: string | undefined): void {
    this.upstreamHeaderEdits ??= new Map()
    this.upstreamHeaderEdits.set(name.toLowerCase(), value)
  }

  setResponseHeader(name: string, value: string): void {
    this.responseHeaderAdds ??= []
    this.responseHeaderAdds.push([name.toLowerCase(), value])
  }
}

/** Counts a streamed (chunked) request body and fails it the moment it passes the limit. */
class BodyLimiter extends Transform {
  private seen = 0
  private readonly limit: number
  private readonly ctx: GatewayContext
  constructor(limit: number, ctx: GatewayContext) {
    super()
    this.limit = limit
    this.ctx = ctx
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.limit) {
      this.ctx.bodyTooLarge = true
      cb(
        new GatewayError('GW_ERR_BODY_TOO_LARGE', {
          detail: `limit is ${this.limit} bytes`,
          closeConnection: true,
        }),
      )
      return
    }
    cb(null, chunk)
  }
}

function normalizeIp(addr: string | undefined): string {
  if (addr === undefined) return ''
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr
}

const kCtx = Symbol('portcullis.ctx')
type ResWithCtx = ServerResponse & { [kCtx]?: GatewayContext }

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

/** The gateway: holds the current runtime and handles requests with it. */
export class Gateway {
  private runtime: Runtime
  private readonly deps: GatewayDeps
  private readonly logger: Logger
  private readonly access: AccessLog | undefined
  private readonly metrics: GatewayMetrics
  /** Per-request audit records (undefined when the audit log is off). */
  readonly audit: RequestAudit | undefined
  /** inventory: the traffic observer (undefined when the inventory and the dashboard are off). */
  readonly inventory: TrafficObserver | undefined
  draining = false

  constructor(config: GatewayConfig, deps: GatewayDeps) {
    this.deps = deps
    this.logger = deps.logger
    this.access = deps.accessLog
    this.audit = deps.audit
    this.inventory = deps.inventory // inventory:
    this.metrics = deps.metrics
    this.metrics.inFlight = () => this.inFlight
    this.runtime = new Runtime(config, deps)
    this.runtime.start()
  }

  get config(): GatewayConfig {
    return this.runtime.config
  }

  /** Total requests in flight across the current and retired runtimes. */
  inFlight = 0

  /**
   * Builds a runtime for `config` and swaps it in. Throws (and keeps the old one) when it cannot
   * be built. The old runtime's pools close once its last request finishes.
   */
  reload(config: GatewayConfig): void {
    const next = new Runtime(config, this.deps)
    const prev = this.runtime
    next.start()
    this.runtime = next
    void prev.retire()
  }

  /** Closes upstream pools and policies; waits for in-flight requests up to the caller's deadline. */
  async close(force: boolean): Promise<void> {
    this.flushLogs()
    if (force) await this.runtime.destroy()
    else await this.runtime.retire()
  }

  /** Handles one request from a listener. Never throws. */
  handle(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo): void {
    // Pipelined requests on one connection are handled one at a time, in order (as nginx does):
    // a request behind one that closes the connection (a framing error, a denial) never starts,
    // and nothing is forwarded that the client could not have meant as a separate request.
    const socket = req.socket as ConnState
    if (socket[kClosing]) {
      res.destroy()
      return
    }
    if (socket[kBusy]) {
      // Busy means an earlier request on this socket created the queue.
      ;(socket[kQueue] as Queued[]).push({ req, res, listener })
      return
    }
    socket[kBusy] = true
    if (socket[kQueue] === undefined) {
      socket[kQueue] = []
      socket.once('close', dropQueued)
    }
    this.start(req, res, listener)
  }

  private start(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo): void {
    const rt = this.runtime
    rt.inFlight++
    this.inFlight++
    const remote = normalizeIp(req.socket.remoteAddress)
    let clientIp = remote
    let trusted = false
    if (rt.trusted !== undefined && remote !== '') {
      trusted = rt.trusted.check(remote, isIPv4(remote) ? 'ipv4' : 'ipv6')
      if (trusted) clientIp = clientFromForwarded(req.headers['x-forwarded-for'], rt.trusted) ?? remote
    }
    const incomingId = req.headers[rt.requestIdHeader]
    const id = typeof incomingId === 'string' && REQUEST_ID_RE.test(incomingId) ? incomingId : nextRequestId()
    const ctx = new GatewayContext(req, res, rt, listener.secure, id, clientIp, trusted)
    ;(res as ResWithCtx)[kCtx] = ctx
    res.on('close', onResponseClose) // emitted once per response
    res.gateway = this
    try {
      this.prepare(ctx, listener)
    } catch (err) {
      this.fail(ctx, err)
      return
    }
    const hooks = (ctx.route as CompiledRoute).requestHooks
    // Run hooks synchronously until one returns a promise; only then go async.
    for (let i = 0; i < hooks.length; i++) {
      let r: void | Promise<void>
      try {
        r = (hooks[i] as NonNullable<PolicyInstance['onRequest']>)(ctx)
      } catch (err) {
        this.fail(ctx, err)
        return
      }
      if (r !== undefined) {
        continueRequestHooks(ctx, hooks, i + 1, r).then(
          () => this.forward(ctx),
          (err: unknown) => this.fail(ctx, err),
        )
        return
      }
    }
    this.forward(ctx)
  }

  private prepare(ctx: GatewayContext, listener: ListenerInfo): void {
    const req = ctx.req
    const raw = req.rawHeaders
    if (raw.length / 2 > listener.maxHeaderCount) {
      // Node keeps only maxHeaderCount + 1 headers: what came after is unknown, so close.
      throw new GatewayError('GW_ERR_HEADERS_TOO_LARGE', {
        detail: `limit is ${listener.maxHeaderCount} headers`,
        closeConnection: true,
      })
    }
    if (req.httpVersionMajor !== 1) {
      throw new GatewayError('GW_ERR_BAD_REQUEST', { detail: 'only HTTP/1.x', closeConnection: true })
    }
    let hosts = 0
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i] as string
      if (n.length === 4 && n.toLowerCase() === 'host') hosts++
    }
    if (hosts > 1)
      throw new GatewayError('GW_ERR_REQUEST_SMUGGLING', { detail: 'duplicate Host', closeConnection: true })
    const te = req.headers['transfer-encoding']
    if (te !== undefined && req.httpVersionMinor === 0) {
      // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing.
      throw new GatewayError('GW_ERR_REQUEST_SMUGGLING', {
        detail: 'Transfer-Encoding in HTTP/1.0',
        closeConnection: true,
      })
    }
    if (te !== undefined && te.toLowerCase() !== 'chunked') {
      throw new GatewayError('GW_ERR_REQUEST_SMUGGLING', {
        detail: 'unsupported Transfer-Encoding',
        closeConnection: true,
      })
    }
    if (req.method === 'CONNECT' || req.method === 'TRACE') {
      throw new GatewayError('GW_ERR_METHOD_NOT_ALLOWED', { detail: `${req.method} is not proxied` })
    }
    const t = canonicalizeTarget(req.url ?? '', ctx.runtime.hygiene)
    ctx.path = t.path
    ctx.query = t.query
    ctx.host = parseHost(req.headers.host)
    const m = ctx.runtime.router.match(ctx.host, ctx.path, ctx.method)
    if (m === undefined) throw new GatewayError('GW_ERR_ROUTE_NOT_FOUND')
    if (!(m instanceof Object) || 'allow' in m) {
      const allow = (m as { allow: string[] }).allow
      throw new GatewayError('GW_ERR_METHOD_NOT_ALLOWED', { headers: { allow: allow.join(', ') } })
    }
    ctx.route = m
    ctx.routeName = m.name
  }

  private upstreamHeaders(ctx: GatewayContext, target: UpstreamTarget): string[] {
    const req = ctx.req
    const raw = req.rawHeaders
    const out: string[] = []
    const rt = ctx.runtime
    const conn = req.headers.connection
    const listed =
      conn !== undefined && conn !== 'keep-alive' && conn !== 'close' ? connectionTokens(conn) : undefined
    const edits = ctx.upstreamHeaderEdits
    const strip = ctx.route?.stripHeaders
    const ridHeader = rt.requestIdHeader
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string
      const lower = name.toLowerCase()
      if (HOP_BY_HOP.has(lower) || lower === ridHeader) continue
      if (FORWARDING.has(lower)) {
        if (!ctx.fromTrustedProxy || (lower !== 'forwarded' && lower !== 'x-real-ip')) continue
      }
      if (listed?.has(lower)) continue
      if (edits?.has(lower)) continue
      if (strip?.has(lower)) continue
      out.push(name, raw[i + 1] as string)
    }
    const remote = normalizeIp(req.socket.remoteAddress)
    const xff = req.headers['x-forwarded-for']
    out.push('x-forwarded-for', ctx.fromTrustedProxy && xff ? `${xff}, ${remote}` : remote)
    const xfp = req.headers['x-forwarded-proto']
    out.push(
      'x-forwarded-proto',
      ctx.fromTrustedProxy && typeof xfp === 'string' ? xfp : ctx.secure ? 'https' : 'http',
    )
    const xfh = req.headers['x-forwarded-host']
    out.push(
      'x-forwarded-host',
      ctx.fromTrustedProxy && typeof xfh === 'string' ? xfh : (req.headers.host ?? ''),
    )
    out.push(ridHeader, ctx.id)
    out.push(
      'host',
      ctx.route?.upstream.config.preserveHost ? (req.headers.host ?? target.hostHeader) : target.hostHeader,
    )
    if (edits) for (const [k, v] of edits) if (v !== undefined) out.push(k, v)
    return out
  }

  private forward(ctx: GatewayContext): void {
    const route = ctx.route as CompiledRoute
    const req = ctx.req
    const upstream = route.upstream
    const target = upstream.pick(ctx.target)
    ctx.target = target
    ctx.attempts++
    let path = route.stripPrefix > 0 ? ctx.path.slice(route.stripPrefix) : ctx.path
    if (path === '' || path.charCodeAt(0) !== 0x2f) path = `/${path}`
    if (target.basePath) path = target.basePath + path
    const query =
      route.stripQuery && ctx.query !== '' ? withoutQueryParams(ctx.query, route.stripQuery) : ctx.query
    if (query !== '') path = `${path}?${query}`
    let body: Dispatcher.DispatchOptions['body'] = null
    if (ctx.body !== undefined) body = ctx.body
    else {
      const cl = req.headers['content-length']
      if (cl !== undefined) {
        if (Number(cl) > ctx.bodyLimit) {
          this.fail(
            ctx,
            new GatewayError('GW_ERR_BODY_TOO_LARGE', { detail: `limit is ${ctx.bodyLimit} bytes` }),
          )
          return
        }
        if (cl !== '0') body = req
      } else if (req.headers['transfer-encoding'] !== undefined) {
        body = Number.isFinite(ctx.bodyLimit) ? req.pipe(new BodyLimiter(ctx.bodyLimit, ctx)) : req
      }
    }
    const headers = this.upstreamHeaders(ctx, target)
    const method = ctx.method as Dispatcher.HttpMethod
    ctx.canRetry = body === null
    if (route.bodyHooks.length > 0) {
      const abort = new AbortController()
      ctx.abortUpstream = (reason) => abort.abort(reason)
      target.pool.request({ path, method, headers, body, signal: abort.signal }).then(
        (data) => this.respondBuffered(ctx, data),
        (err: unknown) => this.upstreamFailed(ctx, err, body === null),
      )
      return
    }
    // The context is the undici handler: no stream wrappers, no AbortController per request.
    target.pool.dispatch({ path, method, headers, body }, ctx)
  }

  /** Runs the response phase on a head; used by the streaming and buffered paths. */
  responseHead(
    ctx: GatewayContext,
    status: number,
    headers: ResponseHead['headers'],
    local: boolean,
  ): ResponseHead {
    if (!local) headers = withoutHopByHop(headers)
    headers[ctx.runtime.requestIdHeader] = ctx.id
    const head: ResponseHead = { status, headers, local }
    const route = ctx.route
    if (route) {
      const hooks = route.responseHooks
      for (let i = 0; i < hooks.length; i++) {
        try {
          ;(hooks[i] as NonNullable<PolicyInstance['onResponse']>)(ctx, head)
        } catch (err) {
          this.logger.error({ err, requestId: ctx.id, route: route.name }, 'response hook failed')
          if (!local) throw err
        }
      }
    }
    if (ctx.responseHeaderAdds) for (const [k, v] of ctx.responseHeaderAdds) headers[k] = v
    if (this.draining) headers.connection = 'close'
    return head
  }

  private async respondBuffered(ctx: GatewayContext, data: Dispatcher.ResponseData<unknown>): Promise<void> {
    const route = ctx.route as CompiledRoute
    const res = ctx.res
    try {
      const limit = route.config.responseBodyLimit
      const chunks: Buffer[] = []
      let size = 0
      for await (const c of data.body) {
        size += (c as Buffer).length
        if (size > limit) {
          data.body.destroy()
          throw new GatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', {
            detail: 'response body over the inspection limit',
          })
        }
        chunks.push(c as Buffer)
      }
      let body: Buffer = Buffer.concat(chunks, size)
      const head = this.responseHead(ctx, data.statusCode, data.headers as ResponseHead['headers'], false)
      // Body hooks never decode: one that rewrites a body refuses an encoded one, so a body that
      // is still encoded keeps its Content-Encoding (dropping it would hand the client gzip bytes
      // as if they were the plain body).
      for (const hook of route.bodyHooks) body = await hook(ctx, head, body)
      this.inventory?.responseTee(ctx, head.status, head.headers)?.push(body) // inventory:
      if (head.headers['content-length'] !== undefined || data.statusCode !== 204) {
        head.headers['content-length'] = body.length
      }
      route.upstream.reportSuccess(ctx.target as UpstreamTarget)
      const hold = this.audit?.beforeResponse(ctx, head.status)
      if (hold !== undefined) await hold
      if (res.headersSent || res.destroyed) return
      res.writeHead(head.status, head.headers as Record<string, string>)
      res.end(ctx.method === 'HEAD' ? undefined : body)
    } catch (err) {
      this.fail(ctx, err)
    }
  }

  upstreamFailed(ctx: GatewayContext, err: unknown, canRetry: boolean): void {
    const res = ctx.res
    if (ctx.bodyTooLarge) {
      this.fail(
        ctx,
        new GatewayError('GW_ERR_BODY_TOO_LARGE', {
          detail: `limit is ${ctx.bodyLimit} bytes`,
          closeConnection: true,
        }),
      )
      return
    }
    if (err instanceof GatewayError) {
      this.fail(ctx, err)
      return
    }
    const route = ctx.route as CompiledRoute
    const upstream = route.upstream
    const target = ctx.target as UpstreamTarget
    const code = (err as { code?: string }).code ?? ''
    if (res.destroyed || (ctx.req.destroyed && code === 'UND_ERR_ABORTED')) {
      // The client went away; undici was told to abort. Nothing to answer.
      this.metrics.upstreamErrors.labels(upstream.name, 'client_aborted').inc()
      return
    }
    const kind = errorKind(code)
    this.metrics.upstreamErrors.labels(upstream.name, kind).inc()
    if (kind === 'connect' || kind === 'timeout') upstream.reportFailure(target, code)
    if (res.headersSent) {
      // Mid-stream failure: the status is gone; cut the response so the client sees it fail.
      this.logger.warn({ requestId: ctx.id, upstream: upstream.name, code }, 'upstream failed mid-response')
      ctx.decision = 'error'
      ctx.errorCode = 'GW_ERR_UPSTREAM_UNAVAILABLE'
      res.destroy()
      return
    }
    if (
      kind === 'connect' &&
      canRetry &&
      IDEMPOTENT.has(ctx.method) &&
      ctx.attempts <= upstream.config.retries &&
      !this.draining
    ) {
      this.forward(ctx)
      return
    }
    this.logger.warn(
      { requestId: ctx.id, upstream: upstream.name, target: target.origin, code },
      'upstream request failed',
    )
    const gwCode =
      kind === 'timeout'
        ? 'GW_ERR_UPSTREAM_TIMEOUT'
        : kind === 'protocol'
          ? 'GW_ERR_UPSTREAM_BAD_RESPONSE'
          : 'GW_ERR_UPSTREAM_UNAVAILABLE'
    this.fail(ctx, new GatewayError(gwCode, { cause: err }))
  }

  /** The one place that turns an error into a problem+json response. */
  fail(ctx: GatewayContext, err: unknown): void {
    const res = ctx.res
    const { problem, error } = toProblem(err, ctx.id)
    ctx.errorCode = error.code
    ctx.decision = error.status >= 500 ? 'error' : 'denied'
    if (error.code === 'GW_ERR_INTERNAL') {
      this.logger.error({ err: error.cause, requestId: ctx.id, route: ctx.routeName }, 'internal error')
    }
    this.metrics.denials.labels(error.code).inc()
    if (res.headersSent || res.destroyed) {
      res.destroy()
      return
    }
    const body = JSON.stringify(problem)
    const headers: ResponseHead['headers'] = {
      'content-type': 'application/problem+json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    }
    if (error.headers) for (const [k, v] of Object.entries(error.headers)) headers[k.toLowerCase()] = v
    const close = error.closeConnection || ctx.unreadBody
    let head: ResponseHead
    try {
      head = this.responseHead(ctx, error.status, headers, true)
    } catch {
      head = { status: error.status, headers, local: true }
    }
    if (close) head.headers.connection = 'close'
    const hold = this.audit?.beforeResponse(ctx, head.status)
    if (hold !== undefined) {
      // fsync: always — the answer waits for its audit record to be on disk.
      hold.then(() => sendProblem(ctx, head, body, close))
      return
    }
    sendProblem(ctx, head, body, close)
  }

  /**
   * Requests whose response finished and whose log phase has not run yet. The log phase runs
   * once per event-loop turn for all of them (setImmediate): metrics, the access line, the
   * detectors and the policies' log hooks then run back to back over a batch, their code and data
   * warm in the CPU caches, instead of once between every two requests' proxying work — measured
   * at ~6 µs of CPU per request on the bench's plain route (docs/benchmarks.md). The queue holds at
   * most what finished within one turn. Everything a log line needs of the response is taken when
   * it finishes; a request's runtime is released only after its log phase.
   */
  private logQueue: GatewayContext[] = []
  private logScheduled = false
  private readonly runLogQueue = (): void => this.flushLogs()

  /** Runs the log phase of every finished request still queued (also on shutdown). Never throws. */
  flushLogs(): void {
    this.logScheduled = false
    const queue = this.logQueue
    if (queue.length === 0) return
    this.logQueue = []
    for (let i = 0; i < queue.length; i++) {
      const ctx = queue[i] as GatewayContext
      this.logPhase(ctx)
      ctx.runtime.requestDone()
    }
  }

  /** Log phase: metrics, access log, audit, detectors, policy log hooks. Never throws. */
  private logPhase(ctx: GatewayContext): void {
    const durationMs = ctx.logDurationMs
    const aborted = ctx.logAborted
    const status = ctx.logStatus
    const decision = ctx.decision
    const route = ctx.route
    try {
      ;(route ? route.metrics : ctx.runtime.noRouteMetrics).observe(status, decision, durationMs / 1000)
      if (this.access) {
        this.access.write({
          requestId: ctx.id,
          method: ctx.method,
          path: ctx.path !== '' ? ctx.path : rawPathForLog(ctx.req.url),
          route: ctx.routeName,
          status,
          durationMs: Math.round(durationMs * 1000) / 1000,
          bytesOut: ctx.logBytesOut,
          upstream: ctx.target?.origin,
          decision,
          code: ctx.errorCode,
          clientIp: ctx.clientIp,
          aborted,
        })
      }
    } catch (err) {
      this.logger.error({ err }, 'access log failed')
    }
    if (this.audit !== undefined) {
      try {
        this.audit.afterResponse(ctx, status)
      } catch (err) {
        this.logger.error({ err }, 'audit record failed')
      }
    }
    const detect = this.deps.detect
    const inventory = this.inventory
    if (detect !== undefined || inventory !== undefined || (route && route.logHooks.length > 0)) {
      const entry: LogEntry = { ctx, status, durationMs, decision, errorCode: ctx.errorCode }
      detect?.observe(entry) // never throws
      inventory?.observe(entry) // inventory: never throws
      if (route)
        for (const hook of route.logHooks) {
          try {
            hook(entry)
          } catch (err) {
            this.logger.error({ err, route: route.name }, 'log hook failed')
          }
        }
    }
  }

  requestFinished(ctx: GatewayContext): void {
    const res = ctx.res
    const aborted = !res.writableFinished
    if (aborted) ctx.abortUpstream?.(new Error('client closed the connection'))
    this.inFlight--
    ctx.logDurationMs = performance.now() - ctx.startTime
    ctx.logAborted = aborted
    ctx.logStatus = aborted && !res.headersSent ? 499 : res.statusCode
    ctx.logBytesOut = ctx.socket.bytesWritten - ctx.bytesWrittenAtStart
    this.logQueue.push(ctx)
    if (!this.logScheduled) {
      this.logScheduled = true
      setImmediate(this.runLogQueue)
    }
    const socket = ctx.socket as ConnState
    socket[kBusy] = false
    const next = socket[kQueue]?.shift()
    if (next === undefined) return
    if (socket[kClosing] || !res.writableFinished || !res.shouldKeepAlive || socket.destroyed) {
      // This connection ends with this response: what the client pipelined after it never runs.
      socket[kClosing] = true
      dropQueued.call(socket)
      return
    }
    this.handle(next.req, next.res, next.listener)
  }
}

declare module 'node:http' {
  interface ServerResponse {
    gateway?: Gateway
  }
}

// Request ids: a random per-process prefix and a counter. Unique across processes and restarts
// (the prefix has 96 random bits), cheaper than a UUID per request; ids need no secrecy.
const ID_PREFIX = randomBytes(12).toString('base64url')
let idCounter = 0
function nextRequestId(): string {
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER
  return `${ID_PREFIX}-${idCounter.toString(36)}`
}

const kBusy = Symbol('portcullis.busy')
const kClosing = Symbol('portcullis.closing')
const kQueue = Symbol('portcullis.queue')
interface Queued {
  req: IncomingMessage
  res: ServerResponse
  listener: ListenerInfo
}
type ConnState = IncomingMessage['socket'] & {
  [kBusy]?: boolean
  [kClosing]?: boolean
  [kQueue]?: Queued[]
}

/** Pipelined requests that never started: their responses are dropped with the connection. */
function dropQueued(this: ConnState): void {
  const q = this[kQueue]
  if (!q || q.length === 0) return
  this[kQueue] = []
  for (const { res } of q) res.destroy()
  this.destroy()
}

/** Writes a gateway-made (problem) response. */
function sendProblem(ctx: GatewayContext, head: ResponseHead, body: string, close: boolean): void {
  const res = ctx.res
  if (res.headersSent || res.destroyed) return
  res.writeHead(head.status, head.headers as Record<string, string>)
  res.end(ctx.method === 'HEAD' ? undefined : body)
  if (close) {
    ;(ctx.socket as ConnState)[kClosing] = true
    res.once('finish', () => ctx.socket.destroySoon())
  }
}

function resumeController(this: ResWithCtx): void {
  this[kCtx]?.resumeUpstream()
}

function abortWith(this: GatewayContext, reason: Error): void {
  this.abortController(reason)
}

function onResponseClose(this: ResWithCtx): void {
  const ctx = this[kCtx]
  if (ctx) this.gateway?.requestFinished(ctx)
}

async function continueRequestHooks(
  ctx: GatewayContext,
  hooks: NonNullable<PolicyInstance['onRequest']>[],
  from: number,
  pending: Promise<void>,
): Promise<void> {
  await pending
  for (let i = from; i < hooks.length; i++) {
    const r = (hooks[i] as NonNullable<PolicyInstance['onRequest']>)(ctx)
    if (r !== undefined) await r
  }
}

const RESPONSE_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
])

/**
 * A copy of an upstream's response headers without hop-by-hop ones (and those its Connection
 * header names). Copying rather than deleting keeps the object in V8's fast mode for the hooks
 * and writeHead.
 */
function withoutHopByHop(headers: ResponseHead['headers']): ResponseHead['headers'] {
  const conn = headers.connection
  const named =
    typeof conn === 'string' && conn !== 'keep-alive' && conn !== 'close' ? connectionTokens(conn) : undefined
  const out: ResponseHead['headers'] = {}
  for (const k in headers) {
    if (RESPONSE_HOP_BY_HOP.has(k) || named?.has(k)) continue
    out[k] = headers[k]
  }
  return out
}

/**
 * For a request refused before its target was canonicalized: the raw path, without the query
 * (which may carry credentials), cut to 256 characters. The access log escapes it.
 */
function rawPathForLog(url: string | undefined): string {
  if (url === undefined) return ''
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  return path.length > 256 ? `${path.slice(0, 256)}…` : path
}

function connectionTokens(v: string): Set<string> {
  const s = new Set<string>()
  for (const t of v.split(',')) {
    const x = t.trim().toLowerCase()
    if (x) s.add(x)
  }
  return s
}

function errorKind(code: string): string {
  if (CONNECT_ERRORS.has(code)) return 'connect'
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    return 'timeout'
  }
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'reset'
  if (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_INFO')
    return 'protocol'
  return 'other'
}

/** The client IP from X-Forwarded-For: the right-most address that is not a trusted proxy. */
export function clientFromForwarded(
  xff: string | string[] | undefined,
  trusted: BlockList,
): string | undefined {
  if (xff === undefined) return undefined
  const list = (Array.isArray(xff) ? xff.join(',') : xff).split(',')
  for (let i = list.length - 1; i >= 0; i--) {
    const ip = normalizeIp((list[i] as string).trim())
    if (ip === '') continue
    const fam = isIPv4(ip) ? 'ipv4' : ip.includes(':') ? 'ipv6' : undefined
    if (fam === undefined) return undefined
    if (!trusted.check(ip, fam)) return ip
  }
  return undefined
}
