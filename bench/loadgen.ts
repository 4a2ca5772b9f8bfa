// Load generators: wrk (preferred, when installed) or autocannon (node_modules/.bin, JSON output).
// Both run with one thread and a fixed number of keep-alive connections, pinned to the given CPU.
import { createHash } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Child, spawnChild } from './children.js'

export interface BenchRequest {
  method: string
  path: string
  headers?: Record<string, string>
  body?: string
}

export interface LoadOptions {
  /** origin, e.g. http://127.0.0.1:8080 */
  origin: string
  request: BenchRequest
  connections: number
  durationS: number
  cpu: number
}

export interface LoadResult {
  /** completed requests */
  requests: number
  durationS: number
  rps: number
  p50Ms: number
  p99Ms: number
  /** responses that were not 2xx (wrk: status >= 400, see docs) */
  non2xx: number
  /** connect/read/write errors and timeouts */
  socketErrors: number
}

export interface RunningLoad {
  child: Child
  result: Promise<LoadResult>
}

export interface LoadGenerator {
  readonly name: 'wrk' | 'autocannon'
  readonly describe: (connections: number) => string
  readonly start: (opts: LoadOptions) => RunningLoad
}

async function finish(child: Child, parse: (out: string) => LoadResult): Promise<LoadResult> {
  const code = await child.exited
  if (code !== 0) {
    throw new Error(
      `${child.name} exited with ${code}: ${child.stderrTail().trim() || child.stdout().slice(-2000)}`,
    )
  }
  return parse(child.stdout())
}

/**
 * A Lua string literal for any text: printable ASCII as is, everything else as decimal byte
 * escapes of three digits (Lua reads up to three: `\\34` before `1200` would read as `\\341`).
 */
export function luaString(s: string): string {
  let out = '"'
  for (const b of Buffer.from(s, 'utf8')) {
    out +=
      b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c
        ? String.fromCharCode(b)
        : `\\${String(b).padStart(3, '0')}`
  }
  return `${out}"`
}

/** wrk script: sets the request (method, headers, body) and prints a JSON summary from done(). */
export function wrkScript(req: BenchRequest): string {
  const lines = [`wrk.method = ${luaString(req.method)}`]
  for (const [k, v] of Object.entries(req.headers ?? {}))
    lines.push(`wrk.headers[${luaString(k)}] = ${luaString(v)}`)
  if (req.body !== undefined) lines.push(`wrk.body = ${luaString(req.body)}`)
  lines.push(
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("\\nPORTCULLIS_WRK {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%.1f,' +
      '\\"p99_us\\":%.1f,\\"status\\":%d,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"timeout\\":%d}\\n",',
    '    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),',
    '    e.status, e.connect, e.read, e.write, e.timeout))',
    'end',
    '',
  )
  return lines.join('\n')
}

interface WrkSummary {
  requests: number
  duration_us: number
  p50_us: number
  p99_us: number
  status: number
  connect: number
  read: number
  write: number
  timeout: number
}

export function parseWrkOutput(out: string): LoadResult {
  const line = out.split('\n').find((l) => l.startsWith('PORTCULLIS_WRK '))
  if (!line) throw new Error(`wrk printed no summary: ${out.slice(-1000)}`)
  const s = JSON.parse(line.slice('PORTCULLIS_WRK '.length)) as WrkSummary
  const durationS = s.duration_us / 1e6
  return {
    requests: s.requests,
    durationS,
    rps: durationS > 0 ? s.requests / durationS : 0,
    p50Ms: s.p50_us / 1000,
    p99Ms: s.p99_us / 1000,
    non2xx: s.status,
    socketErrors: s.connect + s.read + s.write + s.timeout,
  }
}

export function wrk(bin: string, tmpDir: string): LoadGenerator {
  return {
    name: 'wrk',
    describe: (c) => `wrk -t1 -c${c} (${bin})`,
    start: (o) => {
      const script = wrkScript(o.request)
      const file = join(tmpDir, `wrk-${createHash('sha1').update(script).digest('hex').slice(0, 12)}.lua`)
      if (!existsSync(file)) writeFileSync(file, script)
      const args = ['-t1', `-c${o.connections}`, `-d${o.durationS}s`, '-s', file, o.origin + o.request.path]
      const child = spawnChild('wrk', bin, args, { cpu: o.cpu, captureStdout: true })
      return { child, result: finish(child, parseWrkOutput) }
    },
  }
}

interface AutocannonJson {
  duration: number
  requests: { total: number }
  latency: { p50: number; p99: number }
  non2xx: number
  errors: number
  timeouts: number
}

export function parseAutocannonOutput(out: string): LoadResult {
  const line = out
    .split('\n')
    .reverse()
    .find((l) => l.trim().startsWith('{'))
  if (!line) throw new Error(`autocannon printed no JSON: ${out.slice(-1000)}`)
  const j = JSON.parse(line) as AutocannonJson
  return {
    requests: j.requests.total,
    durationS: j.duration,
    rps: j.duration > 0 ? j.requests.total / j.duration : 0,
    p50Ms: j.latency.p50,
    p99Ms: j.latency.p99,
    non2xx: j.non2xx,
    // autocannon counts timeouts inside errors as well
    socketErrors: j.errors,
  }
}

export function autocannon(bin: string): LoadGenerator {
  return {
    name: 'autocannon',
    describe: (c) => `autocannon -c ${c}, one worker (${bin})`,
    start: (o) => {
      const args = ['-j', '-c', String(o.connections), '-d', String(o.durationS), '-m', o.request.method]
      for (const [k, v] of Object.entries(o.request.headers ?? {})) args.push('-H', `${k}=${v}`)
      if (o.request.body !== undefined) args.push('-b', o.request.body)
      args.push(o.origin + o.request.path)
      const child = spawnChild('autocannon', bin, args, { cpu: o.cpu, captureStdout: true })
      return { child, result: finish(child, parseAutocannonOutput) }
    },
  }
}
