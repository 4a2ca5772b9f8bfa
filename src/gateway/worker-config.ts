/**
 * What differs per worker under `serve --workers N` (docs/deployment.md#workers): each worker keeps
 * its own audit chain (instance id and file prefix suffixed `-w<n>`: one chain, one set of files and
 * one lock per worker, each verifiable alone) and its own admin listener (admin.port + n - 1, so
 * that each worker's /metrics is scraped, not a round-robin of them; port 0 stays 0); its log
 * lines carry `worker: n`.
 */
import type { Logger } from 'pino'
import type { AuditConfig } from '../audit/config.js'
import type { GatewayConfig } from '../config/schema.js'

/** The audit config of worker `n` (1-based); unchanged outside worker mode. */
export function auditForWorker(audit: AuditConfig, n: number | undefined): AuditConfig {
  if (n === undefined) return audit
  return {
    ...audit,
    ...(audit.instanceId !== undefined ? { instanceId: `${audit.instanceId}-w${n}` } : {}),
    file: { ...audit.file, prefix: `${audit.file.prefix}-w${n}` },
  }
}

/** The admin listener config of worker `n` (1-based); unchanged outside worker mode. */
export function adminForWorker(admin: GatewayConfig['admin'], n: number | undefined): GatewayConfig['admin'] {
  if (n === undefined || admin.port === 0) return admin
  return { ...admin, port: admin.port + n - 1 }
}

/** The process log of worker `n` carries `worker: n` on every line; unchanged outside worker mode. */
export function withWorker(logger: Logger, n: number | undefined): Logger {
  return n === undefined ? logger : logger.child({ worker: n })
}
