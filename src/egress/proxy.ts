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
import https from 'node:https'
import { isIP, isIPv4, type Socket, connect as netConnect } from 'node:net'
import type { Logger } from 'pino'
import type { AuditDecision, AuditEmitter } from '../audit/event.js'
import { type ErrorCode, GatewayError, toProblem } from '../gateway/errors.js'
import type { ResponseHead } from '../gateway/pipeline/context.js'
import type { CompiledApi } from '../policies/openapi-validation/compiled.js'
import { validateResponse } from '../policies/openapi-validation/response.js'
import { type AddressPolicy, addressRefusal } from '../ssrf/address.js'
import { HostResolver } from '../ssrf/resolver.js'
import { CidrSet } from '../util/cidr.js'
import { MAX_HELLO_BYTES, parseClientHello } from './client-hello.js'
import { compileDestinations, type Destination } from './destinations.js'
import type { EgressConfig, EgressDestination } from './config.js'

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

/** Everything built from one config. */
class Rules {
  readonly clients: CidrSet
  readonly exact = new Map<string, Destination[]>()
  readonly wildcard: [string, Destination][] = []
  readonly addresses: AddressPolicy
  readonly resolver: HostResolver

  constructor(
    readonly cfg: EgressConfig,
    baseDir: string,
  ) {
    const { problems, dests } = compileDestinations(cfg, baseDir)
    if (problems.length > 0) {
      const err = new Error(
        `invalid config: egress:\n${problems.map((p) => `  ${p.segs.join('.')}: ${p.message}`).join('\n')}`,
      )
      err.name = 'ConfigError'
      throw err
    }
    this.clients = CidrSet.from(cfg.clients)
    for (const d of dests) {
      const h = normalizeHost(d.cfg.host)
      if (h.startsWith('*.')) this.wildcard.push([h.slice(1), d])
      else this.exact.set(h, [...(this.exact.get(h) ?? []), d])
    }
    this.addresses = {
      allow: cfg.allowAddresses.length > 0 ? CidrSet.from(cfg.allowAddresses) : undefined,
      deny: cfg.denyAddresses.length > 0 ? CidrSet.from(cfg.denyAddresses) : undefined,
    }
    this.resolver = new HostResolver({
      servers: cfg.dns.servers,
      timeoutMs: cfg.dns.timeoutMs,
      tries: cfg.dns.tries,
      maxEntries: cfg.dns.cacheEntries,
      minTtlSec: cfg.dns.minTtlSec,
      maxTtlSec: cfg.dns.maxTtlSec,
      negativeTtlSec: cfg.dns.negativeTtlSec,
      hostsFile: cfg.dns.hostsFile,
    })
  }

  /** The destination rule for host:port, or undefined. */
  find(host: string, port: number): Destination | undefined {
    for (const d of this.exact.get(host) ?? []) if (d.ports.has(port)) return d
    for (const [suffix, d] of this.wildcard)
      if (host.length > suffix.length && host.endsWith(suffix) && d.ports.has(port)) return d
    return undefined
  }
}

function normalizeHost(h: string): string {
  let x = h.trim().toLowerCase()
  if (x.startsWith('[') && x.endsWith(']')) x = x.slice(1, -1)
  if (x.endsWith('.')) x = x.slice(0, -1)
  return x
}

function unmapped(ip: string | undefined): string {
  if (ip === undefined) return ''
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip
}

/** Why a call was refused or failed: the HTTP status and code for the application, the reason for logs. */
class EgressRefusal extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly reason: string,
  ) {
    super(reason)
  }
}

/**
 * Resolves `host` (once) and checks every address; the address to connect to. A name whose answer
 * holds any refused address is refused, as in ssrf-guard.
 */
async function checkedAddress(rules: Rules, host: string): Promise<string> {
  if (isIP(host) !== 0) {
    const r = addressRefusal(host, rules.addresses)
    if (r !== undefined) throw new EgressRefusal('GW_ERR_FORBIDDEN', `address refused: ${r}`)
    return host
  }
  const res = await rules.resolver.resolve(host)
  if (res.error !== undefined) throw new EgressRefusal('GW_ERR_UPSTREAM_UNAVAILABLE', `dns: ${res.error}`)
  if (res.addresses.length === 0) throw new EgressRefusal('GW_ERR_UPSTREAM_UNAVAILABLE', 'dns: no address')
  for (const a of res.addresses) {
    const r = addressRefusal(a, rules.addresses)
    if (r !== undefined) throw new EgressRefusal('GW_ERR_FORBIDDEN', `address refused: ${r} (${a})`)
  }
  return res.addresses.find((a) => isIPv4(a)) ?? (res.addresses[0] as string)
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
])

function forwardHeaders(h: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const listed = new Set(
    String(h.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  )
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP_BY_HOP.has(k) || listed.has(k)) continue
    out[k] = v
  }
  return out
}

const TARGET = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/

/** Starts the proxy listener. Throws a ConfigError for a bad config, before listening. */
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

  const record = (e: {
    method: string
    host: string
    port: number
    address?: string
    status: number | 'tunnel'
    decision: AuditDecision
    reason?: string
    client: string
    bytesIn: number
    bytesOut: number
    started: number
    tls: string
  }) => {
    const durationMs = Math.round(performance.now() - e.started)
    audit.emit({
      type: 'egress.request',
      clientIp: e.client,
      method: e.method,
      decision: e.decision,
      ...(typeof e.status === 'number' ? { status: e.status } : {}),
      ...(e.reason !== undefined ? { reason: e.reason } : {}),
      data: {
        host: e.host.slice(0, 253),
        port: e.port,
        ...(e.address !== undefined ? { address: e.address } : {}),
        tls: e.tls,
        bytesIn: e.bytesIn,
        bytesOut: e.bytesOut,
        durationMs,
        ...(e.status === 'tunnel' ? { tunnel: true } : {}),
      },
    })
    const line = {
      event: 'egress',
      method: e.method,
      host: e.host.slice(0, 253),
      port: e.port,
      address: e.address,
      status: e.status,
      decision: e.decision,
      reason: e.reason,
      bytesIn: e.bytesIn,
      bytesOut: e.bytesOut,
      durationMs,
    }
    if (e.decision === 'allow') logger.info(line, 'egress call')
    else logger.warn(line, 'egress call refused or failed')
  }

  /** A problem+json answer on a plain HTTP exchange. */
  const answer = (res: http.ServerResponse, code: ErrorCode, detail?: string) => {
    if (res.headersSent) {
      res.destroy()
      return
    }
    const { problem } = toProblem(new GatewayError(code, detail ? { detail } : {}), undefined)
    const body = JSON.stringify(problem)
    res.writeHead(problem.status, {
      'content-type': 'application/problem+json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      connection: 'close',
    })
    res.end(body)
  }

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const r = rules
    const started = performance.now()
    const client = unmapped(req.socket.remoteAddress)
    const method = req.method ?? 'GET'
    let host = ''
    let port = 0
    let tlsMode = 'none'
    let address: string | undefined
    let bytesIn = 0
    let bytesOut = 0
    let done = false
    const finish = (status: number, decision: AuditDecision, reason?: string) => {
      if (done) return
      done = true
      record({
        method,
        host,
        port,
        address,
        status,
        decision,
        reason,
        client,
        bytesIn,
        bytesOut,
        started,
        tls: tlsMode,
      })
    }
    const refuse = (e: EgressRefusal) => {
      answer(res, e.code, e.code === 'GW_ERR_FORBIDDEN' ? 'egress refused' : undefined)
      finish(toProblem(new GatewayError(e.code), undefined).problem.status, 'deny', e.reason)
    }
    if (!r.clients.has(client)) {
      refuse(new EgressRefusal('GW_ERR_FORBIDDEN', 'client not allowed'))
      return
    }
    let url: URL
    try {
      if (!/^https?:\/\//i.test(req.url ?? '')) throw new Error('origin-form')
      url = new URL(req.url as string)
    } catch {
      answer(res, 'GW_ERR_BAD_REQUEST', 'a forward proxy takes absolute URLs (http://host/path)')
      finish(400, 'deny', 'not an absolute URL')
      return
    }
    host = normalizeHost(url.hostname)
    if (url.username !== '' || url.password !== '') {
      refuse(new EgressRefusal('GW_ERR_FORBIDDEN', 'userinfo in URL'))
      return
    }
    const explicitPort = url.port === '' ? undefined : Number(url.port)
    // `https://` in absolute form, or an `originate` destination: the proxy speaks TLS itself.
    let secure = url.protocol === 'https:'
    port = explicitPort ?? (secure ? 443 : 80)
    let dest = r.find(host, port)
    if (!secure && dest === undefined && explicitPort === undefined) {
      const tlsDest = r.find(host, 443)
      if (tlsDest?.cfg.tls === 'originate') {
        dest = tlsDest
        port = 443
      }
    }
    if (dest === undefined) {
      refuse(new EgressRefusal('GW_ERR_FORBIDDEN', 'destination not allowed'))
      return
    }
    if (dest.cfg.tls === 'originate') secure = true
    if (dest.cfg.tls === 'required' && !secure) {
      refuse(new EgressRefusal('GW_ERR_FORBIDDEN', 'TLS required for this destination'))
      return
    }
    tlsMode = secure ? 'originated' : 'none'
    const cl = req.headers['content-length']
    if (cl !== undefined && Number(cl) > r.cfg.maxRequestBodyBytes) {
      answer(res, 'GW_ERR_BODY_TOO_LARGE')
      finish(413, 'deny', 'request body over maxRequestBodyBytes')
      return
    }
    const d = dest
    checkedAddress(r, host).then(
      (addr) => {
        address = addr
        forward(addr)
      },
      (err: unknown) =>
        refuse(err instanceof EgressRefusal ? err : new EgressRefusal('GW_ERR_INTERNAL', String(err))),
    )

    function forward(addr: string): void {
      const headers = forwardHeaders(req.headers)
      headers.host = url.host
      const opts: https.RequestOptions = {
        host: addr,
        port,
        method,
        path: `${url.pathname}${url.search}`,
        headers,
        agent: false,
        setHost: false,
        ...(secure
          ? {
              // SNI and certificate verification for the name the application asked for (an
              // address destination is verified against the address), never the address we dial.
              ...(isIP(host) === 0 ? { servername: host } : {}),
              ...(d.ca ? { ca: d.ca } : {}),
              rejectUnauthorized: true,
            }
          : {}),
      }
      const up = (secure ? https : http).request(opts)
      let connectTimer: NodeJS.Timeout | undefined = setTimeout(() => {
        up.destroy(new EgressRefusal('GW_ERR_UPSTREAM_TIMEOUT', 'connect timeout'))
      }, r.cfg.connectTimeoutMs)
      let responseTimer: NodeJS.Timeout | undefined
      const clearTimers = () => {
        clearTimeout(connectTimer)
        clearTimeout(responseTimer)
        connectTimer = undefined
        responseTimer = undefined
      }
      up.on('socket', (s: Socket) => {
        s.setTimeout(r.cfg.idleTimeoutMs, () =>
          up.destroy(new EgressRefusal('GW_ERR_UPSTREAM_TIMEOUT', 'idle timeout')),
        )
        s.once(secure ? 'secureConnect' : 'connect', () => {
          clearTimeout(connectTimer)
          connectTimer = undefined
          responseTimer = setTimeout(() => {
            up.destroy(new EgressRefusal('GW_ERR_UPSTREAM_TIMEOUT', 'response timeout'))
          }, r.cfg.responseTimeoutMs)
        })
      })
      up.on('error', (err: Error) => {
        clearTimers()
        if (err instanceof EgressRefusal) refuse(err)
        else if (!res.headersSent)
          refuse(
            new EgressRefusal(
              (err as { code?: string }).code === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
                /certificate|self.signed|unable to verify/i.test(err.message)
                ? 'GW_ERR_UPSTREAM_BAD_RESPONSE'
                : 'GW_ERR_UPSTREAM_UNAVAILABLE',
              `upstream: ${(err as { code?: string }).code ?? err.message}`,
            ),
          )
        else {
          res.destroy()
          finish(res.statusCode, 'error', `upstream: ${(err as { code?: string }).code ?? err.message}`)
        }
      })
      req.on('data', (c: Buffer) => {
        bytesOut += c.length
        if (bytesOut > r.cfg.maxRequestBodyBytes) {
          up.destroy()
          req.destroy()
          clearTimers()
          if (!res.headersSent) answer(res, 'GW_ERR_BODY_TOO_LARGE')
          finish(413, 'deny', 'request body over maxRequestBodyBytes')
        }
      })
      req.pipe(up)
      up.on('response', (ures: http.IncomingMessage) => {
        clearTimers()
        const status = ures.statusCode ?? 502
        const head: ResponseHead = { status, headers: forwardHeaders(ures.headers), local: false }
        if (d.api !== undefined && d.cfg.openapi !== undefined) {
          validated(ures, head, d.api, d.cfg.openapi)
          return
        }
        const cl = Number(ures.headers['content-length'])
        if (Number.isFinite(cl) && cl > r.cfg.maxResponseBodyBytes) {
          ures.destroy()
          refuse(new EgressRefusal('GW_ERR_UPSTREAM_BAD_RESPONSE', 'response body over maxResponseBodyBytes'))
          return
        }
        res.writeHead(status, head.headers as http.OutgoingHttpHeaders)
        ures.on('data', (c: Buffer) => {
          bytesIn += c.length
          if (bytesIn > r.cfg.maxResponseBodyBytes) {
            ures.destroy()
            res.destroy()
            finish(status, 'error', 'response body over maxResponseBodyBytes (cut)')
            return
          }
          if (!res.write(c)) {
            ures.pause()
            res.once('drain', () => ures.resume())
          }
        })
        ures.on('end', () => {
          res.end()
          finish(status, 'allow')
        })
        ures.on('error', () => {
          res.destroy()
          finish(status, 'error', 'upstream response failed')
        })
      })
    }

    function validated(
      ures: http.IncomingMessage,
      head: ResponseHead,
      api: CompiledApi,
      o: NonNullable<EgressDestination['openapi']>,
    ): void {
      const chunks: Buffer[] = []
      ures.on('data', (c: Buffer) => {
        bytesIn += c.length
        if (bytesIn > r.cfg.maxResponseBodyBytes) {
          ures.destroy()
          refuse(new EgressRefusal('GW_ERR_UPSTREAM_BAD_RESPONSE', 'response body over maxResponseBodyBytes'))
          return
        }
        chunks.push(c)
      })
      ures.on('error', () =>
        refuse(new EgressRefusal('GW_ERR_UPSTREAM_BAD_RESPONSE', 'upstream response failed')),
      )
      ures.on('end', () => {
        if (done) return
        const body = Buffer.concat(chunks)
        let path = url.pathname
        const base = o.basePath
        let violations: string[]
        if (base !== '' && path !== base && !path.startsWith(`${base}/`))
          violations = ['a path under basePath']
        else {
          if (base !== '') path = path === base ? '/' : path.slice(base.length)
          const m = api.matcher.match(path, method)
          violations =
            m.kind !== 'found'
              ? ['an operation of the spec']
              : validateResponse(m.match.value, head, body, false, 1000).violations.map(
                  (v) => `${v.pointer || '/'}: ${v.expected}`,
                )
        }
        if (violations.length > 0) {
          logger.warn(
            {
              event: 'egress.response-invalid',
              host,
              method,
              path: url.pathname.slice(0, 256),
              status: head.status,
              mode: o.responses,
              violations: violations.slice(0, 10),
            },
            `egress: response departs from the destination's OpenAPI document (${o.responses})`,
          )
          audit.emit({
            type: 'egress.response-invalid',
            clientIp: client,
            method,
            decision: o.responses === 'block' ? 'deny' : 'allow',
            status: head.status,
            data: {
              host,
              port,
              path: url.pathname.slice(0, 256),
              mode: o.responses,
              violations: violations.length,
            },
          })
          if (o.responses === 'block') {
            answer(res, 'GW_ERR_UPSTREAM_RESPONSE_INVALID')
            finish(502, 'deny', 'response does not match the OpenAPI document')
            return
          }
        }
        head.headers['content-length'] = String(body.length)
        delete head.headers['transfer-encoding']
        res.writeHead(head.status, head.headers as http.OutgoingHttpHeaders)
        res.end(body)
        finish(head.status, 'allow')
      })
    }
  })

  server.on('connect', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    const r = rules
    const started = performance.now()
    const client = unmapped(socket.remoteAddress)
    const m = TARGET.exec(req.url ?? '')
    let host = m ? normalizeHost((m[1] ?? m[2]) as string) : ''
    const port = m ? Number(m[3]) : 0
    let address: string | undefined
    let bytesIn = 0
    let bytesOut = 0
    let done = false
    let tlsMode = 'tunnel'
    const finish = (status: number | 'tunnel', decision: AuditDecision, reason?: string) => {
      if (done) return
      done = true
      record({
        method: 'CONNECT',
        host,
        port,
        address,
        status,
        decision,
        reason,
        client,
        bytesIn,
        bytesOut,
        started,
        tls: tlsMode,
      })
    }
    socket.on('error', () => undefined)
    const refuse = (status: number, reason: string) => {
      const text = http.STATUS_CODES[status] ?? 'Error'
      if (socket.writable)
        socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
      socket.destroySoon()
      finish(status, 'deny', reason)
    }
    if (!r.clients.has(client)) return refuse(403, 'client not allowed')
    if (!m || port < 1 || port > 65535) {
      host = (req.url ?? '').slice(0, 253)
      return refuse(400, 'bad CONNECT target')
    }
    const dest = r.find(host, port)
    if (dest === undefined) return refuse(403, 'destination not allowed')
    if (dest.cfg.tls === 'originate')
      return refuse(403, 'CONNECT refused: the proxy originates TLS to this destination')
    tlsMode = dest.cfg.tls === 'required' ? 'required' : 'tunnel'
    socket.pause()
    checkedAddress(r, host).then(
      (addr) => {
        address = addr
        open(addr, dest)
      },
      (err: unknown) =>
        refuse(
          err instanceof EgressRefusal && err.code === 'GW_ERR_FORBIDDEN' ? 403 : 502,
          err instanceof EgressRefusal ? err.reason : String(err),
        ),
    )

    function open(addr: string, dest: Destination): void {
      const up = netConnect({ host: addr, port })
      let connected = false
      const timer = setTimeout(() => {
        up.destroy()
        refuse(504, 'connect timeout')
      }, r.cfg.connectTimeoutMs)
      up.once('error', (err: Error) => {
        clearTimeout(timer)
        if (!connected) {
          refuse(502, `upstream: ${(err as { code?: string }).code ?? err.message}`)
          return
        }
        socket.destroy()
        finish('tunnel', 'error', `upstream: ${(err as { code?: string }).code ?? err.message}`)
      })
      up.once('connect', () => {
        connected = true
        clearTimeout(timer)
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        const idle = () => {
          socket.destroy()
          up.destroy()
        }
        socket.setTimeout(r.cfg.idleTimeoutMs, idle)
        up.setTimeout(r.cfg.idleTimeoutMs, idle)
        const count = (n: number, dir: 'in' | 'out') => {
          if (dir === 'in') bytesIn += n
          else bytesOut += n
          if (bytesIn + bytesOut > r.cfg.maxTunnelBytes) {
            socket.destroy()
            up.destroy()
            finish('tunnel', 'error', 'tunnel over maxTunnelBytes (closed)')
          }
        }
        const pipeAll = (first: Buffer) => {
          if (first.length > 0) {
            count(first.length, 'out')
            up.write(first)
          }
          socket.on('data', (c: Buffer) => {
            count(c.length, 'out')
            if (!up.write(c)) {
              socket.pause()
              up.once('drain', () => socket.resume())
            }
          })
          up.on('data', (c: Buffer) => {
            count(c.length, 'in')
            if (!socket.write(c)) {
              up.pause()
              socket.once('drain', () => up.resume())
            }
          })
          socket.on('end', () => up.end())
          up.on('end', () => socket.end())
          const closed = () => {
            socket.destroy()
            up.destroy()
            finish('tunnel', 'allow')
          }
          socket.once('close', closed)
          up.once('close', closed)
          socket.resume()
        }
        if (dest.cfg.tls !== 'required') {
          pipeAll(head)
          return
        }
        // TLS required: the tunnel must open with a ClientHello for this host.
        let buf = head
        const onHello = (c: Buffer) => {
          buf = Buffer.concat([buf, c])
          decide()
        }
        const decide = () => {
          const h = parseClientHello(buf.subarray(0, MAX_HELLO_BYTES))
          if (h.kind === 'incomplete' && buf.length < MAX_HELLO_BYTES) return
          socket.off('data', onHello)
          if (h.kind !== 'hello') {
            socket.destroy()
            up.destroy()
            finish('tunnel', 'deny', 'TLS required: the tunnel did not start with a TLS ClientHello')
            return
          }
          if (h.sni !== undefined && h.sni !== host && isIP(host) === 0) {
            socket.destroy()
            up.destroy()
            finish('tunnel', 'deny', `TLS SNI ${h.sni.slice(0, 253)} is not the CONNECT host`)
            return
          }
          socket.pause()
          pipeAll(buf)
        }
        socket.on('data', onHello)
        socket.resume()
        if (buf.length > 0) decide()
      })
    }
  })

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
