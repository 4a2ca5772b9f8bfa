/**
 * `serve --workers 2` (node:cluster), the real CLI as a child process with a real redis-server and
 * a real upstream on 127.0.0.1: a 40-per-limit burst spread over both workers admits exactly 40
 * with the Redis store (3 runs); SIGHUP reloads both workers with no failed request under a bounded
 * load; SIGTERM drains both (requests in flight complete, every worker stops, exit 0); each worker
 * keeps its own audit chain.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { freePort, RedisServer } from '../src/stores/redis/redis-server.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

/** One request on a new connection (the primary hands connections to workers round-robin). */
function hit(url: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  const u = new URL(url)
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, path, headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.setTimeout(15_000, () => req.destroy(new Error('timed out')))
    req.on('error', () => resolve(0)) // a failed request: counted as status 0
    req.end()
  })
}

/** `total` requests, at most `concurrency` in flight; the statuses. */
async function burst(
  total: number,
  concurrency: number,
  send: (i: number) => Promise<number>,
): Promise<number[]> {
  const out: number[] = []
  let next = 0
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= total) return
      out.push(await send(i))
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return out
}

function config(redisPort: number, upstreamUrl: string, mark: string, adminPort: number): string {
  return stringify({
    listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
    // worker n's admin listener is on adminPort + n - 1: its own /metrics
    admin: { host: '127.0.0.1', port: adminPort },
    accessLog: { enabled: false },
    log: { level: 'info' },
    reload: { watch: false },
    audit: { enabled: true, keyring: { file: 'audit-keys.json' }, file: { dir: 'audit' } },
    stores: { backend: 'redis', redis: { url: `redis://127.0.0.1:${redisPort}`, commandTimeout: '2s' } },
    upstreams: { main: { targets: [{ url: upstreamUrl }] } },
    routes: [
      {
        name: 'limited',
        match: { pathPrefix: '/limited' },
        upstream: 'main',
        policies: {
          'rate-limit': {
            limits: [{ name: 'n', rate: 40, per: 'hour', key: [{ header: 'x-client' }], failOpen: false }],
          },
        },
      },
      { name: `open-${mark}`, match: { pathPrefix: '/' }, upstream: 'main' },
    ],
  })
}

/** Worker n's count of answered requests on `route` (its own /metrics). */
async function servedBy(n: number, route: string): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${adminPort + n - 1}/metrics`)
  const text = await r.text()
  let total = 0
  for (const line of text.split('\n'))
    if (line.startsWith('portcullis_requests_total{') && line.includes(`route="${route}"`))
      total += Number(line.split(' ').at(-1))
  return total
}

/** `n` lines of `msg` in the process log, from distinct workers. */
function workersLogged(gw: GatewayProcess, msg: string): Set<number> {
  const seen = new Set<number>()
  for (const line of gw.stderr().split('\n')) {
    if (!line.startsWith('{')) continue
    const r = JSON.parse(line) as { msg?: string; worker?: number }
    if (r.msg === msg && r.worker !== undefined) seen.add(r.worker)
  }
  return seen
}

let redis: RedisServer
let up: TestUpstream
let gw: GatewayProcess
let dir: string
let adminPort: number

before(async () => {
  redis = await RedisServer.start()
  up = await startUpstream()
  dir = tempDir('pc-workers-')
  const keygen = await import('node:child_process').then((cp) =>
    cp.spawnSync(process.execPath, [
      new URL('../../bin/portcullis.js', import.meta.url).pathname,
      'audit',
      'keygen',
      '--keyring',
      `${dir}/audit-keys.json`,
    ]),
  )
  assert.equal(keygen.status, 0, String(keygen.stderr))
  adminPort = await freePort()
  gw = await spawnGateway(config(redis.port, up.url, 'one', adminPort), dir, { args: ['--workers', '2'] })
  // both workers up: each has logged its admin listener (it starts after the public one)
  await gw.waitForLog((t) => (t.match(/"msg":"admin listening"/g) ?? []).length >= 2, 30_000)
})

after(async () => {
  if (gw && gw.child.exitCode === null) await gw.stop()
  await up?.close()
  await redis?.stop()
})

describe('serve --workers 2', () => {
  test('a 40-per-limit burst over both workers admits exactly 40 with Redis (3 runs)', async () => {
    for (let run = 1; run <= 3; run++) {
      const client = `burst-${run}-${Date.now()}`
      const statuses = await burst(100, 16, () => hit(gw.url, '/limited/x', { 'x-client': client }))
      const admitted = statuses.filter((s) => s === 200).length
      const refused = statuses.filter((s) => s === 429).length
      assert.equal(admitted, 40, `run ${run}: admitted ${admitted}`)
      assert.equal(
        refused,
        60,
        `run ${run}: refused ${refused}; others ${statuses.filter((s) => s !== 200 && s !== 429)}`,
      )
      console.log(`# run ${run}: 100 requests, ${admitted} admitted, ${refused} refused`)
    }
    // spread: each worker's own /metrics counts part of the 300 requests
    const w1 = await servedBy(1, 'limited')
    const w2 = await servedBy(2, 'limited')
    console.log(`# requests per worker: ${w1} and ${w2}`)
    assert.equal(w1 + w2, 300)
    assert.ok(w1 > 0 && w2 > 0, 'both workers served the bursts')
  })

  test('SIGHUP reloads both workers; no request fails under a bounded load', async () => {
    writeFileSync(gw.configFile, config(redis.port, up.url, 'two', adminPort))
    const before = (gw.stderr().match(/"msg":"config reloaded"/g) ?? []).length
    let sent = false
    const statuses = await burst(400, 8, async (i) => {
      if (i === 100 && !sent) {
        sent = true
        gw.child.kill('SIGHUP')
      }
      return hit(gw.url, '/open/y')
    })
    await gw
      .waitForLog((t) => (t.match(/"msg":"config reloaded"/g) ?? []).length >= before + 2, 15_000)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${gw.stderr().split('\n').slice(-15).join('\n')}`)
      })
    const failed = statuses.filter((s) => s !== 200).length
    console.log(`# reload under load: ${statuses.length} requests, ${failed} failed`)
    assert.equal(failed, 0)
    assert.deepEqual([...workersLogged(gw, 'config reloaded')].sort(), [1, 2], 'both workers reloaded')
    // after the reload, both workers route by the new config (the route's new name in their metrics)
    const was = (await servedBy(1, 'open-two')) + (await servedBy(2, 'open-two'))
    assert.deepEqual(await burst(20, 4, () => hit(gw.url, '/open/z')), Array(20).fill(200))
    assert.equal((await servedBy(1, 'open-two')) + (await servedBy(2, 'open-two')) - was, 20)
  })

  test('each worker keeps its own audit chain', () => {
    const files = readdirSync(`${dir}/audit`).filter((f) => f.endsWith('.jsonl'))
    assert.ok(
      files.some((f) => f.startsWith('audit-w1-')),
      files.join(' '),
    )
    assert.ok(
      files.some((f) => f.startsWith('audit-w2-')),
      files.join(' '),
    )
    for (const f of files) assert.ok(readFileSync(`${dir}/audit/${f}`, 'utf8').length > 0, `${f} is empty`)
  })

  test('SIGTERM drains both workers: requests in flight complete, exit 0', async () => {
    const inFlight = Array.from({ length: 6 }, () => hit(gw.url, '/slow?ms=800'))
    // wait until the upstream has them all (both workers forwarding)
    const deadline = Date.now() + 10_000
    while (up.received.filter((u) => u.startsWith('/slow')).length < 6 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10))
    const code = await gw.stop('SIGTERM')
    const statuses = await Promise.all(inFlight)
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200])
    assert.equal(code, 0, gw.stderr().split('\n').slice(-8).join('\n'))
    const err = gw.stderr()
    assert.deepEqual([...workersLogged(gw, 'stopped')].sort(), [1, 2], 'both workers stopped')
    assert.match(err, /"msg":"all workers stopped"/)
    // both chains verify, each closed by its worker's shutdown
    const { spawnSync } = await import('node:child_process')
    const bin = new URL('../../bin/portcullis.js', import.meta.url).pathname
    const keys = `${dir}/audit-keys.json`
    for (const files of ['audit-w1-', 'audit-w2-']) {
      const chain = readdirSync(`${dir}/audit`)
        .filter((f) => f.startsWith(files) && f.endsWith('.jsonl'))
        .map((f) => `${dir}/audit/${f}`)
      const v = spawnSync(
        process.execPath,
        [bin, 'audit', 'verify', '--keyring', keys, '--require-closed', ...chain],
        {
          encoding: 'utf8',
        },
      )
      assert.equal(v.status, 0, `${files}: ${v.stdout}${v.stderr}`)
    }
  })
})
