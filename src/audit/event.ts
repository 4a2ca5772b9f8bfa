/**
 * Audit events: what policies and the gateway hand to the audit log. The log turns each into a
 * record (adding seq, time, instance, kid, prev and mac; see record.ts). Events hold ids and hashes
 * only: never a token, API key, password or cookie.
 */
import type { RequestContext } from '../gateway/pipeline/context.js'

/** What became of the request or action the event is about. */
export type AuditDecision = 'allow' | 'deny' | 'error'

/**
 * One audit event. `type` is one of: `auth.success`, `auth.failure`, `deny`, `error`, `lockout`,
 * `config.reload`, `gateway.start`, `gateway.stop`, `admin.<action>` (later issues add more).
 * Types starting with `audit.` are written by the audit log itself and refused from `emit`.
 */
export interface AuditEvent {
  type: string
  /** Milliseconds since the epoch; `emit` sets it when absent. */
  time?: number
  requestId?: string
  clientIp?: string
  /** The principal's id (never a credential). */
  principal?: string
  /** How the principal authenticated (`jwt`, `api-key`, `mtls`, `oauth2-introspection`). */
  authMethod?: string
  route?: string
  method?: string
  /** Canonical request path, without the query. */
  path?: string
  /** The API operation (e.g. an OpenAPI operationId), when known. */
  operation?: string
  /** Objects the request touched, as `type:id`. */
  objects?: readonly string[]
  decision?: AuditDecision
  status?: number
  /** The GatewayError code. */
  code?: string
  /** Why (internal detail for the audit trail, never shown to clients; never a secret). */
  reason?: string
  /** Type-specific members. */
  data?: Record<string, unknown>
}

/** What policies get as `deps.audit`: emit never throws and never blocks. */
export interface AuditEmitter {
  emit(event: AuditEvent): void
}

/** An emitter that drops everything (audit off). */
export const noopAudit: AuditEmitter = Object.freeze({ emit() {} })

/** An emitter that keeps events in memory, for tests. */
export function memoryAudit(): AuditEmitter & { events: AuditEvent[] } {
  const events: AuditEvent[] = []
  return {
    events,
    emit(e) {
      events.push({ ...e, time: e.time ?? Date.now() })
    },
  }
}

/** Longest path kept in a record; longer ones are cut (with an ellipsis). */
const MAX_PATH = 1024

/**
 * The members of an event that describe the request: id, client IP, route, method, path and the
 * principal when there is one.
 */
export function requestFields(ctx: RequestContext): Omit<AuditEvent, 'type'> {
  const p = ctx.principal
  const path = ctx.path
  return {
    requestId: ctx.id,
    clientIp: ctx.clientIp,
    route: ctx.routeName,
    method: ctx.method,
    path: path === '' ? undefined : path.length > MAX_PATH ? `${path.slice(0, MAX_PATH)}…` : path,
    principal: p?.id,
    authMethod: p?.authMethod,
  }
}
