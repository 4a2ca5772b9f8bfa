/**
 * Audit chain files: names, listing, the writer's lock, and reading the tail of a chain so a
 * restarted writer continues it.
 *
 * Names: `<prefix>-<instance>-<NNNNNN>.jsonl`, NNNNNN the file's number in the chain (from 1). A
 * writer starts a new file on every start and every rotation; it never appends to an old one.
 */
import {
  closeSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'

/** `….jsonl`, or `….jsonl.enc` for an encrypted file (see encryption.ts). */
export const FILE_RE = /^(.+)-(\d{6,})\.jsonl(?:\.enc)?$/
/** Longest record line accepted when reading; longer is not a record. */
export const MAX_LINE_BYTES = 1024 * 1024

export function chainFileName(prefix: string, instance: string, n: number, encrypted = false): string {
  return `${prefix}-${instance}-${String(n).padStart(6, '0')}.jsonl${encrypted ? '.enc' : ''}`
}

/** The first line of a file (up to `max` bytes), or undefined when it has no complete first line. */
export function readFirstLine(path: string, max = 4096): string | undefined {
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(max)
    const n = readSync(fd, buf, 0, max, 0)
    const nl = buf.subarray(0, n).indexOf(10)
    return nl === -1 ? undefined : buf.toString('utf8', 0, nl)
  } finally {
    closeSync(fd)
  }
}

export interface ChainFile {
  name: string
  path: string
  /** `<prefix>-<instance>`: files of one chain share it. */
  chain: string
  n: number
}

/** The chain files in `dir`, by chain, each list in file-number order. */
export function listChainFiles(dir: string): Map<string, ChainFile[]> {
  const out = new Map<string, ChainFile[]>()
  for (const name of readdirSync(dir)) {
    const m = FILE_RE.exec(name)
    if (!m) continue
    const f: ChainFile = { name, path: join(dir, name), chain: m[1] as string, n: Number(m[2]) }
    const list = out.get(f.chain)
    if (list) list.push(f)
    else out.set(f.chain, [f])
  }
  for (const list of out.values()) list.sort((a, b) => a.n - b.n)
  return out
}

/** The instance ids that have files with `prefix` in `dir`. */
export function instancesIn(dir: string, prefix: string): string[] {
  const out: string[] = []
  for (const chain of listChainFiles(dir).keys()) {
    if (chain.startsWith(`${prefix}-`)) out.push(chain.slice(prefix.length + 1))
  }
  return out
}

export class AuditLockError extends Error {
  override name = 'AuditLockError'
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes the chain's lock file (`<prefix>-<instance>.lock`, holding the writer's pid): one writer per
 * chain. A lock whose process is gone (a crash) is taken over. Returns the release function.
 */
export function acquireChainLock(dir: string, prefix: string, instance: string): () => void {
  const file = join(dir, `${prefix}-${instance}.lock`)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600)
      writeFileSync(fd, `${process.pid}\n`)
      closeSync(fd)
      return () => {
        try {
          if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file)
        } catch {
          // already gone
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      let pid = Number.NaN
      try {
        pid = Number(readFileSync(file, 'utf8').trim())
      } catch {
        // vanished between open and read: try again
      }
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
        throw new AuditLockError(
          `another process (pid ${pid}) writes the audit chain ${prefix}-${instance} in ${dir}; give each gateway its own audit.instanceId`,
        )
      }
      try {
        unlinkSync(file)
      } catch {
        // raced with another remover
      }
    }
  }
  throw new AuditLockError(`cannot take the audit lock ${file}`)
}

/** The last complete line of a file and what follows it (a torn record). */
export interface FileTail {
  /** The last newline-terminated line (without the newline), or undefined when there is none. */
  lastLine: string | undefined
  /** Bytes after the last newline: a record whose write was cut (crash, full disk). */
  tornBytes: number
  /** Where the torn bytes start. */
  tornOffset: number
  size: number
}

/** Reads the end of a file: its last complete line and any unterminated bytes after it. */
export function readTail(path: string): FileTail {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    if (size === 0) return { lastLine: undefined, tornBytes: 0, tornOffset: 0, size }
    let chunk = Math.min(size, 64 * 1024)
    for (;;) {
      const start = size - chunk
      const buf = Buffer.allocUnsafe(chunk)
      let got = 0
      while (got < chunk) {
        const n = readSync(fd, buf, got, chunk - got, start + got)
        if (n === 0) break
        got += n
      }
      const end = buf.lastIndexOf(10, got - 1)
      if (end === -1) {
        if (start === 0) return { lastLine: undefined, tornBytes: size, tornOffset: 0, size }
      } else {
        const tornOffset = start + end + 1
        const before = end === 0 ? -1 : buf.lastIndexOf(10, end - 1)
        if (before !== -1 || start === 0) {
          return {
            lastLine: buf.subarray(before + 1, end).toString('utf8'),
            tornBytes: size - tornOffset,
            tornOffset,
            size,
          }
        }
      }
      if (chunk >= size || chunk > MAX_LINE_BYTES * 2) {
        // No line start found within the longest record: what is there is not a record.
        const tornOffset = end === -1 ? 0 : start + end + 1
        return { lastLine: undefined, tornBytes: size - tornOffset, tornOffset, size }
      }
      chunk = Math.min(size, chunk * 4)
    }
  } finally {
    closeSync(fd)
  }
}
