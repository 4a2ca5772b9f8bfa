// A constant-throughput (open-loop) load generator for the bench's latency phase: requests are
// scheduled at a fixed rate, whatever the server does, and each one's latency is measured from
// the time it was SCHEDULED to be sent, not from when a connection was free to send it. A server
// that stalls therefore shows its stall in every request scheduled during it, instead of the
// stall delaying the sends and hiding (coordinated omission, which a closed-loop tool like wrk or
// autocannon has; wrk2 is not packaged in Debian).
//
// HTTP/1.1 over a fixed pool of keep-alive connections, one request in flight per connection; a
// request due while every connection is busy waits in a queue (its wait counts). Sends happen on
// the next event-loop wake-up after they are due: a response arriving or a 1 ms timer, so the
// generator's own lateness is below a millisecond and the same for every proxy (the bench
// reports latency added over `direct`, which takes it out).
//
// Usage: node dist/bench/open-loop.js <config json>
//   { origin, request: { method, path, headers, body }, rate, durationS, warmupS, connections }
// Prints one line: OPEN_LOOP {json} with the counts and the latency percentiles in ms.
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import type { BenchRequest } from './loadgen.js'

export interface OpenLoopConfig {
  origin: string
  request: BenchRequest
  /** requests per second */
  rate: number
  durationS: number
  warmupS: number
  connections: number
}

export interface OpenLoopResult {
  rate: number
  /** requests scheduled in the measured part */
  scheduled: number
  completed: number
  non2xx: number
  errors: number
  /** measured requests still unanswered at the end (counted as errors too) */
  unanswered: number
  p50_ms: number
  p90_ms: number
  p99_ms: number
  p999_ms: number
  max_ms: number
  /** how late sends left after their scheduled time (the generator's own lag), p99 */
  send_lag_p99_ms: number
}

/** The bytes of one request. */
export function requestBytes(origin: string, r: BenchRequest): Buffer {
  const u = new URL(origin)
  const body = r.body !== undefined ? Buffer.from(r.body, 'utf8') : undefined
  let head = `${r.method} ${r.path} HTTP/1.1\r\nhost: ${u.host}\r\n`
  for (const [k, v] of Object.entries(r.headers ?? {})) head += `${k}: ${v}\r\n`
  if (body) head += `content-length: ${body.length}\r\n`
  head += '\r\n'
  return body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1')
}

/**
 * An incremental HTTP/1.1 response reader: Content-Length and chunked bodies. `push` returns the
 * status of each response completed by the bytes given.
 */
export class ResponseReader {
  private buf: Buffer = Buffer.alloc(0)
  private status = 0
  /** bytes of body still expected; -1 reading the head; -2 chunked */
  private remaining = -1

  push(data: Buffer, done: (status: number) => void): void {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data])
    for (;;) {
      if (this.remaining === -1) {
        const end = this.buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = this.buf.subarray(0, end).toString('latin1')
        this.buf = this.buf.subarray(end + 4)
        this.status = Number(head.slice(9, 12))
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head)
        if (cl) this.remaining = Number(cl[1])
        else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) this.remaining = -2
        else if (this.status === 204 || this.status === 304) this.remaining = 0
        else throw new Error(`response without a length (status ${this.status})`)
      }
      if (this.remaining === -2) {
        // chunked: consume whole chunks until the last one (and its final CRLF)
        const line = this.buf.indexOf('\r\n')
        if (line === -1) return
        const size = Number.parseInt(this.buf.subarray(0, line).toString('latin1'), 16)
        if (!Number.isFinite(size)) throw new Error('bad chunk size')
        if (size === 0) {
          if (this.buf.length < line + 4) return
          this.buf = this.buf.subarray(line + 4) // no trailers from the bench's servers
        } else {
          if (this.buf.length < line + 2 + size + 2) return
          this.buf = this.buf.subarray(line + 2 + size + 2)
          continue
        }
      } else {
        if (this.buf.length < this.remaining) return
        this.buf = this.buf.subarray(this.remaining)
      }
      this.remaining = -1
      done(this.status)
    }
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number
}

/** Runs the load; resolves with the result once every measured request is answered or timed out. */
export function runOpenLoop(cfg: OpenLoopConfig): Promise<OpenLoopResult> {
  const req = requestBytes(cfg.origin, cfg.request)
  const u = new URL(cfg.origin)
  const intervalMs = 1000 / cfg.rate
  const total = Math.round(cfg.rate * (cfg.warmupS + cfg.durationS))
  const firstMeasured = Math.round(cfg.rate * cfg.warmupS)
  const measured = total - firstMeasured
  const latencies = new Float64Array(measured)
  const lags = new Float64Array(measured)
  let completed = 0
  let non2xx = 0
  let errors = 0
  let next = 0 // index of the next request to schedule
  const queue: number[] = [] // indexes due while every connection was busy
  let queueHead = 0
  let t0 = 0

  interface Conn {
    sock: Socket
    reader: ResponseReader
    current: number // index in flight, -1 idle
    ready: boolean
  }
  const idle: Conn[] = []
  const conns: Conn[] = []
  let finish: (() => void) | undefined
  let answered = 0 // measured requests that got a response or an error

  const scheduledAt = (i: number) => t0 + i * intervalMs

  const send = (c: Conn, i: number, now: number) => {
    c.current = i
    if (i >= firstMeasured) lags[i - firstMeasured] = now - scheduledAt(i)
    c.sock.write(req)
  }

  const pump = () => {
    const now = performance.now()
    while (next < total && scheduledAt(next) <= now) {
      const c = idle.pop()
      if (c) send(c, next, now)
      else queue.push(next)
      next++
    }
  }

  const settle = (c: Conn, status: number | undefined) => {
    const i = c.current
    c.current = -1
    const now = performance.now()
    if (i >= firstMeasured) {
      answered++
      if (status === undefined) errors++
      else {
        latencies[completed++] = now - scheduledAt(i)
        if (status < 200 || status > 299) non2xx++
      }
    }
    if (queueHead < queue.length) send(c, queue[queueHead++] as number, now)
    else if (c.ready) idle.push(c)
    pump()
    if (answered === measured) finish?.()
  }

  const open = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const sock = connect({ host: u.hostname, port: Number(u.port) })
      sock.setNoDelay(true)
      const c: Conn = { sock, reader: new ResponseReader(), current: -1, ready: false }
      conns.push(c)
      sock.once('connect', () => {
        c.ready = true
        idle.push(c)
        resolve()
      })
      sock.on('data', (d: Buffer) => {
        try {
          c.reader.push(d, (status) => settle(c, status))
        } catch {
          sock.destroy()
        }
      })
      const lost = () => {
        if (!c.ready) reject(new Error(`could not connect to ${cfg.origin}`))
        c.ready = false
        const at = idle.indexOf(c)
        if (at !== -1) idle.splice(at, 1)
        if (c.current !== -1) settle(c, undefined)
      }
      sock.on('error', lost)
      sock.on('close', lost)
    })

  return (async () => {
    await Promise.all(Array.from({ length: cfg.connections }, open))
    t0 = performance.now()
    const timer = setInterval(pump, 1)
    pump()
    const endBy = t0 + (cfg.warmupS + cfg.durationS) * 1000 + 10_000
    await new Promise<void>((resolve) => {
      finish = resolve
      const guard = setInterval(() => {
        if (performance.now() > endBy) resolve()
      }, 200)
      guard.unref()
      if (measured === 0) resolve()
    })
    clearInterval(timer)
    for (const c of conns) c.sock.destroy()
    const unanswered = measured - answered
    const lat = latencies.subarray(0, completed).sort()
    const lag = lags.slice().sort()
    const r = (v: number) => Number(v.toFixed(3))
    return {
      rate: cfg.rate,
      scheduled: measured,
      completed,
      non2xx,
      errors: errors + unanswered,
      unanswered,
      p50_ms: r(percentile(lat, 0.5)),
      p90_ms: r(percentile(lat, 0.9)),
      p99_ms: r(percentile(lat, 0.99)),
      p999_ms: r(percentile(lat, 0.999)),
      max_ms: r(lat.length > 0 ? (lat[lat.length - 1] as number) : Number.NaN),
      send_lag_p99_ms: r(percentile(lag, 0.99)),
    }
  })()
}

if (process.argv[1]?.endsWith('open-loop.js') && process.argv[2]) {
  const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8')) as OpenLoopConfig
  runOpenLoop(cfg).then(
    (r) => {
      process.stdout.write(`OPEN_LOOP ${JSON.stringify(r)}\n`)
      process.exit(0)
    },
    (err: unknown) => {
      process.stderr.write(`open-loop: ${err instanceof Error ? err.message : String(err)}\n`)
      process.exit(1)
    },
  )
}
