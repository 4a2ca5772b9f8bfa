/**
 * tar, tar.gz and zip archives, read in memory without ever writing an entry to disk (so a
 * `../../etc/passwd` entry name cannot go anywhere; it is only shown, normalized). Bounded: at
 * most `maxEntries` entries, `maxEntryBytes` per entry and `maxTotalBytes` uncompressed in all; a
 * zip entry that inflates past its declared size (a zip bomb) is cut at the limit and reported.
 * Nested archives are not opened.
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs'
import { posix } from 'node:path'
import { createGunzip, inflateRawSync } from 'node:zlib'

export interface ArchiveLimits {
  maxEntries: number
  maxEntryBytes: number
  maxTotalBytes: number
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxEntries: 100_000,
  maxEntryBytes: 64 * 1024 * 1024,
  maxTotalBytes: 1024 * 1024 * 1024,
}

export interface ArchiveEntry {
  /** Normalized entry name (no leading `/`, no `..` segments). */
  name: string
  data: Buffer
}

export interface ArchiveProblem {
  entry: string
  reason: string
}

export type ArchiveKind = 'zip' | 'tar' | 'tar.gz'

export function archiveKind(path: string): ArchiveKind | undefined {
  const p = path.toLowerCase()
  if (p.endsWith('.zip') || p.endsWith('.jar') || p.endsWith('.war')) return 'zip'
  if (p.endsWith('.tar.gz') || p.endsWith('.tgz')) return 'tar.gz'
  if (p.endsWith('.tar')) return 'tar'
  return undefined
}

/** An entry name made safe to show: `/`-separated, no leading slash, `..` removed. */
export function safeEntryName(name: string): string {
  const parts = name.replace(/\\/g, '/').split('/')
  const out: string[] = []
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..') continue
    out.push(p.replace(/[\u0000-\u001f\u007f]/g, '?'))
  }
  return posix.join(...(out.length ? out : ['?']))
}

/** Reads the archive at `path`, calling `onEntry` for each regular file entry within the limits. */
export async function readArchive(
  path: string,
  kind: ArchiveKind,
  limits: ArchiveLimits,
  onEntry: (e: ArchiveEntry) => void,
  problems: ArchiveProblem[],
): Promise<void> {
  if (kind === 'zip') return readZip(path, limits, onEntry, problems)
  return readTar(path, kind === 'tar.gz', limits, onEntry, problems)
}

// ---- tar ------------------------------------------------------------------------------------

function octal(b: Buffer, off: number, len: number): number {
  const s = b
    .toString('latin1', off, off + len)
    .replace(/\0.*$/, '')
    .trim()
  if (s === '') return 0
  if (!/^[0-7]+$/.test(s)) return -1
  return Number.parseInt(s, 8)
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off)
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end)
}

async function readTar(
  path: string,
  gz: boolean,
  limits: ArchiveLimits,
  onEntry: (e: ArchiveEntry) => void,
  problems: ArchiveProblem[],
): Promise<void> {
  const src = createReadStream(path)
  const stream = gz ? src.pipe(createGunzip()) : src
  let pending: Buffer = Buffer.alloc(0)
  let total = 0
  let entries = 0
  // State: reading a header, or the data of an entry (kept or skipped).
  const need = 512
  let mode: 'header' | 'data' = 'header'
  let dataLeft = 0
  let padLeft = 0
  let cur: { name: string; keep: boolean; chunks: Buffer[]; size: number; type: string } | undefined
  let longName: string | undefined
  let paxPath: string | undefined
  let stop = false
  try {
    for await (const chunk of stream) {
      total += (chunk as Buffer).length
      if (total > limits.maxTotalBytes) {
        problems.push({
          entry: '',
          reason: `archive larger than ${limits.maxTotalBytes} bytes uncompressed: rest skipped`,
        })
        break
      }
      pending = pending.length ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer)
      let off = 0
      while (!stop) {
        if (mode === 'header') {
          if (pending.length - off < need) break
          const h = pending.subarray(off, off + 512)
          off += 512
          if (h.every((x) => x === 0)) continue // end-of-archive blocks
          const size = octal(h, 124, 12)
          if (size < 0) {
            problems.push({ entry: '', reason: 'malformed tar header: rest skipped' })
            stop = true
            break
          }
          const type = String.fromCharCode(h[156] as number)
          const prefix = cstr(h, 345, 155)
          let name = cstr(h, 0, 100)
          if (h.toString('latin1', 257, 262) === 'ustar' && prefix !== '') name = `${prefix}/${name}`
          if (longName !== undefined) name = longName
          if (paxPath !== undefined) name = paxPath
          const meta = type === 'L' || type === 'x'
          if (!meta) {
            longName = undefined
            paxPath = undefined
          }
          const regular = type === '0' || type === '\0' || type === '7'
          if (regular && ++entries > limits.maxEntries) {
            problems.push({ entry: '', reason: `more than ${limits.maxEntries} entries: rest skipped` })
            stop = true
            break
          }
          const keep = (regular && size <= limits.maxEntryBytes) || (meta && size <= 1024 * 1024)
          if (regular && !keep)
            problems.push({
              entry: safeEntryName(name),
              reason: `entry over ${limits.maxEntryBytes} bytes: skipped`,
            })
          cur = { name, keep, chunks: [], size: 0, type }
          dataLeft = size
          padLeft = (512 - (size % 512)) % 512
          mode = 'data'
        }
        if (mode === 'data') {
          const avail = pending.length - off
          if (dataLeft > 0) {
            if (avail === 0) break
            const take = Math.min(avail, dataLeft)
            if (cur?.keep) cur.chunks.push(Buffer.from(pending.subarray(off, off + take)))
            off += take
            dataLeft -= take
            if (dataLeft > 0) break
          }
          const pad = Math.min(pending.length - off, padLeft)
          off += pad
          padLeft -= pad
          if (padLeft > 0) break
          if (cur?.keep) {
            const data = Buffer.concat(cur.chunks)
            if (cur.type === 'L') longName = cstr(data, 0, data.length)
            else if (cur.type === 'x') {
              const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))
              if (m) paxPath = m[1]
            } else onEntry({ name: safeEntryName(cur.name), data })
          }
          cur = undefined
          mode = 'header'
        }
      }
      pending = off >= pending.length ? Buffer.alloc(0) : Buffer.from(pending.subarray(off))
      if (stop) break
    }
  } catch (err) {
    problems.push({ entry: '', reason: `unreadable archive: ${(err as Error).message.slice(0, 100)}` })
  } finally {
    src.destroy()
  }
}

// ---- zip ------------------------------------------------------------------------------------

function readZip(
  path: string,
  limits: ArchiveLimits,
  onEntry: (e: ArchiveEntry) => void,
  problems: ArchiveProblem[],
): void {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    const tailLen = Math.min(size, 65_557)
    const tail = Buffer.alloc(tailLen)
    readSync(fd, tail, 0, tailLen, size - tailLen)
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]))
    if (eocd < 0 || eocd + 22 > tail.length) {
      problems.push({ entry: '', reason: 'not a zip file (no end of central directory)' })
      return
    }
    const count = tail.readUInt16LE(eocd + 10)
    const cdSize = tail.readUInt32LE(eocd + 12)
    const cdOff = tail.readUInt32LE(eocd + 16)
    if (count === 0xffff || cdOff === 0xffffffff) {
      problems.push({ entry: '', reason: 'zip64 archives are not read' })
      return
    }
    if (cdOff + cdSize > size || cdSize > 64 * 1024 * 1024) {
      problems.push({ entry: '', reason: 'corrupt central directory' })
      return
    }
    const cd = Buffer.alloc(cdSize)
    readSync(fd, cd, 0, cdSize, cdOff)
    let p = 0
    let total = 0
    for (let i = 0; i < count; i++) {
      if (i >= limits.maxEntries) {
        problems.push({ entry: '', reason: `more than ${limits.maxEntries} entries: rest skipped` })
        break
      }
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) {
        problems.push({ entry: '', reason: 'corrupt central directory' })
        break
      }
      const method = cd.readUInt16LE(p + 10)
      const csize = cd.readUInt32LE(p + 20)
      const usize = cd.readUInt32LE(p + 24)
      const nlen = cd.readUInt16LE(p + 28)
      const elen = cd.readUInt16LE(p + 30)
      const clen = cd.readUInt16LE(p + 32)
      const lho = cd.readUInt32LE(p + 42)
      const rawName = cd.toString('utf8', p + 46, p + 46 + nlen)
      p += 46 + nlen + elen + clen
      const name = safeEntryName(rawName)
      if (rawName.endsWith('/')) continue
      if (usize > limits.maxEntryBytes || csize > limits.maxEntryBytes) {
        problems.push({ entry: name, reason: `entry over ${limits.maxEntryBytes} bytes: skipped` })
        continue
      }
      if (total + usize > limits.maxTotalBytes) {
        problems.push({
          entry: name,
          reason: `archive over ${limits.maxTotalBytes} bytes uncompressed: rest skipped`,
        })
        break
      }
      const lh = Buffer.alloc(30)
      if (readSync(fd, lh, 0, 30, lho) < 30 || lh.readUInt32LE(0) !== 0x04034b50) {
        problems.push({ entry: name, reason: 'corrupt local header' })
        continue
      }
      const dataOff = lho + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28)
      if (dataOff + csize > size) {
        problems.push({ entry: name, reason: 'entry beyond the end of the file' })
        continue
      }
      const comp = Buffer.alloc(csize)
      readSync(fd, comp, 0, csize, dataOff)
      let data: Buffer
      if (method === 0) data = comp
      else if (method === 8) {
        try {
          // Never more than the declared size (+1 to notice a lie): a bomb stops here.
          data = inflateRawSync(comp, { maxOutputLength: Math.max(1, usize + 1) })
        } catch (err) {
          const code = (err as { code?: string }).code
          problems.push({
            entry: name,
            reason:
              code === 'ERR_BUFFER_TOO_LARGE'
                ? 'inflates past its declared size (zip bomb?): skipped'
                : 'corrupt deflate data',
          })
          continue
        }
        if (data.length > usize) {
          problems.push({ entry: name, reason: 'inflates past its declared size (zip bomb?): skipped' })
          continue
        }
      } else {
        problems.push({ entry: name, reason: `compression method ${method} not supported` })
        continue
      }
      total += data.length
      onEntry({ name, data })
    }
  } finally {
    closeSync(fd)
  }
}
