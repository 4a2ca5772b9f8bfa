/**
 * The gateway's view of a key store file: loaded once, shared by every route (and every config
 * generation) that names the same file, and reloaded when the file changes.
 *
 * Change detection: fs.watch on the directory (a `portcullis keys` write is a rename, which a watch
 * on the file itself would lose) plus a stat poll every `pollMs` for filesystems where watching is
 * unreliable (NFS, some container mounts). Either one schedules a check (debounced); the check
 * reloads only when the content hash differs. A file that cannot be read or parsed is refused:
 * the previous keys stay in effect and the error is logged.
 *
 * Last-used times are recorded in memory (a map write per request) and merged into the
 * `<store>.last-used.json` sidecar at most every `lastUsedFlushMs`; never a disk write per request,
 * and never a write to the store file itself.
 */
import { createHash } from 'node:crypto'
import { type FSWatcher, statSync, watch } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { Logger } from 'pino'
import { mergeUsage, parseStore, readBounded } from './store.js'
import { KeySet } from './verify.js'

export interface LiveStoreOptions {
  /** 0: last-used times are not tracked. */
  lastUsedFlushMs: number
  /** Stat poll interval (fallback for fs.watch). */
  pollMs?: number
  /** Wait after a change event before reading, so a burst of events costs one read. */
  debounceMs?: number
}

export class LiveKeyStore {
  readonly file: string
  private current: KeySet
  private contentHash: string
  private statSig: string
  private readonly logger: Logger
  private readonly opts: Required<LiveStoreOptions>
  private watcher: FSWatcher | undefined
  private readonly poller: NodeJS.Timeout
  private debounce: NodeJS.Timeout | undefined
  private readonly flusher: NodeJS.Timeout | undefined
  private usage = new Map<string, number>()
  private usageErrorLogged = false
  private lastError = ''
  refs = 0

  /** Loads the file now; throws (a KeyStoreError) when it cannot be loaded. */
  constructor(file: string, logger: Logger, opts: LiveStoreOptions) {
    this.file = file
    this.logger = logger
    this.opts = { pollMs: 1000, debounceMs: 20, ...opts }
    const { set, hash } = this.load()
    this.current = set
    this.contentHash = hash
    this.statSig = this.signature()
    logger.info({ store: file, keys: set.size }, 'api key store loaded')
    try {
      this.watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
        if (name === null || name === basename(file)) this.schedule()
      })
      this.watcher.on('error', (err) => {
        logger.warn({ store: file, err }, 'api key store watch failed; falling back to polling')
        this.watcher?.close()
        this.watcher = undefined
      })
    } catch (err) {
      logger.warn({ store: file, err }, 'cannot watch the api key store; polling it')
    }
    this.poller = setInterval(() => {
      const sig = this.signature()
      if (sig !== this.statSig) {
        this.statSig = sig
        this.schedule()
      }
    }, this.opts.pollMs)
    this.poller.unref()
    if (this.opts.lastUsedFlushMs > 0) {
      this.flusher = setInterval(() => this.flushUsage(), this.opts.lastUsedFlushMs)
      this.flusher.unref()
    }
  }

  /** The keys in effect now. */
  get keys(): KeySet {
    return this.current
  }

  private signature(): string {
    const st = statSync(this.file, { throwIfNoEntry: false, bigint: false })
    return st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : 'missing'
  }

  private load(buf = readBounded(this.file)): { set: KeySet; hash: string } {
    const hash = createHash('sha256').update(buf).digest('hex')
    const st = statSync(this.file, { throwIfNoEntry: false })
    if (st && (st.mode & 0o077) !== 0) {
      this.logger.warn(
        { store: this.file, mode: (st.mode & 0o777).toString(8) },
        'the api key store is readable by other users; chmod 600 it',
      )
    }
    return { set: new KeySet(parseStore(buf.toString('utf8'), this.file)), hash }
  }

  private schedule(): void {
    clearTimeout(this.debounce)
    this.debounce = setTimeout(() => this.check(), this.opts.debounceMs)
    this.debounce.unref()
  }

  /** Re-reads the file when its content changed; keeps the current keys when it is broken. */
  check(): void {
    let loaded: { set: KeySet; hash: string }
    try {
      const buf = readBounded(this.file)
      const hash = createHash('sha256').update(buf).digest('hex')
      if (hash === this.contentHash) {
        this.lastError = ''
        return
      }
      loaded = this.load(buf)
    } catch (err) {
      const message = (err as Error).message
      if (message !== this.lastError) {
        this.logger.error(
          { store: this.file, error: message },
          'api key store reload refused; the previous keys stay in effect',
        )
      }
      this.lastError = message
      return
    }
    this.lastError = ''
    this.current = loaded.set
    this.contentHash = loaded.hash
    this.statSig = this.signature()
    this.logger.info({ store: this.file, keys: loaded.set.size }, 'api key store reloaded')
  }

  /** Notes that a key was used (in memory; flushed by the timer). */
  touch(id: string, now: number): void {
    if (this.opts.lastUsedFlushMs > 0) this.usage.set(id, now)
  }

  /** Writes pending last-used times to the sidecar. Never throws. */
  flushUsage(): void {
    if (this.usage.size === 0) return
    const batch = this.usage
    this.usage = new Map()
    try {
      mergeUsage(this.file, batch)
      this.usageErrorLogged = false
    } catch (err) {
      for (const [id, t] of batch) if ((this.usage.get(id) ?? 0) < t) this.usage.set(id, t)
      if (!this.usageErrorLogged) {
        this.logger.warn(
          { store: this.file, error: (err as Error).message },
          'cannot write api key last-used times; they stay in memory',
        )
        this.usageErrorLogged = true
      }
    }
  }

  close(): void {
    this.watcher?.close()
    this.watcher = undefined
    clearInterval(this.poller)
    clearInterval(this.flusher)
    clearTimeout(this.debounce)
    this.flushUsage()
  }
}

const open = new Map<string, LiveKeyStore>()

/**
 * The shared live store for `file` (an absolute path). The first acquirer loads it (and gets the
 * load error); later ones get the loaded store after a check for changes. `release` closes it
 * when the last user is gone.
 */
export function acquireKeyStore(
  file: string,
  logger: Logger,
  opts: LiveStoreOptions,
): { store: LiveKeyStore; release: () => void } {
  const k = `${file}\0${opts.lastUsedFlushMs}`
  let store = open.get(k)
  if (store) store.check()
  else {
    store = new LiveKeyStore(file, logger, opts)
    open.set(k, store)
  }
  store.refs++
  const s = store
  let released = false
  return {
    store: s,
    release: () => {
      if (released) return
      released = true
      s.refs--
      if (s.refs === 0) {
        open.delete(k)
        s.close()
      }
    },
  }
}
