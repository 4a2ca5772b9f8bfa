/**
 * Detection end to end, against the real `portcullis serve` process: scripted attacks on 127.0.0.1
 * (each from its own loopback address) raise exactly the expected alerts, a brute force is banned,
 * and normal traffic raises none. Alerts and bans are read through the admin API.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

const ADMIN_TOKEN = 'detect-test-admin-token-0123456789abcdef'
const PASSWORD = 'hunter2-not-the-password'

interface Res {
  status: number
  body: string
  headers: http.IncomingHttpHeaders
}

const agents = new Map<string, http.Agent>()
function agentFor(ip: string): http.Agent {
  let a = agents.get(ip)
  if (a === undefined) {
    a = new http.Agent({ keepAlive: true, maxSockets: 8, localAddress: ip } as http.AgentOptions)
    agents.set(ip, a)
  }
  return a
}

function send(
  base: string,
  o: { from?: string; method?: string; path: string; body?: string; headers?: Record<string, string> },
): Promise<Res> {
  const u = new URL(base)
  const from = o.from ?? '127.0.0.1'
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method: o.method ?? 'GET',
        path: o.path,
        agent: agentFor(from),
        headers: {
          ...(o.body !== undefined
            ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(o.body)) }
            : {}),
          ...o.headers,
        },
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
      },
    )
    req.on('error', reject)
    req.end(o.body)
  })
}

/** The demo upstream: POST /login always 401; /items/1..5 exist (200), other ids 404; anything else 200. */
function startUpstream(): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0] as string
      if (path === '/login') {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad credentials"}')
        return
      }
      const m = /^\/items\/([0-9]+)$/.exec(path)
      if (m && Number(m[1]) > 5) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such item"}')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
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

const config = (upstream: string) => `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: true, host: 127.0.0.1, port: 0, token: "${ADMIN_TOKEN}" }
upstreams: { api: { targets: [ { url: "${upstream}" } ] } }
routes:
  - name: api
    match: { pathPrefix: / }
    upstream: api
accessLog: { enabled: false }
detect:
  bruteForce: { failures: 50, action: ban, ban: 10m }
  flood: { requests: 1000, window: 10s }
`

interface AlertBody {
  total: number
  items: { detector: string; subject: string; action: string }[]
}

describe('detectors on a real gateway', () => {
  let up: { url: string; close(): void }
  let gw: GatewayProcess
  const admin = (method: string, path: string, body?: unknown) =>
    send(gw.adminUrl as string, {
      method,
      path,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    })
  const alerts = async (): Promise<AlertBody> =>
    JSON.parse((await admin('GET', '/v1/alerts?limit=1000')).body)
  /** Alerts for a subject, polled until `n` are there or 2 s passed (the log phase runs after the answer). */
  const alertsFor = async (subject: string, n: number) => {
    const deadline = Date.now() + 2000
    for (;;) {
      const got = (await alerts()).items.filter((a) => a.subject === subject)
      if (got.length >= n || Date.now() > deadline) return got
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  before(async () => {
    up = await startUpstream()
    gw = await spawnGateway(config(up.url))
    assert.ok(gw.adminUrl)
  })
  after(async () => {
    for (const a of agents.values()) a.destroy()
    await gw?.stop()
    up?.close()
  })

  test('5 normal users making 2,000 requests in total: zero alerts', async () => {
    const users = ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14']
    const statuses = new Map<number, number>()
    await Promise.all(
      users.map(async (ip, u) => {
        for (let i = 0; i < 400; i++) {
          let r: Res
          if (i === 0) {
            // a mistyped password once
            r = await send(gw.url, {
              from: ip,
              method: 'POST',
              path: '/login',
              body: JSON.stringify({ username: `user${u}`, password: PASSWORD }),
            })
          } else if (i % 3 === 0) r = await send(gw.url, { from: ip, path: '/' })
          else r = await send(gw.url, { from: ip, path: `/items/${1 + ((i + u) % 5)}` })
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
        }
      }),
    )
    assert.equal(statuses.get(200), 1995)
    assert.equal(statuses.get(401), 5)
    await new Promise((r) => setTimeout(r, 300))
    const a = await alerts()
    assert.equal(a.total, 0, JSON.stringify(a.items))
  })

  test('50 failed logins from one IP: exactly one brute-force alert and a ban; the 51st request gets 403', async () => {
    const ip = '127.0.0.2'
    for (let i = 0; i < 50; i++) {
      const r = await send(gw.url, {
        from: ip,
        method: 'POST',
        path: '/login',
        body: JSON.stringify({ username: 'admin', password: `${PASSWORD}-${i}` }),
      })
      assert.equal(r.status, 401, `attempt ${i + 1}`)
    }
    const r51 = await send(gw.url, { from: ip, path: '/' })
    assert.equal(r51.status, 403)
    assert.equal((JSON.parse(r51.body) as { code: string }).code, 'GW_ERR_BANNED')
    // other sources are not affected
    assert.equal((await send(gw.url, { from: '127.0.0.10', path: '/' })).status, 200)
    const got = await alertsFor(`ip:${ip}`, 1)
    assert.deepEqual(
      got.map((a) => [a.detector, a.action]),
      [['brute-force', 'ban']],
    )
    // more refused requests raise nothing more
    for (let i = 0; i < 20; i++)
      assert.equal((await send(gw.url, { from: ip, method: 'POST', path: '/login', body: '{}' })).status, 403)
    assert.equal((await alertsFor(`ip:${ip}`, 2)).length, 1)
    // the ban is listed, and an admin can lift it
    const bans = JSON.parse((await admin('GET', '/v1/bans')).body) as { items: { id: string; by: string }[] }
    assert.deepEqual(
      bans.items.filter((b) => b.id === `ip:${ip}`).map((b) => b.by),
      ['detector:brute-force'],
    )
    assert.equal((await admin('DELETE', `/v1/bans/${encodeURIComponent(`ip:${ip}`)}`)).status, 204)
    assert.equal((await send(gw.url, { from: ip, path: '/' })).status, 200)
    assert.equal((await admin('DELETE', `/v1/bans/${encodeURIComponent(`ip:${ip}`)}`)).status, 404)
  })

  test('a walk over 200 object ids: exactly one enumeration alert', async () => {
    const ip = '127.0.0.3'
    let notFound = 0
    for (let id = 1; id <= 200; id++) {
      const r = await send(gw.url, { from: ip, path: `/items/${id}` })
      if (r.status === 404) notFound++
    }
    assert.equal(notFound, 195)
    const got = await alertsFor(`ip:${ip}`, 1)
    await new Promise((r) => setTimeout(r, 200))
    assert.deepEqual(
      (await alertsFor(`ip:${ip}`, 2)).map((a) => a.detector),
      ['enumeration'],
    )
    assert.equal(got.length, 1)
  })

  test('a flood from one IP: exactly one flood alert', async () => {
    const ip = '127.0.0.4'
    const batch = 50
    let ok = 0
    for (let i = 0; i < 1500; i += batch) {
      const rs = await Promise.all(Array.from({ length: batch }, () => send(gw.url, { from: ip, path: '/' })))
      ok += rs.filter((r) => r.status === 200).length
    }
    assert.equal(ok, 1500, 'alert only: nothing refused')
    await alertsFor(`ip:${ip}`, 1)
    await new Promise((r) => setTimeout(r, 200))
    assert.deepEqual(
      (await alertsFor(`ip:${ip}`, 2)).map((a) => a.detector),
      ['flood'],
    )
  })

  test('admin bans: POST bans an IP at once (403), hostile bodies are 400; alerts are logged; no password in logs', async () => {
    const ip = '127.0.0.5'
    assert.equal((await send(gw.url, { from: ip, path: '/' })).status, 200)
    const created = await admin('POST', '/v1/bans', { ip, duration: '1m', reason: 'manual' })
    assert.equal(created.status, 201, created.body)
    assert.equal((JSON.parse(created.body) as { id: string }).id, `ip:${ip}`)
    assert.equal((await send(gw.url, { from: ip, path: '/' })).status, 403)
    for (const bad of [
      {},
      { ip: 'x', duration: '1s' },
      { ip, duration: '0' },
      { ip, seconds: 60 },
      { principal: 'a\u0000', duration: '1s' },
    ]) {
      assert.equal((await admin('POST', '/v1/bans', bad)).status, 400, JSON.stringify(bad))
    }
    assert.equal((await admin('DELETE', '/v1/bans/nope')).status, 400)
    const unauth = await send(gw.adminUrl as string, { path: '/v1/alerts' })
    assert.equal(unauth.status, 401)
    const logs = await gw.waitForLog(/security alert[\s\S]*security alert[\s\S]*security alert/)
    assert.equal(logs.includes(PASSWORD), false)
    assert.equal(logs.includes(ADMIN_TOKEN), false)
    assert.match(logs, /"action":"ban.create"/)
  })
})
