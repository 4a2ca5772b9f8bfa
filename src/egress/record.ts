/** What the egress proxy tells about each call: the audit event, the log line, the answer it makes itself. */
import type http from 'node:http'
import type { Logger } from 'pino'
import type { AuditDecision, AuditEmitter } from '../audit/event.js'
import { type ErrorCode, GatewayError, toProblem } from '../gateway/errors.js'

/** One call through the proxy, as it ended. */
export interface CallRecord {
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
  /** performance.now() when the call arrived. */
  started: number
  tls: string
}

/** The recorder: an `egress.request` audit event and a log line per call. */
export function makeRecorder(audit: AuditEmitter, logger: Logger): (e: CallRecord) => void {
  return (e: CallRecord): void => {
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
}

/** A problem+json answer on a plain HTTP exchange. */
export function answer(res: http.ServerResponse, code: ErrorCode, detail?: string): void {
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
