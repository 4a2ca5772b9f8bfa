/**
 * The audit log's HTTP sink in the real `portcullis serve` process, against a real collector on
 * 127.0.0.1: the collector down for 10 s under bounded load (20 requests/s for 15 s) → every record
 * delivered after it returns, in order, none twice (deduplicated by seq, raw duplicates counted),
 * and the collected file verifies with `portcullis audit verify`; the gateway SIGKILLed with a
 * non-empty spool and restarted → the spool is delivered first. No token in any log.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { appendFileSync, readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { spawnGateway, tempDir } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const ROOT = new URL('../../', import.meta.url).pathname
const TOKEN = `collector-token-${Math.random().toString(36).slice(2)}`

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/portcullis.js'), ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Rec {
  type: string
  seq: number
  instance: string
  requestId?: string
  data?: Record<string, unknown>
}

/**
 * A collector: stores each record once, by (instance, seq), appending the new ones to `file` in the
 * order they arrive; counts raw duplicates and out-of-order arrivals. `down()` closes it (and
 * every connection), `up()` listens again on the same port.
 */
class Collector {
  port = 0
  server: http.Server | undefined
  readonly seen = new Map<string, number>()
  duplicates = 0
  outOfOrder = 0
  batches = 0
  badRequests: string[] = []
  lastSeq = new Map<string, number>()
  /** Store the next batch but lose the answer (the connection is cut): the gateway must send it again. */
  loseNextAnswer = false
  constructor(readonly file: string) {}

  async up(): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const ok =
          req.method === 'POST' &&
          req.headers['content-type'] === 'application/x-ndjson' &&
          req.headers.authorization === `Bearer ${TOKEN}`
        if (!ok) {
          this.badRequests.push(
            `${req.method} ${req.headers['content-type']} auth=${!!req.headers.authorization}`,
          )
          res.writeHead(401).end()
          return
        }
        const body = Buffer.concat(chunks).toString('utf8')
        const lines = body.split('\n')
        if (lines.pop() !== '') {
          this.badRequests.push('body does not end with a newline')
          res.writeHead(400).end()
          return
        }
        const recs = lines.map((l) => JSON.parse(l) as Rec)
        const range = `${recs[0]?.instance}:${recs[0]?.seq}-${recs[recs.length - 1]?.seq}`
        if (req.headers['x-portcullis-audit-range'] !== range)
          this.badRequests.push(`range ${req.headers['x-portcullis-audit-range']} != ${range}`)
        this.batches++
        let out = ''
        recs.forEach((r, i) => {
          const key = `${r.instance}:${r.seq}`
          if (this.seen.has(key)) {
            this.duplicates++
            return
          }
          const last = this.lastSeq.get(r.instance) ?? -1
          if (r.seq !== last + 1) this.outOfOrder++
          this.lastSeq.set(r.instance, r.seq)
          this.seen.set(key, r.seq)
          out += `${lines[i]}\n`
        })
        if (out) appendFileSync(this.file, out)
        if (this.loseNextAnswer) {
          this.loseNextAnswer = false
          req.socket.destroy()
          return
        }
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => resolve())
    })
    this.port = (server.address() as AddressInfo).port
    this.server = server
  }

  async down(): Promise<void> {
    const s = this.server
    this.server = undefined
    if (!s) return
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }

  records(): Rec[] {
    if (this.seen.size === 0) return []
    return readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Rec)
  }
}

function setup(): string {
  const dir = tempDir('pc-audit-http-')
  const kg = cli(['audit', 'keygen', '--keyring', join(dir, 'audit-keys.json')])
  assert.equal(kg.code, 0, kg.stderr)
  return dir
}

const config = (upUrl: string, collectorPort: number, fsync: string) => `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { main: { targets: [ { url: "${upUrl}" } ] } }
routes:
  - { name: api, match: { pathPrefix: /api }, upstream: main }
accessLog: { destination: access.log }
reload: { watch: false }
audit:
  enabled: true
  instanceId: gw-http-sink
  keyring: { file: audit-keys.json }
  sink: http
  file: { fsync: ${fsync}, fsyncInterval: 100ms }
  spool: { dir: spool }
  http:
    url: "http://127.0.0.1:${collectorPort}/ingest"
    token: "\${env:PC_TEST_AUDIT_TOKEN}"
    batch: { maxRecords: 50, linger: 50ms }
    timeout: 2s
    retry: { min: 100ms, max: 1s }
`

/** `rate` requests a second for `ms`, each to a path that no route matches (a `deny` record each). */
async function steadyLoad(url: string, tag: string, rate: number, ms: number): Promise<string[]> {
  const answered: string[] = []
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
  const u = new URL(url)
  const inflight: Promise<void>[] = []
  const start = Date.now()
  for (let i = 0; Date.now() - start < ms; i++) {
    const id = `${tag}-${String(i).padStart(5, '0')}`
    inflight.push(
      new Promise<void>((resolve) => {
        const req = http.get(
          { host: u.hostname, port: u.port, path: `/nope/${i}`, agent, headers: { 'x-request-id': id } },
          (res) => {
            res.resume()
            res.on('end', () => {
              if (res.statusCode === 404) answered.push(id)
              resolve()
            })
          },
        )
        req.on('error', () => resolve())
      }),
    )
    const next = start + ((i + 1) * 1000) / rate
    await sleep(Math.max(0, next - Date.now()))
  }
  await Promise.all(inflight)
  agent.destroy()
  return answered
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

describe('audit http sink', () => {
  let up: TestUpstream
  before(async () => {
    up = await startUpstream('audited')
    process.env.PC_TEST_AUDIT_TOKEN = TOKEN
  })
  after(async () => {
    await up?.close()
  })

  test('collector down for 10 s under 20 req/s for 15 s: every record delivered after it returns, in order, once; the collected chain verifies', async () => {
    const dir = setup()
    const collector = new Collector(join(dir, 'collected.jsonl'))
    await collector.up()
    const gw = await spawnGateway(config(up.url, collector.port, 'interval'), dir)
    let answered: string[] = []
    try {
      const load = steadyLoad(gw.url, 'down', 20, 15_000)
      await sleep(2000)
      await collector.down()
      const downAt = Date.now()
      const seenAtDown = collector.seen.size
      await sleep(10_000)
      // Nothing arrived while it was down; the spool holds it.
      const spooled = readdirSync(join(dir, 'spool')).filter((f) => f.endsWith('.jsonl'))
      assert.ok(spooled.length >= 1)
      collector.loseNextAnswer = true
      await collector.up()
      console.log(`collector down for ${Date.now() - downAt} ms; ${seenAtDown} records before`)
      answered = await load
      const want = new Set(answered)
      await waitFor(
        'every answered request in the collector',
        () => {
          const ids = new Set(collector.records().map((r) => r.requestId))
          return [...want].every((id) => ids.has(id))
        },
        15_000,
      )
    } finally {
      assert.equal(await gw.stop(), 0)
    }
    const recs = collector.records()
    console.log(
      `http sink: ${answered.length} requests answered, ${recs.length} records collected in ${collector.batches} batches, ${collector.duplicates} raw duplicates (dropped by seq), ${collector.outOfOrder} out of order`,
    )
    assert.ok(answered.length >= 250, `only ${answered.length} answered`)
    assert.deepEqual(collector.badRequests, [])
    assert.equal(collector.outOfOrder, 0)
    assert.ok(collector.duplicates > 0, 'the batch whose answer was lost was sent again')
    assert.deepEqual(
      recs.map((r) => r.seq),
      recs.map((_, i) => i),
      'seq 0..n, each once, in order',
    )
    const ids = new Set(recs.map((r) => r.requestId))
    assert.deepEqual(
      answered.filter((id) => !ids.has(id)),
      [],
    )
    assert.equal(
      recs[recs.length - 1]?.type,
      'audit.checkpoint',
      'the close checkpoint was delivered at shutdown',
    )
    const v = cli([
      'audit',
      'verify',
      '--keyring',
      join(dir, 'audit-keys.json'),
      '--require-closed',
      collector.file,
    ])
    console.log(v.stdout.trim())
    assert.equal(v.code, 0, v.stdout + v.stderr)
    assert.match(v.stdout, new RegExp(`^OK: ${recs.length} records`))
    // The token is in no log.
    assert.equal(gw.stderr().includes(TOKEN), false)
    assert.equal(readFileSync(join(dir, 'access.log'), 'utf8').includes(TOKEN), false)
    assert.match(gw.stderr(), /AUDIT LOG CANNOT BE WRITTEN/) // the outage was reported
    await collector.down()
  })

  test('bad sink settings keep the gateway from starting, with the field named', async () => {
    const dir = setup()
    const base = config(up.url, 9, 'interval')
    const cases: [string, RegExp][] = [
      [
        base.replace('http://127.0.0.1:9/ingest', 'http://collector.example/ingest'),
        /audit\.http\.url: http:\/\/ only to a loopback address/,
      ],
      [base.replace(/ {2}http:\n[\s\S]*$/, ''), /audit\.sink is http but audit\.http \(url, …\) is missing/],
      [`${base.replace('sink: http', 'sink: file')}`, /audit\.http is set but audit\.sink is file/],
    ]
    for (const [yaml, want] of cases) {
      const started = spawnGateway(yaml, dir)
      started.then((gw) => gw.stop('SIGKILL')).catch(() => undefined)
      await assert.rejects(started, (err: Error) => {
        assert.match(err.message, want)
        assert.equal(err.message.includes(TOKEN), false)
        return true
      })
    }
  })

  test('SIGKILL with a non-empty spool, restart: the spool is delivered first, then the new records; the chain verifies', async () => {
    const dir = setup()
    const collector = new Collector(join(dir, 'collected.jsonl'))
    await collector.up()
    const port = collector.port
    await collector.down() // down from the start: everything stays in the spool
    const yaml = config(up.url, port, 'always')
    const gw1 = await spawnGateway(yaml, dir)
    const before = await steadyLoad(gw1.url, 'run1', 50, 2000)
    await gw1.stop('SIGKILL')
    assert.equal(collector.seen.size, 0)
    await collector.up()
    assert.equal(collector.port, port)
    const gw2 = await spawnGateway(yaml, dir)
    let afterKill: string[] = []
    try {
      await waitFor(
        'the spool of the killed run',
        () => {
          const ids = new Set(collector.records().map((r) => r.requestId))
          return before.every((id) => ids.has(id))
        },
        15_000,
      )
      afterKill = await steadyLoad(gw2.url, 'run2', 50, 1000)
    } finally {
      assert.equal(await gw2.stop(), 0)
    }
    const recs = collector.records()
    console.log(
      `kill test: ${before.length} answered before SIGKILL, ${afterKill.length} after the restart; ${recs.length} records collected, ${collector.duplicates} raw duplicates`,
    )
    assert.ok(before.length >= 50)
    assert.deepEqual(
      recs.map((r) => r.seq),
      recs.map((_, i) => i),
    )
    const ids = new Set(recs.map((r) => r.requestId))
    assert.deepEqual(
      [...before, ...afterKill].filter((id) => !ids.has(id)),
      [],
    )
    // The run after the kill starts with audit.start naming the open end of the killed run.
    const restart = recs.find((r) => r.type === 'audit.start' && r.seq > 0)
    assert.equal((restart?.data?.previous as { closed?: boolean } | undefined)?.closed, false)
    const v = cli([
      'audit',
      'verify',
      '--keyring',
      join(dir, 'audit-keys.json'),
      '--require-closed',
      collector.file,
    ])
    console.log(v.stdout.trim())
    assert.equal(v.code, 0, v.stdout + v.stderr)
    assert.match(v.stdout, /restart after the chain was left open/)
    // Delivered segments are removed from the spool; its newest one stays (the chain's tail).
    const left = readdirSync(join(dir, 'spool')).filter((f) => f.endsWith('.jsonl'))
    assert.equal(left.length, 1, left.join(','))
    await collector.down()
  })
})
