/**
 * Alerts: the bounded recent-alerts list (GET /v1/alerts), and the HMAC-signed JSON webhook with a
 * bounded retry queue. The log line and the audit event are written by the engine.
 */
import { createHmac } from 'node:crypto'
import type { Logger } from 'pino'
import { request } from 'undici'
import { maskSecrets, maskValue } from '../secrets/mask.js'
import type { DetectorId } from './detectors.js'

/** One alert, as listed by the admin API and sent to the webhook. */
export interface Alert {
  /** Unique per process: `<instance>-<n>`. */
  id: string
  /** ISO 8601. */
  time: string
  detector: DetectorId
  subject: string
  summary: string
  /** What was done: `alert`, or `ban` (with `banUntil`). */
  action: 'alert' | 'ban' | 'step-up'
  /** ISO 8601, for actions `ban` and `step-up`: when the ban or the step-up demand ends. */
  banUntil?: string
  data: Record<string, number | string>
  /** Set when someone acknowledged the alert (admin API / dashboard). */
  acknowledged?: { by: string; at: string }
}

/** The newest `max` alerts, oldest first. */
export class AlertList {
  private readonly items: Alert[] = []
  /** Alerts raised since start (including those no longer in the list). */
  total = 0

  constructor(private readonly max: number) {}

  add(a: Alert): void {
    this.total++
    this.items.push(maskValue(a)) // secrets: a subject or summary may quote client input
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max)
  }

  /** Newest first, at most `limit`. */
  recent(limit: number): Alert[] {
    return this.items.slice(-limit).reverse()
  }

  /**
   * Marks an alert acknowledged (by whom, when). Returns the alert, or undefined when it is no
   * longer in the list. Acknowledging twice keeps the first acknowledgement.
   */
  acknowledge(id: string, by: string, at: Date): Alert | undefined {
    const a = this.items.find((x) => x.id === id)
    if (a === undefined) return undefined
    a.acknowledged ??= { by, at: at.toISOString() }
    return a
  }

  /** Alerts in the list not acknowledged yet. */
  get unacknowledged(): number {
    let n = 0
    for (const a of this.items) if (a.acknowledged === undefined) n++
    return n
  }

  get size(): number {
    return this.items.length
  }
}

/** `sha256=<hex>` of HMAC-SHA256(secret, body): the `X-Portcullis-Signature` header. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}

export interface WebhookOptions {
  url: string
  secret: string
  timeoutMs: number
  maxAttempts: number
  maxQueue: number
  logger: Logger
}

const BACKOFF_START_MS = 500
const BACKOFF_MAX_MS = 30_000

/**
 * Delivers alerts one at a time, in order, each up to `maxAttempts` times (2xx is success). The
 * queue is bounded: when full the oldest waiting alert is dropped and counted. Never throws.
 */
export class Webhook {
  private readonly queue: { body: string; attempts: number }[] = []
  private running = false
  private closed = false
  private timer: NodeJS.Timeout | undefined
  private wake: (() => void) | undefined
  dropped = 0
  delivered = 0
  failed = 0

  constructor(private readonly o: WebhookOptions) {}

  send(alert: Alert): void {
    if (this.closed) return
    this.queue.push({ body: maskSecrets(JSON.stringify(alert)), attempts: 0 }) // secrets: masked
    if (this.queue.length > this.o.maxQueue) {
      this.queue.shift()
      this.dropped++
      this.o.logger.warn({ dropped: this.dropped }, 'alert webhook: queue full; dropped the oldest alert')
    }
    if (!this.running) void this.drain()
  }

  /** Waits up to `ms` for the queue to empty (tests and shutdown). */
  async flush(ms: number): Promise<void> {
    const deadline = Date.now() + ms
    while ((this.queue.length > 0 || this.running) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  close(): void {
    this.closed = true
    clearTimeout(this.timer)
    this.wake?.()
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve
      this.timer = setTimeout(resolve, ms)
      this.timer.unref()
    })
  }

  private async attempt(body: string): Promise<number | string> {
    try {
      const res = await request(this.o.url, {
        method: 'POST',
        body,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'portcullis-alerts',
          'x-portcullis-signature': signBody(this.o.secret, body),
        },
        headersTimeout: this.o.timeoutMs,
        bodyTimeout: this.o.timeoutMs,
        signal: AbortSignal.timeout(this.o.timeoutMs),
      })
      await res.body.dump()
      return res.statusCode
    } catch (err) {
      return (err as Error).name || 'error'
    }
  }

  private async drain(): Promise<void> {
    this.running = true
    try {
      // The alert being delivered leaves the queue: the bound applies to those waiting.
      for (let item = this.queue.shift(); item !== undefined && !this.closed; item = this.queue.shift()) {
        for (;;) {
          item.attempts++
          const r = await this.attempt(item.body)
          if (typeof r === 'number' && r >= 200 && r < 300) {
            this.delivered++
            break
          }
          if (item.attempts >= this.o.maxAttempts || this.closed) {
            this.failed++
            this.o.logger.error(
              { result: r, attempts: item.attempts },
              'alert webhook: giving up on an alert',
            )
            break
          }
          // The URL may carry a token in its query: it is not logged.
          this.o.logger.warn(
            { result: r, attempt: item.attempts },
            'alert webhook: delivery failed; retrying',
          )
          await this.sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** (item.attempts - 1)))
        }
      }
    } finally {
      this.running = false
    }
  }
}
