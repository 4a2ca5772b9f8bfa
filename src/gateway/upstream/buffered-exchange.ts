/**
 * The undici dispatch handler of one buffered upstream attempt (a route with response body
 * hooks): the body is collected as it arrives, up to the route's `responseBodyLimit`, and handed
 * whole to its owner (the Forwarder), which runs the response phase and the body hooks and sends
 * it. It replaces undici's `request()` API on this path, which wrapped every response in a
 * Readable, an async iterator and an AbortController: on a 20 KB answer that machinery cost more
 * CPU than scanning the body (see docs/benchmarks.md, leak-guard).
 *
 * Outcomes match the `request()` path it replaces: a failure before the head goes to
 * `failed(ctx, err, canRetry)` (retry or a 502/504 problem); a failure while the body is read,
 * and a body over the limit (GW_ERR_UPSTREAM_BAD_RESPONSE), go to `bodyFailed`.
 */
import type { Dispatcher } from 'undici'
import type { GatewayContext } from '../context.js'
import { GatewayError } from '../errors.js'
import type { ResponseHead } from '../pipeline/context.js'
import { headArrived } from './exchange.js'

/** What a buffered exchange needs of the Forwarder that started it. */
export interface BufferedOwner {
  failed(ctx: GatewayContext, err: unknown, canRetry: boolean): void
  /** The whole body arrived: response phase, body hooks, send. */
  respondBody(
    ctx: GatewayContext,
    status: number,
    headers: ResponseHead['headers'],
    body: Buffer,
    healthy: boolean,
  ): void
  /** The upstream failed (or the body passed the limit) after its head. */
  bodyFailed(ctx: GatewayContext, err: unknown): void
}

/** The undici dispatch handler of one buffered attempt: the body is collected, then handed over whole. */
export class BufferedExchange implements Dispatcher.DispatchHandler {
  private readonly ctx: GatewayContext
  private readonly owner: BufferedOwner
  private readonly canRetry: boolean
  private readonly limit: number
  private controller: Dispatcher.DispatchController | undefined = undefined
  private status = 0
  private headers: ResponseHead['headers'] | undefined = undefined
  private readonly chunks: Buffer[] = []
  private size = 0
  /** The answer was not a 502/503/504 (passive health). */
  private healthy = true
  /** The outcome was handed to the owner (later events of this attempt are ignored). */
  private settled = false

  constructor(ctx: GatewayContext, owner: BufferedOwner, canRetry: boolean, limit: number) {
    this.ctx = ctx
    this.owner = owner
    this.canRetry = canRetry
    this.limit = limit
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
    this.ctx.abortUpstream = abortBuffered
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[]>,
  ): void {
    if (status < 200) return // 1xx informational: not forwarded
    this.healthy = headArrived(this.ctx, status)
    this.status = status
    this.headers = headers as ResponseHead['headers']
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return
    this.size += chunk.length
    if (this.size > this.limit) {
      this.settled = true
      this.chunks.length = 0
      controller.abort(new Error('response body over the inspection limit'))
      this.owner.bodyFailed(
        this.ctx,
        new GatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', {
          detail: 'response body over the inspection limit',
        }),
      )
      return
    }
    this.chunks.push(chunk)
  }

  onResponseEnd(): void {
    if (this.settled) return
    this.settled = true
    this.ctx.abortUpstream = undefined
    const c = this.chunks
    const body = c.length === 1 ? (c[0] as Buffer) : Buffer.concat(c, this.size)
    this.owner.respondBody(this.ctx, this.status, this.headers ?? {}, body, this.healthy)
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.settled) return
    this.settled = true
    this.ctx.abortUpstream = undefined
    if (this.headers === undefined) this.owner.failed(this.ctx, err, this.canRetry)
    else this.owner.bodyFailed(this.ctx, err)
  }
}

function abortBuffered(this: GatewayContext, reason: Error): void {
  this.exchange?.abort(reason)
}
