/** Active health checks and trusted-proxy handling, on the real gateway process. */
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { spawnGateway } from './helpers/process.js'
import { startUpstream } from './helpers/upstream.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** An upstream whose /healthz answers 200 or 503 as the test says. */
async function switchable(marker: string) {
  const state = { healthy: true, hits: 0 }
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(state.healthy ? 200 : 503).end()
      return
    }
    state.hits++
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ marker }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    state,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r())
        server.closeAllConnections()
      }),
  }
}

test('active health checks take a failing target out and put it back when it recovers', async () => {
  const a = await switchable('a')
  const b = await switchable('b')
  const gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  pair:
    targets: [ { url: "${a.url}" }, { url: "${b.url}" } ]
    activeHealth: { path: /healthz, interval: 100ms, timeout: 500ms, unhealthyThreshold: 2, healthyThreshold: 2 }
routes: [ { name: all, match: { pathPrefix: / }, upstream: pair } ]
accessLog: { enabled: false }
`)
  const markers = async (n: number) => {
    const out: string[] = []
    for (let i = 0; i < n; i++)
      out.push(((await (await fetch(`${gw.url}/x`)).json()) as { marker: string }).marker)
    return out
  }
  try {
    assert.deepEqual(new Set(await markers(6)), new Set(['a', 'b']), 'both targets serve while healthy')
    a.state.healthy = false
    await sleep(600)
    assert.deepEqual(new Set(await markers(10)), new Set(['b']), 'a failing target gets no traffic')
    const m = await (await fetch(`${gw.adminUrl}/metrics`)).text()
    assert.match(m, new RegExp(`portcullis_upstream_target_up\\{upstream="pair",target="${a.url}"\\} 0`))
    a.state.healthy = true
    await sleep(600)
    assert.deepEqual(new Set(await markers(6)), new Set(['a', 'b']), 'a recovered target serves again')
    assert.match(gw.stderr(), /upstream target failed health checks/)
    assert.match(gw.stderr(), /upstream target healthy/)
  } finally {
    await gw.stop()
    await a.close()
    await b.close()
  }
})

test('X-Forwarded-For from a trusted proxy is kept and extended; the client IP is the right-most untrusted', async () => {
  const up = await startUpstream()
  const gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up } ]
proxy: { trustedProxies: [ 127.0.0.0/8, "10.0.0.0/8" ] }
accessLog: { destination: access.log }
`)
  try {
    const res = await fetch(`${gw.url}/echo`, {
      headers: {
        'x-forwarded-for': '203.0.113.9, 10.1.2.3',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'api.example.com',
        'x-request-id': 'trusted-xff-0001',
      },
    })
    const seen = ((await res.json()) as { headers: Record<string, string> }).headers
    assert.equal(seen['x-forwarded-for'], '203.0.113.9, 10.1.2.3, 127.0.0.1')
    assert.equal(seen['x-forwarded-proto'], 'https')
    assert.equal(seen['x-forwarded-host'], 'api.example.com')
  } finally {
    await gw.stop() // flushes the access log
    await up.close()
  }
  const { readFileSync } = await import('node:fs')
  const line = readFileSync(`${gw.dir}/access.log`, 'utf8')
    .split('\n')
    .find((l) => l.includes('trusted-xff-0001'))
  assert.ok(line)
  assert.equal((JSON.parse(line) as { clientIp: string }).clientIp, '203.0.113.9')
})
