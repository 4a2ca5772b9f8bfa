/**
 * The oauth2-introspection policy through the real `portcullis serve` process, with a real
 * RFC 7662 endpoint (test/helpers/introspection-server.ts) and a real upstream on 127.0.0.1.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type IntrospectionServer, startIntrospectionServer } from './helpers/introspection-server.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'
import { closedPort, startUpstream, type TestUpstream } from './helpers/upstream.js'
import { get, type Res } from './helpers/http.js'

const request = get

const code = (r: Res) => (JSON.parse(r.body) as { code?: string }).code
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const CLIENT_ID = 'portcullis-gw'
const CLIENT_SECRET = `cs-${randomBytes(12).toString('hex')}`
const WRONG_SECRET = `wrong-${randomBytes(12).toString('hex')}`
/** Every token sent to the gateway, for the log check at the end. */
const used: string[] = []
function token(): string {
  const t = `opaque-${randomBytes(16).toString('hex')}`
  used.push(t)
  return t
}
const nowS = () => Math.floor(Date.now() / 1000)

describe('oauth2-introspection (real gateway process)', () => {
  let idp: IntrospectionServer
  let up: TestUpstream
  let gw: GatewayProcess
  const summary: Record<string, string | number> = {}

  before(async () => {
    idp = await startIntrospectionServer({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
    up = await startUpstream('orders')
    const dead = await closedPort()
    // The child inherits the environment: the secrets reach the config through ${env:…}.
    process.env.PC_TEST_INTROSPECTION_SECRET = CLIENT_SECRET
    process.env.PC_TEST_INTROSPECTION_WRONG = WRONG_SECRET
    const entry = (extra: string, endpoint = idp.endpoint, secret = 'PC_TEST_INTROSPECTION_SECRET') =>
      `{ endpoint: "${endpoint}", clientId: ${CLIENT_ID}, clientSecret: "\${env:${secret}}"${extra ? `, ${extra}` : ''} }`
    gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
log: { level: debug }
upstreams:
  main: { targets: [ { url: "${up.url}" } ] }
policies:
  oauth2-introspection: ${entry('')}
routes:
  - { name: api, match: { pathPrefix: /api }, upstream: main, stripPrefix: true }
  - { name: api2, match: { pathPrefix: /v2 }, upstream: main, stripPrefix: true }
  - name: post
    match: { pathPrefix: /post }
    upstream: main
    stripPrefix: true
    policies: { oauth2-introspection: ${entry('clientAuthMethod: client_secret_post, cache: { negativeTtl: 1s }')} }
  - name: scoped
    match: { pathPrefix: /scoped }
    upstream: main
    stripPrefix: true
    policies: { oauth2-introspection: ${entry('requiredScopes: ["orders:write"], realm: orders')} }
  - name: wrong-secret
    match: { pathPrefix: /wrong }
    upstream: main
    policies: { oauth2-introspection: ${entry('', idp.endpoint, 'PC_TEST_INTROSPECTION_WRONG')} }
  - name: idp-down
    match: { pathPrefix: /down }
    upstream: main
    policies: { oauth2-introspection: ${entry('', `http://127.0.0.1:${dead}/introspect`)} }
  - name: idp-slow
    match: { pathPrefix: /slow }
    upstream: main
    policies: { oauth2-introspection: ${entry('timeout: 500ms', `${idp.endpoint}?delayMs=3000`)} }
  - name: idp-broken
    match: { pathPrefix: /broken }
    upstream: main
    policies: { oauth2-introspection: ${entry('', `${idp.endpoint}?malformed=json`)} }
  - name: combined
    match: { pathPrefix: /combined }
    upstream: main
    stripPrefix: true
    policies: { oauth2-introspection: ${entry('forwardToken: false')} }
    authentication: { anyOf: [oauth2-introspection] }
  - name: public
    match: { pathPrefix: /public }
    upstream: main
    stripPrefix: true
    policies: { oauth2-introspection: { enabled: false } }
accessLog: { destination: access.log }
reload: { watch: false }
`)
  })

  after(async () => {
    await gw?.stop()
    await up?.close()
    await idp?.close()
    const parts = Object.entries(summary).map(([k, v]) => `${k}=${v}`)
    console.log(`oauth2-introspection summary: ${parts.join(' ')}`)
  })

  test('active token → 200 and the upstream receives the request', async () => {
    const t = token()
    idp.setToken(t, { sub: 'alice', scope: 'orders:read', exp: nowS() + 3600 })
    const r = await request(gw.url, '/api/orders/1', { authorization: `Bearer ${t}` })
    assert.equal(r.status, 200)
    assert.equal((JSON.parse(r.body) as { path: string }).path, '/orders/1')
    assert.ok(up.received.includes('/orders/1'))
    assert.equal(idp.calls.at(-1)?.auth, 'basic')
    assert.equal(idp.calls.at(-1)?.tokenTypeHint, 'access_token')
    const echo = await request(gw.url, '/api/echo', { authorization: `Bearer ${t}` })
    const seen = JSON.parse(echo.body) as { headers: Record<string, string> }
    assert.equal(seen.headers.authorization, `Bearer ${t}`, 'the upstream gets the client header as sent')
    assert.equal(idp.callsFor(t), 1)
  })

  test('client_secret_post works too', async () => {
    const t = token()
    idp.setToken(t, { sub: 'bob', exp: nowS() + 3600 })
    const r = await request(gw.url, '/post/x', { authorization: `Bearer ${t}` })
    assert.equal(r.status, 200)
    assert.equal(idp.calls.at(-1)?.auth, 'post')
  })

  test('in a route authentication: anyOf; forwardToken: false keeps the token from the upstream', async () => {
    const none = await request(gw.url, '/combined/echo')
    assert.equal(none.status, 401)
    assert.equal(code(none), 'GW_ERR_AUTH_MISSING')
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="portcullis"')
    const t = token()
    idp.setToken(t, { sub: 'ivy', exp: nowS() + 3600 })
    const ok = await request(gw.url, '/combined/echo', { authorization: `Bearer ${t}` })
    assert.equal(ok.status, 200)
    const seen = JSON.parse(ok.body) as { headers: Record<string, string> }
    assert.equal(seen.headers.authorization, undefined)
    const bad = await request(gw.url, '/combined/echo', { authorization: `Bearer ${token()}` })
    assert.equal(bad.status, 401)
    assert.equal(code(bad), 'GW_ERR_AUTH_INVALID')
  })

  test('no token → 401 GW_ERR_AUTH_MISSING with a Bearer challenge; a route can turn the policy off', async () => {
    const r = await request(gw.url, '/api/x')
    assert.equal(r.status, 401)
    assert.equal(code(r), 'GW_ERR_AUTH_MISSING')
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="portcullis"')
    assert.equal(r.headers['content-type'], 'application/problem+json')
    assert.equal((await request(gw.url, '/public/x')).status, 200)
  })

  test('inactive and unknown tokens → 401 GW_ERR_AUTH_INVALID, error="invalid_token"', async () => {
    const inactive = token()
    idp.setToken(inactive, { active: false })
    for (const t of [inactive, token()]) {
      const r = await request(gw.url, '/api/x', { authorization: `Bearer ${t}` })
      assert.equal(r.status, 401)
      assert.equal(code(r), 'GW_ERR_AUTH_INVALID')
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="portcullis", error="invalid_token"')
      assert.equal(r.body.includes(t), false)
    }
  })

  test('wrong client secret configured → 503 GW_ERR_AUTH_UNAVAILABLE (the endpoint answered 401)', async () => {
    const t = token()
    idp.setToken(t, { sub: 'alice', exp: nowS() + 3600 })
    const r = await request(gw.url, '/wrong/x', { authorization: `Bearer ${t}` })
    assert.equal(r.status, 503)
    assert.equal(code(r), 'GW_ERR_AUTH_UNAVAILABLE')
    const call = idp.calls.at(-1)
    assert.equal(call?.authorized, false)
    assert.equal(call?.token, t)
  })

  test('endpoint down → 503; malformed JSON → 503', async () => {
    const t = token()
    idp.setToken(t, { sub: 'alice', exp: nowS() + 3600 })
    const down = await request(gw.url, '/down/x', { authorization: `Bearer ${t}` })
    assert.equal(down.status, 503)
    assert.equal(code(down), 'GW_ERR_AUTH_UNAVAILABLE')
    const broken = await request(gw.url, '/broken/x', { authorization: `Bearer ${t}` })
    assert.equal(broken.status, 503)
  })

  test('endpoint slower than timeoutMs (500) → 503 within timeoutMs + 500 ms', async () => {
    const t = token()
    idp.setToken(t, { sub: 'alice', exp: nowS() + 3600 })
    const started = performance.now()
    const r = await request(gw.url, '/slow/x', { authorization: `Bearer ${t}` })
    const took = performance.now() - started
    summary.slowMs = Math.round(took)
    assert.equal(r.status, 503)
    assert.equal(code(r), 'GW_ERR_AUTH_UNAVAILABLE')
    assert.ok(took < 1000, `answered after ${took} ms`)
    assert.ok(took >= 480, `answered after ${took} ms: before the deadline?`)
  })

  test('cache: 20 requests with one token make 1 introspection call', async () => {
    const t = token()
    idp.setToken(t, { sub: 'carol', exp: nowS() + 3600 })
    for (let i = 0; i < 20; i++) {
      const r = await request(gw.url, `/api/c${i}`, { authorization: `Bearer ${t}` })
      assert.equal(r.status, 200, `request ${i}`)
    }
    summary.cacheCalls = `${idp.callsFor(t)}/20`
    assert.equal(idp.callsFor(t), 1)
    const other = await request(gw.url, '/v2/c', { authorization: `Bearer ${t}` })
    assert.equal(other.status, 200)
    assert.equal(idp.callsFor(t), 1, 'routes under one global entry share the cache')
  })

  test('an entry ends at the token exp: the token is introspected again', async () => {
    const t = token()
    const exp = nowS() + 2
    idp.setToken(t, { sub: 'dave', exp })
    assert.equal((await request(gw.url, '/api/e', { authorization: `Bearer ${t}` })).status, 200)
    assert.equal((await request(gw.url, '/api/e', { authorization: `Bearer ${t}` })).status, 200)
    assert.equal(idp.callsFor(t), 1)
    await sleep(exp * 1000 - Date.now() + 50)
    const r = await request(gw.url, '/api/e', { authorization: `Bearer ${t}` })
    assert.equal(r.status, 401, 'expired: the endpoint now says inactive')
    assert.equal(idp.callsFor(t), 2)
  })

  test('a rejected token that becomes active is accepted after negativeTtlSec', async () => {
    const t = token()
    assert.equal((await request(gw.url, '/post/n', { authorization: `Bearer ${t}` })).status, 401)
    idp.setToken(t, { sub: 'erin', exp: nowS() + 3600 })
    assert.equal((await request(gw.url, '/post/n', { authorization: `Bearer ${t}` })).status, 401)
    assert.equal(idp.callsFor(t), 1, 'the negative result was remembered')
    await sleep(1050)
    assert.equal((await request(gw.url, '/post/n', { authorization: `Bearer ${t}` })).status, 200)
    assert.equal(idp.callsFor(t), 2)
  })

  test('single flight: 50 concurrent requests with one new token make 1 call', async () => {
    const t = token()
    idp.setToken(t, { sub: 'frank', exp: nowS() + 3600 }, { delayMs: 150 })
    const rs = await Promise.all(
      Array.from({ length: 50 }, (_, i) => request(gw.url, `/api/sf${i}`, { authorization: `Bearer ${t}` })),
    )
    assert.deepEqual(
      rs.map((r) => r.status),
      Array(50).fill(200),
    )
    summary.singleFlightCalls = `${idp.callsFor(t)}/50`
    assert.equal(idp.callsFor(t), 1)
  })

  test('missing scope → 403 GW_ERR_FORBIDDEN, error="insufficient_scope"', async () => {
    const reader = token()
    idp.setToken(reader, { sub: 'gina', scope: 'orders:read', exp: nowS() + 3600 })
    const r = await request(gw.url, '/scoped/x', { authorization: `Bearer ${reader}` })
    assert.equal(r.status, 403)
    assert.equal(code(r), 'GW_ERR_FORBIDDEN')
    assert.equal(
      r.headers['www-authenticate'],
      'Bearer realm="orders", error="insufficient_scope", scope="orders:write"',
    )
    const writer = token()
    idp.setToken(writer, { sub: 'hank', scope: 'orders:read orders:write', exp: nowS() + 3600 })
    assert.equal((await request(gw.url, '/scoped/x', { authorization: `Bearer ${writer}` })).status, 200)
  })

  test('oversized token (> 8 KiB) → 401 without any introspection call', async () => {
    const before = idp.calls.length
    const t = `big-${randomBytes(8).toString('hex')}${'a'.repeat(8200)}`
    used.push(t)
    const r = await request(gw.url, '/api/x', { authorization: `Bearer ${t}` })
    assert.equal(r.status, 401)
    assert.equal(code(r), 'GW_ERR_AUTH_INVALID')
    assert.equal(idp.calls.length, before)
  })

  test('no token and no client secret in the gateway log or the access log', async () => {
    await gw.stop() // flushes the access log
    const access = readFileSync(join(gw.dir, 'access.log'), 'utf8')
    const stderr = gw.stderr()
    if (process.env.PC_TEST_SHOW_LOG) console.log(stderr)
    assert.ok(access.includes('GW_ERR_AUTH_UNAVAILABLE'), 'the access log has the requests')
    assert.ok(stderr.includes('token introspection failed'), 'failures were logged')
    const secrets = [CLIENT_SECRET, WRONG_SECRET, ...used]
    for (const s of secrets) {
      assert.equal(access.includes(s), false, 'a secret leaked into the access log')
      assert.equal(stderr.includes(s), false, 'a secret leaked into the gateway log')
    }
    summary.secretsChecked = secrets.length
    summary.introspectionCalls = idp.calls.length
  })

  test('config: a plain-http endpoint that is not loopback is refused at start', async () => {
    const err = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
upstreams: { main: { targets: [ { url: "${up.url}" } ] } }
policies:
  oauth2-introspection: { endpoint: "http://idp.example/introspect", clientId: a, clientSecret: "\${env:PC_TEST_INTROSPECTION_SECRET}" }
routes: [ { name: api, match: { pathPrefix: /api }, upstream: main } ]
accessLog: { enabled: false }
`).then(
      async (g) => {
        await g.stop()
        return undefined
      },
      (e: Error) => e,
    )
    assert.ok(err, 'the gateway must not start')
    assert.match(err.message, /must use https/)
    assert.equal(err.message.includes(CLIENT_SECRET), false)
  })
})
