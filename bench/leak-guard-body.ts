// `node dist/bench/leak-guard-body.js [--iterations N] [--rounds R]`: the CPU cost of leak-guard's
// response path on the bench's ~20 KB JSON answer (bench/bodies.ts, `/api/orders?big`), without
// the load generator, the sockets or the rest of the gateway. The policy is built as the gateway
// builds it: the bench scenario's config, loaded and defaulted by the config loader, the policy
// created by `enabledPolicies` + `create` with the gateway's kind of dependencies. Each stage of
// the scan is then timed alone, so the split of the policy's cost can be read off.
//
// Prints CPU microseconds per body (process.cpuUsage: user + system) for each stage, the median
// of R rounds of N bodies each, and the scan's work counters (keyword hits, pattern runs, decodes).
// Then the cost of receiving the body whole from an upstream (the bench upstream, a child
// process: its CPU is not counted), 20 requests in flight, with the two undici APIs the buffered
// path has used: `request()` + `for await` + `Buffer.concat` (before) and a dispatch handler that
// collects the chunks (`BufferedExchange`, now).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import pino from 'pino'
import { type Dispatcher, Pool } from 'undici'
import { Registry } from 'prom-client'
import { stringify } from 'yaml'
import { loadConfigText } from '../src/config/load.js'
import { enabledPolicies } from '../src/gateway/runtime.js'
import type { RequestContext, ResponseHead } from '../src/gateway/pipeline/context.js'
import { noopAudit } from '../src/audit/event.js'
import { createMemoryStore } from '../src/stores/memory/memory-store.js'
import { BUILTIN_DETECTORS } from '../src/secrets/detectors/index.js'
import {
  B64_CLASS,
  B64_NEED,
  B64_RUN,
  base64Spans,
  type EncodedSpan,
  jsonEscapeSpans,
  percentSpans,
} from '../src/secrets/decode.js'
import { scannerFor } from '../src/secrets/mask.js'
import type { KeywordAutomaton } from '../src/secrets/prefilter.js'
import { pointersAt } from '../src/policies/leak-guard/json-pointer.js'
import { BIG_BODY } from './bodies.js'
import { freePort, waitForHttp } from './children.js'
import { basePortcullisConfig, SCENARIOS } from './scenarios.js'

const { values } = parseArgs({
  options: { iterations: { type: 'string' }, rounds: { type: 'string' }, json: { type: 'boolean' } },
})
const N = Number(values.iterations ?? 2000)
const R = Number(values.rounds ?? 5)
if (!Number.isInteger(N) || N <= 0 || !Number.isInteger(R) || R <= 0) {
  console.error('usage: leak-guard-body.js [--iterations N] [--rounds R] [--json]')
  process.exit(2)
}

// The leak-guard scenario's config, through the gateway's loader (schema defaults applied).
const scenario = SCENARIOS.find((s) => s.name === 'leak-guard')
if (scenario?.portcullisConfig === undefined) throw new Error('no leak-guard scenario')
const raw = scenario.portcullisConfig(
  basePortcullisConfig({
    listenerPort: 1,
    adminPort: 2,
    upstreamOrigin: 'http://127.0.0.1:3',
    accessLogPath: '/dev/null',
  }),
)
const loaded = loadConfigText(stringify(raw), 'bench.yaml')
if (loaded.config === undefined) throw new Error(loaded.errors.map((e) => e.message).join('; '))
const config = loaded.config
const route = config.routes[0]
if (route === undefined) throw new Error('no route')
const lg = enabledPolicies(config, route).find((p) => p.id === 'leak-guard')
if (lg === undefined) throw new Error('leak-guard not enabled')
const logger = pino({ level: 'info' }, pino.destination('/dev/null'))
const policy = lg.def.create(lg.config as never, {
  logger: logger.child({ policy: 'leak-guard' }),
  now: Date.now,
  routeName: route.name,
  store: createMemoryStore({}),
  baseDir: process.cwd(),
  audit: noopAudit,
  metrics: new Registry(),
})
const onBody = policy.onResponseBody?.bind(policy)
if (onBody === undefined) throw new Error('leak-guard has no body hook')

// The same scanner the policy uses (scanners are shared per detector set).
const lgConfig = lg.config as { generic: boolean; exclude: string[] }
const scanner = scannerFor(
  BUILTIN_DETECTORS.filter(
    (d) => !lgConfig.exclude.includes(d.id) && (lgConfig.generic || (d.specificity ?? 2) > 0),
  ),
)

// The scanner's keyword automaton, whose WebAssembly module finds the base64 runs in a scan (a
// private field: the bench reaches in to time that stage alone).
const automaton = (scanner as unknown as { automaton: KeywordAutomaton }).automaton

const head: ResponseHead = {
  status: 200,
  headers: { 'content-type': 'application/json', 'content-length': String(BIG_BODY.length) },
  local: false,
}
const ctx = { id: 'bench', routeName: route.name } as unknown as RequestContext

let sink = 0
/** Each stage returns a number (added to `sink`, so no work is optimized away). */
const stages: [string, () => number][] = [
  [
    'policy onResponseBody (whole)',
    () => {
      const out = onBody(ctx, head, BIG_BODY)
      if (out instanceof Promise) throw new Error('async body hook')
      return out.length
    },
  ],
  ['scanner.scan (keywords, gates, patterns, decode)', () => scanner.scan(BIG_BODY).matches.length],
  ['scanner.scan, decode off', () => scanner.scan(BIG_BODY, { decode: false }).matches.length],
  [
    'keyword pass only (hasKeyword: one walk, no early stop here)',
    () => (scanner.hasKeyword(BIG_BODY) ? 1 : 0),
  ],
  [
    'encoded-span finders as the engine runs them (base64 runs in WebAssembly, percent, escapes)',
    () => {
      const spans: EncodedSpan[] = []
      base64Spans(BIG_BODY, spans, automaton.runsOf(BIG_BODY, B64_CLASS, B64_RUN, B64_NEED))
      percentSpans(BIG_BODY, spans)
      jsonEscapeSpans(BIG_BODY, spans)
      return spans.length
    },
  ],
  [
    "encoded-span finders, base64Spans' JS loop (the fallback, inputs over 64 KiB)",
    () => {
      const spans: EncodedSpan[] = []
      base64Spans(BIG_BODY, spans)
      percentSpans(BIG_BODY, spans)
      jsonEscapeSpans(BIG_BODY, spans)
      return spans.length
    },
  ],
  ['Buffer.toString(latin1) of the body', () => BIG_BODY.toString('latin1').length],
  [
    'JSON pointer mapping (one offset at the end)',
    () => pointersAt(BIG_BODY.toString('latin1'), [BIG_BODY.length - 2]).length,
  ],
  ['JSON.parse of the body', () => Object.keys(JSON.parse(BIG_BODY.toString('utf8')) as object).length],
]

function cpuMicros(): number {
  const u = process.cpuUsage()
  return u.user + u.system
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1] as number
}

// Warm up every stage (JIT, lazily compiled patterns).
for (const [, f] of stages) for (let i = 0; i < Math.min(N, 500); i++) sink += f()

const results: { stage: string; usPerBody: number; rounds: number[] }[] = []
for (const [name, f] of stages) {
  const rounds: number[] = []
  for (let r = 0; r < R; r++) {
    const t0 = cpuMicros()
    for (let i = 0; i < N; i++) sink += f()
    rounds.push((cpuMicros() - t0) / N)
  }
  results.push({ stage: name, usPerBody: median(rounds), rounds })
}
const { stats, matches } = scanner.scan(BIG_BODY)

// Receiving the body whole from a real upstream, both ways.
const port = await freePort()
const upstream = spawn(
  process.execPath,
  [fileURLToPath(new URL('./upstream.js', import.meta.url)), String(port)],
  {
    stdio: 'ignore',
  },
)
const origin = `http://127.0.0.1:${port}`
const exchange: { stage: string; usPerBody: number; rounds: number[] }[] = []
try {
  await waitForHttp(`${origin}/`, 10_000)
  const pool = new Pool(origin, { connections: 20 })
  const req = { path: '/api/orders?big', method: 'GET' as const, headers: { accept: 'application/json' } }
  const viaRequest = async (): Promise<number> => {
    const abort = new AbortController()
    const data = await pool.request({ ...req, signal: abort.signal })
    const chunks: Buffer[] = []
    let size = 0
    for await (const c of data.body) {
      size += (c as Buffer).length
      chunks.push(c as Buffer)
    }
    return Buffer.concat(chunks, size).length
  }
  const viaDispatch = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      let size = 0
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart() {},
        onResponseData(_c, chunk) {
          size += chunk.length
          chunks.push(chunk)
        },
        onResponseEnd() {
          resolve((chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)).length)
        },
        onResponseError(_c, err) {
          reject(err)
        },
      }
      pool.dispatch(req, handler)
    })
  const load = async (f: () => Promise<number>, n: number): Promise<number> => {
    const t0 = cpuMicros()
    let started = 0
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (started < n) {
          started++
          sink += await f()
        }
      }),
    )
    return (cpuMicros() - t0) / n
  }
  const ways: [string, () => Promise<number>][] = [
    ['upstream body, undici request() + for await + concat (before)', viaRequest],
    ['upstream body, dispatch handler collecting chunks (now)', viaDispatch],
  ]
  for (const [, f] of ways) await load(f, Math.min(N, 1000))
  const rounds: number[][] = ways.map(() => [])
  for (let r = 0; r < R; r++)
    for (let w = 0; w < ways.length; w++)
      rounds[w]?.push(await load((ways[w] as [string, () => Promise<number>])[1], N))
  for (let w = 0; w < ways.length; w++) {
    const r = rounds[w] ?? []
    exchange.push({ stage: (ways[w] as [string, unknown])[0], usPerBody: median(r), rounds: r })
  }
  await pool.close()
} finally {
  upstream.kill()
}
results.push(...exchange)

if (values.json) {
  console.log(JSON.stringify({ bytes: BIG_BODY.length, iterations: N, rounds: R, results, stats }))
} else {
  console.log(
    `leak-guard response path, ${BIG_BODY.length}-byte JSON body, ${R} rounds x ${N} bodies (CPU us/body, median):`,
  )
  for (const r of results)
    console.log(
      `  ${r.usPerBody.toFixed(1).padStart(8)}  ${r.stage}   [${r.rounds.map((x) => x.toFixed(1)).join(' ')}]`,
    )
  console.log(
    `  work per body: ${stats.bytesScanned} bytes scanned, ${stats.keywordHits} keyword hits, ${stats.gateUnits} gate units, ${stats.regexRuns} pattern runs (${stats.regexUnits} units), ${stats.decodes} decodes; ${matches.length} findings`,
  )
}
if (sink === -1) console.log('')
