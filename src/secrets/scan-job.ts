/**
 * One unit of a tree scan: a file, or an archive whose entries are scanned one by one. The same
 * function runs in-process (`--jobs 1`) and in the worker threads of `--jobs N`, so both give
 * the same findings; a failure (the file vanished or is unreadable) is returned as an error, never
 * thrown, so that one bad file does not end the scan and is reported.
 */
import type { SecretScanner } from './engine.js'
import { type Finding, scanBuffer } from './findings.js'
import {
  type ArchiveKind,
  type ArchiveProblem,
  DEFAULT_ARCHIVE_LIMITS,
  readArchive,
} from './sources/archives.js'
import { addStats, looksBinary, type ReadClock, scanFile, type Skipped } from './sources/files.js'
import { emptyStats, type ScanStats } from './types.js'

export interface ScanJob {
  /** The order of the job in the walk (archives after files): findings are reported in it. */
  order: number
  abs: string
  display: string
  size: number
  /** Set for an archive to open (tar, tar.gz, zip). */
  archive?: ArchiveKind
}

export interface JobOptions {
  redact: boolean
  /** The per-file size cap (0: none); for archives, the per-entry cap. */
  maxFileSize: number
}

export interface JobResult {
  order: number
  findings: Finding[]
  stats: ScanStats
  skipped: Skipped[]
  /** Inputs scanned: 1 for a file, the entries read for an archive. */
  files: number
  /** Archive problems and errors, as lines to show (`path: reason`); no content. */
  problems: string[]
  /** Set when the job could not be scanned (or not wholly): `path: reason`. */
  error?: string
}

/** Why a file could not be read, without its content: the error code, or its message. */
export function ioReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  if (e?.code === 'ENOENT') return 'not scanned: it vanished during the scan'
  if (e?.code === 'EACCES' || e?.code === 'EPERM') return 'not scanned: permission denied'
  if (typeof e?.code === 'string') return `not scanned: ${e.code}`
  return `not scanned: ${String(e?.message ?? err).split('\n')[0]}`
}

/** Scans one file or archive. Never throws for an input problem: see `JobResult.error`. */
export async function scanJob(
  scanner: SecretScanner,
  job: ScanJob,
  o: JobOptions,
  clock?: ReadClock,
): Promise<JobResult> {
  const r: JobResult = {
    order: job.order,
    findings: [],
    stats: emptyStats(),
    skipped: [],
    files: 0,
    problems: [],
  }
  try {
    if (job.archive === undefined) {
      const s = scanFile(
        scanner,
        job.abs,
        job.size,
        { file: job.display, redact: o.redact },
        r.skipped,
        clock,
      )
      r.findings = s.findings
      r.stats = s.stats
      r.files = 1
      return r
    }
    const problems: ArchiveProblem[] = []
    await readArchive(
      job.abs,
      job.archive,
      { ...DEFAULT_ARCHIVE_LIMITS, ...(o.maxFileSize > 0 ? { maxEntryBytes: o.maxFileSize } : {}) },
      (entry) => {
        r.files++
        if (looksBinary(entry.data)) return
        const s = scanBuffer(scanner, entry.data, { file: `${job.display}!/${entry.name}`, redact: o.redact })
        addStats(r.stats, s.stats)
        for (const f of s.findings) r.findings.push(f)
      },
      problems,
    )
    for (const p of problems) r.problems.push(`${job.display}${p.entry ? `!/${p.entry}` : ''}: ${p.reason}`)
  } catch (err) {
    r.error = `${job.display}: ${ioReason(err)}`
  }
  return r
}
