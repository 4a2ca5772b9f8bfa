/**
 * The stdout sink: records as JSON lines on standard output, for a log collector that reads the
 * process's output. Nothing is read back on start, so each process start begins a chain of its
 * own (see docs/audit.md); the access log must then go elsewhere (stdout is the access log's
 * default), or the two interleave.
 */
import type { Writable } from 'node:stream'
import type { AuditSink, SinkErrorHandler } from './types.js'

export class StdoutSink implements AuditSink {
  readonly kind = 'stdout'
  private failed = false
  constructor(
    private readonly out: Writable,
    private readonly onError: SinkErrorHandler,
  ) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.failed) onError(err, 'write')
      this.failed = true
    })
  }

  write(data: Buffer): Promise<void> {
    if (this.failed || this.out.destroyed) return Promise.resolve()
    return new Promise((resolve) => {
      this.out.write(data, (err) => {
        if (err && !this.failed) {
          this.failed = true
          this.onError(err as NodeJS.ErrnoException, 'write')
        }
        resolve()
      })
    })
  }

  async close(): Promise<void> {
    // process.stdout is never closed; what was written has been handed over.
  }
}
