/**
 * `portcullis secrets`: finds credentials in files and directories (honouring .gitignore), in
 * archives, in git history (`--git`) or on stdin. Exit 0 nothing found, 1 findings, 2 usage or
 * config error. Output never shows a secret: its first 4 characters then `***` (`--redact`:
 * nothing), a hash of it, and a fingerprint for baselines. See docs/secrets.md.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import { newFindings, readBaseline, writeBaseline } from '../../../secrets/baseline.js'
import { type Finding, scanBuffer } from '../../../secrets/findings.js'
import { renderJson, renderSarif, renderText, type Summary } from '../../../secrets/report.js'
import type { SecretScanner } from '../../../secrets/engine.js'
import { buildSetup } from '../../../secrets/setup.js'
import {
  archiveKind,
  DEFAULT_ARCHIVE_LIMITS,
  readArchive,
  type ArchiveProblem,
} from '../../../secrets/sources/archives.js'
import { addStats, scanFile, type Skipped, type WalkEntry, walk } from '../../../secrets/sources/files.js'
import { scanGit } from '../../../secrets/sources/git.js'
import { emptyStats, type ScanStats } from '../../../secrets/types.js'
import { EXIT, UsageError } from '../../command.js'

/** Parses a size: 1048576, 512k, 100m, 1g; 0 for no cap. */
function parseSize(s: string): number {
  const m = /^(\d+)([kmg]?)b?$/i.exec(s.trim())
  if (!m) throw new UsageError(`--max-file-size: expected a size like 100m, got "${s}"`)
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] as string).toLowerCase()] as number
  return Number(m[1]) * mult
}

class Progress {
  private last = 0
  private readonly on: boolean
  constructor() {
    this.on = process.stderr.isTTY === true && process.env.CI === undefined
  }
  tick(files: number, bytes: number, commits = 0): void {
    if (!this.on) return
    const now = Date.now()
    if (now - this.last < 200) return
    this.last = now
    const what = commits > 0 ? `${commits} commits` : `${files} files, ${(bytes / 1e6).toFixed(0)} MB`
    process.stderr.write(`\r\x1b[2Kscanning… ${what}`)
  }
  done(): void {
    if (this.on) process.stderr.write('\r\x1b[2K')
  }
}

export async function secretsCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      git: { type: 'boolean', default: false },
      stdin: { type: 'boolean', default: false },
      format: { type: 'string', default: 'text' },
      output: { type: 'string' },
      baseline: { type: 'string' },
      'update-baseline': { type: 'boolean', default: false },
      jobs: { type: 'string', default: '1' },
      redact: { type: 'boolean', default: false },
      since: { type: 'string' },
      branch: { type: 'string' },
      config: { type: 'string' },
      'max-file-size': { type: 'string', default: '100m' },
      'no-gitignore': { type: 'boolean', default: false },
      'no-archives': { type: 'boolean', default: false },
    },
  })
  const format = v.format as string
  if (!['text', 'json', 'sarif'].includes(format))
    throw new UsageError(`--format: text, json or sarif, not "${format}"`)
  const jobs = v.jobs === 'auto' ? cpus().length : Number(v.jobs)
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64)
    throw new UsageError('--jobs: an integer from 1 to 64, or auto')
  if (v['update-baseline'] && v.baseline === undefined)
    throw new UsageError('--update-baseline needs --baseline FILE')
  if (v.stdin && (v.git || positionals.length > 0))
    throw new UsageError('--stdin reads only stdin: no PATH, no --git')
  if ((v.since !== undefined || v.branch !== undefined) && !v.git)
    throw new UsageError('--since and --branch go with --git')
  const maxFileSize = parseSize(v['max-file-size'] as string)
  const redact = v.redact === true
  const setup = await buildSetup(v.config)
  const { scanner, allowPaths } = setup
  const allowAny = (setup.config?.allow.paths.length ?? 0) > 0
  const started = performance.now()
  const progress = new Progress()
  let findings: Finding[] = []
  const stats: ScanStats = emptyStats()
  const skipped: Skipped[] = []
  let files = 0
  let commits = 0
  let incomplete = 0
  const take = (fs: readonly Finding[], s: ScanStats | undefined) => {
    if (s) {
      addStats(stats, s)
      if (s.truncated) incomplete++
    }
    for (const f of fs) if (!v.git || !allowAny || !allowPaths.ignores(f.file)) findings.push(f)
  }

  if (v.stdin) {
    const chunks: Buffer[] = []
    for await (const c of process.stdin) chunks.push(c as Buffer)
    const r = scanBuffer(scanner, Buffer.concat(chunks), { file: '<stdin>', redact })
    files = 1
    take(r.findings, r.stats)
  } else if (v.git) {
    for (const repo of positionals.length ? positionals : ['.']) {
      let r: Awaited<ReturnType<typeof scanGit>>
      try {
        r = await scanGit(scanner, {
          repo,
          ...(v.branch !== undefined ? { branch: v.branch } : {}),
          ...(v.since !== undefined ? { since: v.since } : {}),
          redact,
          onCommit: () => progress.tick(0, 0, ++commits),
        })
      } catch (err) {
        throw new UsageError((err as Error).message)
      }
      take(r.findings, r.stats)
    }
  } else {
    const roots = positionals.length ? positionals : ['.']
    // Workers start now, loading their modules while this thread walks the tree.
    let pool = jobs > 1 ? startWorkers(jobs - 1, v.config, redact) : []
    const entries: WalkEntry[] = []
    const archives: WalkEntry[] = []
    try {
      for (const e of walk(roots, { maxFileSize, gitignore: !v['no-gitignore'] }, skipped)) {
        if (allowAny && allowPaths.ignores(e.rel)) continue
        if (!v['no-archives'] && archiveKind(e.display) !== undefined) archives.push(e)
        else entries.push(e)
      }
    } catch (err) {
      pool = stopWorkers(pool, 0)
      const e = err as NodeJS.ErrnoException
      if (e.code === 'ENOENT' || e.code === 'EACCES')
        throw new UsageError(
          `${e.path ?? ''}: ${e.code === 'ENOENT' ? 'no such file or directory' : 'permission denied'}`,
        )
      throw err
    } finally {
      if (entries.length < 2) pool = stopWorkers(pool, 0)
    }
    // A worker costs about as much as scanning 16 MiB (its own start, its own compiled patterns):
    // fewer of them for a smaller tree, none under 16 MiB.
    let bytes = entries.reduce((n, e) => n + e.size, 0)
    pool = stopWorkers(pool, Math.floor(bytes / WORKER_MIN_BYTES))
    if (pool.length === 0) {
      bytes = 0
      for (const e of entries) {
        const r = scanFile(scanner, e.abs, e.size, { file: e.display, redact }, skipped)
        take(r.findings, r.stats)
        bytes += e.size
        progress.tick(++files, bytes)
      }
    } else {
      await scanWithWorkers(entries, pool, scanner, redact, (fs, s, sk) => {
        take(fs, s)
        skipped.push(...sk)
        progress.tick(++files, bytes)
      })
    }
    for (const a of archives) {
      const problems: ArchiveProblem[] = []
      await readArchive(
        a.abs,
        archiveKind(a.display) ?? 'zip',
        { ...DEFAULT_ARCHIVE_LIMITS, ...(maxFileSize > 0 ? { maxEntryBytes: maxFileSize } : {}) },
        (entry) => {
          files++
          if (entry.data.subarray(0, 8000).includes(0)) return
          const r = scanBuffer(scanner, entry.data, { file: `${a.display}!/${entry.name}`, redact })
          take(r.findings, r.stats)
        },
        problems,
      )
      for (const p of problems)
        process.stderr.write(`portcullis: ${a.display}${p.entry ? `!/${p.entry}` : ''}: ${p.reason}\n`)
    }
  }
  progress.done()

  if (v['update-baseline']) {
    writeBaseline(v.baseline as string, findings)
    process.stderr.write(`portcullis: baseline ${v.baseline}: ${findings.length} findings recorded\n`)
    return EXIT.OK
  }
  if (v.baseline !== undefined) findings = newFindings(findings, readBaseline(v.baseline))
  const summary: Summary = {
    files,
    commits,
    bytes: stats.bytesScanned,
    seconds: (performance.now() - started) / 1000,
    skipped: skipped.length,
    incomplete,
  }
  const version = (
    JSON.parse(readFileSync(new URL('../../../../../package.json', import.meta.url), 'utf8')) as {
      version: string
    }
  ).version
  const out =
    format === 'json'
      ? renderJson(findings, summary)
      : format === 'sarif'
        ? renderSarif(findings, scanner.detectors, version)
        : renderText(findings, summary)
  if (v.output !== undefined) writeFileSync(v.output, out)
  else process.stdout.write(out)
  if (incomplete > 0)
    process.stderr.write(
      `portcullis: ${incomplete} input(s) not fully scanned: the work budget ran out (adversarial content?)\n`,
    )
  return findings.length > 0 ? EXIT.FINDINGS : incomplete > 0 ? EXIT.USAGE : EXIT.OK
}

/** Bytes of files that make one more worker thread worth its start. */
let WORKER_MIN_BYTES = 16 * 1024 * 1024

/** For tests: a lower threshold, so that a small tree still runs on workers. @internal */
export function setWorkerMinBytes(n: number): void {
  WORKER_MIN_BYTES = n
}

/** Starts `n` scanning workers (each builds its own scanner). */
function startWorkers(n: number, configFile: string | undefined, redact: boolean): Worker[] {
  const url = new URL('../../../secrets/worker.js', import.meta.url)
  return Array.from({ length: n }, () => new Worker(url, { workerData: { configFile, redact } }))
}

/** Keeps the first `keep` workers, terminates the others. */
function stopWorkers(pool: Worker[], keep: number): Worker[] {
  for (const w of pool.slice(keep)) void w.terminate()
  return pool.slice(0, keep)
}

/**
 * Spreads files over the workers and this thread: the workers take the largest files first, and
 * this thread, which has its scanner built, takes the smallest, yielding every few milliseconds to
 * hand the workers their next file. Resolves when all are scanned; terminates the workers.
 */
function scanWithWorkers(
  entries: readonly WalkEntry[],
  workers: readonly Worker[],
  scanner: SecretScanner,
  redact: boolean,
  onResult: (findings: Finding[], stats: ScanStats | undefined, skipped: Skipped[]) => void,
): Promise<void> {
  const queue = [...entries].sort((a, b) => b.size - a.size)
  return new Promise((resolve, reject) => {
    let next = 0 // the workers' end of the queue
    let last = queue.length - 1 // this thread's end
    let done = 0
    let failed = false
    const finish = (err?: unknown) => {
      if (failed) return
      for (const w of workers) void w.terminate()
      if (err) {
        failed = true
        reject(err)
      } else if (done === queue.length) resolve()
    }
    const feed = (w: Worker) => {
      if (next > last) return
      const e = queue[next] as WalkEntry
      w.postMessage({ id: next++, abs: e.abs, display: e.display, size: e.size })
    }
    for (const w of workers) {
      w.on('message', (m: { findings: Finding[]; stats: ScanStats | undefined; skipped: Skipped[] }) => {
        onResult(m.findings, m.stats, m.skipped)
        if (++done === queue.length) finish()
        else feed(w)
      })
      w.on('error', finish)
      // Two files in flight per worker: the next one is ready when the current one ends.
      feed(w)
      feed(w)
    }
    const own = async () => {
      let since = performance.now()
      while (!failed && next <= last) {
        const e = queue[last--] as WalkEntry
        const skipped: Skipped[] = []
        const r = scanFile(scanner, e.abs, e.size, { file: e.display, redact }, skipped)
        onResult(r.findings, r.stats, skipped)
        done++
        if (performance.now() - since > 5) {
          await new Promise((r) => setImmediate(r))
          since = performance.now()
        }
      }
      if (done === queue.length) finish()
    }
    own().catch(finish)
  })
}
