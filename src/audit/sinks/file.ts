/**
 * The JSON-lines file sink: the chain in numbered files in one directory (see files.ts), rotated
 * by size and age. `fsync: always` syncs each batch before its write resolves (group commit: one
 * fdatasync per batch, however many records it holds); `fsync: interval` syncs every
 * `fsyncIntervalMs` while there is something unsynced.
 */
import { constants } from 'node:fs'
import { type FileHandle, mkdir, open, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { EncryptionKeys } from '../encryption.js'
import { FileEncryptor } from '../encryption.js'
import { chainFileName } from '../files.js'
import type { Keyring } from '../keyring.js'
import { withRetry, writeAll } from './retry.js'
import type { AuditSink, SinkErrorHandler } from './types.js'

export interface FileSinkOptions {
  dir: string
  prefix: string
  instance: string
  /** Number of the first file this sink opens (one past the newest existing file). */
  firstFile: number
  fsync: 'always' | 'interval'
  fsyncIntervalMs: number
  /** Rotate once a file holds this many bytes (0: never by size). */
  maxBytes: number
  /** Rotate once a file is this old (0: never by age). */
  maxAgeMs: number
  now: () => number
  onError: SinkErrorHandler
  /** Encrypt each file (see encryption.ts); a new key in the keyring starts a new file. */
  encryption?: EncryptionKeys | undefined
}

async function syncDir(dir: string): Promise<void> {
  let h: FileHandle | undefined
  try {
    h = await open(dir, constants.O_RDONLY)
    await h.sync()
  } catch {
    // Some file systems cannot sync a directory; the file's own syncs still hold.
  } finally {
    await h?.close().catch(() => undefined)
  }
}

export class FileSink implements AuditSink {
  readonly kind = 'file'
  private handle!: FileHandle
  private fileNumber: number
  private openedAt = 0
  private bytes = 0
  private hasRecords = false
  private dirty = false
  private syncing: Promise<void> | undefined
  private closed = false
  private readonly timer: NodeJS.Timeout | undefined
  private encryptor: FileEncryptor | undefined
  /** The file being written now. */
  currentFile = ''

  private constructor(private readonly o: FileSinkOptions) {
    this.fileNumber = o.firstFile
    if (o.fsync === 'interval') {
      this.timer = setInterval(() => void this.syncNow(), o.fsyncIntervalMs)
      this.timer.unref()
    }
  }

  /** Creates the directory (0700) when missing and opens the first file (0600, never an existing one). */
  static async open(o: FileSinkOptions): Promise<FileSink> {
    await mkdir(o.dir, { recursive: true, mode: 0o700 })
    const s = new FileSink(o)
    try {
      await s.openFile()
    } catch (err) {
      if (s.timer) clearInterval(s.timer)
      throw err
    }
    return s
  }

  private async openFile(): Promise<void> {
    const enc = this.o.encryption
    const name = chainFileName(this.o.prefix, this.o.instance, this.fileNumber, enc !== undefined)
    this.handle = await open(join(this.o.dir, name), 'wx', 0o600)
    this.currentFile = name
    this.openedAt = this.o.now()
    this.bytes = 0
    this.hasRecords = false
    if (enc) {
      // The header first: a fresh data key for this file, wrapped by the keyring's active key.
      this.encryptor = new FileEncryptor(enc.keyring, this.o.instance)
      const header = Buffer.from(`${this.encryptor.header}\n`, 'utf8')
      try {
        const { bytesWritten } = await this.handle.write(header, 0, header.length, null)
        if (bytesWritten !== header.length) throw Object.assign(new Error('short write'), { code: 'EIO' })
      } catch (err) {
        // A file with a cut header holds nothing: remove it, so the retry opens the same number.
        await this.handle.close().catch(() => undefined)
        await unlink(join(this.o.dir, name)).catch(() => undefined)
        throw err
      }
      this.bytes += header.length
    }
    await syncDir(this.o.dir)
  }

  nextFileName(): string {
    return chainFileName(this.o.prefix, this.o.instance, this.fileNumber + 1, this.o.encryption !== undefined)
  }

  /** Path of the file being written now. */
  get currentPath(): string {
    return join(this.o.dir, this.currentFile)
  }

  /** The encryption keyring (undefined: not encrypted). */
  get encryptionKeyring(): Keyring | undefined {
    return this.o.encryption?.keyring
  }

  /** Key id of the encryption key of the current file (undefined: not encrypted). */
  get encryptionKid(): string | undefined {
    return this.encryptor?.kid
  }

  shouldRotate(now: number): boolean {
    if (!this.hasRecords) return false
    // A new active encryption key (keys rotate-audit): the next batch goes to a new file.
    if (this.encryptor && this.o.encryption && this.o.encryption.poll(now) !== this.encryptor.kid) return true
    return (
      (this.o.maxBytes > 0 && this.bytes >= this.o.maxBytes) ||
      (this.o.maxAgeMs > 0 && now - this.openedAt >= this.o.maxAgeMs)
    )
  }

  async rotate(): Promise<string> {
    await this.syncNow(true)
    await this.handle.close().catch((err: NodeJS.ErrnoException) => this.o.onError(err, 'close'))
    this.fileNumber++
    await withRetry(
      () => this.openFile(),
      (err) => {
        this.o.onError(err, 'open')
        if (err.code === 'EEXIST') this.fileNumber++
        if (this.closed) throw err
        return true
      },
    )
    return this.currentFile
  }

  async write(plain: Buffer): Promise<void> {
    const data = this.encryptor ? this.encryptor.encryptBatch(plain) : plain
    const written = await writeAll(
      this.handle,
      data,
      (err) => this.o.onError(err, 'write'),
      () => this.closed,
      (n) => {
        this.bytes += n
      },
    )
    if (!written) return
    this.dirty = true
    this.hasRecords = true
    if (this.o.fsync === 'always') await this.syncNow(true)
  }

  /** fdatasync when there is something unsynced; `retry`: until it succeeds or the sink closes. */
  private async syncNow(retry = false): Promise<void> {
    if (this.syncing) await this.syncing
    if (!this.dirty) return
    this.dirty = false
    const run = async () => {
      await withRetry(
        () => this.handle.datasync(),
        (err) => {
          this.o.onError(err, 'fsync')
          if (retry && !this.closed) return true
          this.dirty = true
          return false
        },
      )
    }
    this.syncing = run()
    try {
      await this.syncing
    } finally {
      this.syncing = undefined
    }
  }

  async close(deadlineMs: number): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    const done = (async () => {
      await this.syncNow(true)
      await this.handle.close()
    })()
    const timeout = new Promise<void>((r) => setTimeout(r, deadlineMs).unref())
    await Promise.race([done.catch((err: NodeJS.ErrnoException) => this.o.onError(err, 'close')), timeout])
    this.closed = true
  }
}
