/**
 * The detection engine: fed every finished request from the log phase (Gateway.logPhase), runs the
 * detectors, deduplicates their findings (one alert per detector and subject per suppression
 * window), and acts: an alert (recent list, a log line, an audit event, the webhook) and, for
 * detectors whose action is `ban`, a ban of the IP or principal in the replicated map `bans`.
 *
 * One engine per process, built at start from the `detect:` section and kept across reloads. Every
 * table is bounded. `observe` is synchronous and never throws.
 */
import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import { type AuditEmitter, noopAudit } from '../audit/event.js'
import type { LogEntry } from '../gateway/pipeline/policy.js'
import type { Store } from '../stores/types.js'
import { TtlLru } from '../util/ttl-lru.js'
import { type Alert, AlertList, Webhook } from './alerts.js'
import { writeBan } from './bans.js'
import type { DetectConfig } from './config.js'
import {
  buildDetectors,
  type Detector,
  type Finding,
  type Observation,
  objectIdOf,
  pageKeyOf,
} from './detectors.js'
import {
  accountHash,
  basicUser,
  type IdentityNormalization,
  loginAttemptOf,
  normalizeIdentity,
} from './identity.js'
import { SharedCounts } from './shared.js'
import { OWNERSHIP_CHECKED } from './signals.js'

export interface DetectEngineOptions {
  config: DetectConfig
  store: Store
  logger: Logger
  audit?: AuditEmitter
  now?: () => number
  /**
   * Count the low-volume detectors in the store too, and dedup alerts across gateways (see
   * shared.ts). Default: `config.shared` is `auto` and the store is Redis.
   */
  shared?: boolean
  /** Most shared-count store chains in flight (default 1000). */
  sharedMaxInFlight?: number
}

const MAX_CREDENTIAL_CHARS = 8192

/** The last segment of an object id is the principal's own id (`/users/42` for principal `42`). */
function isOwnId(objectId: string, principal: string): boolean {
  return (
    objectId.length > principal.length &&
    objectId.endsWith(principal) &&
    objectId.charCodeAt(objectId.length - principal.length - 1) === 47
  )
}

/** A short, non-reversible id of a credential: never the credential itself. */
function credentialId(v: string): string {
  return createHash('sha256').update(v).digest('base64url').slice(0, 22)
}

export class DetectEngine {
  readonly alerts: AlertList
  readonly webhook: Webhook | undefined
  private readonly detectors: Detector[]
  private readonly suppressed: TtlLru<true>
  private readonly failure: Set<number>
  private readonly normalization: IdentityNormalization
  private readonly logger: Logger
  private readonly audit: AuditEmitter
  private readonly now: () => number
  private readonly findings: Finding[] = []
  /** The scraping detector's paging parameters (undefined when it is off). */
  private readonly pageParams: readonly string[] | undefined
  private seq = 0
  /** The shared counts (undefined: this gateway counts alone). */
  readonly shared: SharedCounts | undefined

  constructor(private readonly o: DetectEngineOptions) {
    const c = o.config
    this.now = o.now ?? Date.now
    this.logger = o.logger.child({ component: 'detect' })
    this.audit = o.audit ?? noopAudit
    this.detectors = buildDetectors(c, this.now)
    this.pageParams = c.scraping.enabled ? c.scraping.params : undefined
    this.suppressed = new TtlLru(c.maxSubjects * 2, this.now)
    this.failure = new Set(c.failureStatuses)
    this.normalization = c.identityNormalization
    this.alerts = new AlertList(c.alerts.recent)
    const shared = o.shared ?? (c.shared === 'auto' && o.store.backend === 'redis')
    this.shared = shared
      ? new SharedCounts({
          config: c,
          store: o.store,
          logger: this.logger,
          now: this.now,
          raise: (f, now) => this.raise(f, now),
          ...(o.sharedMaxInFlight !== undefined ? { maxInFlight: o.sharedMaxInFlight } : {}),
        })
      : undefined
    const w = c.alerts.webhook
    this.webhook = w ? new Webhook({ ...w, logger: this.logger.child({ sink: 'webhook' }) }) : undefined
  }

  /**
   * The identity an authentication attempt was for; computed for failed attempts only: the
   * principal; the account brute-force-lockout read (normalized, hashed); the user name of an
   * `Authorization: Basic` header (normalized, hashed: never the password, so that many passwords
   * for one user are one identity); else a hash of the credential header (a token or API key).
   */
  private identityOf(entry: LogEntry): string | undefined {
    const ctx = entry.ctx
    if (ctx.principal !== undefined) return `principal:${ctx.principal.id}`
    const account = loginAttemptOf(ctx.state)?.account
    if (account !== undefined) return `account:${account}`
    const h = ctx.req.headers
    const cred = h.authorization ?? h['x-api-key']
    if (typeof cred === 'string' && cred.length > 0 && cred.length <= MAX_CREDENTIAL_CHARS) {
      const user = basicUser(cred)
      if (user !== undefined) {
        const name = normalizeIdentity(user, this.normalization)
        return name === undefined ? undefined : `account:${accountHash(name)}`
      }
      return `credential:${credentialId(cred)}`
    }
    return undefined
  }

  /** The request was a failed authentication attempt (see Observation.authFailed). */
  private failed(entry: LogEntry): boolean {
    if (this.failure.has(entry.status)) return true
    if (entry.errorCode === 'GW_ERR_LOCKED_OUT') return true
    return loginAttemptOf(entry.ctx.state)?.failureStatuses.has(entry.status) === true
  }

  /** Feeds one finished request to the detectors. Never throws. */
  observe(entry: LogEntry): void {
    try {
      // A banned source's refused requests are not evidence of anything new.
      if (entry.errorCode === 'GW_ERR_BANNED') return
      const ctx = entry.ctx
      const authFailed = this.failed(entry)
      const objectId = ctx.path.length > 0 ? objectIdOf(ctx.path) : undefined
      const principal = ctx.principal?.id
      const o: Observation = {
        now: this.now(),
        ip: ctx.clientIp,
        principal,
        identity: authFailed ? this.identityOf(entry) : undefined,
        authFailed,
        status: entry.status,
        route: ctx.routeName,
        objectId,
        owned:
          objectId !== undefined &&
          principal !== undefined &&
          (ctx.state[OWNERSHIP_CHECKED] === true || isOwnId(objectId, principal)),
        path: ctx.path,
        page:
          this.pageParams !== undefined && ctx.query.length > 0
            ? pageKeyOf(ctx.query, this.pageParams)
            : undefined,
      }
      const out = this.findings
      out.length = 0
      for (const d of this.detectors) d.observe(o, out)
      for (const f of out) this.raise(f, o.now)
      out.length = 0
      this.shared?.observe(o)
    } catch (err) {
      this.logger.error({ err }, 'detector failed')
    }
  }

  /**
   * Raises an alert found outside the detectors (the audit log's truncation check at start):
   * deduplicated and delivered like any other (recent list, log, audit, webhook); never a ban.
   */
  report(f: Finding): void {
    try {
      this.raise({ ...f, alertOnly: true }, this.now())
    } catch (err) {
      this.logger.error({ err }, 'alert failed')
    }
  }

  private actionOf(f: Finding): { action: 'alert' | 'ban' | 'step-up'; banSec: number } {
    const c = this.o.config
    const d =
      f.detector === 'brute-force'
        ? c.bruteForce
        : f.detector === 'credential-stuffing'
          ? c.credentialStuffing
          : f.detector === 'enumeration'
            ? c.enumeration
            : f.detector === 'flood'
              ? c.flood
              : f.detector === 'scraping'
                ? c.scraping
                : undefined
    if (d === undefined || d.action === 'alert' || f.alertOnly === true) return { action: 'alert', banSec: 0 }
    // Only IPs and principals can be banned (not a hashed account name or a route); only a
    // principal can be asked to step up.
    if (d.action === 'ban' && (f.subject.startsWith('ip:') || f.subject.startsWith('principal:')))
      return { action: 'ban', banSec: d.banSec }
    if (d.action === 'step-up' && f.subject.startsWith('principal:'))
      return { action: 'step-up', banSec: d.banSec }
    return { action: 'alert', banSec: 0 }
  }

  /** Resolves when no shared store operation is in flight (tests). */
  idle(): Promise<void> {
    return this.shared?.idle() ?? Promise.resolve()
  }

  private raise(f: Finding, now: number): void {
    const key = `${f.detector}|${f.subject}`
    if (this.suppressed.get(key) !== undefined) return
    this.suppressed.set(key, true, now + this.o.config.suppressionSec * 1000)
    // Shared: one alert across all gateways per suppression window (the first to claim it).
    if (this.shared !== undefined) this.shared.claimAlert(f, now, (won) => won && this.emit(f, now))
    else this.emit(f, now)
  }

  private emit(f: Finding, now: number): void {
    const { action, banSec } = this.actionOf(f)
    const until = now + banSec * 1000
    const alert: Alert = {
      id: `${now.toString(36)}-${(++this.seq).toString(36)}`,
      time: new Date(now).toISOString(),
      detector: f.detector,
      subject: f.subject,
      summary: f.summary,
      action,
      ...(action !== 'alert' ? { banUntil: new Date(until).toISOString() } : {}),
      data: f.data,
    }
    this.alerts.add(alert)
    this.logger.warn({ event: 'alert', alert }, 'security alert')
    this.audit.emit({
      type: 'alert',
      ...(f.subject.startsWith('ip:') ? { clientIp: f.subject.slice(3) } : {}),
      ...(f.subject.startsWith('principal:') ? { principal: f.subject.slice(10) } : {}),
      reason: f.detector,
      data: { alertId: alert.id, subject: f.subject, action, summary: f.summary, ...f.data },
    })
    this.webhook?.send(alert)
    if (action !== 'alert') {
      // A step-up demand is a ban entry of kind `step-up` (`step-up:<principal id>`).
      const key = action === 'ban' ? f.subject : `step-up:${f.subject.slice('principal:'.length)}`
      const by = `detector:${f.detector}`
      writeBan(this.o.store, key, { reason: f.summary, by, until }, now).then(
        () =>
          this.audit.emit({
            type: action === 'ban' ? 'ban' : 'step-up',
            decision: 'deny',
            code: action === 'ban' ? 'GW_ERR_BANNED' : 'GW_ERR_STEP_UP_REQUIRED',
            reason: f.detector,
            data: { subject: key, by, until: alert.banUntil ?? '' },
          }),
        (err: unknown) =>
          this.logger.error(
            { err: (err as Error).message, subject: key },
            'ban not stored (this gateway applies it for a few seconds only)',
          ),
      )
    }
  }

  close(): void {
    this.webhook?.close()
  }
}
