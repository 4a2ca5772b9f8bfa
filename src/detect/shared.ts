/**
 * Detector counts shared through the store (Redis) by every gateway: the low-volume detectors
 * (brute-force, credential-stuffing, enumeration, scraping) also count in the store, so an attack
 * spread over several gateways crosses the threshold as one. The local detectors keep running
 * beside it (a finding is raised by whichever crosses first, and when the store is down the local
 * ones are all there is). flood and global-spike stay per gateway: a store call per request would
 * cost more than the detection is worth.
 *
 * `observe` never awaits: the store operations of one observation are one fire-and-forget chain,
 * at most `maxInFlight` chains at once (more are dropped and counted); store errors are logged at
 * most once per `logIntervalMs`, with the counts.
 *
 * Every shared count is over a sliding window: a set whose members expire `windowSec` after they
 * were added (failures are members too, each with a unique id), so no window boundary hides a
 * burst (issue 25, item 6).
 *
 * Keys (the store hash-tags each key by itself): `detect:bf:<h>` (failures per subject, a set),
 * `detect:cs:<h>` (set of identities per IP), `detect:en:d:<h>` (object ids a subject was
 * refused, 403/404 only), `detect:sc:<h>` (pages
 * per subject and path), `detect:alert:<detector>:<h>` (cluster-wide alert dedup); `<h>` is the
 * SHA-256 (base64url, 22 characters) of the subject.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import type { Store } from '../stores/types.js'
import type { DetectConfig } from './config.js'
import { type Finding, foreignObjectsThreshold, type Observation } from './detectors.js'

/** A short, fixed-length id of a subject, a member or a path (sha256, base64url, 22 characters). */
export function sharedId(v: string): string {
  return createHash('sha256').update(v).digest('base64url').slice(0, 22)
}

/** Members longer than this are stored as their {@link sharedId}. */
const MAX_MEMBER = 64
const member = (v: string): string => (v.length <= MAX_MEMBER ? v : `#${sharedId(v)}`)

export interface SharedCountsOptions {
  config: DetectConfig
  store: Store
  logger: Logger
  /** Called with a finding whose SHARED count crossed a threshold (the engine dedups and raises). */
  raise: (f: Finding, now: number) => void
  /** Most store chains in flight; more observations are not shared (dropped and counted). */
  maxInFlight?: number
  /** Least time between two "store failing" log lines. */
  logIntervalMs?: number
  now?: () => number
}

export class SharedCounts {
  /** Chains started and not finished. */
  inFlight = 0
  /** Observations not shared because `maxInFlight` chains were running. */
  dropped = 0
  /** Store operations that failed. */
  errors = 0
  private readonly maxInFlight: number
  private readonly logIntervalMs: number
  private readonly now: () => number
  private lastLog = Number.NEGATIVE_INFINITY
  private loggedErrors = 0
  private loggedDropped = 0
  private idleWaiters: (() => void)[] = []
  /** Unique failure members: a random prefix per process and a counter. */
  private readonly eventPrefix = `${randomBytes(6).toString('base64url')}.`
  private events = 0

  constructor(private readonly o: SharedCountsOptions) {
    this.maxInFlight = o.maxInFlight ?? 1000
    this.logIntervalMs = o.logIntervalMs ?? 10_000
    this.now = o.now ?? Date.now
  }

  /** Starts the shared counting of one observation (synchronous; never throws). */
  observe(ob: Observation): void {
    const c = this.o.config
    const bf = c.bruteForce.enabled && ob.authFailed
    const cs = c.credentialStuffing.enabled && ob.authFailed && ob.identity !== undefined
    // Enumeration shares denied requests only (403/404): normal traffic by id costs no store call.
    const en = c.enumeration.enabled && ob.objectId !== undefined && (ob.status === 403 || ob.status === 404)
    const sc = c.scraping.enabled && ob.page !== undefined
    if (!bf && !cs && !en && !sc) return
    if (bf) {
      this.run(ob.now, () => this.bruteForce(`ip:${ob.ip}`, ob.now))
      if (ob.identity !== undefined) {
        const identity = ob.identity
        this.run(ob.now, () => this.bruteForce(identity, ob.now))
      }
    }
    if (cs) this.run(ob.now, () => this.credentialStuffing(ob))
    if (en) this.run(ob.now, () => this.enumeration(ob))
    if (sc) this.run(ob.now, () => this.scraping(ob))
  }

  /** Resolves when no chain is in flight (for tests and shutdown). */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve()
    return new Promise((r) => this.idleWaiters.push(r))
  }

  /**
   * Cluster-wide dedup of an alert: resolves true when this gateway is the first to raise it within
   * the suppression window (`kv.setIfAbsent`), and also when the store fails (fail to local).
   * Not capped by `maxInFlight` (it runs once per local suppression window and subject).
   */
  claimAlert(f: Finding, now: number, then: (won: boolean) => void): void {
    const key = `detect:alert:${f.detector}:${sharedId(f.subject)}`
    this.run(
      now,
      async () => {
        let won: boolean
        try {
          won = await this.o.store.kv.setIfAbsent(key, String(now), this.o.config.suppressionSec * 1000)
        } catch (err) {
          this.errors++
          this.report(this.now(), err)
          won = true
        }
        then(won)
      },
      false,
    )
  }

  private run(now: number, chain: () => Promise<void>, capped = true): void {
    if (capped && this.inFlight >= this.maxInFlight) {
      this.dropped++
      this.report(now)
      return
    }
    this.inFlight++
    let p: Promise<void>
    try {
      p = chain()
    } catch (err) {
      p = Promise.reject(err)
    }
    p.catch((err: unknown) => {
      this.errors++
      this.report(this.now(), err)
    }).finally(() => {
      if (--this.inFlight === 0 && this.idleWaiters.length > 0) {
        const w = this.idleWaiters
        this.idleWaiters = []
        for (const r of w) r()
      }
    })
  }

  /** Logs errors and drops at most once per interval (the message only: never a key or a value). */
  private report(now: number, err?: unknown): void {
    if (now - this.lastLog < this.logIntervalMs) return
    this.lastLog = now
    const errors = this.errors - this.loggedErrors
    const dropped = this.dropped - this.loggedDropped
    this.loggedErrors = this.errors
    this.loggedDropped = this.dropped
    this.o.logger.warn(
      {
        ...(err !== undefined ? { err: err instanceof Error ? err.message : String(err) } : {}),
        errors,
        dropped,
        inFlight: this.inFlight,
      },
      'shared detector counts failing or dropped (this gateway counts locally)',
    )
  }

  private async bruteForce(subject: string, now: number): Promise<void> {
    const d = this.o.config.bruteForce
    const key = `detect:bf:${sharedId(subject)}`
    const sets = this.o.store.sets
    // One member per failure, expiring windowSec after it: the set's size is a sliding count.
    await sets.add(key, `${this.eventPrefix}${(++this.events).toString(36)}`, d.windowSec * 1000)
    const n = await sets.size(key)
    if (n >= d.failures) {
      this.o.raise(
        {
          detector: 'brute-force',
          subject,
          summary: `${n} failed authentications from ${subject} within ${d.windowSec} s (all gateways)`,
          data: { failures: n, windowSec: d.windowSec, shared: 'yes' },
        },
        now,
      )
    }
  }

  private async credentialStuffing(ob: Observation): Promise<void> {
    const d = this.o.config.credentialStuffing
    const subject = `ip:${ob.ip}`
    const key = `detect:cs:${sharedId(subject)}`
    const sets = this.o.store.sets
    if (!(await sets.add(key, member(ob.identity as string), d.windowSec * 1000))) return
    const n = await sets.size(key)
    if (n >= d.identities) {
      this.o.raise(
        {
          detector: 'credential-stuffing',
          subject,
          summary: `${n} distinct identities failed authentication from ${subject} within ${d.windowSec} s (all gateways)`,
          data: { identities: n, windowSec: d.windowSec, shared: 'yes' },
        },
        ob.now,
      )
    }
  }

  /**
   * Shared enumeration counts only refused requests (403/404; requests answered 2xx never reach
   * the store): the distinct object ids one subject was refused, over all gateways, against the
   * same `foreignObjects` threshold as the local rule. The sequential walks stay local.
   */
  private async enumeration(ob: Observation): Promise<void> {
    const d = this.o.config.enumeration
    const subject = ob.principal !== undefined ? `principal:${ob.principal}` : `ip:${ob.ip}`
    const key = `detect:en:d:${sharedId(subject)}`
    const sets = this.o.store.sets
    if (!(await sets.add(key, member(ob.objectId as string), d.windowSec * 1000))) return
    const denied = await sets.size(key)
    if (denied >= foreignObjectsThreshold(d)) {
      this.o.raise(
        {
          detector: 'enumeration',
          subject,
          summary: `${subject} was refused ${denied} distinct objects (403/404) within ${d.windowSec} s (all gateways)`,
          data: { deniedObjects: denied, windowSec: d.windowSec, shared: 'yes' },
        },
        ob.now,
      )
    }
  }

  private async scraping(ob: Observation): Promise<void> {
    const d = this.o.config.scraping
    const subject = ob.principal !== undefined ? `principal:${ob.principal}` : `ip:${ob.ip}`
    const key = `detect:sc:${sharedId(`${subject}|${ob.path}`)}`
    const sets = this.o.store.sets
    if (!(await sets.add(key, member(ob.page as string), d.windowSec * 1000))) return
    const n = await sets.size(key)
    if (n >= d.pages) {
      const path = ob.path.slice(0, 200)
      this.o.raise(
        {
          detector: 'scraping',
          subject,
          summary: `${subject} fetched ${n} distinct pages of ${path} within ${d.windowSec} s (all gateways)`,
          data: { pages: n, path, windowSec: d.windowSec, shared: 'yes' },
        },
        ob.now,
      )
    }
  }
}
