/**
 * Proxy behaviour through the real `portcullis serve` process, with real upstreams on 127.0.0.1.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'
import { closedPort, startUpstream, type TestUpstream } from './helpers/upstream.js'
import { type Res, request } from './helpers/http.js'

describe('proxy', () => {
  let up: TestUpstream
  let gw: GatewayProcess
  let deadPort: number

  before(async () => {
    up = await startUpstream('main')
    deadPort = await closedPort()
    gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  main: { targets: [ { url: "${up.url}" } ], headersTimeout: 500ms }
  dead: { targets: [ { url: "http://127.0.0.1:${deadPort}" } ], retries: 0 }
  mixed: { targets: [ { url: "http://127.0.0.1:${deadPort}" }, { url: "${up.url}" } ], retries: 1, passiveHealth: { failures: 2, eject: 1m } }
  based: { targets: [ { url: "${up.url}/base/" } ] }
routes:
  - { name: main, match: { pathPrefix: /api }, upstream: main, stripPrefix: true }
  - { name: dead, match: { pathPrefix: /dead }, upstream: dead }
  - { name: mixed, match: { pathPrefix: /mixed }, upstream: mixed, stripPrefix: true }
  - { name: strip, match: { pathPrefix: /strip/ }, upstream: based, stripPrefix: true }
  - { name: only-get, match: { pathPrefix: /ro, methods: [GET] }, upstream: main }
  - { name: host-a, match: { hosts: [a.example], pathPrefix: /h }, upstream: main }
  - { name: host-wild, match: { hosts: ["*.example"], pathPrefix: /h }, upstream: dead }
  - name: small
    match: { pathPrefix: /small }
    upstream: main
    stripPrefix: true
    policies: { request-size-limit: { maxBodyBytes: 10 } }
accessLog: { destination: access.log }
reload: { watch: false }
`)
  })
  after(async () => {
    await gw?.stop()
    await up?.close()
  })

  test('forwards to the upstream with the canonical path and query', async () => {
    const r = await request(gw.url, { path: '/api//x/./y/../z%7e?q=1&r=%20' })
    assert.equal(r.status, 200)
    assert.deepEqual(JSON.parse(r.body), { path: '/x/z~?q=1&r=%20', marker: 'main' })
  })

  test('strips hop-by-hop headers both ways and sets X-Forwarded-*', async () => {
    const r = await request(gw.url, {
      path: '/api/echo',
      headers: {
        connection: 'keep-alive, x-hop',
        'x-hop': '1',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-host': 'evil.example',
        'x-real-ip': '6.6.6.6',
        'x-custom': 'kept',
      },
    })
    assert.equal(r.status, 200)
    const seen = JSON.parse(r.body) as { headers: Record<string, string> }
    for (const h of ['x-hop', 'keep-alive', 'te', 'proxy-authorization', 'x-real-ip']) {
      assert.equal(seen.headers[h], undefined, `${h} must not reach the upstream`)
    }
    assert.equal(seen.headers['x-custom'], 'kept')
    assert.equal(
      seen.headers['x-forwarded-for'],
      '127.0.0.1',
      'an untrusted client cannot spoof X-Forwarded-For',
    )
    assert.equal(seen.headers['x-forwarded-proto'], 'http')
    assert.match(seen.headers['x-forwarded-host'] ?? '', /^127\.0\.0\.1:\d+$/)
    assert.equal(seen.headers.host, `127.0.0.1:${up.port}`)
    assert.match(seen.headers['x-request-id'] ?? '', /^[A-Za-z0-9_-]{16}-[0-9a-z]+$/)
    assert.equal(r.headers['x-request-id'], seen.headers['x-request-id'])

    const leaky = await request(gw.url, { path: '/api/leaky' })
    assert.equal(leaky.headers.server, undefined)
    assert.equal(leaky.headers['x-powered-by'], undefined)
    assert.equal(
      leaky.headers['x-internal'],
      undefined,
      'a header the upstream named in Connection is hop-by-hop',
    )
    assert.equal(leaky.headers['x-content-type-options'], 'nosniff')
    assert.equal(leaky.headers['cache-control'], 'no-store')
  })

  test('accepts a well-formed X-Request-Id and replaces a malformed one', async () => {
    const good = await request(gw.url, { path: '/api/echo', headers: { 'x-request-id': 'abc-123_def.456' } })
    assert.equal(good.headers['x-request-id'], 'abc-123_def.456')
    const bad = await request(gw.url, { path: '/api/echo', headers: { 'x-request-id': 'x "<script>' } })
    assert.notEqual(bad.headers['x-request-id'], 'x "<script>')
    assert.match(bad.headers['x-request-id'] as string, /^[A-Za-z0-9_-]{16}-[0-9a-z]+$/)
  })

  test('HEAD, 204 and 304 carry no body', async () => {
    const head = await request(gw.url, { method: 'HEAD', path: '/api/download?mb=1' })
    assert.equal(head.status, 200)
    assert.equal(head.headers['content-length'], String(1024 * 1024))
    assert.equal(head.body, '')
    const noContent = await request(gw.url, { path: '/api/status/204' })
    assert.equal(noContent.status, 204)
    assert.equal(noContent.body, '')
    const notModified = await request(gw.url, {
      path: '/api/status/304',
      headers: { 'if-none-match': '"v1"' },
    })
    assert.equal(notModified.status, 304)
    assert.equal(notModified.headers.etag, '"v1"')
    assert.equal(notModified.body, '')
  })

  test('Expect: 100-continue gets 100 Continue from the gateway; the body then streams upstream', async () => {
    const u = new URL(gw.url)
    const result = await new Promise<{ continued: boolean; body: string }>((resolve, reject) => {
      let continued = false
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          method: 'POST',
          path: '/api/upload',
          agent: false,
          headers: { expect: '100-continue', 'content-length': '5' },
        },
        (res) => {
          let body = ''
          res.on('data', (c: Buffer) => {
            body += c
          })
          res.on('end', () => resolve({ continued, body }))
        },
      )
      req.on('continue', () => {
        continued = true
        req.end('hello')
      })
      req.on('error', reject)
    })
    assert.equal(result.continued, true)
    assert.equal((JSON.parse(result.body) as { size: number }).size, 5)
  })

  test('upstream down → 502 problem+json GW_ERR_UPSTREAM_UNAVAILABLE', async () => {
    const r = await request(gw.url, { path: '/dead/x' })
    assert.equal(r.status, 502)
    assert.equal(r.headers['content-type'], 'application/problem+json')
    const p = JSON.parse(r.body) as { code: string; status: number; detail?: string }
    assert.equal(p.code, 'GW_ERR_UPSTREAM_UNAVAILABLE')
    assert.equal(p.status, 502)
    assert.equal(r.body.includes('ECONNREFUSED'), false, 'no internals in the client response')
  })

  test('upstream too slow → 504 GW_ERR_UPSTREAM_TIMEOUT', async () => {
    const r = await request(gw.url, { path: '/api/slow?ms=3000' })
    assert.equal(r.status, 504)
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'GW_ERR_UPSTREAM_TIMEOUT')
  })

  test('idempotent requests retry on another target when a connect fails; the dead target is ejected', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await request(gw.url, { path: `/mixed/n${i}` })
      assert.equal(r.status, 200, `request ${i}`)
      assert.equal((JSON.parse(r.body) as { path: string }).path, `/n${i}`)
    }
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text()
    assert.match(
      metrics,
      new RegExp(
        `portcullis_upstream_target_up\\{upstream="mixed",target="http://127.0.0.1:${deadPort}"\\} 0`,
      ),
    )
    assert.match(metrics, /portcullis_upstream_errors_total\{upstream="mixed",kind="connect"\} [1-9]/)
  })

  test('a POST is not retried after a failed connect', async () => {
    // Rest the live target: fresh upstream "dead" has only the closed port.
    const r = await request(gw.url, {
      method: 'POST',
      path: '/dead/x',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(r.status, 502)
  })

  test('prefix strip and target base path', async () => {
    const r = await request(gw.url, { path: '/strip/a/b?c=d' })
    assert.equal((JSON.parse(r.body) as { path: string }).path, '/base/a/b?c=d')
  })

  test('routing: no route → 404, wrong method → 405 with Allow, hosts exact before wildcard', async () => {
    const none = await request(gw.url, { path: '/nothing' })
    assert.equal(none.status, 404)
    assert.equal((JSON.parse(none.body) as { code: string }).code, 'GW_ERR_ROUTE_NOT_FOUND')
    const prefixBoundary = await request(gw.url, { path: '/apix' })
    assert.equal(prefixBoundary.status, 404, '/api must not match /apix')
    const wrong = await request(gw.url, { method: 'DELETE', path: '/ro/x' })
    assert.equal(wrong.status, 405)
    assert.equal(wrong.headers.allow, 'GET')
    const headOnGet = await request(gw.url, { method: 'HEAD', path: '/ro/x' })
    assert.equal(headOnGet.status, 200)
    const exact = await request(gw.url, { path: '/h', headers: { host: 'a.example' } })
    assert.equal(exact.status, 200)
    const wild = await request(gw.url, { path: '/h', headers: { host: 'b.example' } })
    assert.equal(wild.status, 502, 'the wildcard route goes to the dead upstream')
    const noHost = await request(gw.url, { path: '/h', headers: { host: 'other.test' } })
    assert.equal(noHost.status, 404)
  })

  test('request body over the route limit → 413, declared or chunked', async () => {
    const declared = await request(gw.url, { method: 'POST', path: '/small', body: 'x'.repeat(11) })
    assert.equal(declared.status, 413)
    assert.equal((JSON.parse(declared.body) as { code: string }).code, 'GW_ERR_BODY_TOO_LARGE')
    const chunked = await new Promise<Res>((resolve, reject) => {
      const u = new URL(gw.url)
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          method: 'POST',
          path: '/small/upload',
          agent: false,
          headers: { 'transfer-encoding': 'chunked' },
        },
        (res) => {
          let body = ''
          res.on('data', (c: Buffer) => {
            body += c
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
        },
      )
      req.on('error', reject)
      req.write('12345')
      req.write('67890')
      req.end('abcde')
    })
    assert.equal(chunked.status, 413)
    assert.equal(chunked.headers.connection, 'close')
    const ok = await request(gw.url, { method: 'POST', path: '/small/upload', body: '0123456789' })
    assert.deepEqual(JSON.parse(ok.body), {
      size: 10,
      sha256: createHash('sha256').update('0123456789').digest('hex'),
    })
  })

  test('admin: /healthz, /readyz, /metrics', async () => {
    assert.equal((await fetch(`${gw.adminUrl}/healthz`)).status, 200)
    assert.equal((await fetch(`${gw.adminUrl}/readyz`)).status, 200)
    const m = await (await fetch(`${gw.adminUrl}/metrics`)).text()
    assert.match(m, /portcullis_requests_total\{route="main",status="200",decision="allowed"\} \d+/)
    assert.match(m, /portcullis_request_duration_seconds_bucket\{le="0.005",route="main"\} \d+/)
    assert.match(m, /portcullis_denials_total\{code="GW_ERR_ROUTE_NOT_FOUND"\} \d+/)
    assert.match(m, /portcullis_upstream_errors_total\{upstream="dead",kind="connect"\} \d+/)
    assert.equal((await fetch(`${gw.adminUrl}/nope`)).status, 404)
  })

  test('access log: one JSON line per request, credentials never in it', async () => {
    const token = 'Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.sig-abc123'
    const cookie = 'sid=cookie-value-7f3a9'
    const apiKey = 'pcl_leakcheck_0123456789'
    const r = await request(gw.url, {
      path: '/api/echo?x=1',
      headers: { authorization: token, cookie, 'x-api-key': apiKey, 'x-request-id': 'log-check-000001' },
    })
    assert.equal(r.status, 200)
    const { readFileSync } = await import('node:fs')
    const { join } = await import('node:path')
    let text = ''
    for (let i = 0; i < 100 && !text.includes('log-check-000001'); i++) {
      await new Promise((res) => setTimeout(res, 50))
      // The access log is buffered (4 KiB); a graceful stop flushes it, so also poke it with traffic.
      await request(gw.url, { path: '/api/pad'.padEnd(200, 'x') })
      text = readFileSync(join(gw.dir, 'access.log'), 'utf8')
    }
    const line = text.split('\n').find((l) => l.includes('log-check-000001'))
    assert.ok(line, 'the request is in the access log')
    const rec = JSON.parse(line) as Record<string, unknown>
    assert.equal(rec.method, 'GET')
    assert.equal(rec.path, '/api/echo')
    assert.equal(rec.route, 'main')
    assert.equal(rec.status, 200)
    assert.equal(rec.decision, 'allowed')
    assert.equal(typeof rec.durationMs, 'number')
    assert.ok((rec.bytesOut as number) > 0)
    assert.equal(rec.upstream, up.url)
    // A request refused before canonicalization is logged with its raw path, never its query.
    const refused = await request(gw.url, {
      path: '/api/a%2fb?token=query-secret-55aa',
      headers: { 'x-request-id': 'log-check-000002' },
    })
    assert.equal(refused.status, 400)
    for (let i = 0; i < 100 && !text.includes('log-check-000002'); i++) {
      await new Promise((res) => setTimeout(res, 50))
      text = readFileSync(join(gw.dir, 'access.log'), 'utf8')
    }
    const refusedLine = text.split('\n').find((l) => l.includes('log-check-000002'))
    assert.ok(refusedLine, 'the refused request is in the access log')
    const refusedRec = JSON.parse(refusedLine) as Record<string, unknown>
    assert.equal(refusedRec.path, '/api/a%2fb')
    assert.equal(refusedRec.code, 'GW_ERR_BAD_PATH')
    assert.equal(refusedRec.route, '(none)')
    for (const secret of [
      'eyJhbGciOiJIUzI1NiJ9',
      'cookie-value-7f3a9',
      'pcl_leakcheck_0123456789',
      'query-secret-55aa',
    ]) {
      assert.equal(text.includes(secret), false, `${secret} leaked into the access log`)
      assert.equal(gw.stderr().includes(secret), false, `${secret} leaked into the gateway log`)
    }
  })
})
