/**
 * The audit log: a bounded queue of events, sealed into hash-chained, MAC-signed records and
 * written to a sink in batches, off the request path.
 *
 * - `emit` only enqueues (never throws, never blocks). The queue is flushed once per event-loop
 *   turn (setImmediate); while a batch is being written, new events wait for the next batch, so
 *   with `fsync: always` one fdatasync covers every record of a batch (group commit).
 * - The queue holds at most `maxQueue` events. When it is full, further events are dropped and
 *   counted, the gateway log gets an error line (at most one a second), and the chain gets an
 *   `audit.gap` record saying how many events were lost and when: a loss is never silent, and
 *   `audit verify` reports it. (Blocking instead would stall the event loop, which serves every
 *   request; with `fsync: always` the gateway holds audited responses until their records are on
 *   disk, which bounds the queue by the number of connections anyway.)
 * - Checkpoints (`audit.checkpoint`) every `checkpointEvery` records and every
 *   `checkpointIntervalMs` with records since the last one; one closes each file on rotation
 *   (`reason: rotate`, naming the next file) and one closes the chain on shutdown
 *   (`reason: close`).
 */
import type { Logger } from 'pino'
import type { ChainHead } from './anchor.js'
import { CanonicalError } from './canonical.js'
import type { AuditEmitter, AuditEvent } from './event.js'
import type { Keyring } from './keyring.js'
import { sealRecord, type SigningKey } from './record.js'
import type { Redactor } from './redact.js'
import { mayHoldSecret, maskValue } from '../secrets/mask.js'
import type { AuditSink } from './sinks/types.js'

export interface AuditLogOptions {
  instance: string
  keyring: Keyring
  sink: AuditSink
  /** Where the chain continues: the next seq and the hash of the record before it. */
  start: { seq: number; prev: string }
  /** Members of the first record this log writes (`audit.start`). */
  startData: Record<string, unknown>
  checkpointEvery: number
  checkpointIntervalMs: number
  maxQueue: number
  /** fsync: always — the gateway holds audited responses until `commit()` resolves. */
  durable: boolean
  redact?: Redactor | undefined
  logger: Logger
  now?: () => number
  /** Called when the log is closed (releases the chain lock). */
  onClose?: () => void
  /**
   * Anchors the chain's head outside its files (anchor.ts): started with the log, and given the
   * final head at close, after the closing checkpoint is written.
   */
  anchor?: { start(head: () => ChainHead | undefined): void; final(deadlineMs: number): Promise<void> }
}

export interface AuditLogStats {
  /** Records written (checkpoints included). */
  written: number
  checkpoints: number
  /** Events dropped because the queue was full. */
  dropped: number
  /** Events refused by emit (no type, or a reserved `audit.` type) or that could not be serialized. */
  invalid: number
  /** Sink errors (each retried). */
  sinkErrors: number
  /** Events waiting now. */
  queued: number
}

/** What the admin API's `GET /v1/audit/status` reports about the log (see src/admin/audit-status.ts). */
export interface AuditLogStatus {
  instance: string
  sink: string
  /** The file being written (file sink). */
  currentFile: string | undefined
  /** Its path (file sink). */
  currentPath: string | undefined
  /** The encryption key id of the current file; undefined when files are not encrypted. */
  encryptionKid: string | undefined
  /** Seq of the last record handed to the sink and written; undefined before the first. */
  lastSeq: number | undefined
  /** When the last checkpoint was sealed (ms); undefined before the first. */
  lastCheckpointAt: number | undefined
  queued: number
  /** The last sink error: the operation and the error's code (never a message). */
  lastError: { op: string; code: string; at: number } | undefined
}

interface Deferred {
  promise: Promise<void>
  resolve: () => void
}

function deferred(): Deferred {
  let resolve!: () => void
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

const RESOLVED = Promise.resolve()
const ALERT_EVERY_MS = 1000
const TICK_MS = 1000

type Internal = { type: 'audit.start' | 'audit.checkpoint'; data: Record<string, unknown> }

export class AuditLog implements AuditEmitter {
  readonly instance: string
  readonly durable: boolean
  /** The HMAC keyring records are signed with (the admin API's check of the current file). */
  readonly keyring: Keyring
  /**
   * What the start found wrong with the chain against its anchor (a truncation, a mismatch, no
   * anchor readable): the gateway raises an alert for each (serve.ts).
   */
  startProblems: { summary: string; data: Record<string, string | number> }[] = []
  private readonly sink: AuditSink
  private lastWrittenSeq: number | undefined
  /** Chain hash of the record at lastWrittenSeq. */
  private lastWrittenHash: string | undefined
  private readonly anchor: AuditLogOptions['anchor']
  private lastCheckpointSealedAt: number | undefined
  private lastSinkError: AuditLogStatus['lastError']
  private readonly signer: SigningKey
  private readonly logger: Logger
  private readonly now: () => number
  private readonly redact: Redactor | undefined
  private readonly maxQueue: number
  private readonly checkpointEvery: number
  private readonly checkpointIntervalMs: number
  private queue: (AuditEvent | Internal)[] = []
  private times: number[] = []
  private seq: number
  private prev: string
  private sinceCheckpoint = 0
  private lastCheckpointSeq = -1
  private lastCheckpointAt: number
  private scheduled = false
  private writing = false
  private pendingNext: Deferred | undefined
  private pendingCurrent: Deferred | undefined
  private rotateDue = false
  private gap: { count: number; firstAt: number; lastAt: number } | undefined
  private lastAlert = Number.NEGATIVE_INFINITY
  private readonly lastSinkAlert = new Map<string, number>()
  private readonly timer: NodeJS.Timeout
  private closing: Promise<void> | undefined
  private readonly onClose: (() => void) | undefined
  private readonly stats_: Omit<AuditLogStats, 'queued'> = {
    written: 0,
    checkpoints: 0,
    dropped: 0,
    invalid: 0,
    sinkErrors: 0,
  }

  constructor(o: AuditLogOptions) {
    this.instance = o.instance
    this.durable = o.durable
    this.keyring = o.keyring
    this.sink = o.sink
    const key = o.keyring.keys.get(o.keyring.active) as Buffer
    this.signer = { kid: o.keyring.active, key }
    this.logger = o.logger
    this.now = o.now ?? Date.now
    this.redact = o.redact
    this.maxQueue = o.maxQueue
    this.checkpointEvery = o.checkpointEvery
    this.checkpointIntervalMs = o.checkpointIntervalMs
    this.seq = o.start.seq
    this.prev = o.start.prev
    this.onClose = o.onClose
    this.anchor = o.anchor
    this.lastCheckpointAt = this.now()
    this.push({ type: 'audit.start', data: o.startData })
    this.anchor?.start(() => this.head())
    this.timer = setInterval(() => this.tick(), Math.min(TICK_MS, this.checkpointIntervalMs))
    this.timer.unref()
  }

  get stats(): AuditLogStats {
    return { ...this.stats_, queued: this.queue.length }
  }

  /** Where the log stands, for the admin API. */
  status(): AuditLogStatus {
    const s = this.sink as AuditSink & { currentFile?: string; currentPath?: string; encryptionKid?: string }
    return {
      instance: this.instance,
      sink: this.sink.kind,
      currentFile: s.currentFile,
      currentPath: s.currentPath,
      encryptionKid: s.encryptionKid,
      lastSeq: this.lastWrittenSeq,
      lastCheckpointAt: this.lastCheckpointSealedAt,
      queued: this.queue.length,
      lastError: this.lastSinkError,
    }
  }

  /** The encryption keyring of the file sink (the admin API's check of the current file). */
  get encryptionKeyring(): Keyring | undefined {
    return (this.sink as AuditSink & { encryptionKeyring?: Keyring }).encryptionKeyring
  }

  /** The last record written to the sink (seq and chain hash); undefined before the first. */
  head(): ChainHead | undefined {
    return this.lastWrittenSeq === undefined || this.lastWrittenHash === undefined
      ? undefined
      : { seq: this.lastWrittenSeq, hash: this.lastWrittenHash }
  }

  /** The next record's seq (records written or queued for writing come before it). */
  get nextSeq(): number {
    return this.seq
  }

  /** Enqueues an event. Never throws, never blocks; see the module comment for a full queue. */
  emit(event: AuditEvent): void {
    try {
      if (
        event === null ||
        typeof event !== 'object' ||
        typeof event.type !== 'string' ||
        event.type === '' ||
        event.type.startsWith('audit.')
      ) {
        this.stats_.invalid++
        return
      }
      const t = typeof event.time === 'number' ? event.time : this.now()
      if (this.closing !== undefined || this.queue.length >= this.maxQueue) {
        this.drop(t)
        return
      }
      this.queue.push(event)
      this.times.push(t)
      if (!this.scheduled) this.schedule()
    } catch {
      this.stats_.invalid++
    }
  }

  /**
   * Resolves when every event emitted so far is written (and, with `fsync: always`, synced).
   * Shared by all callers of one batch.
   */
  commit(): Promise<void> {
    if (this.queue.length > 0 || this.gap !== undefined) {
      this.pendingNext ??= deferred()
      return this.pendingNext.promise
    }
    if (this.writing) {
      this.pendingCurrent ??= deferred()
      return this.pendingCurrent.promise
    }
    return RESOLVED
  }

  private push(item: AuditEvent | Internal): void {
    this.queue.push(item)
    this.times.push(this.now())
    if (!this.scheduled) this.schedule()
  }

  private drop(t: number): void {
    this.stats_.dropped++
    if (this.closing === undefined) {
      // Recorded in the chain with the next batch (after a close there is no next batch).
      if (this.gap === undefined) this.gap = { count: 0, firstAt: t, lastAt: t }
      this.gap.count++
      this.gap.lastAt = t
    }
    const now = this.now()
    if (now - this.lastAlert >= ALERT_EVERY_MS) {
      this.lastAlert = now
      this.logger.error(
        { dropped: this.stats_.dropped, maxQueue: this.maxQueue, closing: this.closing !== undefined },
        'AUDIT EVENTS DROPPED: the audit queue is full (or the log is closed); the chain records the gap',
      )
    }
    if (this.closing === undefined && !this.scheduled) this.schedule()
  }

  private schedule(): void {
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      void this.flush()
    })
  }

  private tick(): void {
    const now = this.now()
    if (this.sinceCheckpoint > 0 && now - this.lastCheckpointAt >= this.checkpointIntervalMs) {
      this.push({ type: 'audit.checkpoint', data: { reason: 'interval' } })
    }
    if (this.sink.shouldRotate?.(now)) {
      this.rotateDue = true
      if (!this.scheduled) this.schedule()
    }
  }

  /** Seals one record; a value that cannot be serialized becomes an `audit.invalid` record. */
  private seal(item: AuditEvent | Internal, time: number): string {
    let event = item as AuditEvent
    if (item.type === 'audit.checkpoint') {
      event = {
        type: 'audit.checkpoint',
        data: { ...item.data, records: this.sinceCheckpoint, since: this.lastCheckpointSeq },
      }
    }
    // secrets: a credential in a path, reason or data member is masked before it is sealed. The
    // sealed line is looked at first: canonical.ts writes a string's characters as they are but
    // for quotes, backslashes, control characters and lone surrogates, all written with a
    // backslash. So a line with no backslash holds every string verbatim, and when one keyword
    // pass finds no keyword in it, no string has one and the event is sealed as it is. Otherwise
    // every string is masked (as maskSecrets does) and the record sealed again.
    const mask = !item.type.startsWith('audit.')
    if (mask && this.redact) event = this.redact(event)
    let sealed: { line: string; hash: string }
    const at = { seq: this.seq, prev: this.prev, instance: this.instance }
    try {
      sealed = sealRecord(event, at, time, this.signer)
      if (mask && (sealed.line.includes('\\') || mayHoldSecret(sealed.line))) {
        event = maskValue(event)
        sealed = sealRecord(event, at, time, this.signer)
      }
    } catch (err) {
      this.stats_.invalid++
      const reason = err instanceof CanonicalError ? err.message : 'cannot be serialized'
      this.logger.error(
        { type: String(item.type).slice(0, 64), reason },
        'audit event could not be serialized',
      )
      sealed = sealRecord(
        { type: 'audit.invalid', data: { type: String(item.type).slice(0, 64), reason } },
        at,
        time,
        this.signer,
      )
    }
    this.seq++
    this.prev = sealed.hash
    if (item.type === 'audit.checkpoint') {
      this.stats_.checkpoints++
      this.lastCheckpointSeq = at.seq
      this.lastCheckpointAt = this.now()
      this.lastCheckpointSealedAt = this.lastCheckpointAt
      this.sinceCheckpoint = 0
    } else {
      this.sinceCheckpoint++
    }
    return sealed.line
  }

  private async flush(): Promise<void> {
    if (this.writing) return
    this.writing = true
    try {
      while (this.queue.length > 0 || this.gap !== undefined || this.rotateDue) {
        const items = this.queue
        const times = this.times
        const gap = this.gap
        this.queue = []
        this.times = []
        this.gap = undefined
        this.pendingCurrent = this.pendingNext
        this.pendingNext = undefined
        const now = this.now()
        if (this.rotateDue || this.sink.shouldRotate?.(now)) {
          this.rotateDue = false
          await this.rotate(now)
        }
        const lines: string[] = []
        let gapLeft = gap
        const sealGap = () => {
          if (gapLeft === undefined) return
          lines.push(
            this.seal(
              {
                type: 'audit.gap',
                decision: 'error',
                reason: 'queue full',
                data: {
                  dropped: gapLeft.count,
                  firstAt: new Date(gapLeft.firstAt).toISOString(),
                  lastAt: new Date(gapLeft.lastAt).toISOString(),
                },
              },
              now,
            ),
          )
          gapLeft = undefined
        }
        for (let i = 0; i < items.length; i++) {
          const item = items[i] as AuditEvent | Internal
          // The closing checkpoint stays the chain's last record: a gap sealed with it goes first.
          if (item.type === 'audit.checkpoint' && item.data?.reason === 'close') sealGap()
          lines.push(this.seal(item, times[i] as number))
          if (this.sinceCheckpoint >= this.checkpointEvery) {
            lines.push(this.seal({ type: 'audit.checkpoint', data: { reason: 'count' } }, now))
          }
        }
        sealGap()
        if (lines.length > 0) {
          lines.push('')
          await this.sink.write(Buffer.from(lines.join('\n'), 'utf8'))
          this.stats_.written += lines.length - 1
          this.lastWrittenSeq = this.seq - 1
          this.lastWrittenHash = this.prev
        }
        this.pendingCurrent?.resolve()
        this.pendingCurrent = undefined
      }
    } finally {
      this.writing = false
    }
  }

  private async rotate(now: number): Promise<void> {
    if (!this.sink.rotate) return
    const next = this.sink.nextFileName?.()
    const line = this.seal({ type: 'audit.checkpoint', data: { reason: 'rotate', next } }, now)
    await this.sink.write(Buffer.from(`${line}\n`, 'utf8'))
    this.stats_.written++
    this.lastWrittenSeq = this.seq - 1
    this.lastWrittenHash = this.prev
    const name = await this.sink.rotate()
    this.logger.info({ file: name, seq: this.seq }, 'audit file rotated')
  }

  /** Reports a sink error: an error line at most once a second per operation. */
  sinkError(err: NodeJS.ErrnoException, op: string): void {
    this.stats_.sinkErrors++
    const now = this.now()
    this.lastSinkError = {
      op,
      code: typeof err.code === 'string' ? err.code.slice(0, 32) : 'unknown',
      at: now,
    }
    if (now - (this.lastSinkAlert.get(op) ?? Number.NEGATIVE_INFINITY) < ALERT_EVERY_MS) return
    this.lastSinkAlert.set(op, now)
    this.logger.error(
      { op, code: err.code, sink: this.sink.kind },
      'AUDIT LOG CANNOT BE WRITTEN; retrying (audited responses wait with fsync: always)',
    )
  }

  /**
   * Writes what is queued and a closing checkpoint, then closes the sink. Events emitted after
   * this are dropped (and counted). Idempotent.
   */
  close(deadlineMs = 5000): Promise<void> {
    if (this.closing) return this.closing
    this.closing = (async () => {
      clearInterval(this.timer)
      this.push({ type: 'audit.checkpoint', data: { reason: 'close' } })
      const done = this.commit()
      const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), deadlineMs).unref())
      const ok = await Promise.race([done.then(() => true), timeout])
      if (!ok) this.logger.error({ queued: this.queue.length }, 'audit log close: deadline passed')
      await this.sink.close(Math.max(100, deadlineMs / 2))
      // The closing checkpoint is on disk (the sink synced it at close): anchor it.
      await this.anchor?.final(Math.max(100, deadlineMs / 2))
      this.onClose?.()
    })()
    return this.closing
  }
}
