/**
 * Passive health (upstreams.<name>.passiveHealth): consecutive 502/503/504 answers eject a target,
 * as the config reference says, on the streaming path and on the buffered path (a route with a
 * response body policy). Before, the end of each answer reset the target's failure count, so a
 * target answering 503 to everything was never ejected.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { request } from './helpers/http.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

function server(status: number, marker: string): Promise<http.Server> {
  const s = http.createServer((req, res) => {
    req.resume()
    const body = JSON.stringify({ marker })
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)))
}
const urlOf = (s: http.Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`

let bad: http.Server
let good: http.Server
let gw: GatewayProcess

before(async () => {
  bad = await server(503, 'bad')
  good = await server(200, 'good')
  const targets = `[ { url: "${urlOf(bad)}" }, { url: "${urlOf(good)}" } ]`
  gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams:
  streamed: { targets: ${targets}, retries: 0, passiveHealth: { failures: 2, eject: 1m } }
  buffered: { targets: ${targets}, retries: 0, passiveHealth: { failures: 2, eject: 1m } }
routes:
  - { name: streamed, match: { pathPrefix: /s }, upstream: streamed }
  - name: buffered
    match: { pathPrefix: /b }
    upstream: buffered
    policies: { leak-guard: { mode: block } }
accessLog: { enabled: false }
`)
})

after(async () => {
  await gw?.stop()
  bad?.close()
  good?.close()
})

for (const [path, label] of [
  ['/s', 'streaming'],
  ['/b', 'buffered (leak-guard)'],
] as const) {
  test(`${label}: a target answering 503 is ejected after passiveHealth.failures answers`, async () => {
    const statuses: number[] = []
    for (let i = 0; i < 12; i++) statuses.push((await request(gw.url, { path: `${path}/x?i=${i}` })).status)
    const failures = statuses.filter((s) => s === 503).length
    // Round-robin over two targets: the bad one answers twice, then rests for ejectMs.
    assert.equal(failures, 2, statuses.join(' '))
    assert.deepEqual(statuses.slice(-8), Array(8).fill(200), statuses.join(' '))
  })
}
