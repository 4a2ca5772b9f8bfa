/**
 * The userinfo-auth policy through the real `portcullis serve` process in front of the demo API
 * (examples/demo/api.ts): the gateway learns who the caller is from the demo API's own
 * `GET /api/v2/users/me`, without any change to the API.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type DemoApi, demoCredentials, startDemoApi } from '../examples/demo/api.js'
import { get, request, type Res } from './helpers/http.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

const code = (r: Res) => (JSON.parse(r.body) as { code?: string }).code

describe('userinfo-auth in front of the demo API (real gateway process)', () => {
  let api: DemoApi
  let gw: GatewayProcess
  const used: string[] = []

  /** Logs in through the gateway (the login route needs no token). */
  async function login(username: keyof typeof demoCredentials): Promise<string> {
    const r = await request(gw.url, {
      method: 'POST',
      path: '/api/v2/login',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: demoCredentials[username] }),
    })
    assert.equal(r.status, 200, r.body)
    const t = (JSON.parse(r.body) as { token: string }).token
    used.push(t)
    return t
  }

  before(async () => {
    api = await startDemoApi({ host: '127.0.0.1', port: 0 })
    const userinfo = `{ endpoint: "${api.url}/api/v2/users/me", idPointer: /id, rolesPointers: [/role] }`
    gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
log: { level: debug }
upstreams:
  demo: { targets: [ { url: "${api.url}" } ] }
routes:
  - name: me
    match: { pathPrefix: /api/v2/users/me }
    upstream: demo
    policies: { userinfo-auth: ${userinfo} }
  - name: debug
    match: { pathPrefix: /api/v2/debug }
    upstream: demo
    policies:
      userinfo-auth: ${userinfo}
      authorize: { rules: [ { match: { pathPrefix: /api/v2/debug }, roles: [admin] } ] }
  - { name: rest, match: { pathPrefix: / }, upstream: demo }
accessLog: { destination: access.log }
reload: { watch: false }
`)
  })

  after(async () => {
    await gw?.stop()
    await api?.close()
  })

  test('a logged-in alice passes, and the upstream still gets her session', async () => {
    const t = await login('alice')
    const r = await get(gw.url, '/api/v2/users/me', { authorization: `Bearer ${t}` })
    assert.equal(r.status, 200, r.body)
    // The demo API answered her own record: it authenticated the forwarded session itself.
    const me = JSON.parse(r.body) as { username: string; role: string }
    assert.equal(me.username, 'alice')
    // The second request is answered from the cache and still reaches the upstream with the session.
    const again = await get(gw.url, '/api/v2/users/me', { authorization: `Bearer ${t}` })
    assert.equal(again.status, 200)
    assert.equal((JSON.parse(again.body) as { username: string }).username, 'alice')
  })

  test('no token: 401 GW_ERR_AUTH_MISSING from the gateway', async () => {
    const r = await get(gw.url, '/api/v2/users/me')
    assert.equal(r.status, 401)
    assert.equal(code(r), 'GW_ERR_AUTH_MISSING')
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="portcullis"')
  })

  test('a made-up token: 401 GW_ERR_AUTH_INVALID from the gateway', async () => {
    const t = randomBytes(24).toString('base64url')
    used.push(t)
    const r = await get(gw.url, '/api/v2/users/me', { authorization: `Bearer ${t}` })
    assert.equal(r.status, 401)
    assert.equal(code(r), 'GW_ERR_AUTH_INVALID')
    assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/)
  })

  test('the principal carries the role from the answer: authorize lets admin in, not alice', async () => {
    const alice = await login('alice')
    const denied = await get(gw.url, '/api/v2/debug/config', { authorization: `Bearer ${alice}` })
    assert.equal(denied.status, 403)
    assert.equal(code(denied), 'GW_ERR_FORBIDDEN')
    const admin = await login('admin')
    const ok = await get(gw.url, '/api/v2/debug/config', { authorization: `Bearer ${admin}` })
    assert.equal(ok.status, 200, ok.body)
    assert.equal((JSON.parse(ok.body) as { service: string }).service, 'demo-api')
  })

  test('no session token in the gateway log or the access log', async () => {
    assert.ok(used.length >= 4)
    const logs = gw.stderr() + readFileSync(join(gw.dir, 'access.log'), 'utf8')
    assert.ok(logs.length > 0)
    for (const t of used) assert.equal(logs.includes(t), false)
  })
})
