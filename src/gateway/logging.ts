import pino, { type DestinationStream, type Logger } from 'pino'
import { maskSecrets, warmMaskSecrets } from '../secrets/mask.js'
import { ACCESS_LOG_FIELDS, type AccessLogField } from './access-log-fields.js'

export { ACCESS_LOG_FIELDS, type AccessLogField }

/** Header names whose values never reach a log. */
export const REDACTED_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']

/**
 * Most bytes an asynchronous destination holds while the disk (or the pipe) is slower than the
 * traffic; past it, lines are dropped (and counted) rather than memory growing without bound.
 */
const MAX_PENDING_BYTES = 16 * 1024 * 1024

type Destination = DestinationStream & {
  flush?: () => void
  flushSync?: () => void
  on?: (event: string, listener: (data: Buffer) => void) => void
}

/**
 * The access log's destination: pino's (sonic-boom) for `stdout`, `stderr` or a file path
 * (appended, directories created), in buffer mode: the access log hands it ready-made bytes.
 */
export function destination(dest: string): Destination {
  const common = { contentMode: 'buffer' } as Record<string, unknown>
  if (dest === 'stdout')
    return pino.destination({ dest: 1, sync: false, maxLength: MAX_PENDING_BYTES, ...common })
  if (dest === 'stderr') return pino.destination({ dest: 2, sync: true, ...common })
  return pino.destination({ dest, sync: false, mkdir: true, maxLength: MAX_PENDING_BYTES, ...common })
}

/** The gateway's own log: JSON lines on stderr. Secrets in known places are redacted. */
export function createLogger(
  level: string,
  dest: DestinationStream = pino.destination({ dest: 2, sync: true }),
): Logger {
  warmMaskSecrets() // secrets: the masking scanner is built here, at startup, not on the first line
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
      // secrets: every line passes through the detectors (a key in an error message, a URL).
      hooks: { streamWrite: maskSecrets },
    },
    dest,
  )
}

/**
 * One access log record. Fixed fields only: no query, no body, no header but Host and User-Agent
 * (client-controlled: escaped, cut to 256 characters and passed through the secret masks, as the
 * path is).
 */
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
  bytesIn?: number
  /** Milliseconds to the upstream's response head; < 0 (left out) when none came. */
  upstreamMs?: number
  host?: string | undefined
  userAgent?: string | undefined
  /** The authenticated principal's id (a user, service, key owner, certificate subject). */
  principal?: string | undefined
  /** The W3C trace id (32 hex digits) of the request's trace. */
  traceId?: string | undefined
}

const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/
const NON_ASCII = /[^\u0000-\u007f]/

/**
 * The access log: one JSON line per request in pino's line format (`level`, `time`, `msg`), written
 * through pino's buffered destination (sonic-boom). The line is built from fixed fields here
 * rather than by pino's generic serializer: it is the hot path (see docs/benchmarks.md), and fixed
 * fields are also why credentials cannot reach it — headers, query strings and bodies never do.
 * Lines reach the file at least once a second, and on shutdown.
 */
const CHUNK_BYTES = 64 * 1024

export class AccessLog {
  private readonly dest: Destination
  private readonly timer: NodeJS.Timeout
  /**
   * Lines not handed over yet, appended to one string (a rope: appending allocates one small
   * node, no copy and no native call per line) and encoded once per 64 KiB chunk (or each
   * second). `pendingBytes` is their UTF-8 length; `pendingAscii` says whether they are all
   * ASCII, which lets the chunk be encoded as Latin-1 (a plain copy).
   */
  private pending = ''
  private pendingBytes = 0
  private pendingAscii = true
  /** False while building a line once a field of it turned out not to be ASCII. */
  private lineAscii = true
  /** Lines the destination dropped because it was full. */
  dropped = 0
  /** One flag per optional field (ACCESS_LOG_FIELDS order): a bit test per field per line. */
  private readonly on: Record<AccessLogField, boolean>
  /** The ISO time of the last line's millisecond (lines within one millisecond share it). */
  private isoMs = -1
  private iso = ''

  constructor(dest: Destination, logger?: Logger, fields: readonly AccessLogField[] = ACCESS_LOG_FIELDS) {
    this.dest = dest
    const on = {} as Record<AccessLogField, boolean>
    for (const f of ACCESS_LOG_FIELDS) on[f] = fields.includes(f)
    this.on = on
    let reported = 0
    dest.on?.('drop', (data: Buffer) => {
      let n = 0
      for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) n++
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
    if (this.pendingBytes === 0) return
    const bytes = Buffer.from(this.pending, this.pendingAscii ? 'latin1' : 'utf8')
    this.pending = ''
    this.pendingBytes = 0
    this.pendingAscii = true
    this.dest.write(bytes as unknown as string)
  }

  /** A JSON string literal; the common case (nothing to escape, hence ASCII) skips JSON.stringify. */
  private q(s: string): string {
    if (!NEEDS_ESCAPE.test(s)) return `"${s}"`
    const j = JSON.stringify(s)
    if (NON_ASCII.test(j)) this.lineAscii = false
    return j
  }

  /** Whether the line has `field` (callers skip computing what is not written). */
  wants(field: AccessLogField): boolean {
    return this.on[field]
  }

  /** A client-controlled header value: cut to 256 characters, masked. */
  private clientText(s: string): string {
    return this.q(maskSecrets(s.length > 256 ? `${s.slice(0, 256)}…` : s))
  }

  /**
   * Appends one line. `requestId` (a token of [A-Za-z0-9._:-], see client-ip.ts), `method` (an
   * HTTP token, checked by the parser), `traceId` (hex), `decision` and `code` (ours) need no
   * escaping.
   */
  write(r: AccessRecord): void {
    this.lineAscii = true
    const on = this.on
    const now = Date.now()
    let line = `{"level":30,"time":${now},"msg":"request"`
    if (on.timestamp) {
      if (now !== this.isoMs) {
        this.isoMs = now
        this.iso = new Date(now).toISOString()
      }
      line += `,"timestamp":"${this.iso}"`
    }
    if (on.requestId) line += `,"requestId":"${r.requestId}"`
    if (on.traceId && r.traceId !== undefined) line += `,"traceId":"${r.traceId}"`
    if (on.method) line += `,"method":"${r.method}"`
    if (on.host && r.host) line += `,"host":${this.clientText(r.host)}`
    // secrets: the path is client-controlled; a key in it is masked.
    if (on.path) line += `,"path":${this.q(maskSecrets(r.path))}`
    if (on.route) line += `,"route":${this.q(r.route)}`
    if (on.status) line += `,"status":${r.status}`
    if (on.durationMs) line += `,"durationMs":${r.durationMs}`
    if (on.upstream && r.upstream !== undefined) line += `,"upstream":${this.q(r.upstream)}`
    if (on.upstreamMs && r.upstreamMs !== undefined && r.upstreamMs >= 0)
      line += `,"upstreamMs":${Math.round(r.upstreamMs * 1000) / 1000}`
    if (on.bytesIn && r.bytesIn !== undefined) line += `,"bytesIn":${r.bytesIn}`
    if (on.bytesOut) line += `,"bytesOut":${r.bytesOut}`
    if (on.decision) line += `,"decision":"${r.decision}"`
    if (on.code && r.code !== undefined) line += `,"code":"${r.code}"`
    if (on.principal && r.principal !== undefined) line += `,"principal":${this.clientText(r.principal)}`
    if (on.clientIp) line += `,"clientIp":${this.q(r.clientIp)}`
    if (on.userAgent && r.userAgent) line += `,"userAgent":${this.clientText(r.userAgent)}`
    line += on.aborted && r.aborted ? ',"aborted":true}\n' : '}\n'
    this.pending += line
    if (this.lineAscii) this.pendingBytes += line.length
    else {
      this.pendingBytes += Buffer.byteLength(line)
      this.pendingAscii = false
    }
    if (this.pendingBytes >= CHUNK_BYTES) this.handOver()
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
