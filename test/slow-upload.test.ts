/**
 * Slow uploads (issue 23, item 1): many connections each trickling a small declared body used to
 * hold every upstream connection, and another client's plain GET waited until they timed out.
 * Bodies within the route's buffer are now read before an upstream connection is taken. Bounded:
 * each run lasts a few seconds and closes every socket it opened.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

let up: TestUpstream
let gw: GatewayProcess

before(async () => {
  up = await startUpstream()
  // A small pool (8 connections) makes exhaustion quick; the default is 128 and the mechanism the same.
  gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0, requestTimeout: 2m } ]
admin: { enabled: false }
proxy: { maxUpstreamRequestsPerClient: 0 }
upstreams: { up: { targets: [ { url: "${up.url}" } ], connections: 8 } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up } ]
accessLog: { enabled: false }
`)
})

after(async () => {
  await gw?.stop()
  await up?.close()
})

/** Latencies (ms) of `n` sequential GETs from another client, through the same route. */
async function controlLatencies(n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    const r = await fetch(`${gw.url}/echo?i=${i}`, { signal: AbortSignal.timeout(20_000) })
    await r.arrayBuffer()
    assert.equal(r.status, 200)
    out.push(performance.now() - t0)
  }
  return out
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)] as number
}

/** Opens `n` connections that each declare a 100-byte body and send one byte every 500 ms. */
async function slowUploads(n: number): Promise<() => void> {
  const u = new URL(gw.url)
  const sockets: net.Socket[] = []
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve) => {
          const s = net.connect(Number(u.port), u.hostname, () => {
            s.write(
              'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\nx',
            )
            resolve()
          })
          s.on('error', () => resolve())
          sockets.push(s)
        }),
    ),
  )
  const timer = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write('x')
  }, 500)
  return () => {
    clearInterval(timer)
    for (const s of sockets) s.destroy()
  }
}

describe('slow uploads do not stall other clients', () => {
  for (const n of [140, 1000]) {
    test(`${n} slow uploads: another client's GETs keep their latency`, async (t) => {
      const quiet = await controlLatencies(20)
      const stop = await slowUploads(n)
      try {
        // let the slow requests reach the gateway and, before the fix, take the upstream connections
        await new Promise((r) => setTimeout(r, 1000))
        const loaded = await controlLatencies(40)
        // The attack costs the gateway some CPU (1,000 sockets writing); without buffering the GETs
        // waited for the slow requests' timeout (20 s here), far past any such bound.
        const bound = Math.max(50, 10 * p99(quiet))
        t.diagnostic(
          `p99 without the attack ${p99(quiet).toFixed(1)} ms, with ${n} slow uploads ${p99(loaded).toFixed(1)} ms (bound ${bound.toFixed(0)} ms)`,
        )
        assert.ok(p99(loaded) <= bound, `p99 ${p99(loaded).toFixed(1)} ms > ${bound.toFixed(0)} ms`)
        // the slow requests never reached the upstream (their bodies are not complete)
        assert.equal(up.received.filter((r) => r === '/upload').length, 0)
      } finally {
        stop()
      }
    })
  }
})

describe('a client cannot hold every upstream connection', () => {
  test('past maxUpstreamRequestsPerClient: 429; a body that stops: 408 after idleTimeoutMs', async () => {
    const g = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
proxy: { maxUpstreamRequestsPerClient: 2 }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up, requestBuffering: { idleTimeout: 300ms } } ]
accessLog: { enabled: false }
`)
    try {
      const slow = [1, 2].map(() => fetch(`${g.url}/slow?ms=1500`))
      // wait until both are at the upstream, then a third from the same client is refused
      const deadline = Date.now() + 20_000
      while (up.received.filter((r) => r === '/slow?ms=1500').length < 2 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10))
      const third = await fetch(`${g.url}/echo`)
      assert.equal(third.status, 429)
      assert.equal(((await third.json()) as { code: string }).code, 'GW_ERR_CONCURRENCY_LIMITED')
      for (const r of await Promise.all(slow)) assert.equal(r.status, 200)
      // the slots are free again
      assert.equal((await fetch(`${g.url}/echo`)).status, 200)

      const u = new URL(g.url)
      const answer = await new Promise<string>((resolve) => {
        let data = ''
        const s = net.connect(Number(u.port), u.hostname, () =>
          s.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc'),
        )
        s.on('data', (d) => {
          data += d
        })
        s.on('close', () => resolve(data))
        s.on('error', () => resolve(data))
        setTimeout(() => s.destroy(), 15_000).unref()
      })
      assert.match(answer, /^HTTP\/1\.1 408 /)
      assert.match(answer, /GW_ERR_REQUEST_TIMEOUT/)
    } finally {
      await g.stop()
    }
  })

  test('a policy reading the body is bound by the same idle timeout: 408, the upstream never called', async () => {
    const g = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: hooks
    match: { pathPrefix: /hooks }
    upstream: up
    requestBuffering: { maxBytes: 0, idleTimeout: 300ms }
    policies: { ssrf-guard: { fields: { names: [callback] } } }
accessLog: { enabled: false }
`)
    try {
      const before = up.received.length
      const u = new URL(g.url)
      const answer = await new Promise<string>((resolve) => {
        let data = ''
        const s = net.connect(Number(u.port), u.hostname, () =>
          s.write(
            'POST /hooks HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"callback":',
          ),
        )
        s.on('data', (d) => {
          data += d
        })
        s.on('close', () => resolve(data))
        s.on('error', () => resolve(data))
        setTimeout(() => s.destroy(), 15_000).unref()
      })
      assert.match(answer, /^HTTP\/1\.1 408 /)
      assert.match(answer, /GW_ERR_REQUEST_TIMEOUT/)
      assert.equal(up.received.length, before)
    } finally {
      await g.stop()
    }
  })
})
