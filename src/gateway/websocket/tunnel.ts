/**
 * WebSocket pass-through on routes with `websocket:` (docs/websocket.md).
 *
 * The handshake (a GET with `Upgrade: websocket`, which Node hands to the listener's 'upgrade'
 * event with the raw socket) is given a ServerResponse on that socket (`handshakeResponse`) and
 * goes through the gateway core like any request: hygiene, routing, the route's request phase
 * (authentication, ip-filter, rate limits, authorize…). A refused handshake gets the usual
 * problem+json answer (401, 403, 429…) and the connection is closed: no upgrade ever happens. A
 * handshake that passes is sent to the route's upstream (undici `upgrade`, over the target's own
 * connect options: TLS, CA); the upstream's 101 is relayed to the client, and from then on the
 * gateway relays bytes both ways without reading them (frames, extensions and subprotocols are
 * the two ends' business).
 *
 * Per route: at most `maxConnections` tunnels open, `maxConnectionsPerClient` per client address
 * (a table with one entry per client that has a tunnel open: bounded by the caps), an idle
 * timeout (no byte either way), and `retain` closes the tunnels of routes a reload removed (or
 * whose WebSocket support it turned off).
 */
import http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { GatewayContext } from '../context.js'
import { GatewayError } from '../errors.js'
import type { CompiledRoute, Runtime } from '../runtime.js'
import { upstreamHeaders } from '../upstream/headers.js'
import { upstreamPath } from '../upstream/target-path.js'

/** A WebSocket opening handshake (RFC 6455 §4.1: GET, `Upgrade: websocket`). */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const up = req.headers.upgrade
  return req.method === 'GET' && typeof up === 'string' && up.trim().toLowerCase() === 'websocket'
}

/**
 * A ServerResponse written to an upgrade request's raw socket, so that the core answers a refused
 * handshake as it answers any request (status, problem body, request id, log). The connection
 * closes after such an answer. Undefined (and the connection closed) when the handshake was
 * pipelined behind a response still in progress.
 */
export function handshakeResponse(req: IncomingMessage, socket: Duplex): ServerResponse | undefined {
  const res = new http.ServerResponse(req)
  res.shouldKeepAlive = false
  try {
    res.assignSocket(socket as Socket)
  } catch {
    // ERR_HTTP_SOCKET_ASSIGNED: the handshake was pipelined behind a request whose response is
    // still being written on this socket. Nothing can be answered in order: the connection is closed.
    socket.destroy()
    return undefined
  }
  res.once('finish', () => (socket as Socket).destroySoon())
  return res
}

/**
 * What a handshake must look like before it is routed (RFC 6455 §4.1): no body (bytes after the
 * head are WebSocket frames, and a body there would be relayed as such), a `Sec-WebSocket-Key` and
 * a `Sec-WebSocket-Version`. Throws a GatewayError (400).
 */
export function checkHandshake(req: IncomingMessage): void {
  const h = req.headers
  if (
    h['transfer-encoding'] !== undefined ||
    (h['content-length'] !== undefined && h['content-length'] !== '0')
  ) {
    throw new GatewayError('GW_ERR_BAD_REQUEST', { detail: 'a WebSocket handshake has no body' })
  }
  if (typeof h['sec-websocket-key'] !== 'string' || typeof h['sec-websocket-version'] !== 'string') {
    throw new GatewayError('GW_ERR_BAD_REQUEST', {
      detail: 'a WebSocket handshake needs Sec-WebSocket-Key and Sec-WebSocket-Version',
    })
  }
}

/** Response fields that are not the upstream's to pass on (the 101's own are written here). */
const HOP_BY_HOP_101 = new Set([
  'connection',
  'upgrade',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'proxy-connection',
  'te',
  'trailer',
])

interface Tunnel {
  route: string
  close(reason: string): void
}

export class Tunnels {
  private readonly open = new Set<Tunnel>()
  private readonly perRoute = new Map<string, number>()
  /** `route \n client address` → tunnels open; entries removed at zero. */
  private readonly perClient = new Map<string, number>()
  private readonly logger: Logger

  constructor(logger: Logger) {
    this.logger = logger
  }

  /** Tunnels open now. */
  get size(): number {
    return this.open.size
  }

  /**
   * Connects a handshake that passed the request phase to the route's upstream and relays the
   * connection. `head` is what the client sent after its handshake (Node's 'upgrade' event).
   * Refusals and upstream failures go to `fail` (answered on the handshake's response).
   */
  connect(ctx: GatewayContext, head: Buffer, fail: (ctx: GatewayContext, err: unknown) => void): void {
    const route = ctx.route as CompiledRoute
    const cfg = route.config.websocket
    if (cfg === undefined) {
      fail(
        ctx,
        new GatewayError('GW_ERR_NOT_IMPLEMENTED', { detail: 'WebSocket is not enabled on this route' }),
      )
      return
    }
    const name = route.config.name
    const key = `${name}\n${ctx.clientIp}`
    if ((this.perRoute.get(name) ?? 0) >= cfg.maxConnections) {
      fail(
        ctx,
        new GatewayError('GW_ERR_OVERLOADED', {
          detail: 'too many WebSocket connections on this route',
          headers: { 'retry-after': '5' },
        }),
      )
      return
    }
    if ((this.perClient.get(key) ?? 0) >= cfg.maxConnectionsPerClient) {
      fail(
        ctx,
        new GatewayError('GW_ERR_CONCURRENCY_LIMITED', {
          detail: 'too many WebSocket connections from this client',
          headers: { 'retry-after': '5' },
        }),
      )
      return
    }
    // The slot is taken now, before the upstream answers, so concurrent handshakes cannot exceed a cap.
    const release = this.take(name, key)
    const target = route.upstream.pick()
    ctx.target = target
    const abort = new AbortController()
    ctx.abortUpstream = (reason) => abort.abort(reason)
    target.pool
      .upgrade({
        path: upstreamPath(ctx, route, target),
        method: 'GET',
        headers: upstreamHeaders(ctx, target),
        protocol: 'websocket',
        signal: abort.signal,
      })
      .then(
        ({ headers, socket: upstream }) => {
          ctx.abortUpstream = undefined
          this.relay(ctx, upstream as Socket, headers, head, cfg.idleTimeoutMs, release)
        },
        (err: unknown) => {
          release()
          ctx.abortUpstream = undefined
          fail(
            ctx,
            new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE', {
              detail: 'the upstream did not accept the WebSocket handshake',
              cause: err,
            }),
          )
        },
      )
  }

  /** Closes the tunnels whose route `runtime` no longer has (or has without `websocket`). */
  retain(runtime: Runtime): number {
    const ws = new Set(
      runtime.routes.filter((r) => r.config.websocket !== undefined).map((r) => r.config.name),
    )
    let closed = 0
    for (const t of [...this.open]) {
      if (ws.has(t.route)) continue
      t.close('route removed by a reload')
      closed++
    }
    if (closed > 0) this.logger.info({ closed }, 'websocket: connections of removed routes closed')
    return closed
  }

  /** Closes every tunnel (shutdown). */
  closeAll(): void {
    for (const t of [...this.open]) t.close('shutdown')
  }

  private take(route: string, key: string): () => void {
    this.perRoute.set(route, (this.perRoute.get(route) ?? 0) + 1)
    this.perClient.set(key, (this.perClient.get(key) ?? 0) + 1)
    let done = false
    return () => {
      if (done) return
      done = true
      const r = (this.perRoute.get(route) ?? 1) - 1
      if (r <= 0) this.perRoute.delete(route)
      else this.perRoute.set(route, r)
      const c = (this.perClient.get(key) ?? 1) - 1
      if (c <= 0) this.perClient.delete(key)
      else this.perClient.set(key, c)
    }
  }

  private relay(
    ctx: GatewayContext,
    upstream: Socket,
    headers: http.IncomingHttpHeaders,
    head: Buffer,
    idleMs: number,
    release: () => void,
  ): void {
    const client = ctx.socket
    const res = ctx.res
    if (client.destroyed || res.destroyed) {
      upstream.destroy()
      release()
      return
    }
    let out = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    for (const k in headers) {
      if (HOP_BY_HOP_101.has(k)) continue
      const v = headers[k]
      for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) out += `${k}: ${one}\r\n`
    }
    out += `${ctx.runtime.requestIdHeader}: ${ctx.id}\r\n\r\n`
    client.write(out)
    // The handshake request is done: its log entry says 101 now; the tunnel lives on without it.
    ctx.rawAnswer = { status: 101, code: '' }
    res.detachSocket(client)
    res.emit('close')

    const route = (ctx.route as CompiledRoute).config.name
    const started = performance.now()
    let closed = false
    const tunnel: Tunnel = {
      route,
      close: (reason) => {
        if (closed) return
        closed = true
        this.open.delete(tunnel)
        release()
        client.destroy()
        upstream.destroy()
        this.logger.debug(
          { requestId: ctx.id, route, reason, durationMs: Math.round(performance.now() - started) },
          'websocket: connection closed',
        )
      },
    }
    this.open.add(tunnel)
    // No byte in either direction for idleMs (the client socket sees both: it reads one way and
    // writes the other).
    client.setTimeout(idleMs, () => tunnel.close('idle'))
    client.on('error', () => tunnel.close('client error'))
    upstream.on('error', () => tunnel.close('upstream error'))
    client.on('close', () => tunnel.close('client closed'))
    upstream.on('close', () => tunnel.close('upstream closed'))
    if (head.length > 0) upstream.write(head)
    upstream.pipe(client)
    client.pipe(upstream)
  }
}
