import pino, { type DestinationStream, type Logger } from 'pino'

/** Header names whose values never reach a log. */
export const REDACTED_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']

/**
 * Most bytes an asynchronous destination holds while the disk (or the pipe) is slower than the
 * traffic; past it, lines are dropped (and counted) rather than memory growing without bound.
 */
const MAX_PENDING_BYTES = 16 * 1024 * 1024

/** A pino destination for `stdout`, `stderr` or a file path (appended, directories created). */
export function destination(dest: string): DestinationStream & { flushSync?: () => void; end?: () => void } {
  if (dest === 'stdout') return pino.destination({ dest: 1, sync: false, maxLength: MAX_PENDING_BYTES })
  if (dest === 'stderr') return pino.destination({ dest: 2, sync: true })
  return pino.destination({ dest, sync: false, mkdir: true, maxLength: MAX_PENDING_BYTES })
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

const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/
/** JSON string literal; the common case (nothing to escape) skips JSON.stringify. */
function q(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`
}

/**
 * The access log: one JSON line per request in pino's line format (`level`, `time`, `msg`), written
 * through pino's buffered destination (sonic-boom). The line is built from fixed fields here
 * rather than by pino's generic serializer: it is the hot path (see docs/benchmarks.md), and fixed
 * fields are also why credentials cannot reach it — headers, query strings and bodies never do.
 * Lines reach the file at least once a second, and on shutdown.
 */
export class AccessLog {
  private readonly dest: DestinationStream & { flush?: () => void; flushSync?: () => void }
  private readonly timer: NodeJS.Timeout
  /**
   * Lines not yet handed to the destination. Batching here matters: sonic-boom measures the byte
   * length of its pending buffer on every write, which costs more per line the more is pending.
   */
  private pending = ''
  /** Lines the destination dropped because it was full. */
  dropped = 0
  constructor(
    dest: DestinationStream & {
      flush?: () => void
      flushSync?: () => void
      on?: (e: string, f: (d: string) => void) => void
    },
    logger?: Logger,
  ) {
    this.dest = dest
    let reported = 0
    dest.on?.('drop', (data: string) => {
      let n = 0
      for (let i = data.indexOf('\n'); i !== -1; i = data.indexOf('\n', i + 1)) n++
      this.dropped += n
    })
    this.timer = setInterval(() => {
      this.handOver()
      if (this.dropped !== reported) {
        logger?.warn(
          { dropped: this.dropped - reported },
          'access log lines dropped: the destination is too slow',
        )
        reported = this.dropped
      }
    }, 1000)
    this.timer.unref()
  }

  private handOver(): void {
    if (this.pending === '') return
    const chunk = this.pending
    this.pending = ''
    this.dest.write(chunk)
  }

  write(r: AccessRecord): void {
    let line = `{"level":30,"time":${Date.now()},"msg":"request","requestId":${q(r.requestId)},"method":${q(r.method)},"path":${q(r.path)},"route":${q(r.route)},"status":${r.status},"durationMs":${r.durationMs},"bytesOut":${r.bytesOut},"decision":"${r.decision}","clientIp":${q(r.clientIp)}`
    if (r.upstream !== undefined) line += `,"upstream":${q(r.upstream)}`
    if (r.code !== undefined) line += `,"code":"${r.code}"`
    if (r.aborted) line += ',"aborted":true'
    this.pending += `${line}}\n`
    if (this.pending.length >= 16384) this.handOver()
  }

  flush(): void {
    clearInterval(this.timer)
    this.handOver()
    try {
      this.dest.flushSync?.()
    } catch {
      // nothing buffered yet
    }
  }
}
