/**
 * Detector counts shared through Redis: two real `portcullis serve` processes on one redis-server.
 * 30 failed logins split over both gateways (15 each, under the threshold of 20 on either one)
 * raise exactly one brute-force alert across both, read from each gateway's admin API.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { RedisServer } from '../src/stores/redis/redis-server.js'
import { request } from './helpers/http.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'

const ADMIN_TOKEN = 'detect-shared-admin-token-0123456789abcdef'

interface AlertBody {
  total: number
  items: { detector: string; subject: string; action: string; data: Record<string, unknown> }[]
}

/** POST /login: always 401; anything else 200. */
function startUpstream(): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const status = req.url === '/login' ? 401 : 200
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}')
    })
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => {
          server.closeAllConnections()
          server.close()
        },
      }),
    ),
  )
}

describe('detector counts shared through Redis (two gateways)', () => {
  let redis: RedisServer
  let up: { url: string; close(): void }
  let a: GatewayProcess
  let b: GatewayProcess

  const alerts = async (gw: GatewayProcess): Promise<AlertBody> => {
    const r = await request(gw.adminUrl as string, {
      path: '/v1/alerts?limit=100',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    })
    assert.equal(r.status, 200, r.body)
    return JSON.parse(r.body) as AlertBody
  }

  before(async () => {
    redis = await RedisServer.start()
    up = await startUpstream()
    const yaml = stringify({
      listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
      admin: { enabled: true, host: '127.0.0.1', port: 0, token: ADMIN_TOKEN },
      stores: {
        backend: 'redis',
        // generous deadlines: this test is not about timeouts, and a loaded machine is slow
        redis: { url: `redis://127.0.0.1:${redis.port}`, commandTimeout: '2s', connectTimeout: '2s' },
      },
      upstreams: { api: { targets: [{ url: up.url }] } },
      routes: [{ name: 'api', match: { pathPrefix: '/' }, upstream: 'api' }],
      accessLog: { enabled: false },
      reload: { watch: false },
      detect: { bruteForce: { failures: 20, window: '1m' } },
    })
    ;[a, b] = await Promise.all([
      spawnGateway(yaml, tempDir('pc-dshare-')),
      spawnGateway(yaml, tempDir('pc-dshare-')),
    ])
    assert.ok(a.adminUrl && b.adminUrl)
  })

  after(async () => {
    await a?.stop()
    await b?.stop()
    up?.close()
    await redis?.stop()
  })

  test('30 failed logins split over both gateways, threshold 20: exactly one brute-force alert across both', async () => {
    for (let i = 0; i < 30; i++) {
      const gw = i % 2 === 0 ? a : b
      const r = await request(gw.url, { method: 'POST', path: '/login', body: '{}' })
      assert.equal(r.status, 401)
    }
    // The log phase and the store round trips run after the answers: poll (bounded) for the alert.
    const deadline = Date.now() + 5000
    let total = 0
    while (Date.now() < deadline) {
      total = (await alerts(a)).total + (await alerts(b)).total
      if (total >= 1) break
      await new Promise((r) => setTimeout(r, 50))
    }
    // Give a second alert (the bug this guards against) time to show up.
    await new Promise((r) => setTimeout(r, 500))
    const all = [...(await alerts(a)).items, ...(await alerts(b)).items]
    assert.equal(all.length, 1, JSON.stringify(all))
    assert.equal(all[0]?.detector, 'brute-force')
    assert.equal(all[0]?.subject, 'ip:127.0.0.1')
    assert.ok(Number(all[0]?.data.failures) >= 20)
    assert.equal(all[0]?.data.shared, 'yes', 'raised by the shared count (15 per gateway never cross 20)')
  })
})
