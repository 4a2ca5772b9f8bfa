/**
 * The HTTP batch sink: records go to the spool (spool.ts) and from there, in order and one batch
 * in flight, to a collector as `POST <url>` with `Content-Type: application/x-ndjson` (the record
 * lines, byte for byte as the file sink writes them). A batch leaves the spool only when the
 * collector answered 2xx; anything else (a connection error, a timeout, any other status) is
 * retried, with capped exponential backoff and jitter, forever: the sink never drops a batch.
 *
 * Each request carries `X-Portcullis-Audit-Range: <instance>:<firstSeq>-<lastSeq>` (also as
 * `Idempotency-Key`). Delivery is at-least-once: after a crash, or a collector that stored a batch
 * but whose answer was lost, a batch is sent again. A collector that drops records whose
 * `(instance, seq)` it already holds stores every record exactly once (docs/audit.md).
 */
import { Agent, request } from 'undici'
import { backoffDelay, Sleeper, type Spool, type SpoolBatch } from './spool.js'
import type { AuditSink, SinkErrorHandler } from './types.js'

export interface HttpSinkOptions {
  spool: Spool
  url: URL
  instance: string
  /** Secret for the authorization header (never logged). */
  token?: string | undefined
  /** Header carrying the token: `authorization` (sent as `Bearer <token>`) or another name (sent as is). */
  tokenHeader: string
  timeoutMs: number
  maxRecords: number
  maxBytes: number
  lingerMs: number
  retryMinMs: number
  retryMaxMs: number
  /** PEM CA certificates to trust instead of the system's (a private collector CA). */
  ca?: Buffer | undefined
  onError: SinkErrorHandler
  now?: () => number
  random?: () => number
}

export class HttpStatusError extends Error {
  readonly code: string
  constructor(readonly status: number) {
    super(`collector answered ${status}`)
    this.code = `HTTP_${status}`
  }
}

/**
 * How long the delivery loop lingers before sending what is there: the rest of `lingerMs` since
 * the first unsent record became readable, 0 once a full batch is waiting.
 */
export function lingerLeft(
  unsentBytes: number,
  firstReadableAt: number,
  now: number,
  o: { lingerMs: number; maxBytes: number },
): number {
  if (unsentBytes >= o.maxBytes) return 0
  return Math.max(0, firstReadableAt + o.lingerMs - now)
}

export class HttpSink implements AuditSink {
  readonly kind = 'http'
  private readonly agent: Agent
  private readonly sleeper = new Sleeper()
  private readonly headers: Record<string, string>
  private stopping = false
  private inFlight: AbortController | undefined
  private readonly loop: Promise<void>
  /** Batches delivered, attempts that failed (tests, metrics). */
  readonly stats = { delivered: 0, records: 0, failures: 0 }

  constructor(private readonly o: HttpSinkOptions) {
    this.agent = new Agent({
      connect: { timeout: o.timeoutMs, ...(o.ca ? { ca: o.ca } : {}), rejectUnauthorized: true },
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      connections: 1,
      keepAliveTimeout: 10_000,
    })
    this.headers = { 'content-type': 'application/x-ndjson', 'user-agent': 'portcullis-audit' }
    if (o.token !== undefined) {
      const h = o.tokenHeader.toLowerCase()
      this.headers[h] = h === 'authorization' ? `Bearer ${o.token}` : o.token
    }
    this.loop = this.run()
  }

  write(data: Buffer): Promise<void> {
    return this.o.spool.append(data)
  }

  private async run(): Promise<void> {
    const now = this.o.now ?? Date.now
    const random = this.o.random ?? Math.random
    let firstReadableAt: number | undefined
    while (!this.stopping) {
      const unsent = this.o.spool.unsent
      if (unsent === 0) {
        firstReadableAt = undefined
        await this.o.spool.wait(1000)
        continue
      }
      firstReadableAt ??= now()
      const wait = lingerLeft(unsent, firstReadableAt, now(), this.o)
      if (wait > 0) {
        await this.o.spool.wait(wait)
        continue
      }
      firstReadableAt = undefined
      let batch: SpoolBatch | undefined
      try {
        batch = await this.o.spool.next(this.o.maxRecords, this.o.maxBytes)
      } catch (err) {
        this.o.onError(err as NodeJS.ErrnoException, 'spool read')
        this.o.spool.rewind()
        await this.sleeper.sleep(this.o.retryMinMs)
        continue
      }
      if (batch === undefined) continue
      for (let attempt = 0; !this.stopping; attempt++) {
        try {
          await this.post(batch)
          await this.o.spool.ack(batch.end)
          this.stats.delivered++
          this.stats.records += batch.lines.length
          break
        } catch (err) {
          this.stats.failures++
          if (this.stopping) break
          this.o.onError(err as NodeJS.ErrnoException, 'deliver')
          await this.sleeper.sleep(backoffDelay(attempt, this.o.retryMinMs, this.o.retryMaxMs, random))
        }
      }
    }
  }

  private async post(batch: SpoolBatch): Promise<void> {
    const range = `${this.o.instance}:${batch.firstSeq}-${batch.lastSeq}`
    const ac = new AbortController()
    this.inFlight = ac
    const timer = setTimeout(() => ac.abort(), this.o.timeoutMs)
    try {
      const res = await request(this.o.url, {
        method: 'POST',
        dispatcher: this.agent,
        signal: ac.signal,
        headers: {
          ...this.headers,
          'x-portcullis-audit-range': range,
          'idempotency-key': range,
          'content-length': String(batch.data.length),
        },
        body: batch.data,
      })
      await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined)
      if (res.statusCode < 200 || res.statusCode > 299) throw new HttpStatusError(res.statusCode)
    } catch (err) {
      if (err instanceof HttpStatusError) throw err
      // undici's errors can name the URL; only the code travels on.
      const code = (err as { code?: string }).code ?? (ac.signal.aborted ? 'ETIMEDOUT' : 'EDELIVER')
      const e = new Error(`delivery failed: ${code}`) as NodeJS.ErrnoException
      e.code = code
      throw e
    } finally {
      clearTimeout(timer)
      this.inFlight = undefined
    }
  }

  /**
   * Syncs the spool and keeps delivering until it is empty or `deadlineMs` passed; what is left is
   * sent by the next start.
   */
  async close(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs
    await this.o.spool.flush()
    while (this.o.spool.pending > 0 && Date.now() < deadline) {
      await this.o.spool.wait(Math.min(50, deadline - Date.now()))
    }
    this.stopping = true
    this.sleeper.stop()
    this.inFlight?.abort()
    await this.o.spool.close()
    await Promise.race([this.loop, new Promise((r) => setTimeout(r, 1000).unref())])
    await this.agent.destroy().catch(() => undefined)
  }
}
