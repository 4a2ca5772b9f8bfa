/**
 * Answers the gateway makes itself. `fail` is the one place that turns an error into a
 * problem+json response (the renderer is errors.ts' toProblem); every gateway-made head goes
 * through the response phase and, with the audit log's `fsync: always`, waits for its record.
 */
import type { Logger } from 'pino'
import type { RequestAudit } from '../audit/request.js'
import { markClosing } from './connection.js'
import type { GatewayContext } from './context.js'
import { toProblem } from './errors.js'
import type { GatewayMetrics } from './metrics.js'
import { PolicyAnswer } from './pipeline/answer.js' // cors:
import type { ResponseHead } from './pipeline/context.js'
import { runResponsePhase } from './phases.js'

export interface ResponderDeps {
  logger: Logger
  metrics: GatewayMetrics
  audit: RequestAudit | undefined
  /** True while the gateway drains for shutdown: every answer then closes its connection. */
  draining: () => boolean
}

export class Responder {
  readonly logger: Logger
  readonly metrics: GatewayMetrics
  readonly audit: RequestAudit | undefined
  private readonly draining: () => boolean

  constructor(deps: ResponderDeps) {
    this.logger = deps.logger
    this.metrics = deps.metrics
    this.audit = deps.audit
    this.draining = deps.draining
  }

  /** The response phase on a head (see runResponsePhase). */
  head(ctx: GatewayContext, status: number, headers: ResponseHead['headers'], local: boolean): ResponseHead {
    return runResponsePhase(ctx, { status, headers, local }, this.logger, this.draining())
  }

  /** Denies or fails the request with a problem+json answer (or cuts a response already started). */
  fail(ctx: GatewayContext, err: unknown): void {
    const res = ctx.res
    if (ctx.rawAnswer !== undefined) return // the listener answered already (server.ts)
    // cors: a request hook answered the request itself (a CORS preflight): not an error, no upstream
    if (err instanceof PolicyAnswer) {
      const head = this.head(ctx, err.status, { ...err.headers, 'content-length': 0 }, true)
      if (!res.headersSent && !res.destroyed)
        res.writeHead(head.status, head.headers as Record<string, string>)
      res.end()
      return
    }
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
      head = this.head(ctx, error.status, headers, true)
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
}

function sendProblem(ctx: GatewayContext, head: ResponseHead, body: string, close: boolean): void {
  const res = ctx.res
  if (res.headersSent || res.destroyed) return
  res.writeHead(head.status, head.headers as Record<string, string>)
  res.end(ctx.method === 'HEAD' ? undefined : body)
  // http2: a stream, not the connection, ends with the answer (an unread body: RST_STREAM(NO_ERROR), see H2Response).
  if (close && !ctx.h2) {
    markClosing(ctx.socket)
    res.once('finish', () => ctx.socket.destroySoon())
  }
}
