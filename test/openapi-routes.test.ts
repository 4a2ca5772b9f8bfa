/**
 * Routes from an OpenAPI spec (`match.openapi`), remote `$ref`s and multipart bodies through the
 * real `portcullis serve` process.
 */
import assert from 'node:assert/strict'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { request } from './helpers/http.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'
import { type RecordingUpstream, startRecordingUpstream } from './helpers/servers.js'

const ROOT = new URL('../../', import.meta.url).pathname
const DEMO_SPEC = join(ROOT, 'examples/demo/openapi.yaml')

function gatewayConfig(upstream: string, routes: string, extra = ''): string {
  return `listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${upstream}" } ] } }
routes:
${routes}
accessLog: { enabled: true, destination: stderr }
reload: { watch: false }
log: { level: info }
${extra}`
}

/** The access log lines' route names, by `METHOD path`. */
function routesLogged(gw: GatewayProcess): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of gw.stderr().split('\n')) {
    if (!line.startsWith('{"level":30') || !line.includes('"msg":"request"')) continue
    const r = JSON.parse(line) as { method: string; path: string; route: string }
    out.set(`${r.method} ${r.path}`, r.route)
  }
  return out
}

async function waitFor(fn: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 25))
  }
}

describe('routes from the demo spec (match.openapi)', () => {
  let up: RecordingUpstream
  let gw: GatewayProcess
  let mon: GatewayProcess
  let dir: string
  before(async () => {
    up = await startRecordingUpstream()
    dir = tempDir()
    copyFileSync(DEMO_SPEC, join(dir, 'openapi.yaml'))
    gw = await spawnGateway(
      gatewayConfig(
        up.url,
        `  - name: demo
    match: { pathPrefix: /, openapi: { spec: openapi.yaml } }
    upstream: up
    policies:
      openapi-validation: { spec: openapi.yaml, mode: monitor, undeclaredRoutes: monitor }`,
      ),
      dir,
    )
    mon = await spawnGateway(
      gatewayConfig(
        up.url,
        `  - name: shadowed
    match: { pathPrefix: /, openapi: { spec: ${JSON.stringify(DEMO_SPEC)}, undeclared: monitor } }
    upstream: up`,
      ),
    )
  })
  after(async () => {
    await gw?.stop()
    await mon?.stop()
    await up?.close()
  })

  test('every operation is a route named by its operationId; the rest is 404/405 GW_ERR_*_NOT_IN_SPEC', async () => {
    up.clear()
    assert.equal((await request(gw.url, { path: '/api/v2/orders/7' })).status, 200)
    assert.equal((await request(gw.url, { method: 'DELETE', path: '/api/v2/orders/7' })).status, 200)
    assert.equal((await request(gw.url, { path: '/healthz' })).status, 200)
    const debug = await request(gw.url, { path: '/api/v2/debug/config' })
    assert.equal(debug.status, 404)
    assert.equal(JSON.parse(debug.body).code, 'GW_ERR_ROUTE_NOT_IN_SPEC')
    const v1 = await request(gw.url, { path: '/api/v1/users/1' })
    assert.equal(JSON.parse(v1.body).code, 'GW_ERR_ROUTE_NOT_IN_SPEC')
    const method = await request(gw.url, { method: 'PATCH', path: '/api/v2/orders/7' })
    assert.equal(method.status, 405)
    assert.equal(JSON.parse(method.body).code, 'GW_ERR_METHOD_NOT_IN_SPEC')
    assert.equal(method.headers.allow, 'GET, PUT, DELETE')
    assert.deepEqual(
      up.requests.map((r) => `${r.method} ${r.url}`),
      ['GET /api/v2/orders/7', 'DELETE /api/v2/orders/7', 'GET /healthz'],
    )
    await gw.waitForLog((s) => routesLogged({ stderr: () => s } as GatewayProcess).size >= 6)
    const routes = routesLogged(gw)
    assert.equal(routes.get('GET /api/v2/orders/7'), 'getOrder')
    assert.equal(routes.get('DELETE /api/v2/orders/7'), 'deleteOrder')
    assert.equal(routes.get('GET /healthz'), 'getHealth')
    assert.equal(routes.get('GET /api/v2/debug/config'), 'demo')
  })

  test('undeclared: monitor passes what the spec lacks and logs it as shadow-api', async () => {
    up.clear()
    const r = await request(mon.url, { path: '/api/v2/debug/config' })
    assert.equal(r.status, 200)
    assert.deepEqual(
      up.requests.map((x) => x.url),
      ['/api/v2/debug/config'],
    )
    await mon.waitForLog(/"event":"shadow-api".*"path":"\/api\/v2\/debug\/config"/)
    await mon.waitForLog(
      (s) =>
        routesLogged({ stderr: () => s } as GatewayProcess).get('GET /api/v2/debug/config') === 'shadowed',
    )
    assert.equal((await request(mon.url, { path: '/api/v2/orders/1' })).status, 200)
    await mon.waitForLog(
      (s) => routesLogged({ stderr: () => s } as GatewayProcess).get('GET /api/v2/orders/1') === 'getOrder',
    )
  })

  test('a reload picks up a changed spec', async () => {
    assert.equal((await request(gw.url, { path: '/api/v2/reports' })).status, 404)
    const spec = readFileSync(join(dir, 'openapi.yaml'), 'utf8').replace(
      '\npaths:\n',
      `\npaths:\n  /api/v2/reports:\n    get:\n      operationId: listReports\n      responses: { "200": { description: ok } }\n`,
    )
    writeFileSync(join(dir, 'openapi.yaml'), spec)
    gw.child.kill('SIGHUP')
    await waitFor(async () => (await request(gw.url, { path: '/api/v2/reports' })).status === 200)
    await gw.waitForLog(
      (s) => routesLogged({ stderr: () => s } as GatewayProcess).get('GET /api/v2/reports') === 'listReports',
    )
  })

  test('a spec that does not load keeps the gateway from starting', async () => {
    const d = tempDir()
    writeFileSync(
      join(d, 'bad.yaml'),
      'openapi: 3.1.0\ninfo: { title: t, version: "1" }\npaths:\n  /a/{id}:\n    get: { responses: { "200": { description: ok } } }\n',
    )
    await assert.rejects(
      spawnGateway(
        gatewayConfig(up.url, `  - name: bad\n    match: { openapi: { spec: bad.yaml } }\n    upstream: up`),
        d,
      ),
      /path template variable "id" has no path parameter/,
    )
  })
})

describe('through the real gateway: multipart bodies and remote $refs', () => {
  let up: RecordingUpstream
  let docs: http.Server
  let gw: GatewayProcess
  before(async () => {
    up = await startRecordingUpstream()
    docs = http.createServer((req, res) => {
      if (req.url === '/schemas.yaml')
        return void res.end(
          'Upload:\n  type: object\n  required: [title]\n  properties:\n    title: { type: string, maxLength: 10 }\n    file: { type: string, format: binary }\n',
        )
      res.writeHead(404).end()
    })
    await new Promise<void>((r) => docs.listen(0, '127.0.0.1', () => r()))
    const host = `127.0.0.1:${(docs.address() as AddressInfo).port}`
    const d = tempDir()
    writeFileSync(
      join(d, 'api.yaml'),
      `openapi: 3.0.3
info: { title: t, version: '1' }
paths:
  /upload:
    post:
      operationId: upload
      requestBody:
        content:
          multipart/form-data:
            schema: { $ref: 'http://${host}/schemas.yaml#/Upload' }
      responses: { '200': { description: ok } }
`,
    )
    gw = await spawnGateway(
      gatewayConfig(
        up.url,
        `  - name: api
    match: { pathPrefix: / }
    upstream: up
    policies:
      openapi-validation:
        spec: api.yaml
        allowRemoteHosts: ["${host}"]
        undeclaredProperties: strip
        multipart: { maxFileBytes: 100000 }`,
      ),
      d,
    )
  })
  after(async () => {
    await gw?.stop()
    await up?.close()
    docs?.close()
  })

  const B = 'b0undary'
  const statuses: number[] = []
  after(() =>
    console.log(
      `# oversized upload answered with status ${statuses.join(', ')} (0 = connection reset while writing)`,
    ),
  )
  const part = (name: string, content: string, filename?: string) =>
    `--${B}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n\r\n${content}\r\n`
  const send = (body: string | Buffer) =>
    request(gw.url, {
      method: 'POST',
      path: '/upload',
      headers: { 'content-type': `multipart/form-data; boundary=${B}` },
      body,
    })

  test('a declared upload passes (the schema came from the remote document); undeclared parts are stripped', async () => {
    up.clear()
    const r = await send(
      `${part('title', 'hi')}${part('file', 'x'.repeat(5000), 'a.bin')}${part('role', 'admin')}--${B}--\r\n`,
    )
    assert.equal(r.status, 200, r.body)
    const got = up.requests[0]?.body.toString('latin1') ?? ''
    assert.equal(got, `${part('title', 'hi')}${part('file', 'x'.repeat(5000), 'a.bin')}--${B}--\r\n`)
    assert.equal(up.requests[0]?.headers['content-length'], String(got.length))
    const bad = await send(`${part('title', 'far too long a title')}--${B}--\r\n`)
    assert.equal(bad.status, 400)
    assert.equal(JSON.parse(bad.body).code, 'GW_ERR_VALIDATION')
  })

  test('a file part over the limit is refused with 413 while it streams; broken framing is 400', async () => {
    up.clear()
    const big = Buffer.concat([
      Buffer.from(
        `${part('title', 'hi')}--${B}\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\n`,
      ),
      Buffer.alloc(500_000, 0x61), // under the route's request-size-limit (1 MiB), over maxFileBytes
      Buffer.from(`\r\n--${B}--\r\n`),
    ])
    const r = await send(big).catch((err: Error) => ({ status: 0, body: err.message, headers: {} }))
    statuses.push(r.status)
    // the gateway answers 413 and closes; a client still writing may see the reset instead
    if (r.status !== 0) {
      assert.equal(r.status, 413)
      assert.equal(JSON.parse(r.body).code, 'GW_ERR_BODY_TOO_LARGE')
    }
    assert.equal(up.requests.length, 0)
    await gw.waitForLog(/"reason":"a file part is over 100000 bytes".*multipart body refused/)
    const broken = await send(`${part('title', 'hi')}`)
    assert.equal(broken.status, 400)
    assert.equal(JSON.parse(broken.body).code, 'GW_ERR_MALFORMED_BODY')
  })
})
