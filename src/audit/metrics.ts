/** Prometheus series for the audit log, read from its counters at scrape time. */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { AuditLog } from './log.js'

export function registerAuditMetrics(registry: Registry, log: AuditLog): void {
  // Counts since start: counters (`_total`), set from the log's own counts at scrape time.
  const counters: [string, string, (s: AuditLog['stats']) => number][] = [
    [
      'portcullis_audit_records_written_total',
      'Audit records written (checkpoints included) since start.',
      (s) => s.written,
    ],
    [
      'portcullis_audit_events_dropped_total',
      'Audit events dropped because the queue was full (each gap is also recorded in the chain).',
      (s) => s.dropped,
    ],
    [
      'portcullis_audit_events_invalid_total',
      'Audit events refused or not serializable (recorded as audit.invalid).',
      (s) => s.invalid,
    ],
    [
      'portcullis_audit_sink_errors_total',
      'Audit sink write/sync errors (each retried).',
      (s) => s.sinkErrors,
    ],
  ]
  for (const [name, help, read] of counters) {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset()
        this.inc(read(log.stats))
      },
    })
  }
  new Gauge({
    name: 'portcullis_audit_queue_length',
    help: 'Audit events waiting to be written.',
    registers: [registry],
    collect() {
      this.set(log.stats.queued)
    },
  })
}
