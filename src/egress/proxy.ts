/**
 * The egress proxy: a forward proxy (plain HTTP proxying in absolute form, and CONNECT tunnels) for
 * the protected application's own outbound calls. What the gateway's ssrf-guard cannot see happens
 * here, at connect time, on the connection the application really makes:
 *
 * - only allowed destinations (host and port) are reachable;
 * - the name is resolved once, every address is checked (no loopback, private, link-local,
 *   metadata… unless exempted), and the connection goes to that checked address, never to a name
 *   resolved again: a DNS answer that changes between check and use (rebinding) changes nothing;
 * - redirects are followed by the application as new requests, each checked again;
 * - TLS is required where configured (a tunnel must start with a ClientHello for that host), or
 *   originated by the proxy with certificate verification;
 * - connect, response and idle timeouts; request, response and tunnel size caps;
 * - every call is an audit event (`egress.request`: destination, address, status, bytes, time);
 * - optionally, a destination's answers are validated against its OpenAPI document (API10).
 */
import http from 'node:http'
import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import type { AuditEmitter } from '../audit/event.js'
import type { EgressConfig } from './config.js'
import { handleRequest, type EgressEnv } from './forward.js'
import { makeRecorder } from './record.js'
import { Rules } from './rules.js'
import { handleConnect } from './tunnel.js'

export interface EgressDeps {
  logger: Logger
  audit: AuditEmitter
  /** The config file's directory (spec and CA paths are relative to it). */
  baseDir: string
}

export interface EgressProxy {
  /** `http://host:port`, for HTTP_PROXY / HTTPS_PROXY. */
  url: string
  server: http.Server
  /**
   * Builds a new `egress:` config (destinations, ranges, limits; host and port need a restart) and
   * returns the function that applies it: throws a ConfigError, applying nothing, when it is bad.
   */
  prepare(config: EgressConfig): () => void
  close(): Promise<void>
}

/**
 * Starts the proxy listener (throws a ConfigError for a bad config, before listening).
 *
 * @example
 * const egress = await startEgressProxy(config.egress, { logger, audit, baseDir })
 * // the application: HTTPS_PROXY=${egress.url}
 */
export async function startEgressProxy(config: EgressConfig, deps: EgressDeps): Promise<EgressProxy> {
  let rules = new Rules(config, deps.baseDir)
  const { logger, audit } = deps
  const server = http.createServer({
    requestTimeout: 0, // a proxied exchange is bounded by the proxy's own timers
    headersTimeout: 10_000,
    keepAliveTimeout: 5000,
    joinDuplicateHeaders: false,
  })
  server.maxConnections = config.maxConnections
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })

  const env: EgressEnv = { rules: () => rules, record: makeRecorder(audit, logger), logger, audit }
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => handleRequest(env, req, res))
  server.on('connect', (req: http.IncomingMessage, socket: Socket, head: Buffer) =>
    handleConnect(env, req, socket, head),
  )

  server.on('clientError', (_err: Error, socket: Socket) => {
    if (socket.writable)
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
    socket.destroy()
  })

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen({ host: config.host, port: config.port }, () => {
      server.off('error', reject)
      resolveListen()
    })
  })
  const addr = server.address() as import('node:net').AddressInfo
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
  logger.info({ url, destinations: config.allow.length }, 'egress proxy listening')
  return {
    url,
    server,
    prepare(next) {
      const built = new Rules(next, deps.baseDir)
      return () => {
        rules = built
        server.maxConnections = next.maxConnections
      }
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r())
        for (const s of sockets) s.destroy()
      }),
  }
}
