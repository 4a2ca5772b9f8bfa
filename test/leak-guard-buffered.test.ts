/**
 * leak-guard on the gateway's buffered response path (the path of every route with a body hook),
 * through a real in-process gateway and a real upstream on 127.0.0.1: a body that arrives in
 * many small chunks is scanned whole (a key split across chunks is masked), a clean body passes
 * byte for byte, a body over `responseBodyLimit` is refused (502 GW_ERR_UPSTREAM_BAD_RESPONSE)
 * and never reaches the client, an upstream that dies after its head yields a problem (not a
 * truncated 200), and an upstream that is down yields 502 GW_ERR_UPSTREAM_UNAVAILABLE.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { Fakes } from '../src/secrets/testing/fakes.js'
import { request } from './helpers/http.js'
import { startTestGateway, type TestGateway } from './helpers/servers.js'

const f = new Fakes(4216)
const KEY = f.crcToken('ghp_')
const LIMIT = 64 * 1024

/** A JSON document of ~`n` bytes of orders (no credential in it). */
function orders(n: number): string {
  const list: object[] = []
  for (let i = 0; JSON.stringify(list).length < n; i++)
    list.push({ id: i, status: i % 2 ? 'pending' : 'shipped', note: 'leave at the door, ring twice' })
  return JSON.stringify({ orders: list })
}
const CLEAN = orders(20_000)
const WITH_KEY = JSON.stringify({ before: orders(5000), deploy: { token: KEY }, after: orders(5000) })
/** Pieces of about 1 KB, sized so that a boundary falls 20 bytes into the key. */
const KEY_AT = WITH_KEY.indexOf(KEY)
const PIECE = Math.floor((KEY_AT + 20) / Math.ceil((KEY_AT + 20) / 1000))

let upstream: http.Server
const sockets = new Set<Socket>()
let gw: TestGateway
let down: TestGateway

/** Writes `body` in chunks of `size` bytes, each in its own write on the next turn. */
function writeChunked(res: http.ServerResponse, body: string, size: number): void {
  let pos = 0
  const next = () => {
    if (pos >= body.length) {
      res.end()
      return
    }
    res.write(body.slice(pos, pos + size))
    pos += size
    setImmediate(next)
  }
  next()
}

before(async () => {
  upstream = http.createServer((req, res) => {
    const path = req.url ?? '/'
    if (path === '/api/clean') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(CLEAN)
    } else if (path === '/api/chunked-key') {
      // no content-length: chunked, in pieces of about 1 KB (the key straddles two of them)
      res.writeHead(200, { 'content-type': 'application/json' })
      writeChunked(res, WITH_KEY, PIECE)
    } else if (path === '/api/too-big') {
      res.writeHead(200, { 'content-type': 'application/json' })
      writeChunked(res, orders(LIMIT + 10_000), 8192)
    } else if (path === '/api/dies') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '50000' })
      res.write(CLEAN.slice(0, 10_000), () => res.destroy())
    } else {
      res.writeHead(404).end()
    }
  })
  upstream.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()))
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const config = (target: string) => `listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${target}" } ], retries: 0 } }
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: up
    responseBodyLimit: ${LIMIT}
    policies: { leak-guard: { mode: mask } }
accessLog: { enabled: false }
reload: { watch: false }
log: { level: silent }
`
  gw = await startTestGateway(url, { configYaml: config(url) })
  // An upstream address nothing listens on: a port taken and released.
  const probe = http.createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()))
  const closed = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`
  await new Promise<void>((r) => probe.close(() => r()))
  down = await startTestGateway(closed, { configYaml: config(closed) })
})

after(async () => {
  await gw?.close()
  await down?.close()
  await new Promise<void>((r) => {
    upstream.close(() => r())
    for (const s of sockets) s.destroy()
  })
})

test('a clean body passes unchanged, byte for byte', async () => {
  const r = await request(gw.url, { path: '/api/clean' })
  assert.equal(r.status, 200)
  assert.equal(r.body, CLEAN)
  assert.equal(r.headers['content-length'], String(Buffer.byteLength(CLEAN)))
})

test('a body that arrives in many chunks is scanned whole: the key across a chunk boundary is masked', async () => {
  assert.ok(KEY.length > 20 && WITH_KEY.length / PIECE > 8, 'many pieces')
  assert.notEqual(
    Math.floor(KEY_AT / PIECE),
    Math.floor((KEY_AT + KEY.length - 1) / PIECE),
    'the key straddles two pieces',
  )
  const r = await request(gw.url, { path: '/api/chunked-key' })
  assert.equal(r.status, 200)
  assert.ok(!r.body.includes(KEY), 'the key never reaches the client')
  assert.equal(r.body, WITH_KEY.replace(KEY, 'ghp_***'))
  assert.deepEqual(JSON.parse(r.body).deploy, { token: 'ghp_***' })
})

test('a body over responseBodyLimit is refused with 502 GW_ERR_UPSTREAM_BAD_RESPONSE', async () => {
  const r = await request(gw.url, { path: '/api/too-big' })
  assert.equal(r.status, 502)
  assert.equal(JSON.parse(r.body).code, 'GW_ERR_UPSTREAM_BAD_RESPONSE')
  assert.ok(!r.body.includes('orders'), 'no part of the upstream body')
  // the gateway still answers afterwards
  assert.equal((await request(gw.url, { path: '/api/clean' })).status, 200)
})

test('an upstream that dies after its head yields a 502 problem, not a truncated 200', async () => {
  const r = await request(gw.url, { path: '/api/dies' })
  // An upstream failure (502), not the gateway's own 500.
  assert.equal(r.status, 502, r.body)
  assert.equal(JSON.parse(r.body).code, 'GW_ERR_UPSTREAM_UNAVAILABLE')
  assert.equal(r.headers['content-type'], 'application/problem+json')
  assert.ok(!r.body.includes('orders'), 'no part of the upstream body')
})

test('an upstream that is down yields 502 GW_ERR_UPSTREAM_UNAVAILABLE', async () => {
  const r = await request(down.url, { path: '/api/clean' })
  assert.equal(r.status, 502)
  assert.equal(JSON.parse(r.body).code, 'GW_ERR_UPSTREAM_UNAVAILABLE')
})
