// `npm run bench:lint`: lints the largest real fixture (the GitHub REST description, 13 MB) with
// `portcullis lint` and with the Spectral CLI + @stoplight/spectral-owasp-ruleset (both from
// node_modules), round by round in the same run, and prints wall time, CPU time, peak RSS and
// finding counts for both. Each tool runs as its own process, as a user runs it.
//
// Options: --rounds N (3)  --spec FILE  --timeout S (1800)  --smoke (1 round)  --help
// Peak RSS comes from GNU time (`/usr/bin/time -f %M`) when installed, else from polling
// /proc/<pid>/status (VmHWM) every 10 ms (a lower bound).
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir)
  return dir
}

interface Run {
  tool: string
  ruleset?: string
  wallMs: number
  cpuMs: number
  peakRssMb: number
  exitCode: number | null
  findings: number
  locations: number
  byRule: Record<string, number>
}

const GNU_TIME = '/usr/bin/time'

class ToolFailed extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message)
  }
}

const FULL_RULESET = 'bench/spectral-owasp.mjs'
const FALLBACK_RULESET = 'bench/spectral-owasp-without-numeric-ids.mjs'

function readHwmKb(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/** Runs a command; wall time, CPU (user + sys, from GNU time or /proc), peak RSS. */
async function measure(
  cmd: string,
  args: string[],
  timeoutS: number,
): Promise<Omit<Run, 'tool' | 'findings' | 'locations' | 'byRule'>> {
  const useTime = existsSync(GNU_TIME)
  const timeOut = join(mkdtempSync(join(tmpdir(), 'bench-lint-time-')), 'time.txt')
  const argv = useTime ? ['-f', '%e %U %S %M', '-o', timeOut, cmd, ...args] : args
  const started = performance.now()
  const child = spawn(useTime ? GNU_TIME : cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 20_000) stderr += d
  })
  let hwm = 0
  const poll = setInterval(() => {
    if (child.pid !== undefined) hwm = Math.max(hwm, readHwmKb(child.pid) ?? 0)
  }, 10)
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000)
  const exitCode = await new Promise<number | null>((r) => child.once('close', (code) => r(code)))
  clearInterval(poll)
  clearTimeout(timer)
  const wallMs = performance.now() - started
  let cpuMs = Number.NaN
  let peakKb = hwm
  if (useTime && existsSync(timeOut)) {
    const last = readFileSync(timeOut, 'utf8').trim().split('\n').pop() ?? ''
    const [, user, sys, maxKb] = last.split(' ').map(Number)
    if (Number.isFinite(user) && Number.isFinite(sys)) cpuMs = ((user as number) + (sys as number)) * 1000
    if (Number.isFinite(maxKb)) peakKb = maxKb as number
  }
  rmSync(dirname(timeOut), { recursive: true, force: true })
  if (exitCode === null) throw new Error(`${cmd} timed out after ${timeoutS} s`)
  if (exitCode > 1)
    throw new ToolFailed(`${cmd} ${args.join(' ')} exited ${exitCode}:\n${stderr.slice(-2000)}`, stderr)
  return { wallMs, cpuMs, peakRssMb: peakKb / 1024, exitCode }
}

async function runPortcullis(root: string, spec: string, out: string, timeoutS: number): Promise<Run> {
  const m = await measure(
    process.execPath,
    [
      join(root, 'bin/portcullis.js'),
      'lint',
      spec,
      '--format',
      'json',
      '--output',
      out,
      '--fail-on',
      'critical',
    ],
    timeoutS,
  )
  const report = JSON.parse(readFileSync(out, 'utf8')) as {
    findings: { rule: string; locations: unknown[] }[]
  }
  const byRule: Record<string, number> = {}
  for (const f of report.findings) byRule[f.rule] = f.locations.length
  return {
    tool: 'portcullis lint',
    ...m,
    findings: report.findings.length,
    locations: report.findings.reduce((n, f) => n + f.locations.length, 0),
    byRule,
  }
}

async function runSpectral(
  root: string,
  spec: string,
  out: string,
  timeoutS: number,
  ruleset: string,
): Promise<Run> {
  const bin = join(root, 'node_modules/@stoplight/spectral-cli/dist/index.js')
  if (!existsSync(bin)) throw new Error('Spectral CLI not installed: npm ci (it is a devDependency)')
  const m = await measure(
    process.execPath,
    [bin, 'lint', spec, '--ruleset', join(root, ruleset), '--format', 'json', '--output', out, '--quiet'],
    timeoutS,
  )
  const results = JSON.parse(readFileSync(out, 'utf8')) as { code: string }[]
  const byRule: Record<string, number> = {}
  for (const r of results) byRule[r.code] = (byRule[r.code] ?? 0) + 1
  return {
    tool: 'spectral + owasp ruleset',
    ruleset,
    ...m,
    // Spectral reports one result per location; its "findings" are its results.
    findings: results.length,
    locations: results.length,
    byRule,
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  } catch {
    return '?'
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      spec: { type: 'string' },
      timeout: { type: 'string', default: '1800' },
      smoke: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    process.stdout.write('npm run bench:lint -- [--rounds N] [--spec FILE] [--timeout S] [--smoke]\n')
    return
  }
  const root = repoRoot()
  const spec = values.spec ?? join(root, 'test/fixtures/lint/real/github.json')
  const rounds = values.smoke ? 1 : Math.max(1, Number(values.rounds))
  const timeoutS = Number(values.timeout)
  const dir = mkdtempSync(join(tmpdir(), 'bench-lint-'))
  const runs: Run[] = []
  let ruleset = FULL_RULESET
  let crash: string | undefined
  process.stdout.write(
    `bench:lint ${spec} (${(readFileSync(spec).length / 1e6).toFixed(1)} MB), ${rounds} round(s), load average ${loadAverage()}\n`,
  )
  try {
    for (let i = 0; i < rounds; i++) {
      // Alternate the order so that neither tool always runs on a warmer (or busier) machine.
      const order = i % 2 === 0 ? ['portcullis', 'spectral'] : ['spectral', 'portcullis']
      for (const t of order) {
        const out = join(dir, `${t}-${i}.json`)
        let r: Run
        if (t === 'portcullis') r = await runPortcullis(root, spec, out, timeoutS)
        else {
          try {
            r = await runSpectral(root, spec, out, timeoutS, ruleset)
          } catch (err) {
            if (
              !(err instanceof ToolFailed) ||
              ruleset !== FULL_RULESET ||
              !/func is not a function/.test(err.stderr)
            )
              throw err
            crash = err.stderr.split('\n').find((l) => l.startsWith('Error #1')) ?? 'Error running Spectral'
            process.stdout.write(
              `  spectral with the full OWASP ruleset stopped: ${crash}\n  -> again without owasp:api1:2023-no-numeric-ids (${FALLBACK_RULESET})\n`,
            )
            ruleset = FALLBACK_RULESET
            r = await runSpectral(root, spec, out, timeoutS, ruleset)
          }
        }
        runs.push(r)
        process.stdout.write(
          `  round ${i + 1} ${r.tool}: ${(r.wallMs / 1000).toFixed(2)} s wall, ${(r.cpuMs / 1000).toFixed(2)} s CPU, ${r.peakRssMb.toFixed(0)} MB peak RSS, ${r.findings} findings (${r.locations} locations)\n`,
        )
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const tools = ['portcullis lint', 'spectral + owasp ruleset']
  const summary = tools.map((tool) => {
    const rs = runs.filter((r) => r.tool === tool)
    return {
      tool,
      wallMs: median(rs.map((r) => r.wallMs)),
      cpuMs: median(rs.map((r) => r.cpuMs)),
      peakRssMb: Math.max(...rs.map((r) => r.peakRssMb)),
      findings: rs[0]?.findings ?? 0,
      locations: rs[0]?.locations ?? 0,
      byRule: rs[0]?.byRule ?? {},
    }
  })
  const [p, s] = summary as [(typeof summary)[number], (typeof summary)[number]]
  process.stdout.write(
    '\n| tool | wall (median) | CPU (median) | peak RSS | findings | locations |\n| --- | --- | --- | --- | --- | --- |\n',
  )
  for (const x of summary)
    process.stdout.write(
      `| ${x.tool} | ${(x.wallMs / 1000).toFixed(2)} s | ${(x.cpuMs / 1000).toFixed(2)} s | ${x.peakRssMb.toFixed(0)} MB | ${x.findings} | ${x.locations} |\n`,
    )
  process.stdout.write(
    `\nSpectral / Portcullis: ${(s.wallMs / p.wallMs).toFixed(1)}x wall time, ${(s.cpuMs / p.cpuMs).toFixed(1)}x CPU, ${(s.peakRssMb / p.peakRssMb).toFixed(1)}x peak RSS (targets: >= 5x faster, Portcullis <= 3 s)\n`,
  )
  const top = Object.entries(s.byRule)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
  process.stdout.write(`Spectral results by rule: ${top.map(([k, n]) => `${k} ${n}`).join(', ')}\n`)
  if (crash)
    process.stdout.write(
      `Spectral + the full OWASP ruleset crashed on this spec (${crash}); its numbers above are without owasp:api1:2023-no-numeric-ids.\n`,
    )
  process.stdout.write(`load average at the end: ${loadAverage()}\n`)
  if (!values.smoke) {
    const resultsDir = join(root, 'bench/results')
    mkdirSync(resultsDir, { recursive: true })
    writeFileSync(
      join(resultsDir, 'lint-latest.json'),
      `${JSON.stringify({ spec, rounds, spectralCrash: crash, runs, summary }, null, 2)}\n`,
    )
  }
}

main().catch((err) => {
  process.stderr.write(`bench:lint: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
