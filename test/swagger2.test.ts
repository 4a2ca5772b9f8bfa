/**
 * Swagger 2.0 documents everywhere: the Petstore 2.0 spec routes and validates requests in the
 * real `portcullis serve` process, and `portcullis scan` runs against a tiny Petstore on 127.0.0.1
 * with it (the linter side is in test/lint-cli.test.ts).
 */
import assert from 'node:assert/strict'
import { copyFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { runScan } from '../src/scanner/engine.js'
import { request } from './helpers/http.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'
import { type RecordingUpstream, startRecordingUpstream } from './helpers/servers.js'

const ROOT = new URL('../../', import.meta.url).pathname
const PETSTORE2 = join(ROOT, 'test/fixtures/lint/real/petstore-swagger2.yaml')

describe('Swagger 2.0 Petstore in the gateway (portcullis serve)', () => {
  let up: RecordingUpstream
  let gw: GatewayProcess
  before(async () => {
    up = await startRecordingUpstream()
    const dir = tempDir()
    copyFileSync(PETSTORE2, join(dir, 'petstore.yaml'))
    gw = await spawnGateway(
      `listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: petstore
    match: { pathPrefix: /, openapi: { spec: petstore.yaml } }
    upstream: up
    policies:
      openapi-validation: { spec: petstore.yaml, mode: block }
reload: { watch: false }
log: { level: info }
`,
      dir,
    )
  })
  after(async () => {
    await gw?.stop()
    await up?.close()
  })

  test('operations of the 2.0 document are routes; parameters and bodies are validated as converted', async () => {
    up.clear()
    assert.equal((await request(gw.url, { path: '/pet/7' })).status, 200)
    const badId = await request(gw.url, { path: '/pet/seven' })
    assert.equal(badId.status, 400, badId.body)
    assert.equal(JSON.parse(badId.body).code, 'GW_ERR_VALIDATION')
    // collectionFormat: multi → style form, explode: repeated parameters are an array of enum values.
    assert.equal(
      (await request(gw.url, { path: '/pet/findByStatus?status=available&status=sold' })).status,
      200,
    )
    assert.equal((await request(gw.url, { path: '/pet/findByStatus?status=gone' })).status, 400)
    const json = { 'content-type': 'application/json' }
    const ok = await request(gw.url, {
      method: 'POST',
      path: '/pet',
      headers: json,
      body: JSON.stringify({ name: 'rex', photoUrls: ['https://img.example/rex.png'] }),
    })
    assert.equal(ok.status, 200, ok.body)
    const missing = await request(gw.url, {
      method: 'POST',
      path: '/pet',
      headers: json,
      body: '{"photoUrls":[]}',
    })
    assert.equal(missing.status, 400)
    // formData → application/x-www-form-urlencoded body.
    const form = await request(gw.url, {
      method: 'POST',
      path: '/pet/7',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'name=rex&status=sold',
    })
    assert.equal(form.status, 200, form.body)
    const notInSpec = await request(gw.url, { path: '/v1/debug' })
    assert.equal(notInSpec.status, 404)
    assert.equal(JSON.parse(notInSpec.body).code, 'GW_ERR_ROUTE_NOT_IN_SPEC')
    assert.deepEqual(
      up.requests.map((r) => `${r.method} ${r.url}`),
      ['GET /pet/7', 'GET /pet/findByStatus?status=available&status=sold', 'POST /pet', 'POST /pet/7'],
    )
  })
})

describe('Swagger 2.0 Petstore scanned (portcullis scan)', () => {
  let server: http.Server
  let url: string
  const seen: string[] = []
  before(async () => {
    // A tiny Petstore: pets by id, lists, everything else a plain JSON answer.
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`)
      req.resume()
      const path = (req.url ?? '').split('?')[0] as string
      const m = /^\/v2\/pet\/(\d+)$/.exec(path)
      const body =
        m && req.method === 'GET'
          ? { id: Number(m[1]), name: 'rex', photoUrls: [], status: 'available' }
          : path.startsWith('/v2/pet/find')
            ? [{ id: 1, name: 'rex', photoUrls: [], status: 'available' }]
            : path.startsWith('/v2/')
              ? { code: 200, type: 'ok', message: 'ok' }
              : undefined
      if (body === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}')
        return
      }
      res
        .writeHead(200, { 'content-type': 'application/json', 'x-powered-by': 'Express' })
        .end(JSON.stringify(body))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2`
  })
  after(() => new Promise<void>((r) => server.close(() => r())))

  test('the scanner loads the 2.0 document and exercises its operations', async () => {
    const report = await runScan({ spec: PETSTORE2, target: url, rate: 200, concurrency: 4, timeoutMs: 5000 })
    assert.ok(report.checks.length > 0)
    assert.ok(report.stats.requests > 0 && report.stats.requests < 5000, `${report.stats.requests} requests`)
    assert.ok(
      seen.some((s) => s.startsWith('GET /v2/pet/findByStatus')),
      seen.slice(0, 20).join('\n'),
    )
    assert.ok(seen.every((s) => s.split(' ')[1]?.startsWith('/')))
    assert.ok(
      report.findings.some((f) => f.checkId === 'tech-disclosure'),
      report.findings.map((f) => f.checkId).join(', '),
    )
    console.log(
      `scan of the Swagger 2.0 Petstore: ${report.stats.requests} requests, ${report.checks.length} checks, ${report.findings.length} findings`,
    )
  })
})
