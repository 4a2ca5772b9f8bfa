/**
 * Thin node:http / node:https adapters: listener options (limits, timeouts, TLS), the handling of
 * requests Node's parser refuses (smuggling shapes, oversized heads), and the admin listener.
 */
import http from 'node:http'
import https from 'node:https'
import net, { type AddressInfo, type Socket } from 'node:net'
import type { Logger } from 'pino'
import type { AlertList } from '../detect/alerts.js'
import { type AdminApiOptions, createAdminApi, isAdminApiPath } from '../admin/api.js'
import { createDashboard, isDashboardPath } from '../dashboard/server.js'
import type { AdminConfig, ListenerConfig } from '../config/schema.js'
import type { Store } from '../stores/types.js'
import type { Gateway } from './gateway.js'
import { requestIdFor } from './client-ip.js'
import { kCtx, type ResWithCtx } from './context.js'
import { type ErrorCode, GatewayError, rawProblemResponse } from './errors.js'
import { gatewayH2Handlers, H2Front } from './http2/listener.js'
import type { GatewayMetrics } from './metrics.js'
import { isWebSocketUpgrade } from './websocket/tunnel.js'
import { ListenerTls, listenerTls } from './tls.js'

export interface RunningListener {
  name: string
  server: http.Server
  /** http2: the listener's HTTP/2 sessions (when `http2` is on). */
  h2?: H2Front
  url: string
  close(): Promise<void>
  /**
   * Stops accepting connections and leaves open ones alone (graceful shutdown); resolves when the
   * last one has closed. Absent on the admin listener.
   */
  stopAccepting?(): Promise<void>
}

/** What Node's parser error codes mean to a client. */
function clientErrorCode(code: string | undefined): ErrorCode {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'GW_ERR_HEADERS_TOO_LARGE'
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'GW_ERR_REQUEST_TIMEOUT'
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
    case 'HPE_INVALID_EOF_STATE':
    case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_STRICT':
      return 'GW_ERR_REQUEST_SMUGGLING'
    default:
      return 'GW_ERR_BAD_REQUEST'
  }
}

/** Answers a request the parser refused with a problem+json and closes the connection. */
function onClientError(logger: Logger, metrics: GatewayMetrics) {
  return (err: Error & { code?: string }, socket: Socket) => {
    const code = clientErrorCode(err.code)
    metrics.denials.labels(code).inc()
    logger.debug({ code, parserCode: err.code, remote: socket.remoteAddress }, 'client error')
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    // A response may already be under way on this socket (e.g. a bad chunk mid-body): cut it.
    // Likewise when the error is in a later pipelined request while an earlier, complete request
    // still awaits its response: a 400 written now would be read as that request's answer.
    const inProgress = (socket as Socket & { _httpMessage?: http.ServerResponse })._httpMessage
    if (inProgress && (inProgress.headersSent || inProgress.req?.complete)) {
      socket.destroy()
      return
    }
    // A request under way whose body broke the framing (a bad chunk mid-body): the client gets the
    // problem, and the request's log entry says so (not 499 "aborted", "allowed").
    const ctx = (inProgress as ResWithCtx | undefined)?.[kCtx]
    const error = new GatewayError(code)
    if (ctx !== undefined) ctx.answeredRaw(error)
    socket.end(rawProblemResponse(error, ctx?.id ?? requestIdFor(undefined)))
    socket.destroySoon()
  }
}

function listen(server: http.Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolvePromise, reject) => {
    const onError = (err: Error) => reject(err)
    server.once('error', onError)
    server.listen({ host, port }, () => {
      server.off('error', onError)
      resolvePromise(server.address() as AddressInfo)
    })
  })
}

/**
 * Stops accepting connections but, unlike http.Server#close (which also closes idle keep-alive
 * connections, racing any request a client is sending on one), leaves open connections alone.
 * Resolves when the last connection has closed.
 */
function stopAccepting(server: http.Server): Promise<void> {
  return new Promise((r) => {
    net.Server.prototype.close.call(server, () => r())
  })
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((r) => {
    server.close(() => r())
    server.closeIdleConnections()
  })
}

/** Starts one client-facing listener that hands requests to the gateway. */
export async function startListener(
  l: ListenerConfig,
  gateway: Gateway,
  deps: { logger: Logger; metrics: GatewayMetrics; baseDir: string },
): Promise<RunningListener> {
  const opts: http.ServerOptions = {
    maxHeaderSize: l.maxHeaderBytes,
    requestTimeout: l.requestTimeoutMs,
    headersTimeout: l.headersTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    requireHostHeader: false, // the gateway checks Host itself (parseHost), closing the connection
    joinDuplicateHeaders: false,
    insecureHTTPParser: false,
    connectionsCheckingInterval: 1000,
  }
  const info = {
    name: l.name,
    secure: l.tls !== undefined,
    maxHeaderCount: l.maxHeaderCount,
    maxHeaderListSize: l.http2?.maxHeaderListSize, // http2:
  }
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => gateway.handle(req, res, info)
  // tls: the profile, SNI certificates and their reload from disk live in tls.ts
  const tls = l.tls ? new ListenerTls(l.tls, deps.baseDir, deps.logger) : undefined
  // http2: HTTP/2 connections are handed to an HTTP/2 server (ALPN h2 on TLS, the preface on plain).
  const h2 = l.http2?.enabled
    ? new H2Front(l, gatewayH2Handlers(gateway, info, deps.metrics), deps.logger)
    : undefined
  const alpn = h2 ? { ALPNProtocols: ['h2', 'http/1.1'] } : {}
  const server = tls
    ? https.createServer({ ...opts, ...tls.serverOptions(), ...alpn }, handler)
    : http.createServer(opts, handler)
  if (tls) listenerTls.set(server as https.Server, tls)
  if (h2) {
    if (server instanceof https.Server) h2.dispatchAlpn(server)
    else h2.sniffPreface(server)
  }
  // Count headers ourselves (Node silently drops those over maxHeadersCount): keep one more.
  server.maxHeadersCount = l.maxHeaderCount + 1
  server.on('clientError', onClientError(deps.logger, deps.metrics))
  // No h2c (or other non-WebSocket) upgrades and no CONNECT tunnels: answered from the catalogue, then closed.
  const refuseRaw = (code: ErrorCode, detail: string) => (_req: http.IncomingMessage, socket: Socket) => {
    deps.metrics.denials.labels(code).inc()
    socket.end(rawProblemResponse(new GatewayError(code, { detail }), requestIdFor(undefined)))
    socket.destroySoon()
  }
  // websocket: WebSocket handshakes go through the core (routes with `websocket:` relay them);
  // other upgrades (h2c, anything else) are refused.
  const refuseUpgrade = refuseRaw('GW_ERR_NOT_IMPLEMENTED', 'protocol upgrades are not proxied')
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    if (isWebSocketUpgrade(req)) gateway.upgrade(req, socket, head, info)
    else refuseUpgrade(req, socket)
  })
  server.on('connect', refuseRaw('GW_ERR_METHOD_NOT_ALLOWED', 'CONNECT is not proxied'))
  // An Expect other than 100-continue: the gateway's own 417, through its pipeline (request id,
  // access log, metrics), instead of Node's empty one.
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) =>
    gateway.refuse(req, res, info, new GatewayError('GW_ERR_EXPECTATION_FAILED', { closeConnection: true })),
  )
  const addr = await listen(server, l.host, l.port)
  tls?.watch(server as https.Server)
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  return {
    name: l.name,
    server,
    url: `${l.tls ? 'https' : 'http'}://${host}:${addr.port}`,
    ...(h2 ? { h2 } : {}),
    close: () => {
      tls?.close() // tls:
      h2?.destroyAll() // http2:
      return closeServer(server)
    },
    stopAccepting: () => {
      h2?.goAway() // http2: GOAWAY; streams under way finish
      return stopAccepting(server)
    },
  }
}

/** Reloads a TLS listener's certificate without dropping connections. */
export function reloadTls(listener: RunningListener, l: ListenerConfig, _baseDir: string): void {
  if (l.tls && listener.server instanceof https.Server) listenerTls.get(listener.server)?.update(l.tls)
}

/**
 * The admin listener: /healthz, /readyz, /metrics (no authentication), and the admin API under
 * /v1/ (bearer token; off without `admin.token`, see admin/api.ts).
 */
export async function startAdmin(
  cfg: AdminConfig,
  deps: {
    metrics: GatewayMetrics
    /** undefined when ready; otherwise why not (in /readyz's 503 body) */
    notReady: () => string | undefined
    logger: Logger
    store: Store
    /** The detectors' recent alerts (GET /v1/alerts); undefined when detection is off. */
    alerts?: AlertList | undefined
    /** GET /v1/audit/status and GET /v1/config. */
    audit?: AdminApiOptions['audit']
    effectiveConfig?: AdminApiOptions['effectiveConfig']
    /** inventory: GET /v1/inventory… and the dashboard's live data. */
    inventory?: AdminApiOptions['inventory']
    telemetry?: AdminApiOptions['telemetry']
  },
): Promise<RunningListener> {
  const api = createAdminApi({
    config: cfg,
    store: deps.store,
    logger: deps.logger,
    alerts: deps.alerts,
    audit: deps.audit,
    effectiveConfig: deps.effectiveConfig,
    inventory: deps.inventory,
    telemetry: deps.telemetry,
  })
  // dashboard: the admin web page under /ui (session cookie; see src/dashboard/)
  const dashboard =
    api.enabled && cfg.token !== undefined
      ? createDashboard({ api, token: cfg.token, logger: deps.logger, telemetry: deps.telemetry })
      : undefined
  const server = http.createServer({ requestTimeout: 10000, headersTimeout: 5000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string
    if (isAdminApiPath(path)) return api.handle(req, res)
    if (dashboard !== undefined && isDashboardPath(path)) return dashboard.handle(req, res) // dashboard:
    const send = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, {
        'content-type': type,
        'cache-control': 'no-store',
        'content-length': Buffer.byteLength(body),
      })
      res.end(req.method === 'HEAD' ? undefined : body)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, '{"error":"method not allowed"}')
    if (path === '/healthz') return send(200, '{"status":"ok"}')
    if (path === '/readyz') {
      const why = deps.notReady()
      return why === undefined
        ? send(200, '{"status":"ready"}')
        : send(503, JSON.stringify({ status: 'not ready', reason: why }))
    }
    if (path === '/metrics') {
      deps.metrics.registry.metrics().then(
        (text) => send(200, text, deps.metrics.registry.contentType),
        (err: unknown) => {
          deps.logger.error({ err }, 'metrics failed')
          send(500, '{"error":"metrics failed"}')
        },
      )
      return
    }
    send(404, '{"error":"not found"}')
  })
  let addr: AddressInfo
  try {
    addr = await listen(server, cfg.host, cfg.port)
  } catch (err) {
    api.close()
    throw err
  }
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  const url = `http://${host}:${addr.port}`
  if (api.enabled) {
    deps.logger.info({ url: `${url}/v1/` }, 'admin API enabled (bearer token)')
  } else {
    deps.logger.info(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${env:} is config syntax
      'admin API disabled: set admin.token (at least 32 characters, e.g. ${env:PORTCULLIS_ADMIN_TOKEN}) to enable /v1/',
    )
  }
  return {
    name: 'admin',
    server,
    url,
    close: async () => {
      await closeServer(server)
      dashboard?.close()
      api.close()
    },
  }
}
