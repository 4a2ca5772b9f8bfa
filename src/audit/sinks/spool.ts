/**
 * The on-disk spool of the forwarding sinks (http.ts, syslog.ts): every batch the audit log hands
 * the sink is appended here (and synced per `file.fsync`) before it counts as written, and leaves
 * only after the destination acknowledged it. Nothing is lost while the destination is down, and a
 * gateway restarted with a non-empty spool sends that first.
 *
 * - Segments are chain files (`<prefix>-<instance>-<NNNNNN>.jsonl`, files.ts) in the spool
 *   directory, so a restarted writer finds where the chain continues exactly as with the file
 *   sink (open.ts `findChainTail`), torn tails included. A new segment is started at every start
 *   and once the current one holds `segmentBytes`; the writer never appends to an old segment.
 * - Two cursors: `sent` (what the delivery loop has read) and `acked` (what the destination
 *   confirmed). `ack` persists the acked cursor in `<prefix>-<instance>.sent` (write + rename) and
 *   deletes segments wholly behind it, except the newest one holding records (the chain's tail
 *   must stay readable for the next start). `rewind` sends again from the acked cursor. A crash
 *   between an acknowledgement and its `.sent` write sends that batch again: at-least-once,
 *   deduplicated by `seq` at the destination.
 * - Only synced bytes are read for delivery: a batch the destination got is never one a machine
 *   crash could still take out of the spool (the restarted chain would then reuse its seqs).
 * - Bounded: undelivered bytes at most `maxBytes` (one batch over it when the spool is empty). When
 *   full, `append` waits for deliveries to free space, reporting `ESPOOLFULL` through `onError`:
 *   the audit log's queue fills behind it, exactly as with a file sink on a full disk.
 */
import { constants } from 'node:fs'
import { type FileHandle, mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { chainFileName, listChainFiles } from '../files.js'
import { withRetry, writeAll } from './retry.js'
import type { SinkErrorHandler } from './types.js'

export interface SpoolOptions {
  dir: string
  prefix: string
  instance: string
  /** Number of the segment this spool opens for writing (one past the newest existing file). */
  firstFile: number
  fsync: 'always' | 'interval'
  fsyncIntervalMs: number
  /** Most undelivered bytes. */
  maxBytes: number
  /** Start a new segment once the current one holds this many bytes. */
  segmentBytes?: number
  onError: SinkErrorHandler
}

/** A place in the spool: a segment number and a byte offset in it. */
export interface SpoolPosition {
  file: number
  offset: number
}

export interface SpoolBatch {
  /** Complete lines, each ending with a newline. */
  data: Buffer
  /** The lines, without their newlines. */
  lines: string[]
  /** `seq` of the first and last record (-1 when a line has none). */
  firstSeq: number
  lastSeq: number
  /** Where the batch ends: pass to `ack`. */
  end: SpoolPosition
}

interface Segment {
  n: number
  path: string
  /** Bytes that may be read: the synced size of the segment being written, the size of others. */
  readable: number
  /** Bytes written (the segment being written). */
  size: number
}

export class SpoolFullError extends Error {
  code = 'ESPOOLFULL'
}

async function syncDir(dir: string): Promise<void> {
  let h: FileHandle | undefined
  try {
    h = await open(dir, constants.O_RDONLY)
    await h.sync()
  } catch {
    // Some file systems cannot sync a directory.
  } finally {
    await h?.close().catch(() => undefined)
  }
}

/** `seq` of a record line (its top-level member), -1 when there is none. */
export function lineSeq(line: string): number {
  try {
    const r = JSON.parse(line) as { seq?: unknown }
    return typeof r.seq === 'number' && Number.isSafeInteger(r.seq) ? r.seq : -1
  } catch {
    return -1
  }
}

export class Spool {
  private readonly segments: Segment[] = []
  private writer!: FileHandle
  private dirty = false
  private syncing: Promise<void> | undefined
  private readonly timer: NodeJS.Timeout | undefined
  private sent: SpoolPosition
  private acked: SpoolPosition
  private reader: { n: number; handle: FileHandle } | undefined
  /** Undelivered (not acked) bytes. */
  private pendingBytes = 0
  private closed = false
  private waiters: (() => void)[] = []
  private readonly segmentBytes: number

  private constructor(
    private readonly o: SpoolOptions,
    acked: SpoolPosition,
  ) {
    this.acked = { ...acked }
    this.sent = { ...acked }
    this.segmentBytes = o.segmentBytes ?? Math.min(16 * 1024 * 1024, Math.max(64 * 1024, o.maxBytes / 16))
    if (o.fsync === 'interval') {
      this.timer = setInterval(() => void this.syncNow(), o.fsyncIntervalMs)
      this.timer.unref()
    }
  }

  private get ackFile(): string {
    return join(this.o.dir, `${this.o.prefix}-${this.o.instance}.sent`)
  }

  /**
   * Opens the spool: reads what earlier runs left (segments, the acked cursor), deletes segments
   * already delivered, and opens a new segment for writing.
   */
  static async open(o: SpoolOptions): Promise<Spool> {
    await mkdir(o.dir, { recursive: true, mode: 0o700 })
    let acked: SpoolPosition = { file: 0, offset: 0 }
    try {
      const a = JSON.parse(
        await readFile(join(o.dir, `${o.prefix}-${o.instance}.sent`), 'utf8'),
      ) as Partial<SpoolPosition>
      if (
        Number.isSafeInteger(a.file) &&
        Number.isSafeInteger(a.offset) &&
        (a.file as number) >= 0 &&
        (a.offset as number) >= 0
      ) {
        acked = { file: a.file as number, offset: a.offset as number }
      }
    } catch {
      // No cursor (a new spool) or an unreadable one: everything is sent (again).
    }
    const s = new Spool(o, acked)
    const files = listChainFiles(o.dir).get(`${o.prefix}-${o.instance}`) ?? []
    const newest = files.length > 0 ? (files[files.length - 1] as { n: number }).n : -1
    for (const f of files) {
      const size = (await stat(f.path)).size
      if (f.n < acked.file || (f.n === acked.file && acked.offset >= size)) {
        // Delivered. The newest file stays: it holds the chain's tail for the next start.
        if (f.n !== newest) await unlink(f.path).catch(() => undefined)
        continue
      }
      s.segments.push({ n: f.n, path: f.path, readable: size, size })
      s.pendingBytes += f.n === acked.file ? size - acked.offset : size
    }
    if (s.segments.length > 0 && (s.segments[0] as Segment).n !== acked.file) {
      s.acked = { file: (s.segments[0] as Segment).n, offset: 0 }
      s.sent = { ...s.acked }
    }
    try {
      await s.openSegment(Math.max(o.firstFile, newest + 1))
    } catch (err) {
      if (s.timer) clearInterval(s.timer)
      throw err
    }
    if (s.segments.length === 1) {
      s.acked = { file: s.current.n, offset: 0 }
      s.sent = { ...s.acked }
    }
    return s
  }

  private get current(): Segment {
    return this.segments[this.segments.length - 1] as Segment
  }

  private async openSegment(n: number): Promise<void> {
    const path = join(this.o.dir, chainFileName(this.o.prefix, this.o.instance, n))
    this.writer = await open(path, 'wx', 0o600)
    this.segments.push({ n, path, readable: 0, size: 0 })
    await syncDir(this.o.dir)
  }

  /** Bytes not yet acknowledged by the destination. */
  get pending(): number {
    return this.pendingBytes
  }

  /** Bytes that can be read now and have not been sent. */
  get unsent(): number {
    let n = 0
    for (const s of this.segments) {
      if (s.n < this.sent.file) continue
      n += s.readable - (s.n === this.sent.file ? this.sent.offset : 0)
    }
    return n
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Resolves on the next change (append synced, ack, close) or after `ms`. */
  wait(ms = 60_000): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms)
      function done() {
        clearTimeout(t)
        resolve()
      }
      this.waiters.push(done)
    })
  }

  /**
   * Appends a batch of complete lines. Resolves once they are written (and with `fsync: always`
   * synced). Waits while the spool is full. Never rejects; gives up only when closed.
   */
  async append(data: Buffer): Promise<void> {
    let reported = false
    while (!this.closed && this.pendingBytes > 0 && this.pendingBytes + data.length > this.o.maxBytes) {
      if (!reported) {
        reported = true
        this.o.onError(new SpoolFullError('audit spool full'), 'spool')
      }
      await this.wait(1000)
    }
    if (this.closed) return
    if (this.current.size >= this.segmentBytes) await this.roll()
    const written = await writeAll(
      this.writer,
      data,
      (err) => this.o.onError(err, 'spool write'),
      () => this.closed,
      (n) => {
        this.current.size += n
      },
    )
    if (!written) return
    this.pendingBytes += data.length
    this.dirty = true
    if (this.o.fsync === 'always') await this.syncNow(true)
  }

  /** Closes the current segment (synced) and opens the next. */
  private async roll(): Promise<void> {
    await this.syncNow(true)
    await this.writer.close().catch((err: NodeJS.ErrnoException) => this.o.onError(err, 'spool close'))
    await withRetry(
      () => this.openSegment(this.current.n + 1),
      (err) => {
        this.o.onError(err, 'spool open')
        if (err.code === 'EEXIST') {
          // Not ours (it would have been listed at open): skip its number.
          this.segments.push({ n: this.current.n + 1, path: '', readable: 0, size: 0 })
        }
        return true
      },
    )
  }

  /** fdatasync when there is something unsynced; then what was written becomes readable. */
  private async syncNow(retry = false): Promise<void> {
    if (this.syncing) await this.syncing
    if (!this.dirty) return
    this.dirty = false
    const seg = this.current
    const size = seg.size
    const run = async () => {
      const synced = await withRetry(
        () => this.writer.datasync(),
        (err) => {
          this.o.onError(err, 'spool fsync')
          if (retry && !this.closed) return true
          this.dirty = true
          return false
        },
      )
      if (!synced) return
      seg.readable = size
      this.wake()
    }
    this.syncing = run()
    try {
      await this.syncing
    } finally {
      this.syncing = undefined
    }
  }

  /** Makes everything written readable now (a sync), e.g. before a final delivery at close. */
  flush(): Promise<void> {
    return this.syncNow(true)
  }

  private async readAt(n: number, offset: number, length: number): Promise<Buffer> {
    if (this.reader?.n !== n) {
      await this.reader?.handle.close().catch(() => undefined)
      this.reader = undefined
      const seg = this.segments.find((s) => s.n === n) as Segment
      this.reader = { n, handle: await open(seg.path, 'r') }
    }
    const buf = Buffer.allocUnsafe(length)
    let got = 0
    while (got < length) {
      const { bytesRead } = await this.reader.handle.read(buf, got, length - got, offset + got)
      if (bytesRead === 0) break
      got += bytesRead
    }
    return buf.subarray(0, got)
  }

  /**
   * The next batch after the `sent` cursor, at most `maxRecords` lines and `maxBytes` bytes (a
   * single longer line goes alone), or undefined when nothing is readable. Advances `sent`.
   * Bytes after the last newline of an older segment (a record cut by a crash) are skipped.
   */
  async next(maxRecords: number, maxBytes: number): Promise<SpoolBatch | undefined> {
    for (;;) {
      const seg = this.segments.find((s) => s.n >= this.sent.file)
      if (seg === undefined) return undefined
      if (seg.n !== this.sent.file) this.sent = { file: seg.n, offset: 0 }
      const avail = seg.readable - this.sent.offset
      const isLast = seg === this.current
      if (avail <= 0 || !seg.path) {
        if (isLast) return undefined
        this.skipTo(seg)
        continue
      }
      let len = Math.min(avail, maxBytes)
      let chunk = await this.readAt(seg.n, this.sent.offset, len)
      let cut = chunk.lastIndexOf(0x0a)
      while (cut < 0 && len < avail) {
        // One line longer than maxBytes: it goes alone (never dropped; it was in memory once already).
        len = Math.min(avail, len * 2)
        chunk = await this.readAt(seg.n, this.sent.offset, len)
        cut = chunk.indexOf(0x0a)
      }
      if (cut < 0) {
        if (isLast) return undefined
        // A torn tail (a record cut by a crash): not part of the chain.
        this.skipTo(seg)
        continue
      }
      let data = chunk.subarray(0, cut + 1)
      const lines = data.toString('utf8', 0, data.length - 1).split('\n')
      if (lines.length > maxRecords) {
        lines.length = maxRecords
        data = data.subarray(0, Buffer.byteLength(lines.join('\n')) + 1)
      }
      this.sent = { file: seg.n, offset: this.sent.offset + data.length }
      return {
        data,
        lines,
        firstSeq: lineSeq(lines[0] as string),
        lastSeq: lineSeq(lines[lines.length - 1] as string),
        end: { ...this.sent },
      }
    }
  }

  /** Moves past the rest of `seg` (not the last one): the next segment's start. */
  private skipTo(seg: Segment): void {
    const i = this.segments.indexOf(seg)
    const next = this.segments[i + 1] as Segment
    this.sent = { file: next.n, offset: 0 }
  }

  /** Sends again from the last acknowledged position (after a failed or unconfirmed delivery). */
  rewind(): void {
    this.sent = { ...this.acked }
  }

  /**
   * The destination confirmed everything up to `end`: persists the cursor, frees the space and
   * deletes segments behind it (never the newest segment that holds records).
   */
  async ack(end: SpoolPosition): Promise<void> {
    let freed = 0
    for (const s of this.segments) {
      if (s.n < this.acked.file || s.n > end.file) continue
      const from = s.n === this.acked.file ? this.acked.offset : 0
      const to = s.n === end.file ? end.offset : s.size
      freed += Math.max(0, to - from)
    }
    this.acked = { ...end }
    this.pendingBytes = Math.max(0, this.pendingBytes - freed)
    const tmp = `${this.ackFile}.tmp`
    try {
      await writeFile(tmp, JSON.stringify(this.acked), { mode: 0o600 })
      await rename(tmp, this.ackFile)
    } catch (err) {
      // A lost cursor only means sending again (deduplicated by seq).
      this.o.onError(err as NodeJS.ErrnoException, 'spool cursor')
    }
    const keepFrom = this.current.size > 0 ? this.current.n : this.current.n - 1
    while (this.segments.length > 1) {
      const s = this.segments[0] as Segment
      const done = s.n < end.file || (s.n === end.file && end.offset >= s.size && s !== this.current)
      if (!done || s.n >= keepFrom) break
      this.segments.shift()
      if (this.reader?.n === s.n) {
        await this.reader.handle.close().catch(() => undefined)
        this.reader = undefined
      }
      if (s.path) await unlink(s.path).catch((err) => this.o.onError(err, 'spool unlink'))
    }
    this.wake()
  }

  /** Stops waiting appends; syncs and closes the files. Undelivered records stay for the next start. */
  async close(): Promise<void> {
    if (this.closed) return
    if (this.timer) clearInterval(this.timer)
    await this.syncNow(true).catch(() => undefined)
    this.closed = true
    this.wake()
    await this.writer.close().catch(() => undefined)
    await this.reader?.handle.close().catch(() => undefined)
    this.reader = undefined
  }

  get isClosed(): boolean {
    return this.closed
  }
}

/**
 * Capped exponential backoff with full jitter: attempt 0 waits about `minMs`, each further attempt
 * doubles the cap up to `maxMs`; the wait is drawn from [cap/2, cap] so that many gateways
 * retrying against one collector spread out.
 */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30))
  return Math.round(cap / 2 + (random() * cap) / 2)
}

/** A sleep that `stop` ends early (the forwarding sinks' retry waits, cut short by close). */
export class Sleeper {
  private wakeUp: (() => void) | undefined
  private stopped = false
  sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve()
    return new Promise((resolve) => {
      const t = setTimeout(done, ms)
      const self = this
      function done() {
        clearTimeout(t)
        self.wakeUp = undefined
        resolve()
      }
      this.wakeUp = done
    })
  }
  stop(): void {
    this.stopped = true
    this.wakeUp?.()
  }
}
