/**
 * HTTP/2 on a listener. The listener's node:http / node:https server stays what it is for
 * HTTP/1.1 (same parser options, same error answers); connections that speak HTTP/2 are handed
 * to one node:http2 server per listener, whose requests go through the same gateway core:
 *
 * - TLS: ALPN offers `h2` then `http/1.1`; a connection that chose `h2` goes to the HTTP/2
 *   server, any other to the HTTPS server (`dispatchAlpn`);
 * - plain: a connection that opens with the HTTP/2 connection preface (prior knowledge, h2c) goes
 *   to the HTTP/2 server, any other to the HTTP server (`sniffPreface`). There is no
 *   `Upgrade: h2c` (RFC 9113 removed it; the HTTP/1 side answers it 501).
 *
 * Per session: SETTINGS_MAX_CONCURRENT_STREAMS and SETTINGS_MAX_HEADER_LIST_SIZE from the
 * listener config (the list size is also enforced by hygiene, since node:http2 only advertises
 * it), an idle timeout (no open stream for `keepAliveTimeoutMs`: GOAWAY), a request timeout per
 * stream (`requestTimeoutMs`: 408), and a cap on streams the client cancels (rapid reset,
 * CVE-2023-44487): more than `rapidReset.maxResets` streams reset by the client before their
 * response finished, within `rapidReset.intervalMs`, and the session is closed with
 * GOAWAY(ENHANCE_YOUR_CALM). A stream already reset when its request event arrives is counted
 * and never reaches the gateway. nghttp2 (Node's HTTP/2 library) has its own limits beside
 * these: a stream reset rate (burst 1000, then about 33 a second: GOAWAY), CONTINUATION frames
 * per header block (GOAWAY, the 2024 CONTINUATION flood), a header block of at most 64 KiB, and
 * invalid frames and refused streams per session (`maxSessionInvalidFrames`,
 * `maxSessionRejectedStreams`); see docs/http2.md.
 */
import type http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import http2 from 'node:http2'
import type https from 'node:https'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import type { ListenerConfig } from '../../config/schema.js'
import { requestIdFor } from '../client-ip.js'
import { kCtx, type ResWithCtx } from '../context.js'
import { GatewayError, toProblem } from '../errors.js'
import type { Gateway, ListenerInfo } from '../gateway.js'
import type { GatewayMetrics } from '../metrics.js'
import { H2Request, H2Response } from './messages.js'

/** What the listener does with HTTP/2 requests (the gateway core, through server.ts). */
export interface H2Handlers {
  request(req: H2Request, res: H2Response): void
  /** CONNECT: answered by the gateway (405). */
  connect(req: H2Request, res: H2Response): void
  /** An Expect other than 100-continue: answered by the gateway (417). */
  checkExpectation(req: H2Request, res: H2Response): void
  /** The request body did not arrive within requestTimeoutMs. */
  timeout(req: H2Request, res: H2Response): void
  /** A session was closed for cancelling too many streams. */
  flood?(remote: string | undefined): void
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

interface SessionState {
  /** Closed for cancelling too many streams (GOAWAY sent). */
  flooded: boolean
  open: number
  idle: NodeJS.Timeout | undefined
  windowStart: number
  resets: number
}

const kState = Symbol('portcullis.h2.session')
type Session = http2.ServerHttp2Session & { [kState]?: SessionState }
/** A stream's session (node:http2 forgets it once the stream is destroyed). */
const kSession = Symbol('portcullis.h2.stream-session')
type Stream = http2.ServerHttp2Stream & { [kSession]?: Session }

export class H2Front {
  readonly server: http2.Http2Server
  private readonly sessions = new Set<Session>()
  private readonly l: ListenerConfig
  private readonly handlers: H2Handlers
  private readonly logger: Logger
  private accepting = true

  constructor(l: ListenerConfig, handlers: H2Handlers, logger: Logger) {
    const cfg = l.http2
    if (cfg === undefined) throw new Error(`listener ${l.name} has no http2 settings`)
    this.l = l
    this.handlers = handlers
    this.logger = logger
    this.server = http2.createServer({
      settings: {
        maxConcurrentStreams: cfg.maxConcurrentStreams,
        maxHeaderListSize: cfg.maxHeaderListSize,
        enablePush: false,
      },
      // Node resets a stream with more fields than this (ENHANCE_YOUR_CALM), pseudo-headers and
      // cookie crumbs included; below it, hygiene counts the fields itself and answers 431.
      maxHeaderListPairs: 2 * l.maxHeaderCount + 8,
      Http2ServerRequest: H2Request,
      Http2ServerResponse: H2Response as typeof http2.Http2ServerResponse,
    })
    // The compatibility layer builds our classes (the options above); the events' types are the base ones.
    const wrap =
      (h: (req: H2Request, res: H2Response) => void) =>
      (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) =>
        this.onStream(req as H2Request, res as H2Response, h)
    this.server.on(
      'request',
      wrap((req, res) => handlers.request(req, res)),
    )
    this.server.on(
      'connect',
      wrap((req, res) => handlers.connect(req, res)),
    )
    this.server.on(
      'checkExpectation',
      wrap((req, res) => handlers.checkExpectation(req, res)),
    )
    this.server.on('session', (s: Session) => this.onSession(s))
    this.server.on('sessionError', (err: Error) => logger.debug({ err: err.message }, 'http2 session error'))
  }

  /** Hands a connection (TLS with ALPN h2, or plain with the preface) to the HTTP/2 server. */
  accept(socket: Socket): void {
    this.server.emit('connection', socket)
  }

  /**
   * A plain listener: connections that open with the HTTP/2 preface go to the HTTP/2 server,
   * others to `server` (its own connection listener, unchanged). A connection that sends
   * nothing is closed after `headersTimeoutMs`.
   */
  sniffPreface(server: http.Server): void {
    const h1 = server.listeners('connection') as ((this: http.Server, s: Socket) => void)[]
    server.removeAllListeners('connection')
    server.on('connection', (socket: Socket) => {
      let buf: Buffer = Buffer.alloc(0)
      const onError = () => socket.destroy()
      const timer = setTimeout(() => socket.destroy(), this.l.headersTimeoutMs)
      const onData = (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
        const n = Math.min(buf.length, PREFACE.length)
        const h2 = buf.compare(PREFACE, 0, n, 0, n) === 0
        if (h2 && buf.length < PREFACE.length) return
        clearTimeout(timer)
        socket.off('data', onData)
        socket.off('error', onError)
        socket.off('close', onClose)
        socket.pause()
        socket.unshift(buf)
        if (h2) this.accept(socket)
        else {
          for (const f of h1) f.call(server, socket)
          socket.resume()
        }
      }
      const onClose = () => clearTimeout(timer)
      socket.on('error', onError)
      socket.on('close', onClose)
      socket.on('data', onData)
    })
  }

  /** A TLS listener: connections whose ALPN chose h2 go to the HTTP/2 server, others to `server`. */
  dispatchAlpn(server: https.Server): void {
    const h1 = server.listeners('secureConnection') as ((this: https.Server, s: TLSSocket) => void)[]
    server.removeAllListeners('secureConnection')
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') this.accept(socket)
      else for (const f of h1) f.call(server, socket)
    })
  }

  /** Graceful: GOAWAY to every session (streams under way finish); new sessions are closed at once. */
  goAway(): void {
    this.accepting = false
    for (const s of this.sessions) if (!s.closed) s.close()
  }

  /** Closes sessions with no open stream. */
  closeIdle(): void {
    for (const s of this.sessions) if ((s[kState]?.open ?? 0) === 0) s.close()
  }

  /** Closes every session now. */
  destroyAll(): void {
    this.accepting = false
    for (const s of this.sessions) s.destroy()
  }

  /** Sessions open now (tests, metrics). */
  get sessionCount(): number {
    return this.sessions.size
  }

  private onSession(s: Session): void {
    const st: SessionState = { flooded: false, open: 0, idle: undefined, windowStart: 0, resets: 0 }
    s[kState] = st
    this.sessions.add(s)
    // Before the compatibility layer's listener, which turns the stream into a request at once.
    s.prependListener('stream', (stream: Stream) => {
      stream[kSession] = s
    })
    s.once('close', () => {
      clearTimeout(st.idle)
      this.sessions.delete(s)
    })
    // An error on the session is reported as 'sessionError' on the server; the session closes.
    s.on('error', () => undefined)
    if (!this.accepting) {
      s.close()
      return
    }
    this.armIdle(s, st)
  }

  private armIdle(s: Session, st: SessionState): void {
    const ms = this.l.keepAliveTimeoutMs
    if (ms <= 0 || s.closed || s.destroyed) return
    clearTimeout(st.idle)
    st.idle = setTimeout(() => {
      if (st.open === 0 && !s.closed) s.close()
    }, ms)
    st.idle.unref()
  }

  private onStream(req: H2Request, res: H2Response, handle: (req: H2Request, res: H2Response) => void): void {
    const stream = res.stream as Stream
    const s = stream[kSession]
    const st = s?.[kState]
    if (stream.destroyed || stream.closed) {
      // Cancelled before the gateway saw it: counted, never handled.
      if (s !== undefined && st !== undefined) this.cancelled(s, st)
      return
    }
    if (st !== undefined) {
      st.open++
      clearTimeout(st.idle)
    }
    stream.once('close', () => {
      if (s === undefined || st === undefined) return
      st.open--
      // Cancelled by the client: reset with an error code, or (any code) before the gateway
      // ended the response. Resets the gateway made itself do not count.
      const code = stream.rstCode ?? http2.constants.NGHTTP2_NO_ERROR
      if (!res.resetByGateway && (code !== http2.constants.NGHTTP2_NO_ERROR || !res.ended))
        this.cancelled(s, st)
      if (st.open === 0) this.armIdle(s, st)
    })
    const ms = this.l.requestTimeoutMs
    if (ms > 0 && !req.complete) {
      const timer = setTimeout(() => {
        if (!req.complete && !stream.destroyed) this.handlers.timeout(req, res)
      }, ms)
      timer.unref()
      const clear = () => clearTimeout(timer)
      req.once('end', clear)
      stream.once('close', clear)
    }
    handle(req, res)
  }

  /** A stream the client reset before its response finished: the rapid reset count. */
  private cancelled(s: Session, st: SessionState): void {
    const cfg = this.l.http2?.rapidReset
    if (cfg === undefined || s.destroyed || st.flooded) return
    const now = performance.now()
    if (now - st.windowStart > cfg.intervalMs) {
      st.windowStart = now
      st.resets = 0
    }
    st.resets++
    if (st.resets <= cfg.maxResets) return
    const remote = s.socket?.remoteAddress
    this.logger.warn(
      { listener: this.l.name, remote, resets: st.resets, intervalMs: cfg.intervalMs },
      'http2: session closed after too many cancelled streams (rapid reset)',
    )
    this.handlers.flood?.(remote)
    // GOAWAY now (nghttp2 then ignores new streams), the connection closed a little later: closing
    // it at once, while the client still writes, makes the kernel answer with a TCP reset that can
    // overtake the GOAWAY. destroy(code) sends GOAWAY with that code again (destroy(undefined, code)
    // sends NO_ERROR in Node 20 and 24).
    st.flooded = true
    s.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM)
    const destroyWithCode = s.destroy as unknown as (this: Session, code: number) => void
    setTimeout(() => {
      if (!s.destroyed) destroyWithCode.call(s, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM)
    }, 500).unref()
  }
}

/** The HTTP/2 handlers of a listener: every request through the gateway core, as over HTTP/1. */
export function gatewayH2Handlers(gateway: Gateway, info: ListenerInfo, metrics: GatewayMetrics): H2Handlers {
  // The compatibility objects stand in for node:http's (see messages.ts): the core's one boundary cast.
  const asH1 = (req: H2Request, res: H2Response) =>
    [req as unknown as IncomingMessage, res as unknown as ServerResponse] as const
  return {
    request: (req, res) => gateway.handle(...asH1(req, res), info),
    connect: (req, res) =>
      gateway.refuse(
        ...asH1(req, res),
        info,
        new GatewayError('GW_ERR_METHOD_NOT_ALLOWED', { detail: 'CONNECT is not proxied' }),
      ),
    checkExpectation: (req, res) =>
      gateway.refuse(...asH1(req, res), info, new GatewayError('GW_ERR_EXPECTATION_FAILED')),
    timeout: (_req, res) => {
      // As Node's requestTimeout over HTTP/1.1 (server.ts, onClientError): 408, the request's
      // log entry says so, the upstream exchange (if any) is aborted.
      const err = new GatewayError('GW_ERR_REQUEST_TIMEOUT')
      metrics.denials.labels(err.code).inc()
      const ctx = (res as unknown as ResWithCtx)[kCtx]
      ctx?.answeredRaw(err)
      if (res.headersSent || res.destroyed) {
        res.destroy()
        return
      }
      const id = ctx?.id ?? requestIdFor(undefined)
      const body = JSON.stringify(toProblem(err, id).problem)
      res.writeHead(err.status, {
        'content-type': 'application/problem+json',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        [ctx?.runtime.requestIdHeader ?? 'x-request-id']: id,
      })
      res.end(body)
    },
    flood: () => metrics.http2SessionsClosed.labels('rapid_reset').inc(),
  }
}
