/**
 * Watches one file for content changes: fs.watch on its directory (editors and deploy tools
 * replace files by rename, which a watch on the file itself misses), debounced, and compared by
 * content hash so that a touch or a rewrite with the same bytes does nothing. A slow stat poll
 * backs the watch up (network file systems, exhausted inotify watches).
 */
import { createHash } from 'node:crypto'
import { type FSWatcher, readFileSync, type Stats, statSync, watch } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { Logger } from 'pino'

export interface FileWatchOptions {
  debounceMs: number
  /** Interval of the backup stat poll (0 = none). */
  pollMs: number
  logger: Logger
}

export interface FileWatch {
  close(): void
}

export function hashContent(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

/**
 * Calls `onChange` with the new content whenever the file's content hash changes. `initialHash`
 * is the hash of the content the caller already has. A file that cannot be read is reported to
 * `onError` and the caller keeps what it has.
 */
export function watchFile(
  path: string,
  initialHash: string,
  onChange: (content: Buffer) => void,
  onError: (err: unknown) => void,
  opts: FileWatchOptions,
): FileWatch {
  let lastHash = initialHash
  let debounce: NodeJS.Timeout | undefined
  let closed = false
  const name = basename(path)
  const check = () => {
    if (closed) return
    let content: Buffer
    try {
      content = readFileSync(path)
    } catch (err) {
      onError(err)
      return
    }
    const h = hashContent(content)
    if (h === lastHash) return
    lastHash = h
    onChange(content)
  }
  const schedule = () => {
    clearTimeout(debounce)
    debounce = setTimeout(check, opts.debounceMs)
    debounce.unref()
  }
  let watcher: FSWatcher | undefined
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || file === name) schedule()
    })
    watcher.on('error', (err) => opts.logger.warn({ err, file: path }, 'file watch failed; polling'))
  } catch (err) {
    opts.logger.warn({ err, file: path }, 'cannot watch the file; polling')
  }
  let poll: NodeJS.Timeout | undefined
  if (opts.pollMs > 0) {
    let last: Stats | undefined
    try {
      last = statSync(path)
    } catch {}
    poll = setInterval(() => {
      let s: Stats | undefined
      try {
        s = statSync(path)
      } catch {}
      if (s?.mtimeMs !== last?.mtimeMs || s?.size !== last?.size || s?.ino !== last?.ino) schedule()
      last = s
    }, opts.pollMs)
    poll.unref()
  }
  return {
    close() {
      closed = true
      watcher?.close()
      clearTimeout(debounce)
      clearInterval(poll)
    },
  }
}
