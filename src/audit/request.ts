/**
 * The gateway's per-request audit records: every request the gateway denies (`deny`, 4xx) or fails
 * (`error`, 5xx) with its GatewayError code and status; every failed login or authentication the
 * upstream answered (`auth.failure` with `data.source: upstream`: a status of
 * `events.authFailureStatuses`, or of brute-force-lockout's `failureStatuses` on its routes); and,
 * when `events.authSuccess` is on, every authenticated request it let through (`auth.success`).
 * Records of login attempts carry the account's hash (`data.account`, from brute-force-lockout),
 * never the name or the password. One record per request, except that an allowed request whose
 * upstream then failed gets its `error` record too.
 *
 * The record is emitted just before the response head is written. With `fsync: always` the
 * gateway holds the response until the record is on disk (the returned promise): a client never
 * sees an answer whose record a crash could still lose. Requests that end without a response
 * (the client went away) are recorded in the log phase.
 */
import { loginAttemptOf } from '../detect/identity.js'
import type { RequestContext } from '../gateway/pipeline/context.js'
import { type AuditEvent, requestFields } from './event.js'
import type { AuditLog } from './log.js'

/** ctx.state key marking a request whose record was emitted. */
const RECORDED = 'audit'

export class RequestAudit {
  private readonly authFailures: ReadonlySet<number>

  constructor(
    readonly log: AuditLog,
    private readonly authSuccess: boolean,
    authFailureStatuses: readonly number[] = [401],
  ) {
    this.authFailures = new Set(authFailureStatuses)
  }

  /**
   * Called right before a response head is written. Returns a promise when the response must wait
   * for its record to be durable (`fsync: always`), undefined when it may go now.
   */
  beforeResponse(ctx: RequestContext, status: number): Promise<void> | undefined {
    if (!this.record(ctx, status)) return undefined
    return this.log.durable ? this.log.commit() : undefined
  }

  /** Log phase: records a request that got no response head (or none that was recorded). */
  afterResponse(ctx: RequestContext, status: number): void {
    this.record(ctx, status)
  }

  private record(ctx: RequestContext, status: number): boolean {
    const state = ctx.state
    const code = ctx.errorCode
    const done = state[RECORDED]
    // One record per request; a second only when a request recorded as allowed then failed (the
    // upstream broke off after its response head was recorded).
    if (done !== undefined && (done !== 'auth.success' || code === undefined)) return false
    let type: string
    let decision: AuditEvent['decision']
    const login = loginAttemptOf(state)
    if (code !== undefined) {
      type = status >= 500 ? 'error' : 'deny'
      decision = status >= 500 ? 'error' : 'deny'
    } else if (
      status >= 400 &&
      (this.authFailures.has(status) || login?.failureStatuses.has(status) === true)
    ) {
      // A failed login (or authentication) the upstream answered: the gateway let it through.
      type = 'auth.failure'
      decision = 'deny'
    } else if (this.authSuccess && ctx.principal !== undefined) {
      type = 'auth.success'
      decision = 'allow'
    } else {
      return false
    }
    state[RECORDED] = type
    const e = requestFields(ctx) as AuditEvent
    e.type = type
    e.decision = decision
    e.status = status
    if (code !== undefined) e.code = code
    if (type === 'auth.failure') {
      e.reason = `the upstream answered ${status}`
      e.data =
        login?.account !== undefined ? { source: 'upstream', account: login.account } : { source: 'upstream' }
    } else if (login?.account !== undefined) e.data = { account: login.account }
    this.log.emit(e)
    return true
  }
}
