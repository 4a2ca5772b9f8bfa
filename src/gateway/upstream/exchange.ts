/**
 * The undici dispatch handler of one streaming upstream attempt: the upstream's head goes through
 * the response phase and `writeHead`, body chunks go straight to the client with back-pressure
 * (`controller.pause()` until `drain`); no stream wrappers. A failure goes back to its owner (the
 * Forwarder), which retries or answers.
 */
import type { Dispatcher } from 'undici'
import type { BodyTee, TrafficObserver } from '../../inventory/observer.js'
import { type GatewayContext, kCtx, type ResWithCtx } from '../context.js'
import type { ResponseHead } from '../pipeline/context.js'
import type { Responder } from '../respond.js'
import type { UpstreamTarget } from './upstream.js'

/** What an exchange needs of the Forwarder that started it. */
export interface ExchangeOwner {
  readonly audit: Responder['audit']
  readonly inventory: TrafficObserver | undefined
  head(ctx: GatewayContext, status: number, headers: ResponseHead['headers']): ResponseHead
  failed(ctx: GatewayContext, err: unknown, canRetry: boolean): void
}

/**
 * The upstream's response head arrived (both paths): the time to the head (metrics, access log),
 * and passive health: a 502/503/504 answer counts against the target. Returns whether the answer
 * is healthy (only then does the end of the exchange reset the target's failure count).
 */
export function headArrived(ctx: GatewayContext, status: number): boolean {
  ctx.upstreamMs = performance.now() - ctx.upstreamStart
  if (status === 502 || status === 503 || status === 504) {
    ctx.route?.upstream.reportFailure(ctx.target as UpstreamTarget, `status ${status}`)
    return false
  }
  return true
}

/** The undici dispatch handler of one streaming attempt: the upstream response goes straight into `res`. */
export class Exchange implements Dispatcher.DispatchHandler {
  private readonly ctx: GatewayContext
  private readonly fwd: ExchangeOwner
  private readonly canRetry: boolean
  private controller: Dispatcher.DispatchController | undefined = undefined
  /** Declared response body length while nothing is written; -1 unknown/streaming, -2 ended. */
  private wholeBodyBytes = -1
  /** inventory: a bounded copy of a sampled response body (undefined for most requests). */
  private invTee: BodyTee | undefined = undefined
  /** The answer was not a 502/503/504 (passive health). */
  private healthy = true

  constructor(ctx: GatewayContext, fwd: ExchangeOwner, canRetry: boolean) {
    this.ctx = ctx
    this.fwd = fwd
    this.canRetry = canRetry
  }

  abort(reason: Error): void {
    this.controller?.abort(reason)
  }

  resume(): void {
    this.controller?.resume()
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.ctx.res.destroyed) {
      controller.abort(new Error('client closed the connection'))
      return
    }
    this.ctx.exchange = this
    this.ctx.abortUpstream = abortExchange
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[]>,
  ): void {
    if (status < 200) return // 1xx informational: not forwarded
    const ctx = this.ctx
    const res = ctx.res
    this.healthy = headArrived(ctx, status)
    let head: ResponseHead
    try {
      head = this.fwd.head(ctx, status, headers)
    } catch (err) {
      controller.abort(err as Error)
      return
    }
    this.invTee = this.fwd.inventory?.responseTee(ctx, head.status, head.headers) // inventory:
    const cl = head.headers['content-length']
    this.wholeBodyBytes = typeof cl === 'string' ? Number(cl) : typeof cl === 'number' ? cl : -1
    const hold = this.fwd.audit?.beforeResponse(ctx, head.status)
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
    const res = this.ctx.res
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
      res.once('drain', resumeExchange)
    }
  }

  onResponseEnd(): void {
    if (this.wholeBodyBytes !== -2) this.ctx.res.end()
    if (this.healthy) this.ctx.route?.upstream.reportSuccess(this.ctx.target as UpstreamTarget)
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.ctx.abortUpstream = undefined
    this.fwd.failed(this.ctx, err, this.canRetry)
  }
}

function abortExchange(this: GatewayContext, reason: Error): void {
  this.exchange?.abort(reason)
}

function resumeExchange(this: ResWithCtx): void {
  this[kCtx]?.exchange?.resume()
}
