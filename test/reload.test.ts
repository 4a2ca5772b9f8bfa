/**
 * Hot reload under bounded load, refused bad configs, and graceful shutdown, on the real process.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import pino from 'pino'
import { startGateway } from '../src/gateway/serve.js'
import { spawnGateway } from './helpers/process.js'
import { startUpstream } from './helpers/upstream.js'

const config = (upstreamUrl: string, extra = '') => `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
upstreams: { up: { targets: [ { url: "${upstreamUrl}" } ] } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up } ]
accessLog: { enabled: false }
${extra}
`

function get(url: string, agent: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => {
          body += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        res.on('error', reject)
      })
      .on('error', reject)
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await sleep(20)
  }
  return cond()
}

describe('hot reload', () => {
  test('under load: a good config swaps with 0 failed requests; a bad one is refused and the old serves', async () => {
    const a = await startUpstream('a')
    const b = await startUpstream('b')
    const gw = await spawnGateway(config(a.url))
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
    const seen: string[] = []
    let failures = 0
    let total = 0
    let stop = false
    // Bounded load: 8 workers, at most 6 s, at most 20,000 requests.
    const deadline = Date.now() + 6000
    const workers = Array.from({ length: 8 }, async () => {
      while (!stop && Date.now() < deadline && total < 20000) {
        total++
        try {
          const r = await get(`${gw.url}/x`, agent)
          if (r.status !== 200) failures++
          else seen.push((JSON.parse(r.body) as { marker: string }).marker)
        } catch {
          failures++
        }
      }
    })
    try {
      await sleep(500)
      assert.equal(seen.at(-1), 'a')
      // 1. A good config by file change (the watcher): traffic moves to b.
      writeFileSync(gw.configFile, config(b.url))
      assert.ok(await waitFor(() => seen.at(-1) === 'b', 3000), 'file-change reload applied')
      // 2. A bad config: refused, logged, b keeps serving.
      writeFileSync(gw.configFile, config(b.url).replace('upstream: up', 'upstream: missing'))
      assert.ok(await waitFor(() => gw.stderr().includes('config reload refused'), 3000), 'bad config logged')
      assert.match(
        gw.stderr(),
        /routes\[0\]\.upstream: expected one of the upstreams \(up\), found \\"missing\\"/,
      )
      const beforeBad = seen.length
      await sleep(300)
      assert.ok(seen.length > beforeBad)
      assert.ok(
        seen.slice(beforeBad).every((m) => m === 'b'),
        'old config still serving after a refused reload',
      )
      // 3. SIGHUP with a good config: traffic moves back to a.
      writeFileSync(gw.configFile, config(a.url, 'reload: { watch: true }'))
      gw.child.kill('SIGHUP')
      assert.ok(await waitFor(() => seen.at(-1) === 'a', 3000), 'SIGHUP reload applied')
    } finally {
      stop = true
      await Promise.all(workers)
      agent.destroy()
      await gw.stop()
      await a.close()
      await b.close()
    }
    console.log(`reload under load: ${total} requests, ${failures} failed`)
    assert.equal(failures, 0)
    assert.ok(total > 100, `load actually ran (${total} requests)`)
    const metrics = gw.stderr()
    assert.match(metrics, /config reloaded/)
  })
})

describe('reload from a Kubernetes ConfigMap volume', () => {
  test('the ..data symlink swap is seen as a change of the file', async () => {
    // The layout the kubelet makes: portcullis.yaml -> ..data/portcullis.yaml, ..data -> ..<ts>/;
    // an update writes a new ..<ts>/ and renames a new symlink over ..data.
    const a = await startUpstream('a')
    const b = await startUpstream('b')
    const dir = mkdtempSync(join(tmpdir(), 'pc-configmap-'))
    const version = (name: string, upstreamUrl: string) => {
      mkdirSync(join(dir, name))
      writeFileSync(join(dir, name, 'portcullis.yaml'), config(upstreamUrl, 'log: { level: silent }'))
      symlinkSync(name, join(dir, '..data_tmp'))
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
    }
    version('..2026_01_01_00_00_00.1', a.url)
    symlinkSync('..data/portcullis.yaml', join(dir, 'portcullis.yaml'))
    const gw = await startGateway(join(dir, 'portcullis.yaml'), { logger: pino({ level: 'silent' }) })
    try {
      const marker = async () =>
        ((await (await fetch(`${gw.listeners[0]?.url}/x`)).json()) as { marker: string }).marker
      assert.equal(await marker(), 'a')
      version('..2026_01_01_00_01_00.2', b.url)
      let now = 'a'
      const end = Date.now() + 10000
      while (now !== 'b' && Date.now() < end) {
        await sleep(50)
        now = await marker()
      }
      assert.equal(now, 'b', 'the new ConfigMap version serves')
    } finally {
      await gw.close()
      await a.close()
      await b.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('reload and the old duration form', () => {
  test('a config file rewritten with timeoutMs-style fields is refused with the new form; the old config keeps serving', async () => {
    const up = await startUpstream('a')
    const dir = mkdtempSync(join(tmpdir(), 'pc-old-durations-'))
    const file = join(dir, 'portcullis.yaml')
    const lines: string[] = []
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) })
    writeFileSync(file, config(up.url, 'reload: { watch: false }\nshutdown: { drainTimeout: 2s }'))
    const gw = await startGateway(file, { logger })
    try {
      assert.equal(gw.gateway.config.shutdown.drainTimeoutMs, 2000)
      writeFileSync(file, config(up.url, 'reload: { watch: false }\nshutdown: { drainTimeoutMs: 7000 }'))
      assert.equal(await gw.reload('test'), false, 'the old form is refused')
      assert.equal(gw.gateway.config.shutdown.drainTimeoutMs, 2000, 'the running config stays')
      assert.match(
        lines.join(''),
        /shutdown\.drainTimeoutMs: the old form \(a number of milliseconds\); write `drainTimeout: 7s`/,
      )
      const r = await fetch(`${gw.listeners[0]?.url}/x`)
      assert.equal(r.status, 200, 'still serving')
      writeFileSync(file, config(up.url, 'reload: { watch: false }\nshutdown: { drainTimeout: 7s }'))
      assert.equal(await gw.reload('test'), true)
      assert.equal(gw.gateway.config.shutdown.drainTimeoutMs, 7000)
    } finally {
      await gw.close()
      await up.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('graceful shutdown', () => {
  test('SIGTERM: in-flight requests finish, new connections are refused, exit 0', async () => {
    const up = await startUpstream()
    const gw = await spawnGateway(config(up.url, 'shutdown: { drainTimeout: 5s }'))
    const agent = new http.Agent({ keepAlive: false })
    const inFlight = get(`${gw.url}/slow?ms=1200`, agent)
    await sleep(200)
    const exit = gw.stop('SIGTERM')
    await sleep(200)
    const ready = await fetch(`${gw.adminUrl}/readyz`).then(
      (r) => r.status,
      () => 0,
    )
    assert.equal(ready, 503, 'not ready while draining')
    await assert.rejects(get(`${gw.url}/x`, agent), /ECONNREFUSED|ECONNRESET/)
    const r = await inFlight
    assert.equal(r.status, 200)
    assert.deepEqual(JSON.parse(r.body), { slow: true })
    assert.equal(await exit, 0)
    await up.close()
  })

  test('the drain deadline cuts requests that outlive it', async () => {
    const up = await startUpstream()
    const gw = await spawnGateway(config(up.url, 'shutdown: { drainTimeout: 300ms }'))
    const agent = new http.Agent({ keepAlive: false })
    const inFlight = get(`${gw.url}/slow?ms=5000`, agent).then(
      (r) => r.status,
      () => 'cut',
    )
    await sleep(200)
    const started = Date.now()
    assert.equal(await gw.stop('SIGTERM'), 0)
    assert.ok(Date.now() - started < 3000, 'exited soon after the deadline')
    assert.equal(await inFlight, 'cut')
    await up.close()
  })
})
