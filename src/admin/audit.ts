/**
 * Admin writes: every state change made through the admin API passes through
 * {@link recordAdminWrite}. Today it writes one gateway log line; this is the one place where the
 * tamper-evident audit trail (issue 7) hooks in.
 */
import type { Logger } from 'pino'

/** One state change made through the admin API (attempted: `outcome` says how it ended). */
export interface AdminWrite {
  /** Who: today always `admin token` (the one configured bearer token). */
  actor: string
  /** What, as `<resource>.<verb>`: `revocation.create`, `revocation.delete`. */
  action: string
  /** The resource id (e.g. `jti:…`, `sha256:…`). Never a credential. */
  target: string
  /** The admin request's id (its `x-request-id`). */
  requestId: string
  /** `ok`, `not-found` (nothing to delete), or `failed` (the store refused or was unreachable). */
  outcome: 'ok' | 'not-found' | 'failed'
  /** Client-safe details: e.g. `expiresAt`, `reason`. Never a credential. */
  details?: Record<string, unknown>
}

/**
 * Records an admin write. AUDIT HOOK (issue 7): emit the audit event here; every admin route that
 * changes state already calls this function, so nothing else needs to change.
 */
export function recordAdminWrite(logger: Logger, write: AdminWrite): void {
  logger.info(
    {
      admin: {
        actor: write.actor,
        action: write.action,
        target: write.target,
        outcome: write.outcome,
        ...(write.details ? { details: write.details } : {}),
      },
      requestId: write.requestId,
    },
    'admin write',
  )
}
