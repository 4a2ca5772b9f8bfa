/**
 * `portcullis secrets`: finds credentials in files and directories (honouring .gitignore), in
 * archives, in git history (`--git`) or on stdin. Exit 0 nothing found, 1 findings, 2 usage or
 * config error. Output never shows a secret: its first 4 characters then `***` (`--redact`:
 * nothing), a hash of it, and a fingerprint for baselines. See docs/secrets.md.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import { newFindings, readBaseline, writeBaseline } from '../../../secrets/baseline.js'
import { type Finding, scanBuffer } from '../../../secrets/findings.js'
import { scanJobs } from '../../../secrets/pool.js'
import type { ScanProfile } from '../../../secrets/profile.js'
import { renderJson, renderSarif, renderText, type Summary } from '../../../secrets/report.js'
import type { ScanJob } from '../../../secrets/scan-job.js'
import { buildSetup } from '../../../secrets/setup.js'
import { archiveKind } from '../../../secrets/sources/archives.js'
import { addStats, type Skipped, walk } from '../../../secrets/sources/files.js'
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
  const jobs = v.jobs === 'auto' ? availableParallelism() : Number(v.jobs)
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
  /** Inputs not (wholly) scanned: unreadable, a scanning thread died. Exit 2 without findings. */
  const errors: string[] = []
  /** Archive problems (limits, malformed): shown, not errors. */
  const problems: string[] = []
  let profile: ScanProfile | undefined
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
    const archivesOn = !v['no-archives']
    function* jobsOf(): Generator<Omit<ScanJob, 'order'>> {
      for (const e of walk(roots, { maxFileSize, gitignore: !v['no-gitignore'] }, skipped)) {
        if (allowAny && allowPaths.ignores(e.rel)) continue
        const archive = archivesOn ? archiveKind(e.display) : undefined
        yield { abs: e.abs, display: e.display, size: e.size, ...(archive ? { archive } : {}) }
      }
    }
    let scanned: Awaited<ReturnType<typeof scanJobs>>
    let bytes = 0
    try {
      scanned = await scanJobs(scanner, jobsOf(), {
        jobs,
        configFile: v.config,
        job: { redact, maxFileSize },
        minBytesPerWorker: WORKER_MIN_BYTES,
        ...(crashOn !== undefined ? { crashOn } : {}),
        ...(mainScans ? {} : { mainScans }),
        onResult: (r) => {
          files += r.files
          bytes += r.stats.bytesScanned
          progress.tick(files, bytes)
        },
      })
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'ENOENT' || e.code === 'EACCES')
        throw new UsageError(
          `${e.path ?? ''}: ${e.code === 'ENOENT' ? 'no such file or directory' : 'permission denied'}`,
        )
      throw err
    }
    profile = scanned.profile
    // Results come in walk order (files, then archives), whatever thread scanned them.
    for (const r of scanned.results) {
      take(r.findings, r.stats)
      skipped.push(...r.skipped)
      problems.push(...r.problems)
      if (r.error !== undefined) errors.push(r.error)
    }
    for (const s of skipped) {
      if (s.reason === 'unreadable') errors.push(`${s.path}: not scanned: unreadable`)
      if (s.reason === 'not-a-file')
        errors.push(
          `${s.path}: not scanned: not a regular file (a pipe or a device: use --stdin for a stream)`,
        )
    }
  }
  progress.done()
  for (const p of problems) process.stderr.write(`portcullis: ${p}\n`)
  for (const e of errors) process.stderr.write(`portcullis: ${e}\n`)

  const reportStart = performance.now()
  if (v['update-baseline']) {
    writeBaseline(v.baseline as string, findings)
    process.stderr.write(`portcullis: baseline ${v.baseline}: ${findings.length} findings recorded\n`)
    return errors.length > 0 ? EXIT.USAGE : EXIT.OK
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
  if (profile !== undefined && process.env.PORTCULLIS_SECRETS_PROFILE) {
    profile.reportMs = performance.now() - reportStart
    writeFileSync(process.env.PORTCULLIS_SECRETS_PROFILE, `${JSON.stringify(profile, null, 2)}\n`)
  }
  if (incomplete > 0)
    process.stderr.write(
      `portcullis: ${incomplete} input(s) not fully scanned: the work budget ran out (adversarial content?)\n`,
    )
  if (errors.length > 0)
    process.stderr.write(`portcullis: ${errors.length} input(s) not scanned (see above)\n`)
  return findings.length > 0 ? EXIT.FINDINGS : incomplete > 0 || errors.length > 0 ? EXIT.USAGE : EXIT.OK
}

/**
 * Bytes of input that pay for one more scanning thread. A worker costs about 0.1 s of CPU to start
 * (modules, detectors) and 0.25 s more before its code is optimised, plus some 0.4 s of V8's
 * compiler threads (measured on the bench tree, docs/benchmarks.md): about what scanning 32 MiB
 * costs one warm thread. So `--jobs 2` (this thread and one worker, started before the walk)
 * keeps its worker only for a tree of 64 MiB or more; a smaller one is scanned in-process. See
 * src/secrets/pool.ts.
 */
export const DEFAULT_WORKER_MIN_BYTES = 32 * 1024 * 1024
let WORKER_MIN_BYTES = DEFAULT_WORKER_MIN_BYTES
/** Tests only: workers die at a file whose path ends with this. */
let crashOn: string | undefined
/** Tests only: false keeps the main thread from scanning while a worker lives. */
let mainScans = true

/** For tests: a lower threshold (undefined: the default), so that a small tree runs on workers. @internal */
export function setWorkerMinBytes(n: number | undefined): void {
  WORKER_MIN_BYTES = n ?? DEFAULT_WORKER_MIN_BYTES
}

/** For tests: workers die when they meet a file whose path ends with `suffix`. @internal */
export function setWorkerCrashOn(suffix: string | undefined): void {
  crashOn = suffix
}

/**
 * For tests: false keeps the main thread from scanning while a worker lives, so that the workers
 * meet every file (a crash test then does not depend on which thread is quicker). @internal
 */
export function setMainThreadScans(on: boolean): void {
  mainScans = on
}
