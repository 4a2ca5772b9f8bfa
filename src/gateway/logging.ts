import pino, { type DestinationStream, type Logger } from 'pino'

/** Header names whose values never reach a log. */
export const REDACTED_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']

/** A pino destination for `stdout`, `stderr` or a file path (appended, directories created). */
export function destination(dest: string): DestinationStream & { flushSync?: () => void; end?: () => void } {
  if (dest === 'stdout') return pino.destination({ dest: 1, sync: false, minLength: 8192 })
  if (dest === 'stderr') return pino.destination({ dest: 2, sync: true })
  return pino.destination({ dest, sync: false, mkdir: true, minLength: 8192 })
}

/** The gateway's own log: JSON lines on stderr. Secrets in known places are redacted. */
export function createLogger(
  level: string,
  dest: DestinationStream = pino.destination({ dest: 2, sync: true }),
): Logger {
  return pino(
    {
      level,
      base: { service: 'portcullis' },
      redact: {
        paths: [
          ...REDACTED_HEADERS.map((h) => `headers["${h}"]`),
          ...REDACTED_HEADERS.map((h) => `req.headers["${h}"]`),
          'password',
          'token',
          'secret',
        ],
        censor: '[redacted]',
      },
      serializers: { err: pino.stdSerializers.err },
    },
    dest,
  )
}

/** One access log record. Fixed fields only: no headers, no query, no bodies. */
export interface AccessRecord {
  requestId: string
  method: string
  path: string
  route: string
  status: number
  durationMs: number
  bytesOut: number
  upstream: string | undefined
  decision: string
  code: string | undefined
  clientIp: string
  aborted: boolean
}

const q = JSON.stringify

/**
 * The access log: one JSON line per request in pino's line format (`level`, `time`, `msg`), written
 * through pino's buffered destination (sonic-boom). The line is built from fixed fields here
 * rather than by pino's generic serializer: it is the hot path (see docs/benchmarks.md), and fixed
 * fields are also why credentials cannot reach it — headers, query strings and bodies never do.
 */
export class AccessLog {
  private readonly dest: DestinationStream & { flushSync?: () => void }
  constructor(dest: DestinationStream & { flushSync?: () => void }) {
    this.dest = dest
  }

  write(r: AccessRecord): void {
    let line = `{"level":30,"time":${Date.now()},"msg":"request","requestId":${q(r.requestId)},"method":${q(r.method)},"path":${q(r.path)},"route":${q(r.route)},"status":${r.status},"durationMs":${r.durationMs},"bytesOut":${r.bytesOut},"decision":"${r.decision}","clientIp":${q(r.clientIp)}`
    if (r.upstream !== undefined) line += `,"upstream":${q(r.upstream)}`
    if (r.code !== undefined) line += `,"code":"${r.code}"`
    if (r.aborted) line += ',"aborted":true'
    this.dest.write(`${line}}\n`)
  }

  flush(): void {
    try {
      this.dest.flushSync?.()
    } catch {
      // nothing buffered yet
    }
  }
}
