// `npm run bench`: compares the CPU cost per request of Portcullis with reference proxies (bare Node,
// fastify, nginx) and with no proxy at all. See docs/benchmarks.md for the method.
//
// Options: --rounds N (5)  --duration S (10)  --warmup S (3)  --connections N (50)  --seed N
//          --proxies a,b,...  --scenarios a,b,...  --keep-tmp  --help
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, release, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  type Child,
  cpuCount,
  findExecutable,
  freePort,
  killAllChildrenSync,
  pinningEnabled,
  pinSelf,
  setPinning,
  spawnChild,
  stopAllChildren,
  waitForHttp,
} from './children.js'
import { autocannon, type LoadGenerator, type LoadResult, wrk } from './loadgen.js'
import { NoiseMonitor, type NoiseReport, waitForQuiet } from './noise.js'
import { nginxBinary, type PeerContext, type RunningPeer, startPeer } from './peers.js'
import { clkTck, treeCpuTicks } from './proc.js'
import { benchRedis, PROXY_KINDS, type ProxyKind, SCENARIOS, type Scenario } from './scenarios.js'
import { rawCommand } from '../src/stores/redis/redis-server.js'
import { createRedisStore } from '../src/stores/redis/redis-store.js'
import { prng } from '../src/util/prng.js'
import { formatTable, type PairedRatio, pairedRatio, type RunRecord, shuffle, summarize } from './stats.js'

/** load generator, upstream and this harness */
const LOAD_CPU = 0
/** the proxy under test, alone */
const PROXY_CPU = 1
/** a noisy measured run is repeated at most this many times, then kept and marked noisy */
const MAX_NOISE_RETRIES = 3
/** before repeating a noisy run, wait up to this long for a quiet second */
const QUIET_WAIT_MS = 20_000

const benchDist = dirname(fileURLToPath(import.meta.url))
const repoRoot = join(benchDist, '..', '..')
const resultsDir = join(repoRoot, 'bench', 'results')

interface Options {
  rounds: number
  durationS: number
  warmupS: number
  connections: number
  seed: number
  proxies: ProxyKind[]
  scenarios: Scenario[]
  keepTmp: boolean
}

const USAGE = `usage: npm run bench -- [--rounds N] [--duration S] [--warmup S] [--connections N] [--seed N]
                       [--proxies ${PROXY_KINDS.join(',')}] [--scenarios ${SCENARIOS.map((s) => s.name).join(',')}]
                       [--keep-tmp]`

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${v}`)
  return n
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      seed: { type: 'string' },
      proxies: { type: 'string' },
      scenarios: { type: 'string' },
      'keep-tmp': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    console.log(USAGE)
    return undefined
  }
  const proxies = values.proxies ? values.proxies.split(',').map((s) => s.trim()) : [...PROXY_KINDS]
  for (const p of proxies) {
    if (!(PROXY_KINDS as readonly string[]).includes(p)) throw new Error(`unknown proxy ${p}\n${USAGE}`)
  }
  const names = values.scenarios
    ? values.scenarios.split(',').map((s) => s.trim())
    : SCENARIOS.map((s) => s.name)
  const scenarios = names.map((n) => {
    const s = SCENARIOS.find((x) => x.name === n)
    if (!s) throw new Error(`unknown scenario ${n}\n${USAGE}`)
    return s
  })
  return {
    rounds: positiveInt('rounds', values.rounds, 5),
    durationS: positiveInt('duration', values.duration, 10),
    warmupS: positiveInt('warmup', values.warmup, 3),
    connections: positiveInt('connections', values.connections, 50),
    seed: values.seed === undefined ? Date.now() % 1_000_000 : positiveInt('seed', values.seed, 1),
    proxies: proxies as ProxyKind[],
    scenarios,
    keepTmp: values['keep-tmp'] ?? false,
  }
}

function log(msg: string): void {
  process.stdout.write(`${msg}\n`)
}

function loud(msg: string): void {
  const bar = '!'.repeat(Math.min(100, msg.length + 8))
  process.stdout.write(`\n${bar}\n!!! ${msg}\n${bar}\n\n`)
}

function machineLine(): string {
  let model = cpus()[0]?.model ?? 'unknown CPU'
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m?.[1]) model = m[1]
  } catch {}
  return `${model}, ${cpus().length} CPUs, Linux ${release()}, Node ${process.version}`
}

interface Bench {
  opts: Options
  loadgen: LoadGenerator
  tmpDir: string
  upstream: Child
  upstreamOrigin: string
  runs: RunRecord[]
}

async function runLoad(b: Bench, origin: string, scenario: Scenario, durationS: number): Promise<LoadResult> {
  const load = b.loadgen.start({
    origin,
    request: scenario.request,
    connections: b.opts.connections,
    durationS,
    cpu: LOAD_CPU,
  })
  return load.result
}

function toUs(ticks: number, requests: number): number {
  return requests > 0 ? (ticks * 1e6) / clkTck() / requests : Number.NaN
}

async function measuredRun(
  b: Bench,
  scenario: Scenario,
  peer: RunningPeer,
  round: number,
  attempt: number,
  referenceFor: string | undefined,
): Promise<RunRecord> {
  const monitor = new NoiseMonitor([process.pid])
  const startedAt = new Date().toISOString()
  const up0 = treeCpuTicks(b.upstream.pid)
  const p0 = peer.cpuTicks()
  monitor.start()
  let noise: NoiseReport
  let res: LoadResult
  try {
    res = await runLoad(b, peer.origin, scenario, b.opts.durationS)
  } finally {
    noise = monitor.stop()
  }
  const p1 = peer.cpuTicks()
  const up1 = treeCpuTicks(b.upstream.pid)
  return {
    scenario: scenario.name,
    proxy: peer.kind,
    round,
    attempt,
    loadgen: b.loadgen.name,
    started_at: startedAt,
    duration_s: Number(res.durationS.toFixed(3)),
    requests: res.requests,
    rps: Number(res.rps.toFixed(1)),
    p50_ms: Number(res.p50Ms.toFixed(3)),
    p99_ms: Number(res.p99Ms.toFixed(3)),
    non2xx: res.non2xx,
    socket_errors: res.socketErrors,
    cpu_us_per_req: Number(toUs(p1 - p0, res.requests).toFixed(2)),
    upstream_cpu_us_per_req: Number(toUs(up1 - up0, res.requests).toFixed(2)),
    other_core_pct: Number(noise.otherCorePct.toFixed(2)),
    steal_pct: Number(noise.stealPct.toFixed(2)),
    noisy: noise.noisy,
    discarded: false,
    ...(noise.reason ? { noise_reason: noise.reason } : {}),
    ...(referenceFor !== undefined ? { reference_for: referenceFor } : {}),
  }
}

function describeRun(r: RunRecord): string {
  return (
    `${r.rps.toFixed(0).padStart(6)} rps  p50 ${r.p50_ms.toFixed(2)} ms  p99 ${r.p99_ms.toFixed(2)} ms  ` +
    `cpu ${r.cpu_us_per_req.toFixed(1)} us/req  (other ${r.other_core_pct.toFixed(1)}% core, steal ${r.steal_pct.toFixed(1)}%)`
  )
}

/** One run of a round: a proxy in a scenario, or Portcullis on the plain route as a reference. */
interface Job {
  kind: ProxyKind
  scenario: Scenario
  /** the paired scenario this plain-route run is the reference of */
  referenceFor?: string
}

function describeJob(j: Job): string {
  return j.referenceFor ? `${j.kind} (${j.scenario.name}, reference)` : j.kind
}

/** Warm-up, then the measured run, repeated while the noise guard rejects it. */
async function benchPeer(
  b: Bench,
  scenario: Scenario,
  peer: RunningPeer,
  round: number,
  referenceFor?: string,
): Promise<void> {
  const label = `  ${scenario.name}/${peer.kind}${referenceFor ? ` (ref. of ${referenceFor})` : ''}`.padEnd(
    24,
  )
  const warm = await runLoad(b, peer.origin, scenario, b.opts.warmupS)
  if (warm.non2xx > 0 || warm.socketErrors > 0) {
    log(`${label} warm-up: ${warm.non2xx} non-2xx, ${warm.socketErrors} socket errors`)
  }
  for (let attempt = 1; ; attempt++) {
    const r = await measuredRun(b, scenario, peer, round, attempt, referenceFor)
    if (r.noisy && attempt <= MAX_NOISE_RETRIES) {
      b.runs.push({ ...r, discarded: true })
      log(`${label} discarded (attempt ${attempt}): ${r.noise_reason}; repeating`)
      if (!(await waitForQuiet(QUIET_WAIT_MS))) log(`${label} box still busy after ${QUIET_WAIT_MS / 1000} s`)
      continue
    }
    b.runs.push(r)
    log(
      `${label} ${describeRun(r)}${r.noisy ? `  NOISY, kept after ${MAX_NOISE_RETRIES} retries: ${r.noise_reason}` : ''}`,
    )
    if (r.non2xx > 0 || r.socket_errors > 0) {
      loud(
        `WARNING: ${peer.kind} (${scenario.name}, round ${round}): ${r.non2xx} non-2xx responses and ` +
          `${r.socket_errors} socket errors out of ${r.requests} requests; both must be 0`,
      )
    }
    return
  }
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2))
  if (!opts) return 0
  if (!existsSync('/proc/self/stat')) throw new Error('the bench needs Linux /proc')

  log(`portcullis bench: ${machineLine()}`)
  if (!findExecutable('taskset')) {
    log('taskset not found (apt-get install util-linux): running unpinned, figures are less reliable')
    setPinning(false)
  } else if (cpuCount() < 2) {
    log(`only ${cpuCount()} CPU: running unpinned, figures are less reliable`)
    setPinning(false)
  } else if (!pinSelf(LOAD_CPU)) {
    log('could not pin the harness with taskset: running unpinned')
    setPinning(false)
  }
  if (pinningEnabled())
    log(`pinning: load generator, upstream and harness on CPU ${LOAD_CPU}, proxy alone on CPU ${PROXY_CPU}`)

  const tmpDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'))
  let tmpRemoved = false
  const removeTmp = () => {
    if (!opts.keepTmp && !tmpRemoved) rmSync(tmpDir, { recursive: true, force: true })
    tmpRemoved = true
  }
  process.on('exit', () => {
    killAllChildrenSync()
    removeTmp()
  })

  const wrkBin = findExecutable('wrk')
  const acBin = join(repoRoot, 'node_modules/.bin/autocannon')
  let loadgen: LoadGenerator
  if (wrkBin) loadgen = wrk(wrkBin, tmpDir)
  else if (existsSync(acBin)) {
    log('wrk not installed (apt-get install wrk): using autocannon')
    loadgen = autocannon(acBin)
  } else throw new Error('no load generator: apt-get install wrk (or npm install to get autocannon)')
  log(`load generator: ${loadgen.describe(opts.connections)}`)

  const skipped = new Map<ProxyKind, string>()
  const failures: string[] = []
  if (opts.proxies.includes('nginx')) {
    const bin = nginxBinary()
    if (bin) log(`nginx: ${bin}`)
    else {
      log('nginx not installed (apt-get install nginx): skipped')
      skipped.set('nginx', 'not installed')
    }
  }

  const upstreamPort = await freePort()
  const upstreamOrigin = `http://127.0.0.1:${upstreamPort}`
  const upstream = spawnChild(
    'upstream',
    process.execPath,
    [join(benchDist, 'upstream.js'), String(upstreamPort)],
    {
      cpu: LOAD_CPU,
    },
  )
  const up = await waitForHttp(`${upstreamOrigin}/`, 10_000, upstream)
  if (!up.ok) throw new Error(`upstream did not come up: ${up.why}\n${upstream.stderrTail()}`)

  let redis: Child | undefined
  if (opts.scenarios.some((sc) => sc.needsRedis)) {
    redis = await startBenchRedis(tmpDir)
    log(`redis-server on 127.0.0.1:${benchRedis.port} (CPU ${LOAD_CPU}, no persistence)`)
  }

  const b: Bench = { opts, loadgen, tmpDir, upstream, upstreamOrigin, runs: [] }
  const random = prng(opts.seed)
  log(
    `${opts.rounds} rounds, ${opts.warmupS} s warm-up + ${opts.durationS} s measured per proxy, ` +
      `${opts.connections} connections, shuffle seed ${opts.seed}, CLK_TCK ${clkTck()}`,
  )

  const plainScenario = SCENARIOS.find((sc) => sc.name === 'plain') as Scenario
  for (const scenario of opts.scenarios) {
    const kinds = scenario.proxies.filter((k) => opts.proxies.includes(k))
    // A scenario with a target ratio is measured next to the plain route: each round runs its
    // Portcullis and a plain-route Portcullis one after the other (order shuffled), and the ratio
    // is taken round by round, as the proxies are compared. Ratios to a plain route measured
    // minutes earlier carried the machine's drift (20% over a full bench on the VM this runs on).
    const paired = scenario.maxRatio !== undefined && kinds.includes('portcullis')
    const jobs: Job[] = kinds.map((kind) => ({ kind, scenario }))
    const reference = SCENARIOS.find((sc) => sc.name === scenario.reference) ?? plainScenario
    if (paired) jobs.push({ kind: 'portcullis', scenario: reference, referenceFor: scenario.name })
    for (let round = 1; round <= opts.rounds; round++) {
      const order = shuffle(jobs, random)
      log(`\n[${scenario.name}] round ${round}/${opts.rounds}: ${order.map(describeJob).join(', ')}`)
      for (const job of order) {
        const kind = job.kind
        if (skipped.has(kind)) continue
        const ctx: PeerContext = {
          repoRoot,
          benchDist,
          tmpDir,
          upstream,
          upstreamOrigin,
          proxyCpu: PROXY_CPU,
          scenario: job.scenario,
        }
        const started = await startPeer(kind, ctx)
        if (!started.ok) {
          log(`  ${job.scenario.name}/${kind}: ${started.why}`)
          if (started.permanent) {
            log(`  ${kind}: skipped for the rest of this bench`)
            skipped.set(kind, started.why)
          }
          continue
        }
        try {
          await benchPeer(b, job.scenario, started.peer, round, job.referenceFor)
        } catch (err) {
          if (stopping) return 130
          // one failed run (e.g. a proxy that crashed under load) must not end the bench
          loud(
            `ERROR: ${kind} (${job.scenario.name}, round ${round}): ${err instanceof Error ? err.message : String(err)}`,
          )
          failures.push(`${kind} round ${round}`)
        } finally {
          await started.peer.stop()
        }
      }
    }
  }
  await upstream.stop()
  const decision = redis ? await redisDecisionLatency() : undefined
  await redis?.stop()

  const order = PROXY_KINDS.filter((k) => opts.proxies.includes(k))
  const rows = summarize(b.runs, order)
  log(
    `\nMedians over ${opts.rounds} rounds (${loadgen.describe(opts.connections)}, ${opts.durationS} s measured runs)`,
  )
  log(`machine: ${machineLine()}`)
  log('cpu us/req = CPU time of the proxy process(es) per completed request (direct: of the upstream)')
  for (const scenario of opts.scenarios) {
    log(`\nscenario ${scenario.name}: ${scenario.request.method} ${scenario.request.path}`)
    log(formatTable(scenario.name, rows, b.runs))
  }
  const plain = rows.find((r) => r.scenario === 'plain' && r.proxy === 'portcullis')
  const ratios: (PairedRatio & { target?: number; met?: boolean })[] = []
  log('')
  for (const r of rows) {
    if (r.scenario === 'plain' || r.proxy !== 'portcullis') continue
    const unpaired = plain && plain.cpu_us_per_req > 0 ? r.cpu_us_per_req / plain.cpu_us_per_req : undefined
    const max = opts.scenarios.find((sc) => sc.name === r.scenario)?.maxRatio
    const p = pairedRatio(b.runs, r.scenario)
    if (p) ratios.push({ ...p, ...(max !== undefined ? { target: max, met: p.median <= max } : {}) })
    const ratio = p?.median ?? unpaired
    const verdict =
      max === undefined || ratio === undefined
        ? ''
        : ` (target <= ${max}: ${ratio <= max ? 'met' : 'MISSED'})`
    const how = p
      ? ` x the plain route run next to it (median of ${p.rounds.length} rounds: ${p.rounds.map((x) => x.toFixed(2)).join(' ')}; reference ${p.reference_cpu_us_per_req.toFixed(1)} cpu us/req)`
      : ' x the plain route'
    const also = p && unpaired !== undefined ? `; ${unpaired.toFixed(2)} x the plain scenario's median` : ''
    log(
      `${r.scenario}: ${r.cpu_us_per_req.toFixed(1)} cpu us/req = ${ratio === undefined ? '-' : ratio.toFixed(2)}${how}${verdict}${also}`,
    )
  }
  if (decision) {
    log(
      `Redis rate-limit decision (one GCRA Lua call, ${decision.n} calls, ${decision.concurrency} in flight, from the harness): ` +
        `p50 ${decision.p50.toFixed(3)} ms, p99 ${decision.p99.toFixed(3)} ms`,
    )
  }
  for (const [kind, why] of skipped) log(`not run: ${kind} (${why.split('\n')[0]})`)
  const bad = b.runs.filter((r) => !r.discarded && (r.non2xx > 0 || r.socket_errors > 0))
  if (bad.length > 0) {
    loud(
      `WARNING: ${bad.length} run(s) had non-2xx responses or socket errors: ${bad.map((r) => r.proxy).join(', ')}`,
    )
  }

  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(rows, null, 2)}\n`)
  writeFileSync(join(resultsDir, 'latest-runs.json'), `${JSON.stringify(b.runs, null, 2)}\n`)
  writeFileSync(join(resultsDir, 'latest-ratios.json'), `${JSON.stringify(ratios, null, 2)}\n`)
  log(
    `\nwrote ${['latest.json', 'latest-runs.json', 'latest-ratios.json'].map((f) => join('bench', 'results', f)).join(', ')}`,
  )
  if (failures.length > 0) loud(`ERROR: ${failures.length} run(s) failed: ${failures.join(', ')}`)
  return bad.length > 0 || failures.length > 0 ? 1 : 0
}

/** A redis-server for the rate-limit-redis scenario, pinned with the load generator. */
async function startBenchRedis(dir: string): Promise<Child> {
  const bin = findExecutable('redis-server')
  if (!bin) throw new Error('the rate-limit-redis scenario needs redis-server (apt-get install redis-server)')
  const port = await freePort()
  const child = spawnChild(
    'redis',
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { cpu: LOAD_CPU },
  )
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      if ((await rawCommand(port, ['PING'], 500)).startsWith('+PONG')) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server did not answer PING:\n${child.stderrTail()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  benchRedis.port = port
  return child
}

/** Latency of one rate-limit decision on the bench Redis, as the gateway makes it (50 in flight). */
async function redisDecisionLatency(): Promise<{ n: number; concurrency: number; p50: number; p99: number }> {
  const store = createRedisStore({ host: '127.0.0.1', port: benchRedis.port as number })
  try {
    await store.whenReady(5000)
    const n = 20_000
    const concurrency = 50
    const times: number[] = []
    let next = 0
    const worker = async () => {
      while (next < n) {
        const i = next++
        const t0 = performance.now()
        await store.gcra.gcra(`bench:${i % 1000}`, { emissionIntervalMs: 0.001, burst: 1_000_000, cost: 1 })
        times.push(performance.now() - t0)
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    times.sort((a, b) => a - b)
    const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))] as number
    return { n, concurrency, p50: q(0.5), p99: q(0.99) }
  } finally {
    await store.close()
  }
}

let stopping = false
function onSignal(signal: NodeJS.Signals): void {
  if (stopping) process.exit(130)
  stopping = true
  process.stderr.write(`\n${signal}: stopping all bench processes\n`)
  void stopAllChildren().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)

main()
  .then(async (code) => {
    await stopAllChildren()
    process.exitCode = code
  })
  .catch(async (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    await stopAllChildren()
    process.exitCode = 1
  })
