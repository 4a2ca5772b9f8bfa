/** Prometheus series for the audit log, read from its counters at scrape time. */
import { Gauge, type Registry } from 'prom-client'
import type { AuditLog } from './log.js'

export function registerAuditMetrics(registry: Registry, log: AuditLog): void {
  const series: [string, string, (s: AuditLog['stats']) => number][] = [
    [
      'portcullis_audit_records_written',
      'Audit records written (checkpoints included) since start.',
      (s) => s.written,
    ],
    [
      'portcullis_audit_events_dropped',
      'Audit events dropped because the queue was full (each gap is also recorded in the chain).',
      (s) => s.dropped,
    ],
    [
      'portcullis_audit_events_invalid',
      'Audit events refused or not serializable (recorded as audit.invalid).',
      (s) => s.invalid,
    ],
    ['portcullis_audit_sink_errors', 'Audit sink write/sync errors (each retried).', (s) => s.sinkErrors],
    ['portcullis_audit_queue_length', 'Audit events waiting to be written.', (s) => s.queued],
  ]
  for (const [name, help, read] of series) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(log.stats))
      },
    })
  }
}
