/**
 * Sampled logging of per-request refusals. Under attack every request may be refused, and a line
 * per refusal floods the gateway log (a 10-minute soak of invalid traffic wrote 129 MB). Per key
 * (policy, code, route) the first `perInterval` lines of an interval are written as they come; the
 * rest are counted and written as one summary line when the interval ends. Every refusal is still
 * in the metrics, the access log and the audit log; this is the human-readable log only.
 * Memory: one counter per key seen in the interval, at most MAX_KEYS (then everything of the
 * interval is summed under one overflow key).
 */
import type { Logger } from 'pino'

const MAX_KEYS = 1000

export interface RefusalLogOptions {
  perInterval: number
  intervalMs: number
  now?: () => number
}

export class RefusalLog {
  private readonly logger: Logger
  private readonly per: number
  private readonly intervalMs: number
  private readonly now: () => number
  private windowStart: number
  private readonly counts = new Map<string, { written: number; suppressed: number; msg: string }>()
  private timer: NodeJS.Timeout | undefined

  constructor(logger: Logger, opts: RefusalLogOptions) {
    this.logger = logger
    this.per = opts.perInterval
    this.intervalMs = opts.intervalMs
    this.now = opts.now ?? Date.now
    this.windowStart = this.now()
  }

  /**
   * Logs a refusal at info level unless `key`'s lines of this interval are used up (then counts
   * it). `key` names the kind: e.g. `openapi-validation:GW_ERR_VALIDATION:orders`.
   */
  info(key: string, obj: Record<string, unknown>, msg: string): void {
    const now = this.now()
    if (now - this.windowStart >= this.intervalMs) this.flush(now)
    let c = this.counts.get(key)
    if (c === undefined) {
      if (this.counts.size >= MAX_KEYS) {
        key = '(other kinds)'
        c = this.counts.get(key)
      }
      if (c === undefined) {
        c = { written: 0, suppressed: 0, msg }
        this.counts.set(key, c)
      }
    }
    if (c.written < this.per) {
      c.written++
      this.logger.info(obj, msg)
      return
    }
    c.suppressed++
    if (this.timer === undefined) {
      this.timer = setTimeout(
        () => this.flush(this.now()),
        Math.max(0, this.windowStart + this.intervalMs - now),
      )
      this.timer.unref()
    }
  }

  /** Writes the summary of the interval that ended and starts a new one. */
  flush(now = this.now()): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const seconds = Math.round((now - this.windowStart) / 1000)
    for (const [key, c] of this.counts) {
      if (c.suppressed > 0)
        this.logger.info(
          { kind: key, suppressed: c.suppressed, written: c.written, seconds },
          `${c.msg}: ${c.suppressed} more in the last ${seconds} s (not logged one by one; see metrics and the access log)`,
        )
    }
    this.counts.clear()
    this.windowStart = now
  }
}
