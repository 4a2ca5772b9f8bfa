/**
 * Keys that travel through the real `portcullis serve` never reach a line it writes in clear: the
 * gateway log (stderr, debug level), the access log (stdout), the audit file and the admin API's
 * answers. Keys go in a query string (as a value, and as a parameter name the spec does not
 * declare, which openapi-validation echoes), in the path (walked as sequential ids, which the
 * enumeration detector quotes in its alert), in a custom header and an Authorization header, in an
 * upstream JSON error body (as a value and as a property name, which leak-guard's JSON pointer
 * names) and in an upstream stack trace. Each path that does write the key's neighbourhood is
 * checked to have written it masked (`ghp_***`), so the test fails if a line is not written at all
 * as well as if a key is written in clear.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Fakes } from '../src/secrets/testing/fakes.js'
import { spawnGateway, tempDir } from './helpers/process.js'

const ROOT = new URL('../../', import.meta.url).pathname
const f = new Fakes(1616)

// Keys of several providers, made now (no literal key in the repository).
const K = {
  queryName: f.crcToken('ghp_'),
  queryValue: `sk_live_${f.chars('a', 28)}`,
  path: f.crcToken('npm_'),
  header: `xoxb-${f.chars('d', 12)}-${f.chars('d', 13)}-${f.chars('a', 24)}`,
  bearer: `sk-ant-api03-${f.chars('w', 93)}AA`,
  jsonValue: `glpat-${f.chars('w', 20)}`,
  jsonName: f.crcToken('ghp_'),
  stackPassword: f.chars('a', 22),
  stackAws: `AKIA${f.chars('B32', 16)}`,
  adminToken: `adm-${f.chars('h', 40)}`,
}

const SPEC = `openapi: 3.0.3
info: { title: orders, version: '1' }
paths:
  /orders:
    get:
      operationId: listOrders
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: { type: object, properties: { orders: { type: array } }, additionalProperties: false }
`

let upstream: http.Server
let upstreamUrl = ''
before(async () => {
  upstream = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    if (u.pathname.endsWith('/json-error')) {
      // An upstream error body naming the key as a value and as a property name.
      const body = JSON.stringify({
        error: { code: 'invalid_credentials', message: `token ${K.jsonValue} was revoked` },
        revoked: { [K.jsonName]: true },
      })
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end(body)
    } else if (u.pathname.endsWith('/stack')) {
      const trace = [
        `Error: password authentication failed for postgres://app:${K.stackPassword}@db.internal:5432/orders`,
        '    at Connection.parseE (/srv/node_modules/pg/lib/connection.js:614:13)',
        `    at S3Client.send (/srv/lib/storage.js:41:9) accessKeyId=${K.stackAws}`,
        '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
      ].join('\n')
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end(trace)
    } else if (u.pathname === '/api/v/orders') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ orders: [] }))
    } else {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end('{"error":"not found"}')
    }
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
})
after(async () => {
  await new Promise((r) => upstream.close(r))
})

function cli(args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/portcullis.js'), ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  })
  return { code: r.status, stderr: r.stderr }
}

function allFiles(dir: string): string {
  let text = ''
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) text += allFiles(join(dir, e.name))
    else text += readFileSync(join(dir, e.name), 'latin1')
  }
  return text
}

async function send(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { headers })
  return { status: r.status, body: await r.text() }
}

test('keys in queries, paths, headers, upstream error bodies and stack traces never reach a log line, an audit record or an admin answer in clear', async () => {
  const dir = tempDir('pc-secrets-gw-')
  writeFileSync(join(dir, 'spec.yaml'), SPEC)
  writeFileSync(join(dir, 'admin-token.txt'), `${K.adminToken}\n`, { mode: 0o600 })
  const kc = cli(['keys', 'create', '--store', join(dir, 'keys.json'), '--owner', 'svc-orders'])
  assert.equal(kc.code, 0, kc.stderr)
  const kg = cli(['audit', 'keygen', '--keyring', join(dir, 'audit-keys.json')])
  assert.equal(kg.code, 0, kg.stderr)
  const gw = await spawnGateway(
    `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0, token: "\${file:admin-token.txt}" }
log: { level: debug }
upstreams: { main: { targets: [ { url: "${upstreamUrl}" } ] } }
routes:
  - name: spec
    match: { pathPrefix: /api/v }
    upstream: main
    policies:
      openapi-validation: { spec: spec.yaml, basePath: /api/v, unknownQueryParams: block, responses: monitor }
  - name: guarded
    match: { pathPrefix: /api/g }
    upstream: main
    policies:
      leak-guard: { mode: monitor }
  - name: keyed
    match: { pathPrefix: /api/k }
    upstream: main
    policies:
      api-key-auth: { store: keys.json }
  - name: raw
    match: { pathPrefix: / }
    upstream: main
detect:
  enabled: true
  enumeration: { sequentialRun: 5, sequentialRunAllowed: 5 }
accessLog: { destination: stdout }
reload: { watch: false }
audit:
  enabled: true
  keyring: { file: audit-keys.json }
  events: { authSuccess: true }
`,
    dir,
    { captureStdout: true },
  )
  const answers: string[] = []
  try {
    // 1. Query string: a key as a value (a plain route), and as a parameter name the spec does not
    //    declare (openapi-validation refuses it and names the parameter in its log line).
    assert.equal((await send(`${gw.url}/api/raw/callback?access_token=${K.queryValue}&page=2`)).status, 404)
    const refused = await send(`${gw.url}/api/v/orders?${K.queryName}=1`)
    assert.equal(refused.status, 400)
    // 2. Path: a walk over sequential ids under a path holding a key (the enumeration alert quotes
    //    the collection path); a custom header and a bearer token on each request.
    for (let id = 1; id <= 6; id++) {
      const r = await send(`${gw.url}/api/raw/hooks/${K.path}/items/${id}`, {
        'x-vendor-token': K.header,
        authorization: `Bearer ${K.bearer}`,
      })
      assert.equal(r.status, 404)
    }
    // A refused credential (audit record of the denial).
    assert.equal((await send(`${gw.url}/api/k/orders`, { authorization: `Bearer ${K.bearer}` })).status, 401)
    // 3. Upstream JSON error body and stack trace, through leak-guard (monitor: logged, audited,
    //    passed) and through the plain route.
    for (const route of ['/api/g', '/api/raw']) {
      assert.equal((await send(`${gw.url}${route}/json-error`)).status, 401)
      assert.equal((await send(`${gw.url}${route}/stack`)).status, 500)
    }
    // The enumeration alert, and leak-guard's findings, are written.
    await gw.waitForLog(
      (t) => /"enumeration"/.test(t) && (t.match(/leak-guard: credential/g) ?? []).length >= 2,
      15_000,
    )
    // 4. The admin API: recent alerts (their summaries quote the path).
    const admin = { authorization: `Bearer ${K.adminToken}` }
    const alerts = await send(`${gw.adminUrl}/v1/alerts`, admin)
    assert.equal(alerts.status, 200)
    answers.push(alerts.body)
    const config = await send(`${gw.adminUrl}/v1/config`, admin)
    assert.equal(config.status, 200)
    answers.push(config.body)
  } finally {
    assert.equal(await gw.stop(), 0)
  }

  const gatewayLog = gw.stderr()
  const accessLog = gw.stdout()
  const audit = allFiles(join(dir, 'audit'))
  const admin = answers.join('\n')
  const places = { 'gateway log': gatewayLog, 'access log': accessLog, audit, 'admin API': admin }
  // What was written at all: the lines the keys' paths produce (else the test proves nothing).
  assert.match(gatewayLog, /openapi-validation: request refused/)
  assert.match(gatewayLog, /leak-guard: credential in an upstream response/)
  assert.match(accessLog, /\/api\/raw\/hooks\//)
  assert.match(audit, /leak\.detected/)
  assert.match(audit, /alert/)
  assert.match(admin, /walked 5 consecutive ids/)
  // …and written masked where they quote a key's neighbourhood.
  assert.match(gatewayLog, /"name":"ghp_\*\*\*"/, 'the undeclared parameter is named, masked')
  assert.match(accessLog, /\/api\/raw\/hooks\/npm_\*\*\*\/items\/1"/, 'the access log path is masked')
  assert.match(admin, /hooks\/npm_\*\*\*\/items/, 'the alert summary quotes the path, masked')
  assert.match(audit, /hooks\/npm_\*\*\*\/items/, 'the audited path is masked')
  // No key, nor the part of it after its public prefix, anywhere.
  const leaks: string[] = []
  for (const [name, key] of Object.entries(K)) {
    const tail = key.slice(Math.min(8, key.length - 16))
    for (const [where, text] of Object.entries(places)) {
      if (text.includes(key) || text.includes(tail)) leaks.push(`${name} in the ${where}`)
    }
  }
  assert.deepEqual(leaks, [])
})
