/**
 * The rate-limit policy in a real gateway process (memory store): throttling (a burst of 50 on a
 * 10/s limit with a queue), RateLimit headers on every response, business-flow quotas keyed by a
 * JSON body field and a path parameter, concurrency caps released when clients go away.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { request } from './helpers/http.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

interface Arrival {
  seq: number
  at: number
  path: string
  body: string
}

/** An upstream that records what arrives and when; /slow waits `ms` before answering. */
async function recordingUpstream(): Promise<{
  url: string
  arrivals: Arrival[]
  close: () => Promise<void>
}> {
  const arrivals: Arrival[] = []
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => {
      body += c
    })
    req.on('end', () => {
      arrivals.push({
        seq: Number(u.searchParams.get('seq') ?? -1),
        at: performance.now(),
        path: u.pathname,
        body,
      })
      const ms = Number(u.searchParams.get('ms') ?? 0)
      const t = setTimeout(() => {
        res.writeHead(u.pathname.endsWith('/missing') ? 404 : 200, { 'content-type': 'text/plain' })
        res.end('ok')
      }, ms)
      res.on('close', () => clearTimeout(t))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

const route = (name: string, prefix: string, rateLimit: object) => ({
  name,
  match: { pathPrefix: prefix },
  upstream: 'main',
  policies: { 'rate-limit': rateLimit },
})

describe('rate-limit in a gateway (memory store)', () => {
  let up: Awaited<ReturnType<typeof recordingUpstream>>
  let gw: GatewayProcess

  before(async () => {
    up = await recordingUpstream()
    gw = await spawnGateway(
      stringify({
        listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
        admin: { enabled: false },
        accessLog: { enabled: false },
        reload: { watch: false },
        upstreams: { main: { targets: [{ url: up.url }] } },
        routes: [
          route('throttled', '/throttled', {
            limits: [
              {
                name: 'paced',
                rate: 10,
                per: 'second',
                burst: 1,
                throttle: { maxQueue: 20, maxWait: '5s' },
              },
            ],
          }),
          route('throttled-abort', '/abort', {
            limits: [{ rate: 5, per: 'second', burst: 1, throttle: { maxQueue: 5, maxWait: '5s' } }],
          }),
          route('headers', '/headers', {
            limits: [
              { name: 'second', rate: 2, per: 'second', key: ['ip'] },
              { name: 'hour', rate: 100, per: 'hour', key: ['ip'] },
            ],
          }),
          route('orders', '/orders', {
            limits: [
              {
                name: 'orders-per-account',
                rate: 2,
                per: 'hour',
                key: [{ jsonField: 'account.id' }],
                methods: ['POST'],
                onMissingKey: 'deny',
                code: 'quota-exceeded',
              },
            ],
          }),
          route('reset', '/users', {
            limits: [
              {
                name: 'resets',
                rate: 3,
                per: 'hour',
                key: [{ pathParam: 'id', pattern: '/users/{id}/password-reset' }],
                onMissingKey: 'skip',
                code: 'quota-exceeded',
              },
            ],
          }),
          route('slow', '/slow', { concurrency: { max: 2, key: ['ip'] } }),
          {
            name: 'shed',
            match: { pathPrefix: '/shed' },
            upstream: 'main',
            policies: { 'overload-shedding': { maxInFlight: 3, retryAfter: '2s' } },
          },
        ],
      }),
    )
  })

  after(async () => {
    await gw?.stop()
    await up?.close()
  })

  test('throttle: a burst of 50 on 10/s with a queue of 20 → served in order, paced, the rest 429', async (t) => {
    const agent = new http.Agent({ keepAlive: false })
    const u = new URL(gw.url)
    const results: { seq: number; status: number; code?: string }[] = []
    const started = performance.now()
    const sends: Promise<void>[] = []
    for (let seq = 0; seq < 50; seq++) {
      sends.push(
        new Promise<void>((resolve, reject) => {
          const req = http.request(
            { host: u.hostname, port: u.port, path: `/throttled/x?seq=${seq}`, agent },
            (res) => {
              let body = ''
              res.setEncoding('utf8')
              res.on('data', (c: string) => {
                body += c
              })
              res.on('end', () => {
                const code = res.statusCode === 429 ? (JSON.parse(body) as { code: string }).code : undefined
                results.push({ seq, status: res.statusCode ?? 0, ...(code ? { code } : {}) })
                resolve()
              })
            },
          )
          req.on('error', reject)
          req.end()
        }),
      )
      // 5 ms apart, so that the gateway sees them in this order.
      await new Promise((r) => setTimeout(r, 5))
    }
    const sendMs = performance.now() - started // how long sending took: slots free up meanwhile
    await Promise.all(sends)
    const elapsed = performance.now() - started
    const served = up.arrivals.filter((a) => a.path === '/throttled/x')
    const admitted = results
      .filter((r) => r.status === 200)
      .map((r) => r.seq)
      .sort((a, b) => a - b)
    const refused = results.filter((r) => r.status === 429)
    const gaps = served.slice(1).map((a, i) => a.at - (served[i] as Arrival).at)
    t.diagnostic(
      `admitted ${admitted.length}, refused ${refused.length}, sent in ${sendMs.toFixed(0)} ms, done in ${elapsed.toFixed(0)} ms; gaps between upstream arrivals: min ${Math.min(...gaps).toFixed(1)} ms, max ${Math.max(...gaps).toFixed(1)} ms`,
    )
    // None lost: every request got an answer, 200 or 429 (GW_ERR_RATE_LIMITED).
    assert.equal(results.length, 50)
    assert.equal(admitted.length + refused.length, 50)
    assert.ok(refused.every((r) => r.code === 'GW_ERR_RATE_LIMITED'))
    // 1 at once + 20 queued, plus at most the slots that freed up (one per 100 ms) while the 50
    // were being sent (5 ms apart: ~250 ms, longer on a busy machine).
    const bound = 21 + Math.ceil(sendMs / 100) + 1
    assert.ok(
      admitted.length >= 21 && admitted.length <= bound,
      `admitted ${admitted.length}, bound ${bound}`,
    )
    // The first 21 always fit (1 at once + 20 in the queue); later ones only when a slot freed up.
    assert.deepEqual(
      admitted.slice(0, 21),
      Array.from({ length: 21 }, (_, i) => i),
    )
    // In order: the upstream saw the admitted requests in the order they were sent. Requests
    // released together (a stalled machine passed several release times) race each other over
    // separate upstream connections, and the machine can delay one of them by hundreds of ms: a
    // swap is accepted when the later-sent one could not have been released before the other was
    // due (it arrived after the earlier one's reservation), i.e. they were released together.
    assert.deepEqual(
      served.map((a) => a.seq).sort((x, y) => x - y),
      admitted,
    )
    const rank = new Map(admitted.map((seq, i) => [seq, i]))
    for (let i = 1; i < served.length; i++) {
      const [p, c] = [served[i - 1] as Arrival, served[i] as Arrival]
      if (c.seq < p.seq) {
        const due = started + (rank.get(c.seq) as number) * 100
        assert.ok(p.at >= due - 20, `seq ${p.seq} reached the upstream before seq ${c.seq} was due`)
      }
    }
    // Paced at the rate: over any stretch of queued requests, at most three more than the rate
    // allows. (Release times are reservations: a gateway that the machine stalls for a few hundred
    // ms — seen with the whole suite running on 2 cores — releases the requests whose time has come
    // together. Releasing everything at once would fail this for any stretch of 4 or more.)
    // Never early: the k-th queued request is released no sooner than k intervals after the burst
    // began (its reservation; the first decision came after `started`). A stalled machine can only
    // make releases late, and then release those whose time has come together, which is allowed.
    const queued = served.slice(1)
    for (let k = 0; k < queued.length; k++) {
      const at = (queued[k] as Arrival).at - started
      assert.ok(
        at >= (k + 1) * 100 - 20,
        `queued ${k + 1} reached the upstream ${at.toFixed(0)} ms after the burst began`,
      )
    }
    const span = (served.at(-1) as Arrival).at - (served[0] as Arrival).at
    assert.ok(span >= (served.length - 2) * 100, `span ${span}`)
  })

  test('throttle: clients that go away while queued leave the queue and never reach the upstream', async () => {
    const u = new URL(gw.url)
    assert.equal((await request(gw.url, { path: '/abort/x?seq=100' })).status, 200)
    const aborted = [101, 102].map((seq) => {
      const req = http.request({ host: u.hostname, port: u.port, path: `/abort/x?seq=${seq}`, agent: false })
      req.on('error', () => undefined)
      req.end()
      return req
    })
    const kept = request(gw.url, { path: '/abort/x?seq=103' })
    await new Promise((r) => setTimeout(r, 50))
    for (const req of aborted) req.destroy()
    assert.equal((await kept).status, 200)
    await new Promise((r) => setTimeout(r, 700)) // past the aborted requests' slots
    const seen = up.arrivals.filter((a) => a.path === '/abort/x').map((a) => a.seq)
    assert.deepEqual(seen, [100, 103])
  })

  test('RateLimit and RateLimit-Policy on every response of the route: 200, upstream 404, 429', async () => {
    const policy = '"second";q=2;w=1, "hour";q=100;w=3600'
    const a = await request(gw.url, { path: '/headers/a' })
    const b = await request(gw.url, { path: '/headers/missing' })
    const c = await request(gw.url, { path: '/headers/c' })
    assert.deepEqual([a.status, b.status, c.status], [200, 404, 429])
    for (const r of [a, b, c]) {
      assert.equal(r.headers['ratelimit-policy'], policy)
      assert.match(String(r.headers.ratelimit), /^"second";r=\d+;t=\d+, "hour";r=\d+;t=\d+$/)
    }
    assert.match(String(a.headers.ratelimit), /^"second";r=1;t=1, "hour";r=99;/)
    assert.equal(c.headers['content-type'], 'application/problem+json')
    assert.equal(c.headers['retry-after'], '1')
    assert.equal((JSON.parse(c.body) as { code: string }).code, 'GW_ERR_RATE_LIMITED')
  })

  test('business-flow quota keyed by a JSON body field: 2 orders per account per hour; the body reaches the upstream intact', async () => {
    const order = (account: unknown, extra = '') =>
      request(gw.url, {
        method: 'POST',
        path: '/orders/x',
        headers: { 'content-type': 'application/json' },
        body: `{"account":${JSON.stringify(account)},"items":[1,2,3]${extra}}`,
      })
    const before = up.arrivals.length
    assert.equal((await order({ id: 'acct-1' })).status, 200)
    assert.equal((await order({ id: 'acct-1' }, ',"note":"second"')).status, 200)
    const third = await order({ id: 'acct-1' })
    assert.equal(third.status, 429)
    assert.equal((JSON.parse(third.body) as { code: string }).code, 'GW_ERR_QUOTA_EXCEEDED')
    assert.equal((await order({ id: 'acct-2' })).status, 200)
    const forwarded = up.arrivals.slice(before)
    assert.equal(forwarded.length, 3)
    assert.equal(forwarded[1]?.body, '{"account":{"id":"acct-1"},"items":[1,2,3],"note":"second"}')
    // Hostile and missing keys: no account, an object, not JSON → 400 (onMissingKey: deny).
    assert.equal((await order({ other: 1 })).status, 400)
    assert.equal((await order({ id: { nested: true } })).status, 400)
    const notJson = await request(gw.url, {
      method: 'POST',
      path: '/orders/x',
      headers: { 'content-type': 'application/json' },
      body: '{"account":{"id":"acct-1"',
    })
    assert.equal(notJson.status, 400)
    // GET does not count (methods: [POST]).
    assert.equal((await request(gw.url, { path: '/orders/x' })).status, 200)
  })

  test('business-flow quota keyed by a path parameter: 3 password resets per user per hour', async () => {
    for (let i = 0; i < 3; i++) {
      assert.equal((await request(gw.url, { method: 'POST', path: '/users/42/password-reset' })).status, 200)
    }
    const r = await request(gw.url, { method: 'POST', path: '/users/42/password-reset' })
    assert.equal(r.status, 429)
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'GW_ERR_QUOTA_EXCEEDED')
    assert.equal((await request(gw.url, { method: 'POST', path: '/users/43/password-reset' })).status, 200)
    // Other paths under /users are not part of the flow (onMissingKey: skip).
    for (let i = 0; i < 5; i++) assert.equal((await request(gw.url, { path: '/users/42' })).status, 200)
  })

  test('concurrency cap: 2 in flight per IP; a client going away frees its slot', async () => {
    const slow = (ms: number) => request(gw.url, { path: `/slow/x?ms=${ms}` })
    const first = [slow(400), slow(400)]
    await new Promise((r) => setTimeout(r, 100))
    const third = await slow(0)
    assert.equal(third.status, 429)
    assert.equal((JSON.parse(third.body) as { code: string }).code, 'GW_ERR_CONCURRENCY_LIMITED')
    assert.deepEqual(
      (await Promise.all(first)).map((r) => r.status),
      [200, 200],
    )
    assert.equal((await slow(0)).status, 200)
    // Two clients that go away mid-request release their slots.
    const u = new URL(gw.url)
    for (let i = 0; i < 2; i++) {
      const req = http.request({ host: u.hostname, port: u.port, path: '/slow/x?ms=5000', agent: false })
      req.on('error', () => undefined)
      req.end()
      setTimeout(() => req.destroy(), 100)
    }
    await new Promise((r) => setTimeout(r, 300))
    assert.equal((await slow(0)).status, 200)
  })

  test('overload shedding: past 3 in flight, 503 GW_ERR_OVERLOADED with Retry-After, before any other work', async () => {
    const before = up.arrivals.length
    const slow = [1, 2, 3].map(() => request(gw.url, { path: '/shed/x?ms=400' }))
    await new Promise((r) => setTimeout(r, 100))
    const shed = await request(gw.url, { path: '/shed/x' })
    assert.equal(shed.status, 503)
    assert.equal(shed.headers['retry-after'], '2')
    assert.equal((JSON.parse(shed.body) as { code: string }).code, 'GW_ERR_OVERLOADED')
    assert.deepEqual(
      (await Promise.all(slow)).map((r) => r.status),
      [200, 200, 200],
    )
    assert.equal(up.arrivals.length - before, 3) // the shed request never reached the upstream
    assert.equal((await request(gw.url, { path: '/shed/x' })).status, 200)
  })
})
