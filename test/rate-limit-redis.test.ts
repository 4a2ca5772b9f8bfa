/**
 * Rate limits shared through one Redis by several real gateway processes:
 * - exactness: 3 gateways, a limit of N, concurrent load spread over all three → exactly N admitted;
 * - outage: Redis killed under load → failOpen behaviour (local insurance limits / 503), no request
 *   waits longer than the Redis command timeout; Redis restarted → shared limits resume within 2 s.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { RedisServer } from '../src/stores/redis/redis-server.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const COMMAND_TIMEOUT_MS = 200

interface Hit {
  status: number
  ms: number
  headers: http.IncomingHttpHeaders
}

function hit(
  agent: http.Agent,
  url: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Hit> {
  const u = new URL(url)
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, agent, headers }, (res) => {
      res.resume()
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, headers: res.headers }),
      )
    })
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')))
    req.on('error', reject)
    req.end()
  })
}

/** Runs `total` requests with at most `concurrency` in flight, round robin over the gateways. */
async function load(
  gws: readonly { url: string; agent: http.Agent }[],
  total: number,
  concurrency: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ perGateway: number[][]; hits: Hit[] }> {
  const perGateway = gws.map(() => [0, 0]) // [admitted, refused]
  const hits: Hit[] = []
  let next = 0
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= total) return
      const g = i % gws.length
      const gw = gws[g] as { url: string; agent: http.Agent }
      const h = await hit(gw.agent, gw.url, path, headers)
      hits.push(h)
      const counts = perGateway[g] as number[]
      if (h.status === 200) counts[0] = (counts[0] as number) + 1
      else counts[1] = (counts[1] as number) + 1
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { perGateway, hits }
}

function config(redisPort: number, upstreamUrl: string): string {
  return stringify({
    listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
    admin: { enabled: false },
    accessLog: { enabled: false },
    reload: { watch: false },
    stores: {
      backend: 'redis',
      redis: {
        url: `redis://127.0.0.1:${redisPort}`,
        commandTimeout: `${COMMAND_TIMEOUT_MS}ms`,
        connectTimeout: '200ms',
      },
    },
    upstreams: { main: { targets: [{ url: upstreamUrl }] } },
    routes: [
      {
        name: 'gcra',
        match: { pathPrefix: '/gcra' },
        upstream: 'main',
        policies: {
          // failOpen: false — a Redis call that times out (a loaded machine, 200 ms) is a 503, never a
          // local admission, so the count below measures the shared limiter alone.
          'rate-limit': {
            limits: [{ name: 'n', rate: 40, per: 'hour', key: [{ header: 'x-client' }], failOpen: false }],
          },
        },
      },
      {
        name: 'window',
        match: { pathPrefix: '/window' },
        upstream: 'main',
        policies: {
          'rate-limit': {
            limits: [
              {
                name: 'n',
                algorithm: 'sliding-window',
                rate: 40,
                per: 'day',
                key: [{ header: 'x-client' }],
                failOpen: false,
              },
            ],
          },
        },
      },
      {
        name: 'open',
        match: { pathPrefix: '/open' },
        upstream: 'main',
        policies: {
          'rate-limit': {
            instances: 2,
            limits: [{ name: 'n', rate: 10, per: 'hour', key: [{ header: 'x-client' }], failOpen: true }],
          },
        },
      },
      {
        name: 'closed',
        match: { pathPrefix: '/closed' },
        upstream: 'main',
        policies: {
          'rate-limit': {
            limits: [{ name: 'n', rate: 10, per: 'hour', key: [{ header: 'x-client' }], failOpen: false }],
          },
        },
      },
    ],
  })
}

describe('rate limits on one Redis shared by 3 gateways', () => {
  let redis: RedisServer
  let up: TestUpstream
  let gws: GatewayProcess[] = []
  let clients: { url: string; agent: http.Agent }[] = []

  before(async () => {
    redis = await RedisServer.start()
    up = await startUpstream('api')
    const yaml = config(redis.port, up.url)
    gws = await Promise.all([spawnGateway(yaml), spawnGateway(yaml), spawnGateway(yaml)])
    clients = gws.map((g) => ({ url: g.url, agent: new http.Agent({ keepAlive: true, maxSockets: 16 }) }))
  })

  after(async () => {
    for (const c of clients) c.agent.destroy()
    await Promise.all(gws.map((g) => g.stop()))
    await up?.close()
    await redis?.stop()
  })

  test('exactness: a limit of 40, 300 concurrent requests over 3 gateways → exactly 40 admitted', async (t) => {
    for (const [path, rounds] of [
      ['/gcra/x', 3],
      ['/window/x', 2],
    ] as const) {
      for (let round = 0; round < rounds; round++) {
        const { perGateway, hits } = await load(clients, 300, 48, path, {
          'x-client': `exact-${path}-${round}`,
        })
        const admitted = perGateway.reduce((s, c) => s + (c[0] as number), 0)
        // A 503 is a Redis call past commandTimeoutMs: its decision is unknown to the gateway (the
        // script may still have run in Redis), so it may stand for at most one admission.
        const unknown = hits.filter((h) => h.status === 503).length
        t.diagnostic(
          `${path} round ${round + 1}: admitted ${admitted} of 300 (per gateway ${perGateway.map((c) => c[0]).join(' + ')}), refused ${300 - admitted - unknown}, store timeouts ${unknown}`,
        )
        assert.ok(admitted <= 40, `never more than the limit: ${admitted}`)
        assert.ok(admitted + unknown >= 40, `every slot used or lost to a timeout: ${admitted} + ${unknown}`)
        if (unknown === 0) assert.equal(admitted, 40)
        // Requests go round-robin to the three gateways; admissions by two or more show the count is
        // shared (each alone would admit 40). A gateway stalled by a busy machine may come late to
        // every slot, so all three are not required.
        assert.ok(
          perGateway.filter((c) => (c[0] as number) > 0).length >= 2,
          'at least two gateways admitted some: the limit was shared',
        )
      }
    }
  })

  test('outage: failOpen limits locally, failOpen false answers 503, none waits past the timeout; Redis back → shared again within 2 s', async (t) => {
    const [a, b] = clients as [{ url: string; agent: http.Agent }, { url: string; agent: http.Agent }]
    // Before: shared. 10 per hour for client c1, over two gateways.
    const before = await load([a, b], 14, 4, '/open/x', { 'x-client': 'c1' })
    assert.equal(before.hits.filter((h) => h.status === 200).length, 10)

    await redis.kill()
    const killedAt = performance.now()
    // Bounded load during the outage: 4 concurrent, 60 requests on the failOpen route for a fresh
    // client on gateway a: its local share is 10 / instances (2) = 5.
    const open = await load([a], 60, 4, '/open/x', { 'x-client': 'c2' })
    const closed = await load([a, b], 20, 4, '/closed/x', { 'x-client': 'c2' })
    const outageMax = Math.max(...open.hits.map((h) => h.ms), ...closed.hits.map((h) => h.ms))
    const openAdmitted = open.hits.filter((h) => h.status === 200).length
    t.diagnostic(
      `during the outage: failOpen route admitted ${openAdmitted} of 60 (local share 5), failOpen:false route ${closed.hits.map((h) => h.status).filter((s) => s === 503).length} of 20 answered 503; slowest request ${outageMax.toFixed(1)} ms (commandTimeout ${COMMAND_TIMEOUT_MS}ms)`,
    )
    assert.equal(openAdmitted, 5)
    assert.ok(open.hits.every((h) => h.status === 200 || h.status === 429))
    assert.ok(closed.hits.every((h) => h.status === 503))
    // No request hangs longer than the Redis timeout (plus scheduling slack on a shared machine).
    assert.ok(outageMax < COMMAND_TIMEOUT_MS + 150, `slowest request ${outageMax} ms`)
    t.diagnostic(`outage lasted ${(performance.now() - killedAt).toFixed(0)} ms so far`)

    await redis.launch() // empty: no persistence
    const restartedAt = performance.now()
    // Client c2 used its local share on gateway a; the shared store has nothing for it. The first
    // 200 for c2 on gateway a means gateway a decides on Redis again.
    let resumedMs = Number.POSITIVE_INFINITY
    const deadline = restartedAt + 5000
    while (performance.now() < deadline) {
      const h = await hit(a.agent, a.url, '/open/x', { 'x-client': 'c2' })
      assert.ok(h.ms < COMMAND_TIMEOUT_MS + 150, `request after restart took ${h.ms} ms`)
      if (h.status === 200) {
        resumedMs = performance.now() - restartedAt
        break
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    // Gateway b too (it saw the outage on the closed route).
    let resumedBMs = Number.POSITIVE_INFINITY
    while (performance.now() < deadline) {
      const h = await hit(b.agent, b.url, '/closed/x', { 'x-client': 'c3' })
      if (h.status === 200) {
        resumedBMs = performance.now() - restartedAt
        break
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    t.diagnostic(
      `shared limiting resumed ${resumedMs.toFixed(0)} ms (gateway a) and ${resumedBMs.toFixed(0)} ms (gateway b) after the restart`,
    )
    assert.ok(resumedMs <= 2000, `resumed after ${resumedMs} ms`)
    assert.ok(resumedBMs <= 2000, `resumed after ${resumedBMs} ms`)
    // And it is shared again: 10 for a fresh client over both gateways, exactly.
    const afterLoad = await load([a, b], 20, 4, '/open/x', { 'x-client': 'c4' })
    assert.equal(afterLoad.hits.filter((h) => h.status === 200).length, 10)
  })
  test('frozen Redis (SIGSTOP): no request waits longer than the command timeout; shared again after SIGCONT', async (t) => {
    const [a, b] = clients as [{ url: string; agent: http.Agent }, { url: string; agent: http.Agent }]
    redis.pause()
    let resumed = false
    try {
      const open = await load([a, b], 40, 4, '/open/x', { 'x-client': 'f1' })
      const closed = await load([a, b], 12, 4, '/closed/x', { 'x-client': 'f1' })
      const slowest = Math.max(...open.hits.map((h) => h.ms), ...closed.hits.map((h) => h.ms))
      const admitted = open.hits.filter((h) => h.status === 200).length
      t.diagnostic(
        `frozen: failOpen route admitted ${admitted} of 40 over 2 gateways (local share 5 each), failOpen:false ${closed.hits.filter((h) => h.status === 503).length} of 12 → 503; slowest ${slowest.toFixed(1)} ms`,
      )
      assert.equal(admitted, 10)
      assert.ok(closed.hits.every((h) => h.status === 503))
      assert.ok(slowest < COMMAND_TIMEOUT_MS + 150, `slowest request ${slowest} ms`)
      redis.resume()
      resumed = true
      const resumedAt = performance.now()
      let back = Number.POSITIVE_INFINITY
      while (performance.now() - resumedAt < 5000) {
        const h = await hit(b.agent, b.url, '/closed/x', { 'x-client': 'f2' })
        if (h.status === 200) {
          back = performance.now() - resumedAt
          break
        }
        await new Promise((r) => setTimeout(r, 20))
      }
      t.diagnostic(`shared limiting resumed ${back.toFixed(0)} ms after SIGCONT`)
      assert.ok(back <= 2000)
    } finally {
      if (!resumed) redis.resume()
    }
  })
})
