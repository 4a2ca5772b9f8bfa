/**
 * Where audit records go. The audit log (writer.ts) seals records into lines and hands a sink
 * whole lines, one batch at a time, never two batches at once. A sink keeps its own promise about
 * durability (`write` resolves when the batch is as safe as the sink's setting says) and never
 * drops a batch: on an I/O error it reports through `onError` and retries until it succeeds or is
 * closed. Sinks that keep the chain in files (file.ts) also rotate; sinks that forward records
 * elsewhere (http.ts, syslog.ts) implement the same interface over an on-disk spool (spool.ts).
 */
export interface AuditSink {
  /** `file`, `stdout`, … (for logs and metrics). */
  readonly kind: string
  /**
   * Writes a batch of complete lines (each ending with a newline). Resolves once they are written
   * (and, for a file with `fsync: always`, on disk). Never rejects.
   */
  write(data: Buffer): Promise<void>
  /** For sinks with files: whether the next batch belongs in a new file. */
  shouldRotate?(now: number): boolean
  /** Closes the current file and opens the next one in the chain; returns the new file's name. */
  rotate?(): Promise<string>
  /** The next file's name, when `rotate` is called (rotation checkpoints name it). */
  nextFileName?(): string
  /** Flushes, syncs and releases. A write still retrying is given up after `deadlineMs`. */
  close(deadlineMs: number): Promise<void>
}

/** What a sink reports when it cannot write. */
export type SinkErrorHandler = (err: NodeJS.ErrnoException, op: string) => void
