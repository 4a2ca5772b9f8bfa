/**
 * Forwarding a request that passed the request phase: the upstream request (headers the
 * upstream may see, the body within the route's limit), the exchange with undici, the response
 * phase on the upstream's head, and what to do when the upstream fails (retry on another target,
 * or a 502/504 problem).
 *
 * Two paths. Streaming (no body policy on the route): an `Exchange` is the undici dispatch
 * handler; the head goes through the response phase and `writeHead`, body chunks go straight to
 * the client with back-pressure (`controller.pause()` until `drain`); no stream wrappers. Buffered
 * (a route with `onResponseBody` hooks): a `BufferedExchange` (that path's dispatch handler)
 * collects the body up to `responseBodyLimit`; `respondBody` passes it through the hooks and
 * sends it.
 */
import type { TrafficObserver } from '../../inventory/observer.js'
import type { Dispatcher } from 'undici'
import type { GatewayContext } from '../context.js'
import { GatewayError } from '../errors.js'
import type { ResponseHead } from '../pipeline/context.js'
import { upstreamHeaders, withoutHopByHop } from './headers.js'
import { BufferedExchange } from './buffered-exchange.js'
import { Exchange } from './exchange.js'
import { BodyLimiter, bufferBody, shouldBuffer } from './request-body.js'
import { upstreamPath } from './target-path.js'
import type { Responder } from '../respond.js'
import type { CompiledRoute } from '../runtime.js'
import type { UpstreamTarget } from './upstream.js'

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

export class Forwarder {
  private readonly responder: Responder
  private readonly draining: () => boolean
  /** inventory: bounded copies of sampled response bodies (src/inventory/observer.ts). */
  inventory: TrafficObserver | undefined = undefined

  constructor(responder: Responder, draining: () => boolean) {
    this.responder = responder
    this.draining = draining
  }

  /**
   * Forwards a request that passed the request phase: the declared size against the body limit,
   * the client's share of upstream requests, then (for a body that fits the route's buffer) the
   * whole body read before an upstream connection is taken; then `send`.
   */
  forward(ctx: GatewayContext): void {
    const route = ctx.route as CompiledRoute
    const cl = ctx.req.headers['content-length']
    if (ctx.body === undefined && cl !== undefined && Number(cl) > ctx.bodyLimit) {
      this.responder.fail(
        ctx,
        new GatewayError('GW_ERR_BODY_TOO_LARGE', { detail: `limit is ${ctx.bodyLimit} bytes` }),
      )
      return
    }
    if (!this.admitClient(ctx)) {
      this.responder.fail(
        ctx,
        new GatewayError('GW_ERR_CONCURRENCY_LIMITED', {
          detail: 'too many requests from this client waiting on the upstream',
          headers: { 'retry-after': '1' },
        }),
      )
      return
    }
    const rb = route.config.requestBuffering
    if (!shouldBuffer(ctx, rb.maxBytes)) {
      this.send(ctx)
      return
    }
    bufferBody(ctx, rb.maxBytes, rb.idleTimeoutMs).then(
      (b) => {
        if ('stream' in b) ctx.bodyStream = b.stream
        if (ctx.res.destroyed) return // the client went away while sending its body
        this.send(ctx)
      },
      (err: unknown) => this.responder.fail(ctx, err),
    )
  }

  /** Sends the request to a target of the route's upstream (again, on a retry). */
  send(ctx: GatewayContext): void {
    const route = ctx.route as CompiledRoute
    const req = ctx.req
    const target = route.upstream.pick(ctx.target)
    ctx.target = target
    ctx.attempts++
    const path = upstreamPath(ctx, route, target)
    let body: Dispatcher.DispatchOptions['body'] = null
    if (ctx.body !== undefined) body = ctx.body
    else {
      const stream = ctx.bodyStream ?? req
      const cl = req.headers['content-length']
      if (cl !== undefined) {
        if (cl !== '0') body = stream
      } else if (req.headers['transfer-encoding'] !== undefined) {
        body = Number.isFinite(ctx.bodyLimit) ? stream.pipe(new BodyLimiter(ctx.bodyLimit, ctx)) : stream
      }
    }
    const traceparent = ctx.trace?.startUpstream(ctx.method, target.origin, path, ctx.attempts)
    const headers = upstreamHeaders(ctx, target, traceparent)
    const method = ctx.method as Dispatcher.HttpMethod
    ctx.upstreamStart = performance.now()
    const canRetry = body === null
    if (route.bodyHooks.length > 0) {
      // Buffered: the body is collected by a dispatch handler, then `respondBody`.
      const limit = route.config.responseBodyLimit
      target.pool.dispatch({ path, method, headers, body }, new BufferedExchange(ctx, this, canRetry, limit))
      return
    }
    target.pool.dispatch({ path, method, headers, body }, new Exchange(ctx, this, canRetry))
  }

  /** Requests waiting on upstreams, per client address (entries removed at zero: bounded by in-flight requests). */
  private readonly perClient = new Map<string, number>()

  private admitClient(ctx: GatewayContext): boolean {
    const max = ctx.runtime.config.proxy.maxUpstreamRequestsPerClient
    if (max === 0) return true
    const n = this.perClient.get(ctx.clientIp) ?? 0
    if (n >= max) return false
    this.perClient.set(ctx.clientIp, n + 1)
    ctx.holdsUpstreamSlot = true
    return true
  }

  /** The request finished: its share of upstream requests is free again. */
  release(ctx: GatewayContext): void {
    if (!ctx.holdsUpstreamSlot) return
    ctx.holdsUpstreamSlot = false
    const n = (this.perClient.get(ctx.clientIp) ?? 1) - 1
    if (n <= 0) this.perClient.delete(ctx.clientIp)
    else this.perClient.set(ctx.clientIp, n)
  }

  get audit(): Responder['audit'] {
    return this.responder.audit
  }

  /** The response phase on an upstream head (hop-by-hop headers removed first). */
  head(ctx: GatewayContext, status: number, headers: ResponseHead['headers']): ResponseHead {
    return this.responder.head(ctx, status, withoutHopByHop(headers), false)
  }

  /** The whole upstream body arrived (buffered path): the response phase, the body hooks, then send. */
  async respondBody(
    ctx: GatewayContext,
    status: number,
    headers: ResponseHead['headers'],
    upstreamBody: Buffer,
    healthy: boolean,
  ): Promise<void> {
    const route = ctx.route as CompiledRoute
    const res = ctx.res
    try {
      let body = upstreamBody
      const head = this.head(ctx, status, headers)
      // Body hooks never decode: one that rewrites a body refuses an encoded one, so a body that
      // is still encoded keeps its Content-Encoding (dropping it would hand the client gzip bytes
      // as if they were the plain body).
      for (const hook of route.bodyHooks) {
        const out = hook(ctx, head, body)
        // Most hooks answer synchronously: no promise hop for them.
        body = out instanceof Promise ? await out : out
      }
      this.inventory?.responseTee(ctx, head.status, head.headers)?.push(body) // inventory:
      if (head.headers['content-length'] !== undefined || status !== 204) {
        head.headers['content-length'] = body.length
      }
      if (healthy) route.upstream.reportSuccess(ctx.target as UpstreamTarget)
      const hold = this.responder.audit?.beforeResponse(ctx, head.status)
      if (hold !== undefined) await hold
      if (res.headersSent || res.destroyed) return
      res.writeHead(head.status, head.headers as Record<string, string>)
      res.end(ctx.method === 'HEAD' ? undefined : body)
    } catch (err) {
      this.responder.fail(ctx, err)
    }
  }

  /** The upstream failed, or its body passed the inspection limit, while the body was read (buffered path). */
  bodyFailed(ctx: GatewayContext, err: unknown): void {
    // Nothing was sent yet: the same answers as a failure before the head (502/504, counted and
    // logged as an upstream failure), never a retry (the upstream has begun to answer).
    this.failed(ctx, err, false)
  }

  /**
   * The upstream exchange failed. A connection that could not be made is retried on another
   * target for an idempotent request without a body (up to the upstream's `retries`); anything
   * else becomes the matching problem, or cuts a response already under way.
   */
  failed(ctx: GatewayContext, err: unknown, canRetry: boolean): void {
    const res = ctx.res
    const fail = (e: unknown) => this.responder.fail(ctx, e)
    if (ctx.bodyTooLarge) {
      fail(
        new GatewayError('GW_ERR_BODY_TOO_LARGE', {
          detail: `limit is ${ctx.bodyLimit} bytes`,
          closeConnection: true,
        }),
      )
      return
    }
    if (err instanceof GatewayError) {
      fail(err)
      return
    }
    const upstream = (ctx.route as CompiledRoute).upstream
    const target = ctx.target as UpstreamTarget
    const metrics = this.responder.metrics
    const code = (err as { code?: string }).code ?? ''
    if (res.destroyed || (ctx.req.destroyed && code === 'UND_ERR_ABORTED')) {
      // The client went away; undici was told to abort. Nothing to answer.
      metrics.upstreamErrors.labels(upstream.name, 'client_aborted').inc()
      return
    }
    const kind = errorKind(code)
    metrics.upstreamErrors.labels(upstream.name, kind).inc()
    if (kind === 'connect' || kind === 'timeout') upstream.reportFailure(target, code)
    if (res.headersSent) {
      // Mid-stream failure: the status is gone; cut the response so the client sees it fail.
      this.responder.logger.warn(
        { requestId: ctx.id, upstream: upstream.name, code },
        'upstream failed mid-response',
      )
      ctx.decision = 'error'
      ctx.errorCode = 'GW_ERR_UPSTREAM_UNAVAILABLE'
      res.destroy()
      return
    }
    const retry =
      kind === 'connect' &&
      canRetry &&
      IDEMPOTENT.has(ctx.method) &&
      ctx.attempts <= upstream.config.retries &&
      !this.draining()
    if (retry) {
      this.send(ctx)
      return
    }
    this.responder.logger.warn(
      { requestId: ctx.id, upstream: upstream.name, target: target.origin, code },
      'upstream request failed',
    )
    const gwCode =
      kind === 'timeout'
        ? 'GW_ERR_UPSTREAM_TIMEOUT'
        : kind === 'protocol'
          ? 'GW_ERR_UPSTREAM_BAD_RESPONSE'
          : 'GW_ERR_UPSTREAM_UNAVAILABLE'
    fail(new GatewayError(gwCode, { cause: err }))
  }
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
