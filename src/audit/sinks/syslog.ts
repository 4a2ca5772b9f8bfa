/**
 * The syslog sink: one RFC 5424 message per record, over TCP with octet-counting framing
 * (RFC 6587 §3.4.1: `MSG-LEN SP SYSLOG-MSG`) or over TLS (RFC 5425, the same framing), fed from
 * the spool (spool.ts) so that nothing is lost while the receiver is down.
 *
 * `<PRI>1 TIMESTAMP HOSTNAME portcullis PROCID MSGID [portcullis@32473 instance="…" seq="…"] MSG`:
 * PRI from the configured facility and the record's decision (`deny` → warning, `error` → err,
 * anything else → info); TIMESTAMP the record's time; MSGID the record's type; MSG the record's
 * canonical JSON line itself (no BOM), so what a receiver stores can be verified.
 *
 * Syslog over TCP has no acknowledgement. A batch counts as delivered (and leaves the spool) once
 * the connection it was written on has stayed up for `settleMs` after the write; when the
 * connection fails first, everything not yet settled is sent again on the next one. A receiver
 * that restarts therefore gets every record at least once; one that deduplicates by
 * `(instance, seq)` gets each exactly once. (A receiver that accepts bytes into its kernel buffer
 * and then stays connected without storing them is beyond what TCP can tell.)
 */
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { hostname as osHostname } from 'node:os'
import tls from 'node:tls'
import { backoffDelay, Sleeper, type Spool, type SpoolPosition } from './spool.js'
import type { AuditSink, SinkErrorHandler } from './types.js'

export const FACILITIES = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  ntp: 12,
  audit: 13,
  alert: 14,
  clock: 15,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const
export type Facility = keyof typeof FACILITIES

/** RFC 5424 SD-ID with our private enterprise number (the one the brief's format names). */
export const SD_ID = 'portcullis@32473'

export interface SyslogHeader {
  facility: Facility
  hostname: string
  appName: string
  procId: string
}

/** PRINTUSASCII only (33..126), at most `max` characters; `-` (NILVALUE) when empty. */
export function headerField(value: string, max: number): string {
  let out = ''
  for (const ch of value) {
    const c = ch.charCodeAt(0)
    if (ch.length === 1 && c >= 33 && c <= 126) out += ch
    else out += '_'
    if (out.length >= max) break
  }
  return out === '' ? '-' : out
}

/** An SD-PARAM value: `"`, `\` and `]` escaped with a backslash (RFC 5424 §6.3.3). */
export function paramValue(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`)
}

const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/

/** The RFC 5424 message for one record line. */
export function syslogMessage(line: string, h: SyslogHeader, now: () => number = Date.now): string {
  let r: { type?: unknown; seq?: unknown; time?: unknown; decision?: unknown; instance?: unknown } = {}
  try {
    r = JSON.parse(line) as typeof r
  } catch {
    // Not a record (cannot happen with lines the log wrote): sent as is, with nil fields.
  }
  const severity = r.decision === 'deny' ? 4 : r.decision === 'error' ? 3 : 6
  const pri = FACILITIES[h.facility] * 8 + severity
  const time =
    typeof r.time === 'string' && TIMESTAMP_RE.test(r.time) ? r.time : new Date(now()).toISOString()
  const msgId = typeof r.type === 'string' ? headerField(r.type, 32) : '-'
  const params: string[] = []
  if (typeof r.instance === 'string') params.push(`instance="${paramValue(r.instance)}"`)
  if (typeof r.seq === 'number') params.push(`seq="${r.seq}"`)
  const sd = params.length > 0 ? `[${SD_ID} ${params.join(' ')}]` : '-'
  return `<${pri}>1 ${time} ${headerField(h.hostname, 255)} ${headerField(h.appName, 48)} ${headerField(h.procId, 128)} ${msgId} ${sd} ${line}`
}

/** Octet-counting framing (RFC 6587 §3.4.1): `MSG-LEN SP SYSLOG-MSG`, MSG-LEN in bytes. */
export function frame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8')
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body])
}

export interface SyslogTlsOptions {
  ca?: string | undefined
  cert?: string | undefined
  key?: string | undefined
  servername?: string | undefined
  minVersion: 'TLSv1.2' | 'TLSv1.3'
}

export interface SyslogSinkOptions {
  spool: Spool
  host: string
  port: number
  /** TLS (RFC 5425) when set; files as absolute paths. */
  tls?: SyslogTlsOptions | undefined
  facility: Facility
  /** HOSTNAME field (default: the machine's name). */
  hostname?: string | undefined
  connectTimeoutMs: number
  settleMs: number
  retryMinMs: number
  retryMaxMs: number
  /** Most records per write. */
  maxRecords?: number
  onError: SinkErrorHandler
  now?: () => number
  random?: () => number
}

interface Unsettled {
  end: SpoolPosition
  at: number
}

export class SyslogSink implements AuditSink {
  readonly kind = 'syslog'
  private readonly header: SyslogHeader
  private readonly sleeper = new Sleeper()
  private socket: net.Socket | undefined
  private stopping = false
  private unsettled: Unsettled[] = []
  private readonly loop: Promise<void>
  private readonly settleTimer: NodeJS.Timeout
  private readonly tlsFiles: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {}
  readonly stats = { connects: 0, records: 0, failures: 0 }

  constructor(private readonly o: SyslogSinkOptions) {
    this.header = {
      facility: o.facility,
      hostname: o.hostname ?? osHostname(),
      appName: 'portcullis',
      procId: String(process.pid),
    }
    if (o.tls) {
      if (o.tls.ca) this.tlsFiles.ca = readFileSync(o.tls.ca)
      if (o.tls.cert) this.tlsFiles.cert = readFileSync(o.tls.cert)
      if (o.tls.key) this.tlsFiles.key = readFileSync(o.tls.key)
    }
    this.settleTimer = setInterval(() => void this.settle(), Math.max(10, Math.floor(o.settleMs / 4)))
    this.settleTimer.unref()
    this.loop = this.run()
  }

  write(data: Buffer): Promise<void> {
    return this.o.spool.append(data)
  }

  private now(): number {
    return (this.o.now ?? Date.now)()
  }

  /** Acknowledges batches written on the live connection at least `settleMs` ago. */
  private async settle(): Promise<void> {
    if (this.socket === undefined) return
    const t = this.now() - this.o.settleMs
    let last: Unsettled | undefined
    while (this.unsettled.length > 0 && (this.unsettled[0] as Unsettled).at <= t) {
      last = this.unsettled.shift()
    }
    if (last) await this.o.spool.ack(last.end)
  }

  private connect(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const o = this.o
      let s: net.Socket
      const onError = (err: Error) => {
        s.destroy()
        reject(err)
      }
      if (o.tls) {
        s = tls.connect({
          host: o.host,
          port: o.port,
          ...this.tlsFiles,
          servername: o.tls.servername ?? (net.isIP(o.host) ? undefined : o.host),
          minVersion: o.tls.minVersion,
          rejectUnauthorized: true,
        })
        s.once('secureConnect', () => {
          s.off('error', onError)
          resolve(s)
        })
      } else {
        s = net.connect({ host: o.host, port: o.port })
        s.once('connect', () => {
          s.off('error', onError)
          resolve(s)
        })
      }
      s.setTimeout(o.connectTimeoutMs, () =>
        onError(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
      )
      s.once('error', onError)
    })
  }

  /** The connection failed: everything not settled is sent again on the next one. */
  private lost(s: net.Socket): void {
    if (this.socket !== s) return
    this.socket = undefined
    this.unsettled = []
    this.o.spool.rewind()
  }

  private async run(): Promise<void> {
    const random = this.o.random ?? Math.random
    let attempt = 0
    while (!this.stopping) {
      if (this.socket === undefined) {
        try {
          const s = await this.connect()
          if (this.stopping) {
            s.destroy()
            break
          }
          s.setTimeout(0)
          s.setNoDelay(true)
          s.on('error', (err: NodeJS.ErrnoException) => {
            this.stats.failures++
            if (!this.stopping) this.o.onError(err, 'deliver')
            this.lost(s)
          })
          s.on('close', () => this.lost(s))
          // Receivers send nothing; whatever arrives is read and discarded.
          s.resume()
          this.socket = s
          this.stats.connects++
          attempt = 0
          this.o.spool.rewind()
        } catch (err) {
          this.stats.failures++
          if (this.stopping) break
          this.o.onError(err as NodeJS.ErrnoException, 'connect')
          await this.pause(backoffDelay(attempt++, this.o.retryMinMs, this.o.retryMaxMs, random))
          continue
        }
      }
      const s = this.socket
      let batch: Awaited<ReturnType<Spool['next']>>
      try {
        batch = await this.o.spool.next(this.o.maxRecords ?? 500, 256 * 1024)
      } catch (err) {
        this.o.onError(err as NodeJS.ErrnoException, 'spool read')
        this.o.spool.rewind()
        await this.pause(this.o.retryMinMs)
        continue
      }
      if (batch === undefined) {
        await this.o.spool.wait(1000)
        continue
      }
      const frames = Buffer.concat(
        batch.lines.map((l) => frame(syslogMessage(l, this.header, () => this.now()))),
      )
      const ok = await new Promise<boolean>((resolve) => {
        if (s.destroyed) return resolve(false)
        s.write(frames, (err) => resolve(!err))
      })
      if (!ok || this.socket !== s) continue
      this.unsettled.push({ end: batch.end, at: this.now() })
      this.stats.records += batch.lines.length
    }
  }

  /** Waits; close ends it early. */
  private pause(ms: number): Promise<void> {
    return this.sleeper.sleep(ms)
  }

  /**
   * Syncs the spool and keeps sending until everything written is settled or `deadlineMs` passed;
   * what is left is sent by the next start.
   */
  async close(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs
    await this.o.spool.flush()
    while (this.o.spool.pending > 0 && Date.now() < deadline) {
      await this.settle()
      await this.o.spool.wait(Math.min(50, Math.max(1, deadline - Date.now())))
    }
    this.stopping = true
    clearInterval(this.settleTimer)
    this.sleeper.stop()
    this.socket?.end()
    await this.o.spool.close()
    await Promise.race([this.loop, new Promise((r) => setTimeout(r, 1000).unref())])
    this.socket?.destroy()
  }
}
