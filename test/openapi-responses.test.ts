/**
 * openapi-validation on the response side, through the real `portcullis serve` process with the
 * demo spec, in front of an upstream that leaks an undeclared `passwordHash` and sends large
 * arrays.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { gunzipSync, gzipSync } from 'node:zlib'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { get } from './helpers/http.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

const ROOT = new URL('../../', import.meta.url).pathname
const SPEC = join(ROOT, 'examples/demo/openapi.yaml')

const order = (id: number) => ({ id, ownerId: 1, item: 'keyboard', quantity: 1, total: 49.9 })

function upstream(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown, type = 'application/json') => {
      const text = JSON.stringify(body)
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    const url = req.url ?? ''
    if (url === '/api/v2/users/me') {
      return send(200, {
        id: 1,
        username: 'alice',
        displayName: 'Alice',
        email: 'a@example.com',
        role: 'user',
        passwordHash: 'scrypt$16384$8$1$c2FsdA==$a2V5',
      })
    }
    if (url === '/api/v2/users/1') {
      // A compressed answer: no policy here can read it; the client must still get it intact.
      const gz = gzipSync(JSON.stringify({ id: 1, username: 'alice', role: 'user' }))
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
        'content-length': gz.length,
      })
      return res.end(gz)
    }
    if (url === '/api/v2/orders')
      return send(
        200,
        Array.from({ length: 10000 }, (_, i) => order(i + 1)),
      )
    if (url === '/api/v2/orders/1') return send(200, { ...order(1), quantity: 'many' })
    if (url === '/api/v2/orders/2') return send(418, { id: 2 })
    if (url === '/api/v2/orders/3') return send(200, order(3), 'text/html')
    if (url === '/api/v2/orders/5')
      return send(500, { error: 'TypeError: x is undefined', stack: 'at handler (/srv/app/orders.js:42:7)' })
    if (url === '/api/v2/orders/6') return send(503, 'upstream connect error: /srv/app/db.js:7', 'text/plain')
    return send(404, { type: 'about:blank', title: 'Not Found', status: 404 }, 'application/problem+json')
  })
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)))
}

function config(url: string, responses: string): string {
  return `listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${url}" } ] } }
routes:
  - name: all
    match: { pathPrefix: / }
    upstream: up
    responseBodyLimit: 4194304
    policies:
      openapi-validation:
        spec: ${JSON.stringify(SPEC)}
        responses: ${responses}
        maxResponseItems: 200
accessLog: { enabled: false }
reload: { watch: false }
log: { level: info }
`
}

let server: http.Server
let strip: GatewayProcess
let block: GatewayProcess
let monitor: GatewayProcess
before(async () => {
  server = await upstream()
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  ;[strip, block, monitor] = await Promise.all([
    spawnGateway(config(url, 'strip')),
    spawnGateway(config(url, 'block')),
    spawnGateway(config(url, 'monitor')),
  ])
})
after(async () => {
  await Promise.all([strip?.stop(), block?.stop(), monitor?.stop()])
  await new Promise((r) => server.close(r))
})

async function logged(gw: GatewayProcess, re: RegExp): Promise<void> {
  const deadline = Date.now() + 3000
  while (!re.test(gw.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  assert.match(gw.stderr(), re)
}

test('an undeclared passwordHash: stripped in strip mode, 502 in block mode, logged in monitor mode', async () => {
  const s = await get(strip.url, '/api/v2/users/me')
  assert.equal(s.status, 200)
  assert.deepEqual(JSON.parse(s.body), {
    id: 1,
    username: 'alice',
    displayName: 'Alice',
    email: 'a@example.com',
    role: 'user',
  })
  assert.equal(s.headers['content-length'], String(Buffer.byteLength(s.body)))
  const b = await get(block.url, '/api/v2/users/me')
  assert.equal(b.status, 502)
  assert.equal(JSON.parse(b.body).code, 'GW_ERR_UPSTREAM_RESPONSE_INVALID')
  assert.ok(!b.body.includes('scrypt'))
  const m = await get(monitor.url, '/api/v2/users/me')
  assert.equal(m.status, 200)
  assert.ok(m.body.includes('passwordHash'))
  await logged(monitor, /"pointer":"\/passwordHash".*response violates the spec \(monitor\)/)
  assert.ok(!monitor.stderr().includes('scrypt'), 'the leaked value is not logged')
})

test('a 10,000-item array is validated on a sample of maxResponseItems', async () => {
  const start = performance.now()
  const r = await get(block.url, '/api/v2/orders')
  const ms = performance.now() - start
  assert.equal(r.status, 200)
  assert.equal((JSON.parse(r.body) as unknown[]).length, 10000)
  console.log(`10,000-item response through block mode: ${ms.toFixed(1)} ms (200 items validated)`)
})

test('what each mode does with each case (the table in docs/policies/openapi-validation.md)', async () => {
  // path → [what the upstream sends, block, strip, monitor]
  const cases: [string, string, number, number, number][] = [
    ['/api/v2/orders/1', '200, a type error', 502, 502, 200],
    ['/api/v2/orders/2', '418, an undeclared 4xx status', 502, 418, 418],
    ['/api/v2/orders/3', '200, an undeclared content type', 502, 502, 200],
    ['/api/v2/orders/5', '500 with a stack trace, undeclared', 502, 502, 500],
    ['/api/v2/orders/6', '503 with a file path, undeclared', 502, 502, 503],
    ['/api/v2/orders/9', '404, declared', 404, 404, 404],
  ]
  for (const [path, what, b, s, m] of cases) {
    assert.equal((await get(block.url, path)).status, b, `block: ${what}`)
    assert.equal((await get(strip.url, path)).status, s, `strip: ${what}`)
    assert.equal((await get(monitor.url, path)).status, m, `monitor: ${what}`)
  }
  // the upstream's 5xx body never leaves in block or strip mode
  for (const gw of [block, strip]) {
    const r = await get(gw.url, '/api/v2/orders/5')
    assert.doesNotMatch(JSON.stringify(r.body), /stack|orders\.js/)
  }
})

test('a compressed answer on a buffered route keeps its Content-Encoding (monitor passes it intact; block refuses it)', async () => {
  const m = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
    (resolve, reject) => {
      const u = new URL(monitor.url)
      http
        .get({ host: u.hostname, port: u.port, path: '/api/v2/users/1', agent: false }, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          )
        })
        .on('error', reject)
    },
  )
  assert.equal(m.status, 200)
  assert.equal(m.headers['content-encoding'], 'gzip', 'the body is still gzip: so must the header say')
  assert.equal(m.headers['content-length'], String(m.body.length))
  assert.deepEqual(JSON.parse(gunzipSync(m.body).toString()), { id: 1, username: 'alice', role: 'user' })
  const b = await get(block.url, '/api/v2/users/1')
  assert.equal(b.status, 502, 'a body the gateway cannot inspect is refused in block mode')
})
