/**
 * How the audit file sinks retry a failed file operation (a full disk, a lost mount): report each
 * failure, wait with an exponential backoff (50 ms doubling to 5 s), try again, until the
 * operation succeeds or the caller gives up. A record is never dropped silently on the way.
 */
import type { FileHandle } from 'node:fs/promises'

export const RETRY_MIN_MS = 50
export const RETRY_MAX_MS = 5000

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Runs `attempt` until it resolves. After each failure `onFailure(err)` decides: `true` tries again
 * after the next backoff delay, `false` gives up (withRetry resolves false); it may also throw.
 */
export async function withRetry(
  attempt: () => Promise<void>,
  onFailure: (err: NodeJS.ErrnoException) => boolean,
): Promise<boolean> {
  for (let delay = RETRY_MIN_MS; ; delay = Math.min(RETRY_MAX_MS, delay * 2)) {
    try {
      await attempt()
      return true
    } catch (err) {
      if (!onFailure(err as NodeJS.ErrnoException)) return false
      await sleep(delay)
    }
  }
}

/**
 * Writes all of `data` at the handle's position: a short write continues where it stopped, a failed
 * one is reported and retried after a backoff (reset by each successful write) until `stopped()`.
 * `onWritten(n)` counts the bytes. Resolves true when all was written.
 */
export async function writeAll(
  handle: FileHandle,
  data: Buffer,
  onError: (err: NodeJS.ErrnoException) => void,
  stopped: () => boolean,
  onWritten: (n: number) => void,
): Promise<boolean> {
  let off = 0
  let delay = RETRY_MIN_MS
  while (off < data.length) {
    try {
      const { bytesWritten } = await handle.write(data, off, data.length - off, null)
      off += bytesWritten
      onWritten(bytesWritten)
      delay = RETRY_MIN_MS
    } catch (err) {
      onError(err as NodeJS.ErrnoException)
      if (stopped()) return false
      await sleep(delay)
      delay = Math.min(RETRY_MAX_MS, delay * 2)
    }
  }
  return true
}
