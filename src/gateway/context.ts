/**
 * The request context: per-request state that travels through the phases (the policies' view is
 * the RequestContext interface in pipeline/context.ts). Built once per request by the gateway.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import type { GatewayError } from './errors.js'
import { kHttp2, type MaybeH2 } from './http2/messages.js'
import type { Decision, Principal, RequestContext } from './pipeline/context.js'
import { type Params, parseParams } from './query.js'
import type { CompiledRoute, Runtime } from './runtime.js'
import { readRequestBody } from './upstream/request-body.js'
import type { UpstreamTarget } from './upstream/upstream.js'

/** The context of a response, set on it by the gateway (so Node's events reach it without closures). */
export const kCtx = Symbol('portcullis.ctx')
export type ResWithCtx = ServerResponse & { [kCtx]?: GatewayContext }

export class GatewayContext implements RequestContext {
  readonly id: string
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly method: string
  path = '' // set by the gateway once the target is canonical; '' until then
  query = ''
  host = ''
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
  readonly runtime: Runtime
  upstreamHeaderEdits: Map<string, string | undefined> | undefined = undefined
  responseHeaderAdds: [string, string][] | undefined = undefined
  target: UpstreamTarget | undefined = undefined
  readonly fromTrustedProxy: boolean
  decision: Decision = 'allowed'
  bodyTooLarge = false
  /** A request body streamed from a partial buffer (chunked, larger than the route's buffer). */
  bodyStream: Readable | undefined = undefined
  /** Set when the listener answered this request on the raw socket (a framing error mid-body). */
  rawAnswer: { status: number; code: string } | undefined = undefined
  /** The request counts against its client's share of upstream requests (see Forwarder). */
  holdsUpstreamSlot = false
  /** Aborts the upstream exchange (set once undici starts it). */
  abortUpstream: ((reason: Error) => void) | undefined = undefined
  /** The streaming upstream exchange in progress (its undici controller). */
  exchange: { abort(reason: Error): void; resume(): void } | undefined = undefined
  attempts = 0
  readonly bytesWrittenAtStart: number
  readonly socket: IncomingMessage['socket']
  /** http2: the request came over HTTP/2 (its socket is the session's, shared by its streams). */
  readonly h2: boolean
  // What the log phase needs of the response, taken when it finished (the log phase itself runs
  // a little later, batched; see LogPhase).
  logStatus = 0
  logDurationMs = 0
  logAborted = false
  logBytesOut = 0
  private params: Params | undefined = undefined
  private paramsOf = ''

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
    this.secure = secure
    this.id = id
    this.clientIp = clientIp
    this.fromTrustedProxy = trusted
    this.startTime = performance.now()
    this.socket = req.socket
    this.h2 = (req as MaybeH2)[kHttp2] !== undefined
    this.bytesWrittenAtStart = this.h2 ? 0 : (req.socket.bytesWritten ?? 0)
  }

  /** The listener answered on the raw socket with `err`: the log records that answer. */
  answeredRaw(err: GatewayError): void {
    this.rawAnswer = { status: err.status, code: err.code }
    this.errorCode = err.code
    this.decision = err.status >= 500 ? 'error' : 'denied'
    this.abortUpstream?.(new Error('request framing error'))
  }

  queryParams(): Params {
    if (this.params === undefined || this.paramsOf !== this.query) {
      this.params = parseParams(this.query, { maxParams: this.runtime.config.proxy.maxQueryParams })
      this.paramsOf = this.query
    }
    return this.params
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
    // The route's idle timeout bounds a policy's read as it bounds buffering before forwarding.
    const idleMs = this.route?.config.requestBuffering.idleTimeoutMs
    return readRequestBody(this, { limit: this.bodyLimit, idleMs, onChunk }).then((r) =>
      'whole' in r ? r.whole : Promise.reject(new Error('unreachable: no spill without spillAt')),
    )
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
