/**
 * The gateway core: it holds the current Runtime (everything built from one config) and handles
 * each request with it, phase by phase:
 *
 *   handle ─► hygiene ─► route ─► request phase ─► forward ─► response phase ─► log phase
 *   (connection.ts) (hygiene.ts) (router.ts) (phases.ts) (upstream/forward.ts) (phases.ts) (phases.ts)
 *
 * Every error on the way becomes one problem+json answer (respond.ts). Hot reload builds a new
 * Runtime and swaps it in; each request keeps the runtime it started with until its log phase ran.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { RequestAudit } from '../audit/request.js'
import type { GatewayConfig } from '../config/schema.js'
import { clientAddress, requestIdFor } from './client-ip.js'
import { admit, next } from './connection.js'
import { GatewayContext, kCtx, type ResWithCtx } from './context.js'
import { GatewayError } from './errors.js'
import { canonicalizeTarget, checkFraming, parseHost } from './hygiene.js'
import { type H2Response, kHttp2, type MaybeH2 } from './http2/messages.js'
import { routeWithOverride } from './method-override.js' // method-override:
import { LogPhase, runRequestPhase } from './phases.js'
import { preflightRoute } from './preflight.js' // cors:
import { Responder } from './respond.js'
import { type CompiledRoute, type GatewayDeps, Runtime } from './runtime.js'
import { Forwarder } from './upstream/forward.js'
import { checkHandshake, handshakeResponse, Tunnels } from './websocket/tunnel.js' // websocket:

export type { GatewayDeps } from './runtime.js'
export { preparePolicies } from './runtime.js'

/** Per-listener facts the core needs. */
export interface ListenerInfo {
  name: string
  secure: boolean
  maxHeaderCount: number
  /** http2: the listener's HTTP/2 header list limit (hygiene enforces it on HTTP/2 requests). */
  maxHeaderListSize?: number
}

/** A request for `Gateway.inject`. */
export interface InjectRequest {
  method?: string
  /** Request target: path and query, e.g. `/api/users?limit=10`. */
  url: string
  headers?: Record<string, string | string[]>
  body?: string | Buffer
  /** The client address the gateway sees (default 127.0.0.1). */
  remoteAddress?: string
  listener?: Partial<ListenerInfo>
}

/** What `Gateway.inject` resolves to. */
export interface InjectResponse {
  status: number
  headers: Record<string, string | string[] | number | undefined>
  body: string
  json<T = unknown>(): T
}

export class Gateway {
  private runtime: Runtime
  private readonly deps: GatewayDeps
  private readonly responder: Responder
  private readonly forwarder: Forwarder
  private readonly logPhase: LogPhase
  /** websocket: the open WebSocket tunnels (websocket/tunnel.ts). */
  readonly tunnels: Tunnels
  /** Per-request audit records (undefined when the audit log is off). */
  readonly audit: RequestAudit | undefined
  /** Set when shutdown starts: answers close their connections, no retries. */
  draining = false
  /** Requests in flight across the current and retired runtimes. */
  inFlight = 0
  private readonly fail = (ctx: GatewayContext, err: unknown): void => this.responder.fail(ctx, err)
  private readonly forward = (ctx: GatewayContext): void => this.forwarder.forward(ctx)

  constructor(config: GatewayConfig, deps: GatewayDeps) {
    this.deps = deps
    this.audit = deps.audit
    const draining = () => this.draining
    this.responder = new Responder({
      logger: deps.logger,
      metrics: deps.metrics,
      audit: deps.audit,
      draining,
    })
    this.forwarder = new Forwarder(this.responder, draining)
    this.tunnels = new Tunnels(deps.logger)
    this.forwarder.inventory = deps.inventory // inventory:
    this.logPhase = new LogPhase({
      logger: deps.logger,
      accessLog: deps.accessLog,
      audit: deps.audit,
      detect: deps.detect,
      inventory: deps.inventory, // inventory:
    })
    deps.metrics.inFlight = () => this.inFlight
    this.runtime = new Runtime(config, deps)
    this.runtime.start()
  }

  get config(): GatewayConfig {
    return this.runtime.config
  }

  /**
   * Builds a runtime for `config` and swaps it in. Throws (and keeps the old one) when it cannot
   * be built. The old runtime's pools close once its last request finishes.
   */
  reload(config: GatewayConfig): void {
    const next = new Runtime(config, this.deps)
    const prev = this.runtime
    next.start()
    this.runtime = next
    this.tunnels.retain(next) // websocket: close the tunnels of routes the reload removed
    void prev.retire()
  }

  /** Closes upstream pools and policies; waits for in-flight requests up to the caller's deadline. */
  async close(force: boolean): Promise<void> {
    this.logPhase.flush()
    this.tunnels.closeAll() // websocket:
    if (force) await this.runtime.destroy()
    else await this.runtime.retire()
  }

  /** Runs the log phase of finished requests now instead of at the end of the turn. */
  flushLogs(): void {
    this.logPhase.flush()
  }

  /** Handles one request from a listener. Never throws. */
  handle(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo): void {
    // http2: streams are independent; the pipelining queue is HTTP/1's.
    if ((req as MaybeH2)[kHttp2] !== undefined) this.start(req, res, listener)
    else if (admit(req, res, listener) === 'start') this.start(req, res, listener)
  }

  /**
   * websocket: a WebSocket handshake (Node's 'upgrade' event). It goes through hygiene, routing and
   * the route's request phase as any request, answered on a response written to its socket when
   * refused; when it passes, the route's `websocket` settings decide and the tunnel is opened
   * (websocket/tunnel.ts). Never throws.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, listener: ListenerInfo): void {
    const res = handshakeResponse(req, socket)
    if (res === undefined) return // pipelined behind a response in progress: closed
    const ctx = this.context(req, res, listener)
    try {
      checkFraming(req, listener.maxHeaderCount, listener.maxHeaderListSize)
      checkHandshake(req)
      this.route(ctx)
      if ((ctx.route as CompiledRoute).config.websocket === undefined) {
        throw new GatewayError('GW_ERR_NOT_IMPLEMENTED', { detail: 'WebSocket is not enabled on this route' })
      }
    } catch (err) {
      this.fail(ctx, err)
      return
    }
    runRequestPhase(
      ctx,
      (ctx.route as CompiledRoute).requestHooks,
      (c) => this.tunnels.connect(c, head, this.fail),
      this.fail,
    )
  }

  /**
   * Answers a request with an error before any routing (Node events the gateway answers itself,
   * e.g. an Expect it does not support), through the same answer and log path as any other.
   */
  refuse(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo, err: GatewayError): void {
    this.fail(this.context(req, res, listener), err)
  }

  private context(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo): GatewayContext {
    const rt = this.runtime
    rt.inFlight++
    this.inFlight++
    const { clientIp, trusted } = clientAddress(
      req.socket.remoteAddress,
      req.headers['x-forwarded-for'],
      rt.trusted,
    )
    const id = requestIdFor(req.headers[rt.requestIdHeader])
    const ctx = new GatewayContext(req, res, rt, listener.secure, id, clientIp, trusted)
    ;(res as ResWithCtx)[kCtx] = ctx
    res.on('close', onResponseClose) // emitted once per response
    ;(res as GatewayRes)[kGateway] = this
    return ctx
  }

  private start(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo): void {
    const ctx = this.context(req, res, listener)
    try {
      checkFraming(req, listener.maxHeaderCount, listener.maxHeaderListSize)
      this.route(ctx)
    } catch (err) {
      this.fail(ctx, err)
      return
    }
    runRequestPhase(ctx, (ctx.route as CompiledRoute).requestHooks, this.forward, this.fail)
  }

  /** Canonical target, host, then the route (404 / 405 with Allow when nothing matches). */
  private route(ctx: GatewayContext): void {
    const t = canonicalizeTarget(ctx.req.url ?? '', ctx.runtime.hygiene)
    ctx.path = t.path
    ctx.query = t.query
    ctx.host = parseHost(ctx.req.headers.host)
    // method-override: an override (header, _method) is routed as that method where the route
    // opts in, else refused (400); without one this is router.match(host, path, ctx.method).
    let m = routeWithOverride(ctx, ctx.runtime.router)
    // cors: a CORS preflight goes to the route of the method it asks for, when that route's cors
    // policy answers it (see preflight.ts)
    if (ctx.method === 'OPTIONS') m = preflightRoute(ctx.runtime.router, ctx.host, ctx.path, ctx.req, m)
    if (m === undefined) throw new GatewayError('GW_ERR_ROUTE_NOT_FOUND')
    if ('allow' in m) {
      throw new GatewayError('GW_ERR_METHOD_NOT_ALLOWED', { headers: { allow: m.allow.join(', ') } })
    }
    ctx.route = m
    ctx.routeName = m.name
  }

  /** The response closed: take what the log needs, queue its log phase, start the next pipelined request. */
  private finished(ctx: GatewayContext): void {
    const res = ctx.res
    const aborted = !res.writableFinished
    if (aborted) ctx.abortUpstream?.(new Error('client closed the connection'))
    this.inFlight--
    this.forwarder.release(ctx)
    ctx.logDurationMs = performance.now() - ctx.startTime
    ctx.logStatus = ctx.rawAnswer?.status ?? (aborted && !res.headersSent ? 499 : res.statusCode)
    ctx.logAborted = ctx.rawAnswer === undefined && aborted
    ctx.logBytesOut = ctx.h2
      ? (res as unknown as H2Response).bodyBytes // http2: the stream's DATA bytes
      : (ctx.socket.bytesWritten ?? 0) - ctx.bytesWrittenAtStart
    this.logPhase.enqueue(ctx)
    if (ctx.h2) return
    const queued = next<ListenerInfo>(ctx.socket, res)
    if (queued !== undefined) this.handle(queued.req, queued.res, queued.listener)
  }

  /**
   * Handles a request in-process, without a listener or a socket (as fastify's `inject` and hono's
   * `app.request`): the whole core runs, upstream calls included. For tests and embedding.
   *
   * @example
   * const r = await gateway.inject({ method: 'GET', url: '/api/users/1', headers: { authorization: 'Bearer …' } })
   * r.status // 200
   */
  async inject(request: InjectRequest): Promise<InjectResponse> {
    const { inject } = await import('light-my-request')
    const listener: ListenerInfo = { name: 'inject', secure: false, maxHeaderCount: 100, ...request.listener }
    const r = await inject((req, res) => this.handle(req, res, listener), {
      method: (request.method ?? 'GET') as 'GET',
      url: request.url,
      headers: { host: 'localhost', ...request.headers },
      ...(request.body !== undefined ? { payload: request.body } : {}),
      remoteAddress: request.remoteAddress ?? '127.0.0.1',
    })
    return {
      status: r.statusCode,
      headers: r.headers,
      body: r.payload,
      json: <T>() => JSON.parse(r.payload) as T,
    }
  }

  /** @internal the response of a request closed (see onResponseClose). */
  responseClosed(ctx: GatewayContext): void {
    this.finished(ctx)
  }
}

const kGateway = Symbol('portcullis.gateway')
type GatewayRes = ServerResponse & { [kGateway]?: Gateway }

function onResponseClose(this: ResWithCtx & GatewayRes): void {
  const ctx = this[kCtx]
  if (ctx) this[kGateway]?.responseClosed(ctx)
}
