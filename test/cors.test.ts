/**
 * cors end to end (issue 19): a real `portcullis serve` in front of an upstream whose own CORS is
 * the classic hole (it reflects any Origin with credentials). Routes from an OpenAPI spec with
 * jwt-auth and openapi-validation, and a plain route limited to GET. Preflights from an allowed
 * origin are answered by the gateway without credentials and never reach the upstream; an evil
 * origin never gets Access-Control-Allow-Origin; credentials never come with `*` or reflection.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { stringify } from 'yaml'
import { request } from './helpers/http.js'
import { JwksIssuer, TEST_AUDIENCE } from './helpers/jwks-issuer.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'

const APP = 'https://app.example.com'
const EVIL = 'https://evil.example'

const SPEC = `
openapi: 3.1.0
info: { title: items, version: '1' }
paths:
  /items:
    get:
      operationId: listItems
      responses: { '200': { description: ok } }
    post:
      operationId: createItem
      requestBody:
        required: true
        content: { application/json: { schema: { type: object, properties: { name: { type: string } }, additionalProperties: false } } }
      responses: { '200': { description: ok } }
`

describe('cors through the gateway', () => {
  let upstream: Server
  let upstreamHits = 0
  let issuer: JwksIssuer
  let gw: GatewayProcess

  before(async () => {
    upstream = createServer((req, res) => {
      upstreamHits++
      // The upstream's own CORS: reflects any origin, with credentials (what the gateway replaces).
      const o = req.headers.origin
      res.writeHead(200, {
        'content-type': 'application/json',
        ...(o ? { 'access-control-allow-origin': o, 'access-control-allow-credentials': 'true' } : {}),
        'access-control-allow-methods': '*',
        vary: 'Accept-Encoding',
      })
      res.end(JSON.stringify({ method: req.method, path: req.url }))
    })
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
    issuer = await JwksIssuer.start(['RS256'])
    const dir = tempDir('pc-cors-')
    writeFileSync(join(dir, 'api.yaml'), SPEC)
    const cors = {
      origins: [APP],
      originPatterns: ['https://[a-z0-9-]+\\.preview\\.example\\.com'],
      credentials: true,
      allowHeaders: ['content-type', 'authorization'],
      exposeHeaders: ['x-request-id'],
      maxAge: '5m',
    }
    const config = {
      listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
      admin: { enabled: false },
      upstreams: {
        api: { targets: [{ url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` }] },
      },
      routes: [
        {
          name: 'items',
          match: { pathPrefix: '/api', openapi: { spec: 'api.yaml' } },
          upstream: 'api',
          policies: {
            cors,
            'jwt-auth': {
              algorithms: ['RS256'],
              issuer: issuer.issuer,
              audience: TEST_AUDIENCE,
              jwksUrl: issuer.jwksUrl,
            },
            'openapi-validation': { spec: 'api.yaml', basePath: '/api' },
          },
        },
        {
          name: 'reports',
          match: { pathPrefix: '/reports', methods: ['GET'] },
          upstream: 'api',
          policies: { cors: { origins: ['*'], credentials: false } },
        },
        {
          name: 'legacy',
          match: { pathPrefix: '/legacy', methods: ['GET'] },
          upstream: 'api',
        },
      ],
      accessLog: { enabled: false },
      reload: { watch: false },
    }
    gw = await spawnGateway(stringify(config), dir)
  })
  after(async () => {
    await gw?.stop()
    await issuer?.close()
    await new Promise((r) => upstream?.close(r))
  })

  const preflight = (path: string, origin: string, method: string, headers = 'content-type, authorization') =>
    request(gw.url, {
      method: 'OPTIONS',
      path,
      headers: {
        origin,
        'access-control-request-method': method,
        ...(headers ? { 'access-control-request-headers': headers } : {}),
      },
    })

  it('a preflight from an allowed origin is answered by the gateway, without credentials, before the spec', async () => {
    const before = upstreamHits
    for (const [path, method] of [
      ['/api/items', 'POST'],
      ['/api/items', 'GET'],
    ] as const) {
      const r = await preflight(path, APP, method)
      assert.equal(r.status, 204, `${method} ${path}: ${r.body}`)
      assert.equal(r.headers['access-control-allow-origin'], APP)
      assert.equal(r.headers['access-control-allow-credentials'], 'true')
      assert.match(String(r.headers['access-control-allow-methods']), new RegExp(`\\b${method}\\b`))
      assert.equal(r.headers['access-control-allow-headers'], 'content-type, authorization')
      assert.equal(r.headers['access-control-max-age'], '300')
      assert.match(String(r.headers.vary), /Origin/)
      assert.equal(r.headers['www-authenticate'], undefined, 'no authentication was asked for')
    }
    const preview = await preflight('/api/items', 'https://pr-42.preview.example.com', 'POST')
    assert.equal(preview.status, 204)
    assert.equal(preview.headers['access-control-allow-origin'], 'https://pr-42.preview.example.com')
    assert.equal(upstreamHits, before, 'no preflight reached the upstream')
  })

  it('an evil origin, a method or header not allowed: no Access-Control-Allow-Origin', async () => {
    const cases = [
      await preflight('/api/items', EVIL, 'POST'),
      await preflight('/api/items', 'null', 'POST'),
      await preflight('/api/items', 'https://app.example.com.evil.example', 'POST'),
      await preflight('/api/items', 'https://x.preview.example.com.evil.example', 'POST'),
      await preflight('/api/items', APP, 'POST', 'content-type, x-evil'),
    ]
    for (const r of cases) {
      assert.equal(r.status, 403, r.body)
      assert.equal(JSON.parse(r.body).code, 'GW_ERR_CORS_ORIGIN')
      assert.equal(r.headers['access-control-allow-origin'], undefined)
      assert.equal(r.headers['access-control-allow-credentials'], undefined)
    }
    // A method the spec does not declare for the path is still refused (no CORS answer for it).
    const del = await preflight('/api/items', APP, 'DELETE')
    assert.equal(del.status, 405)
    assert.equal(
      del.headers['access-control-allow-origin'],
      undefined,
      'a refused preflight: no CORS headers',
    )
  })

  it('real requests: the upstream’s reflected CORS is replaced; evil origins get nothing; Vary: Origin', async () => {
    const token = await issuer.mint()
    const ok = await request(gw.url, {
      path: '/api/items',
      headers: { origin: APP, authorization: `Bearer ${token}` },
    })
    assert.equal(ok.status, 200, ok.body)
    assert.equal(ok.headers['access-control-allow-origin'], APP)
    assert.equal(ok.headers['access-control-allow-credentials'], 'true')
    assert.equal(ok.headers['access-control-expose-headers'], 'x-request-id')
    assert.equal(ok.headers['access-control-allow-methods'], undefined, 'the upstream’s own header is gone')
    assert.equal(ok.headers.vary, 'Accept-Encoding, Origin')
    const evil = await request(gw.url, {
      path: '/api/items',
      headers: { origin: EVIL, authorization: `Bearer ${token}` },
    })
    assert.equal(evil.status, 200)
    assert.equal(
      evil.headers['access-control-allow-origin'],
      undefined,
      'the upstream reflected it; the gateway did not',
    )
    assert.equal(evil.headers['access-control-allow-credentials'], undefined)
    assert.match(String(evil.headers.vary), /Origin/)
    // Without a token: 401 from jwt-auth, with CORS headers so the app can read the error.
    const anon = await request(gw.url, { path: '/api/items', headers: { origin: APP } })
    assert.equal(anon.status, 401)
    assert.equal(anon.headers['access-control-allow-origin'], APP)
  })

  it('OPTIONS that is not a preflight is still refused as undeclared on a spec route', async () => {
    const r = await request(gw.url, { method: 'OPTIONS', path: '/api/items', headers: { origin: APP } })
    assert.equal(r.status, 405)
    assert.equal(JSON.parse(r.body).code, 'GW_ERR_METHOD_NOT_IN_SPEC')
  })

  it('a GET-only route: the preflight for GET is answered; `*` is sent literally and never with credentials', async () => {
    const before = upstreamHits
    const r = await preflight('/reports/daily', EVIL, 'GET', '')
    assert.equal(r.status, 204)
    assert.equal(r.headers['access-control-allow-origin'], '*')
    assert.equal(r.headers['access-control-allow-credentials'], undefined)
    const real = await request(gw.url, { path: '/reports/daily', headers: { origin: EVIL } })
    assert.equal(real.headers['access-control-allow-origin'], '*')
    assert.equal(
      real.headers['access-control-allow-credentials'],
      undefined,
      'the upstream’s credentials header is gone',
    )
    // A method the route does not take: routed as the OPTIONS it is, refused by the router.
    assert.equal((await preflight('/reports/daily', EVIL, 'DELETE', '')).status, 405)
    assert.equal(upstreamHits, before + 1)
  })

  it('a route without cors is unchanged: its preflight is refused by the router, nothing is forwarded', async () => {
    const before = upstreamHits
    const r = await preflight('/legacy/x', APP, 'GET', '')
    assert.equal(r.status, 405)
    assert.equal(r.headers['access-control-allow-origin'], undefined)
    assert.equal(upstreamHits, before)
  })
})
