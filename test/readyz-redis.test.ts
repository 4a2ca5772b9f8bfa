/**
 * /readyz with the Redis store: a gateway that starts while Redis is down serves (policies apply
 * their failOpen) but reports not ready until the store has connected once, so a rolling deploy does
 * not send it traffic whose shared limits and counts it cannot keep yet. A later outage does not
 * make it unready (every gateway would drop out at once; failOpen decides instead).
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { RedisServer } from '../src/stores/redis/redis-server.js'
import { startTestGateway, type TestGateway } from './helpers/servers.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

let redis: RedisServer
let upstream: TestUpstream

before(async () => {
  redis = await RedisServer.start()
  await redis.kill() // its port, with nothing listening yet
  upstream = await startUpstream()
})
after(async () => {
  await redis?.stop()
  await upstream?.close()
})

async function readyz(gw: TestGateway): Promise<{ status: number; body: unknown }> {
  const admin = gw.running.admin?.url
  assert.ok(admin, 'the admin listener runs')
  const res = await fetch(`${admin}/readyz`)
  return { status: res.status, body: await res.json() }
}

test('/readyz: 503 with a reason until the Redis store first connects, then 200, and still 200 during a later outage', async () => {
  const gw = await startTestGateway(upstream.url, {
    configYaml: `listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
upstreams: { up: { targets: [ { url: "${upstream.url}" } ] } }
routes:
  - { name: api, match: { pathPrefix: /api }, upstream: up }
stores: { backend: redis, redis: { host: 127.0.0.1, port: ${redis.port}, connectTimeout: 200ms, reconnectMaxDelay: 100ms } }
accessLog: { enabled: false }
reload: { watch: false }
log: { level: silent }
`,
  })
  try {
    const down = await readyz(gw)
    assert.equal(down.status, 503)
    assert.deepEqual(down.body, { status: 'not ready', reason: 'the redis store has not connected yet' })
    // it serves meanwhile (no stateful policy on this route)
    assert.equal((await fetch(`${gw.url}/api/x`)).status, 200)

    await redis.launch()
    const deadline = Date.now() + 5000
    let up = await readyz(gw)
    while (up.status !== 200 && Date.now() < deadline) {
      await sleep(50)
      up = await readyz(gw)
    }
    assert.equal(up.status, 200, 'ready within 5 s of Redis starting')
    assert.deepEqual(up.body, { status: 'ready' })

    await redis.kill()
    await sleep(300)
    assert.equal((await readyz(gw)).status, 200)
  } finally {
    await gw.close()
  }
})
