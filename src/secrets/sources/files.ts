/**
 * Files and directories: a walk that honours `.gitignore` files (at every level, as git does),
 * skips `.git`, binaries and files over a size cap, and never follows a symlink out of the root;
 * a file is read whole when small and streamed in chunks with an overlap window when large, so a
 * 1 GB file costs one chunk of memory.
 */
import {
  closeSync,
  type Dirent,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  statSync,
} from 'node:fs'
import { join, relative, resolve, sep } from 'node:path'
import ignore, { type Ignore } from 'ignore'
import type { SecretScanner } from '../engine.js'
import { type Finding, type PlaceOptions, placeMatches, scanBuffer } from '../findings.js'
import { emptyStats, type ScanStats } from '../types.js'

export interface WalkOptions {
  /** Skip files larger than this many bytes (0: no cap). */
  maxFileSize: number
  /** Honour .gitignore files (default true). */
  gitignore?: boolean
  /** Extra ignore patterns (gitignore syntax), relative to each root. */
  exclude?: readonly string[]
}

export interface WalkEntry {
  /** Absolute path. */
  abs: string
  /** Path shown in findings: relative to the current directory, with `/`. */
  display: string
  /** Path relative to its root (`/`-separated): what allow rules match. */
  rel: string
  size: number
}

export interface Skipped {
  path: string
  reason: 'size' | 'binary' | 'symlink-outside-root' | 'unreadable' | 'archive-limit' | 'not-a-file'
}

/**
 * Walks the roots (files or directories), yielding regular files to scan. Synchronous file system
 * calls: a walk is a long series of small metadata calls, and on a busy machine each trip through
 * the thread pool would cost more than the call.
 */
export function* walk(roots: readonly string[], o: WalkOptions, skipped: Skipped[]): Generator<WalkEntry> {
  for (const r of roots) {
    const root = resolve(r)
    const st = statSync(root)
    const rootReal = realpathSync(root)
    if (!st.isDirectory()) {
      // A pipe, socket or device named as a root (a FIFO would block the walk for ever, /dev/zero
      // never ends): not scanned, and said (streams go through --stdin).
      if (!st.isFile()) skipped.push({ path: display(root), reason: 'not-a-file' })
      else if (o.maxFileSize > 0 && st.size > o.maxFileSize)
        skipped.push({ path: display(root), reason: 'size' })
      else yield { abs: root, display: display(root), rel: root.split(sep).pop() as string, size: st.size }
      continue
    }
    const base = ignore()
    if (o.exclude) base.add([...o.exclude])
    // The root's entry only when there are patterns to apply (it is asked about every file).
    yield* walkDir(root, root, rootReal, o.exclude?.length ? [{ dir: root, ig: base }] : [], o, skipped)
  }
}

function display(abs: string): string {
  const rel = relative(process.cwd(), abs)
  return (rel === '' || rel.startsWith('..') ? abs : rel).split(sep).join('/')
}

function* walkDir(
  dir: string,
  root: string,
  rootReal: string,
  ignores: { dir: string; ig: Ignore }[],
  o: WalkOptions,
  skipped: Skipped[],
): Generator<WalkEntry> {
  let stack = ignores
  let entries: Dirent[]
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    skipped.push({ path: display(dir), reason: 'unreadable' })
    return
  }
  if (o.gitignore !== false && entries.some((e) => e.name === '.gitignore')) {
    try {
      stack = [...ignores, { dir, ig: ignore().add(readFileSync(join(dir, '.gitignore'), 'utf8')) }]
    } catch {
      // unreadable: as if absent
    }
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const e of entries) {
    if (e.name === '.git') continue
    const abs = join(dir, e.name)
    const isDir = e.isDirectory()
    if (isIgnored(stack, abs, isDir)) continue
    if (isDir) {
      yield* walkDir(abs, root, rootReal, stack, o, skipped)
      continue
    }
    let size: number
    if (e.isSymbolicLink()) {
      // Followed only to a regular file inside the root; never to a directory (no loops).
      let real: string
      try {
        real = realpathSync(abs)
      } catch {
        continue
      }
      if (real !== rootReal && !real.startsWith(rootReal + sep)) {
        skipped.push({ path: display(abs), reason: 'symlink-outside-root' })
        continue
      }
      const st = statSync(real)
      if (!st.isFile()) continue
      size = st.size
    } else if (e.isFile()) {
      size = lstatSync(abs).size
    } else continue
    if (o.maxFileSize > 0 && size > o.maxFileSize) {
      skipped.push({ path: display(abs), reason: 'size' })
      continue
    }
    yield { abs, display: display(abs), rel: relative(root, abs).split(sep).join('/'), size }
  }
}

function isIgnored(stack: { dir: string; ig: Ignore }[], abs: string, isDir: boolean): boolean {
  for (const { dir, ig } of stack) {
    let rel = relative(dir, abs).split(sep).join('/')
    if (rel === '' || rel.startsWith('..')) continue
    if (isDir) rel += '/'
    if (ig.ignores(rel)) return true
  }
  return false
}

/** True when the first 8000 bytes contain a NUL (git's test for binary content). */
export function looksBinary(buf: Uint8Array): boolean {
  return Buffer.from(buf.buffer, buf.byteOffset, Math.min(buf.length, 8000)).indexOf(0) !== -1
}

/** Files at most this large are read whole. */
export const WHOLE_FILE_BYTES = 16 * 1024 * 1024
const CHUNK = 8 * 1024 * 1024
/** Longest match that may straddle two chunks (a PEM block, a service account file). */
const OVERLAP = 64 * 1024

/**
 * The buffer small files are read into, reused from one file to the next (a scan keeps no view of
 * its input: findings hold copies), so reading a tree does not allocate a buffer per file.
 */
let reusable = Buffer.allocUnsafe(0)
function readBuffer(size: number): Buffer {
  if (reusable.length < size) reusable = Buffer.allocUnsafe(Math.max(size, 1 << 20))
  return reusable
}

/** Where `scanFile` adds the time it spent opening and reading (ms), for `--jobs` profiles. */
export interface ReadClock {
  readMs: number
}

/**
 * Scans one file: read whole when small, else streamed in 8 MiB chunks overlapping by 64 KiB
 * (a match starting in the overlap is taken from the chunk that holds all of it). Throws when
 * the file cannot be opened or read.
 */
export function scanFile(
  scanner: SecretScanner,
  abs: string,
  size: number,
  o: PlaceOptions,
  skipped: Skipped[],
  clock?: ReadClock,
): { findings: Finding[]; stats: ScanStats } {
  const t0 = clock ? performance.now() : 0
  const fd = openSync(abs, 'r')
  try {
    if (size <= WHOLE_FILE_BYTES) {
      const buf = readBuffer(size)
      let got = 0
      while (got < size) {
        const n = readSync(fd, buf, got, size - got, got)
        if (n === 0) break
        got += n
      }
      if (clock) clock.readMs += performance.now() - t0
      const data = buf.subarray(0, got)
      if (looksBinary(data)) {
        skipped.push({ path: o.file, reason: 'binary' })
        return { findings: [], stats: emptyStats() }
      }
      return scanBuffer(scanner, data, o)
    }
    if (clock) clock.readMs += performance.now() - t0
    return scanStreamed(scanner, fd, o, skipped, clock)
  } finally {
    closeSync(fd)
  }
}

function scanStreamed(
  scanner: SecretScanner,
  fd: number,
  o: PlaceOptions,
  skipped: Skipped[],
  clock: ReadClock | undefined,
): { findings: Finding[]; stats: ScanStats } {
  const total = emptyStats()
  const findings: Finding[] = []
  const buf = Buffer.allocUnsafe(CHUNK + OVERLAP)
  let carried = 0 // bytes of the previous window kept at the front of buf
  let fileOffset = 0 // file offset of buf[0]
  let linesBefore = 0 // newlines in the file before buf[0]
  let first = true
  for (;;) {
    const t0 = clock ? performance.now() : 0
    const n = readSync(fd, buf, carried, CHUNK, fileOffset + carried)
    if (clock) clock.readMs += performance.now() - t0
    const len = carried + n
    const eof = n < CHUNK
    const window = buf.subarray(0, len)
    if (first && looksBinary(window)) {
      skipped.push({ path: o.file, reason: 'binary' })
      return { findings, stats: total }
    }
    first = false
    // Matches starting at or after `cut` are left to the next window, which starts at `cut` and
    // so sees all of them (a match is at most 16 KiB < OVERLAP); matches before the window's start
    // were taken by the previous one.
    const cut = eof ? len : len - OVERLAP
    const { matches, stats } = scanner.scan(window)
    addStats(total, stats)
    const keep = matches.filter((m) => m.start < cut)
    if (keep.length > 0) findings.push(...placeMatches(window, keep, { ...o, lineBase: linesBefore }))
    if (eof) break
    // Slide: keep the last OVERLAP bytes.
    let nl = 0
    for (let i = window.indexOf(10); i !== -1 && i < cut; i = window.indexOf(10, i + 1)) nl++
    linesBefore += nl
    buf.copy(buf, 0, cut, len)
    carried = len - cut
    fileOffset += cut
    if (fileOffset > Number.MAX_SAFE_INTEGER) break
  }
  return { findings, stats: total }
}

export function addStats(into: ScanStats, s: ScanStats): void {
  into.bytesScanned += s.bytesScanned
  into.keywordHits += s.keywordHits
  into.regexRuns += s.regexRuns
  into.regexUnits += s.regexUnits
  into.gateUnits += s.gateUnits
  into.decodes += s.decodes
  into.truncated ||= s.truncated
}
