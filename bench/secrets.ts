/**
 * npm run bench:secrets — builds a synthetic tree shaped like real repositories (source, JSON
 * fixtures, logs, minified JS, lockfiles; ≥ 100 MB by default; see secrets-tree.ts) with keys of
 * 35 providers planted at known files and lines, then scans it with Portcullis (--jobs 1 and
 * --jobs 2) and with secretlint (its recommended preset) in the same run, and prints wall-clock
 * and CPU throughput and which planted keys each found. Then streams one large file (1 GiB by
 * default) through `portcullis secrets` and reports its peak RSS, read from /proc/PID/status.
 *
 * On a shared machine the absolute MB/s depend on the load (printed); the ratio to secretlint,
 * measured in the same run, and the CPU-time throughput are the steadier figures.
 *
 * Options: --mb N (tree size, default 110)  --rounds N (alternate the tools N times, default 1;
 * medians printed)  --big-mb N (the single large file, default 1024; 0 skips it)  --keep (keep
 * the tree)  --skip-secretlint  --seed N  --jobs LIST (the --jobs values to run, default 1,2)
 *
 * Each Portcullis run writes its profile (PORTCULLIS_SECRETS_PROFILE): per thread, the time to
 * start, walk, scan (of which reading) and idle, and its CPU seconds; printed under the run.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { ScanProfile } from '../src/secrets/profile.js'
import { buildTree, type Plant, writeBigFile } from './secrets-tree.js'

const USAGE = `usage: npm run bench:secrets -- [--mb N] [--rounds N] [--big-mb N] [--keep] [--skip-secretlint]
                               [--seed N] [--jobs LIST]
  --mb N           size of the synthetic tree (default 110)
  --rounds N       alternate the tools N times, medians printed (default 1)
  --big-mb N       the single large file streamed for peak RSS (default 1024; 0 skips it)
  --keep           keep the tree      --skip-secretlint  Portcullis only
  --seed N         the tree's seed    --jobs LIST        the --jobs values to run (default 1,2)`

function options() {
  try {
    return parseArgs({
      options: {
        mb: { type: 'string', default: '110' },
        rounds: { type: 'string', default: '1' },
        'big-mb': { type: 'string', default: '1024' },
        keep: { type: 'boolean', default: false },
        'skip-secretlint': { type: 'boolean', default: false },
        seed: { type: 'string', default: '2026' },
        jobs: { type: 'string', default: '1,2' },
        help: { type: 'boolean', default: false },
      },
    })
  } catch (err) {
    process.stderr.write(`bench:secrets: ${(err as Error).message}\n${USAGE}\n`)
    process.exit(2)
  }
}
const { values } = options()
if (values.help) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}
const root = new URL('../..', import.meta.url).pathname
const cli = join(root, 'bin/portcullis.js')
const dir = mkdtempSync(join(tmpdir(), 'pcl-bench-secrets-'))
const cores = availableParallelism()
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')

/** CPU time (s) of this process's waited-for children: cutime + cstime of /proc/self/stat. */
function childCpu(): number {
  const text = readFileSync('/proc/self/stat', 'utf8')
  const rest = text
    .slice(text.lastIndexOf(')') + 2)
    .trim()
    .split(/\s+/)
  // Fields 16 and 17 (cutime, cstime) are rest[13] and rest[14]; clock ticks of 1/100 s.
  return (Number(rest[13]) + Number(rest[14])) / 100
}

// ---- the tree ------------------------------------------------------------------------------
let t0 = performance.now()
const tree = buildTree(dir, Number(values.mb) * 1e6, Number(values.seed))
const mb = tree.bytes / 1e6
const plants = tree.plants
console.log(
  `tree: ${tree.files} files, ${mb.toFixed(1)} MB (${Object.entries(tree.kinds)
    .map(([k, n]) => `${k} ${(n / 1e6).toFixed(1)}`)
    .join(
      ', ',
    )} MB), ${plants.length} planted keys of ${new Set(plants.map((p) => p.provider)).size} providers; built in ${((performance.now() - t0) / 1000).toFixed(1)} s (${dir})`,
)

interface Run {
  tool: string
  seconds: number
  cpu: number
  /** Where Portcullis' time went, per thread (PORTCULLIS_SECRETS_PROFILE). */
  profile?: ScanProfile
  /** CPU seconds of the process's busiest threads, largest first (from /proc/PID/task). */
  threads: number[]
  hits: { file: string; line: number; detector: string }[]
}

/**
 * Runs a command, polling /proc/PID/task/TID/stat every 50 ms for each thread's CPU time (the last
 * reading before the exit), and the process's total CPU from this process's children time.
 */
async function measure(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ seconds: number; cpu: number; threads: number[]; stdout: string; code: number | null }> {
  const c0 = childCpu()
  const t = performance.now()
  const child = spawn(process.execPath, args, {
    cwd,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  })
  let stdout = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d: string) => {
    stdout += d
  })
  const perThread = new Map<string, number>()
  const poll = () => {
    try {
      for (const tid of readdirSync(`/proc/${child.pid}/task`)) {
        const text = readFileSync(`/proc/${child.pid}/task/${tid}/stat`, 'utf8')
        const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
        perThread.set(tid, (Number(f[11]) + Number(f[12])) / 100)
      }
    } catch {
      // exited
    }
  }
  const timer = setInterval(poll, 50)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  clearInterval(timer)
  return {
    seconds: (performance.now() - t) / 1000,
    cpu: childCpu() - c0,
    threads: [...perThread.values()].sort((a, b) => b - a).slice(0, 3),
    stdout,
    code,
  }
}

async function portcullis(jobs: number): Promise<Run> {
  const out = join(dir, '..', `${dir.split('/').pop()}-out-${jobs}.json`)
  const prof = join(dir, '..', `${dir.split('/').pop()}-profile-${jobs}.json`)
  const r = await measure(
    [cli, 'secrets', '.', '--format', 'json', '--output', out, '--jobs', String(jobs)],
    dir,
    { PORTCULLIS_SECRETS_PROFILE: prof },
  )
  if (r.code !== 1 && r.code !== 0) throw new Error(`portcullis failed: exit ${r.code}`)
  const found = JSON.parse(readFileSync(out, 'utf8')) as {
    findings: { file: string; line: number; detector: string }[]
  }
  const profile = JSON.parse(readFileSync(prof, 'utf8')) as ScanProfile
  rmSync(out)
  rmSync(prof)
  return { tool: `portcullis --jobs ${jobs}`, ...r, hits: found.findings, profile }
}

async function secretlint(): Promise<Run> {
  writeFileSync(
    join(dir, '.secretlintrc.json'),
    JSON.stringify({ rules: [{ id: '@secretlint/secretlint-rule-preset-recommend' }] }),
  )
  const r = await measure(
    [join(root, 'node_modules/secretlint/bin/secretlint.js'), '**/*', '--format', 'json', '--maskSecrets'],
    dir,
  )
  let results: { filePath: string; messages: { ruleId: string; loc: { start: { line: number } } }[] }[]
  try {
    results = JSON.parse(r.stdout)
  } catch {
    throw new Error(`secretlint output not JSON (exit ${r.code})`)
  }
  const hits: Run['hits'] = []
  for (const res of results)
    for (const m of res.messages)
      hits.push({ file: res.filePath.slice(dir.length + 1), line: m.loc.start.line, detector: m.ruleId })
  return { tool: 'secretlint (recommended preset)', ...r, hits }
}

/**
 * One line per thread of a Portcullis run: start (to ready), walk, busy (of which reading),
 * idle, files, bytes, and the thread's CPU seconds; the thread CPU of the whole process is the
 * sum of these plus V8's helper threads (compilation, GC), which the run's CPU total includes.
 */
function profileLines(p: ScanProfile): string[] {
  const ms = (x: number) => `${(x / 1000).toFixed(2)} s`
  const cpu = (x: number | undefined) => (x === undefined ? '?' : `${x.toFixed(2)} s`)
  return p.threads.map(
    (t) =>
      `${t.thread.padEnd(9)} start ${ms(t.startMs)}${t.startCpuSeconds !== undefined ? ` (${cpu(t.startCpuSeconds)} CPU)` : ''}  walk ${ms(t.walkMs)}  busy ${ms(t.busyMs)} (read ${ms(t.readMs)})  idle ${ms(t.idleMs)} (waiting for work ${ms(t.waitMs)})  ${t.files} files ${(t.bytes / 1e6).toFixed(1)} MB  CPU ${cpu(t.cpuSeconds)}`,
  )
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const rounds = Math.max(1, Number(values.rounds))
const jobList = (values.jobs as string).split(',').map(Number)
if (jobList.some((j) => !Number.isInteger(j) || j < 1)) throw new Error('--jobs: a list such as 1,2,4')
const byTool = new Map<string, Run[]>()
for (let i = 0; i < rounds; i++) {
  const order: (() => Promise<Run>)[] = jobList.map((j) => () => portcullis(j))
  if (!values['skip-secretlint']) order.push(secretlint)
  // Alternate the order between rounds so a load spike does not always hit the same tool.
  if (i % 2 === 1) order.reverse()
  for (const run of order) {
    const r = await run()
    byTool.set(r.tool, [...(byTool.get(r.tool) ?? []), r])
    console.log(
      `  round ${i + 1}: ${r.tool} ${r.seconds.toFixed(2)} s, CPU ${r.cpu.toFixed(2)} s (load ${load()})`,
    )
    if (r.profile) for (const line of profileLines(r.profile)) console.log(`    ${line}`)
  }
}

/** A plant is found when a hit names its file on a line of its range (±1). */
const foundBy = (r: Run, p: Plant) =>
  r.hits.some((h) => h.file === p.file && h.line >= p.line - 1 && h.line <= p.endLine + 1)
const summary = [...byTool.entries()].map(([tool, rs]) => ({
  tool,
  seconds: median(rs.map((r) => r.seconds)),
  cpu: median(rs.map((r) => r.cpu)),
  busiest: median(rs.map((r) => r.threads[0] ?? 0)),
  threads: [0, 1, 2].map((k) => median(rs.map((r) => r.threads[k] ?? 0))),
  run: rs[0] as Run,
}))
console.log(`\nload average now: ${load()} (${cores} cores)`)
for (const s of summary) {
  const found = plants.filter((p) => foundBy(s.run, p))
  const extra = s.run.hits.filter(
    (h) => !plants.some((p) => h.file === p.file && h.line >= p.line - 1 && h.line <= p.endLine + 1),
  )
  const extraBy = new Map<string, number>()
  for (const h of extra) extraBy.set(h.detector, (extraBy.get(h.detector) ?? 0) + 1)
  console.log(
    `${s.tool.padEnd(32)} ${s.seconds.toFixed(2).padStart(7)} s ${(mb / s.seconds).toFixed(1).padStart(6)} MB/s wall  ${s.cpu.toFixed(2).padStart(7)} s CPU ${(mb / s.cpu).toFixed(1).padStart(6)} MB/CPU-s  busiest threads ${s.threads.map((x) => x.toFixed(2)).join(' / ')} s  planted found ${found.length}/${plants.length} (${new Set(found.map((p) => p.provider)).size} providers)  findings ${s.run.hits.length}, not planted ${extra.length}${extra.length ? ` (${[...extraBy].map(([d, n]) => `${d} ${n}`).join(', ')})` : ''}`,
  )
}
const p1 = summary.find((s) => s.tool === 'portcullis --jobs 1')
const sl = summary.find((s) => s.tool.startsWith('secretlint'))
/** CPU of V8's helper threads (compilation, GC): the run's CPU less that of the scanning threads. */
const helperCpu = (r: Run) =>
  r.cpu - (r.profile?.threads.reduce((n, t) => n + (t.cpuSeconds ?? 0), 0) ?? r.cpu)
if (p1)
  for (const pn of summary.filter((s) => s.tool.startsWith('portcullis --jobs ') && s !== p1)) {
    const rs = byTool.get(pn.tool) ?? []
    const r1 = byTool.get(p1.tool) ?? []
    const x = p1.seconds / pn.seconds
    const bound = Math.max(pn.busiest, pn.cpu / cores)
    console.log(
      `${pn.tool.slice('portcullis '.length)} vs --jobs 1: ${x.toFixed(2)}x wall (${x >= 1.05 ? 'faster' : 'NOT faster'}); CPU ${pn.cpu.toFixed(2)} s vs ${p1.cpu.toFixed(2)} s, of which V8 helper threads ${median(rs.map(helperCpu)).toFixed(2)} s vs ${median(r1.map(helperCpu)).toFixed(2)} s; busiest thread ${pn.busiest.toFixed(2)} s vs ${p1.busiest.toFixed(2)} s; on ${cores} idle cores the CPU alone allows ${bound.toFixed(2)} s vs ${Math.max(p1.busiest, p1.cpu / cores).toFixed(2)} s`,
    )
  }
if (p1 && sl) {
  const slFound = plants.filter((p) => foundBy(sl.run, p))
  const missed = slFound.filter((p) => !foundBy(p1.run, p))
  console.log(
    `speed-up over secretlint: ${(sl.seconds / p1.seconds).toFixed(1)}x wall, ${(sl.cpu / p1.cpu).toFixed(1)}x CPU (one job); planted keys secretlint found that Portcullis missed: ${missed.length}${missed.length ? ` (${missed.map((p) => `${p.provider} ${p.file}:${p.line}`).join(', ')})` : ''}`,
  )
  const slMissed = plants.filter((p) => !foundBy(sl.run, p))
  console.log(
    `planted keys secretlint missed: ${slMissed.length} (${[...new Set(slMissed.map((p) => p.provider))].join(', ') || 'none'})`,
  )
}
if (p1) {
  const missed = plants.filter((p) => !foundBy(p1.run, p))
  console.log(
    `planted keys Portcullis missed: ${missed.length}${missed.length ? ` (${missed.map((p) => `${p.provider} ${p.file}:${p.line}`).join(', ')})` : ''}`,
  )
}
if (!values.keep) rmSync(dir, { recursive: true, force: true })

// ---- one large file, streamed ------------------------------------------------------------------
const bigMb = Number(values['big-mb'])
if (bigMb > 0) {
  const bigDir = mkdtempSync(join(tmpdir(), 'pcl-bench-big-'))
  const file = join(bigDir, 'big.log')
  t0 = performance.now()
  const { bytes, plantLine } = writeBigFile(file, bigMb * 1024 * 1024)
  console.log(
    `\nlarge file: ${(bytes / 2 ** 20).toFixed(0)} MiB written in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  )
  const out = join(bigDir, 'out.json')
  const c0 = childCpu()
  t0 = performance.now()
  const child = spawn(
    process.execPath,
    [cli, 'secrets', file, '--format', 'json', '--output', out, '--max-file-size', '0'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  let hwm = 0
  let rss = 0
  const poll = () => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      hwm = Math.max(hwm, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0))
      rss = Math.max(rss, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0))
    } catch {
      // gone
    }
  }
  const timer = setInterval(poll, 50)
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  clearInterval(timer)
  const seconds = (performance.now() - t0) / 1000
  const cpu = childCpu() - c0
  const result = JSON.parse(readFileSync(out, 'utf8')) as { findings: { line: number; detector: string }[] }
  const found = result.findings.some((x) => x.line === plantLine && x.detector === 'github-pat')
  console.log(
    `large file: exit ${code}, ${seconds.toFixed(1)} s (${(bytes / 1e6 / seconds).toFixed(1)} MB/s wall, ${(bytes / 1e6 / cpu).toFixed(1)} MB/CPU-s), peak RSS ${(hwm / 1024).toFixed(0)} MiB (VmHWM; largest VmRSS sampled ${(rss / 1024).toFixed(0)} MiB), planted token at line ${plantLine} ${found ? 'found' : 'NOT found'}; load ${load()}`,
  )
  rmSync(bigDir, { recursive: true, force: true })
}
