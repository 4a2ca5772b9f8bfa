/**
 * Plain HTTP through the egress proxy (absolute-form requests): the destination checked, the
 * address checked at connect time, TLS originated where configured (verified for the name), the
 * request and response bodies capped, the answer validated against the destination's OpenAPI
 * document when configured.
 */
import http from 'node:http'
import https from 'node:https'
import { isIP, type Socket } from 'node:net'
import type { Logger } from 'pino'
import type { AuditDecision, AuditEmitter } from '../audit/event.js'
import { GatewayError, toProblem } from '../gateway/errors.js'
import type { ResponseHead } from '../gateway/pipeline/context.js'
import type { CompiledApi } from '../policies/openapi-validation/compiled.js'
import { validateResponse } from '../policies/openapi-validation/response.js'
import { REQUEST_HOP_BY_HOP, withoutHopByHop } from '../util/hop-by-hop.js'
import type { EgressDestination } from './config.js'
import { answer, type CallRecord } from './record.js'
import { checkedAddress, EgressRefusal, normalizeHost, type Rules, unmapped } from './rules.js'

/** What the proxy's handlers share. */
export interface EgressEnv {
  /** The rules of the config serving now (a reload swaps them). */
  rules(): Rules
  record(e: CallRecord): void
  logger: Logger
  audit: AuditEmitter
}

/** Handles one plain HTTP request to the proxy. */
export function handleRequest(env: EgressEnv, req: http.IncomingMessage, res: http.ServerResponse): void {
  const { record, logger, audit } = env
  const r = env.rules()
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
    const headers = withoutHopByHop(req.headers, REQUEST_HOP_BY_HOP)
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
      const head: ResponseHead = { status, headers: withoutHopByHop(ures.headers), local: false }
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
      if (base !== '' && path !== base && !path.startsWith(`${base}/`)) violations = ['a path under basePath']
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
}
