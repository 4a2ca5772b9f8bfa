/**
 * The property-filter policy through the real `portcullis serve` process, in front of the demo
 * API: password hashes never leave the gateway, a profile update setting `role` or `isAdmin` is
 * refused naming the field (the demo API would obey it: API3 mass assignment), the login operation
 * keeps its token, and a property the spec reserves for admins (`x-portcullis-roles` on
 * `User.email`, in a fixture copy of the demo spec) reaches an admin but not a user. Principals
 * come from jwt-auth tokens in `X-Gateway-Token`; the demo API's own session travels in
 * `Authorization`.
 */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { parse, stringify } from 'yaml'
import { type DemoApi, demoCredentials, startDemoApi } from '../examples/demo/api.js'
import { JwksIssuer, TEST_AUDIENCE } from './helpers/jwks-issuer.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'

const ROOT = new URL('../../', import.meta.url).pathname

interface Res {
  status: number
  headers: Headers
  text: string
  body: Record<string, unknown>
}

async function call(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<Res> {
  const init: RequestInit = { method, headers: { ...headers } }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] = 'application/json'
  }
  const r = await fetch(url, init)
  const text = await r.text()
  let parsed: Record<string, unknown> = {}
  try {
    parsed = JSON.parse(text) as Record<string, unknown>
  } catch {}
  return { status: r.status, headers: r.headers, text, body: parsed }
}

describe('property-filter through the gateway, in front of the demo API', () => {
  let issuer: JwksIssuer
  let api: DemoApi
  let gw: GatewayProcess
  const session: Record<string, string> = {}
  const jwt: Record<string, string> = {}

  before(async () => {
    issuer = await JwksIssuer.start(['RS256'])
    api = await startDemoApi({ host: '127.0.0.1', port: 0 })
    for (const user of ['alice', 'admin'] as const) {
      const r = await call(
        `${api.url}/api/v2/login`,
        'POST',
        {},
        { username: user, password: demoCredentials[user] },
      )
      assert.equal(r.status, 200)
      session[user] = r.body.token as string
    }
    jwt.alice = await issuer.mint({ claims: { sub: 'alice', roles: ['user'] } })
    jwt.admin = await issuer.mint({ claims: { sub: 'admin', realm_access: { roles: ['admin'] } } })
    // A fixture copy of the demo spec: User.email is for admins only.
    const dir = tempDir()
    const spec = parse(readFileSync(join(ROOT, 'examples/demo/openapi.yaml'), 'utf8'))
    spec.components.schemas.User.properties.email['x-portcullis-roles'] = ['admin']
    writeFileSync(join(dir, 'openapi.yaml'), stringify(spec))
    const config = {
      listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
      admin: { host: '127.0.0.1', port: 0 },
      upstreams: { demo: { targets: [{ url: api.url }] } },
      routes: [
        {
          name: 'demo-api',
          match: { pathPrefix: '/api' },
          upstream: 'demo',
          policies: {
            'jwt-auth': {
              algorithms: ['RS256'],
              issuer: issuer.issuer,
              audience: TEST_AUDIENCE,
              jwksUrl: issuer.jwksUrl,
              token: { header: 'x-gateway-token', scheme: '', forward: false },
            },
            'property-filter': {
              spec: 'openapi.yaml',
              reserved: { role: ['admin'], isAdmin: ['admin'], passwordHash: [] },
              operations: { login: { allowSensitive: ['token'] } },
            },
          },
        },
      ],
    }
    gw = await spawnGateway(stringify(config), dir)
  })

  after(async () => {
    await gw?.stop()
    await api?.close()
    await issuer?.close()
  })

  const as = (who: 'alice' | 'admin') => ({
    'x-gateway-token': jwt[who] as string,
    authorization: `Bearer ${session[who]}`,
  })

  test('GET /api/v2/users/3 and /users/me: never a passwordHash through the gateway (the API sends it)', async () => {
    const direct = await call(`${api.url}/api/v2/users/3`, 'GET', {
      authorization: `Bearer ${session.alice}`,
    })
    assert.match(direct.text, /passwordHash/)
    for (const who of ['alice', 'admin'] as const) {
      for (const path of ['/api/v2/users/3', '/api/v2/users/me']) {
        const r = await call(`${gw.url}${path}`, 'GET', as(who))
        assert.equal(r.status, 200, r.text)
        assert.doesNotMatch(r.text, /passwordHash|scrypt\$/)
        assert.equal(typeof r.body.username, 'string')
        assert.equal(r.headers.get('content-length'), String(Buffer.byteLength(r.text)))
      }
    }
  })

  test('an admin sees User.email (x-portcullis-roles: [admin] in the spec); a user does not', async () => {
    const user = await call(`${gw.url}/api/v2/users/2`, 'GET', as('alice'))
    assert.equal(user.status, 200)
    assert.equal(user.body.email, undefined)
    assert.equal(user.body.displayName, 'Bob Example')
    const admin = await call(`${gw.url}/api/v2/users/2`, 'GET', as('admin'))
    assert.equal(admin.status, 200)
    assert.equal(typeof admin.body.email, 'string')
    assert.equal(admin.body.passwordHash, undefined)
  })

  test('PATCH /api/v2/users/me with role or isAdmin → 400 naming the field; the record is unchanged', async () => {
    for (const [body, pointer] of [
      [{ role: 'admin' }, '/role'],
      [{ displayName: 'A', isAdmin: true }, '/isAdmin'],
      [{ passwordHash: 'scrypt$x' }, '/passwordHash'],
    ] as const) {
      const r = await call(`${gw.url}/api/v2/users/me`, 'PATCH', as('alice'), body)
      assert.equal(r.status, 400, r.text)
      assert.equal(r.body.code, 'GW_ERR_PROPERTY_NOT_ALLOWED')
      assert.equal(r.headers.get('content-type'), 'application/problem+json')
      assert.deepEqual(
        (r.body.violations as Record<string, unknown>[]).map((v) => v.pointer),
        [pointer],
      )
    }
    const me = await call(`${api.url}/api/v2/users/me`, 'GET', { authorization: `Bearer ${session.alice}` })
    assert.equal(me.body.role, 'user')
    assert.equal(me.body.isAdmin, undefined)
  })

  test('PATCH /api/v2/users/me with displayName → 200, filtered response', async () => {
    const r = await call(`${gw.url}/api/v2/users/me`, 'PATCH', as('alice'), { displayName: 'Alice A.' })
    assert.equal(r.status, 200, r.text)
    assert.equal(r.body.displayName, 'Alice A.')
    assert.doesNotMatch(r.text, /passwordHash/)
  })

  test('login through the gateway keeps its token (allowSensitive on the login operation)', async () => {
    const r = await call(
      `${gw.url}/api/v2/login`,
      'POST',
      { 'x-gateway-token': jwt.alice as string },
      { username: 'bob', password: demoCredentials.bob },
    )
    assert.equal(r.status, 200, r.text)
    assert.equal(typeof r.body.token, 'string')
  })

  test('removals are logged with the property names, never the values', async () => {
    const log = await gw.waitForLog(/properties removed from the response/)
    assert.match(log, /"removed":\[[^\]]*"passwordHash"/)
    assert.doesNotMatch(log, /scrypt\$/)
    // At most one line a minute per route and operation, though the tests above filtered several
    // responses of the same operations (GET /api/v2/users/3 and /me as alice and as admin).
    const lines = log
      .split('\n')
      .filter((l) => l.includes('properties removed from the response'))
      .map((l) => JSON.parse(l) as { route: string; operationId?: string })
    const per = new Map<string, number>()
    for (const l of lines)
      per.set(`${l.route} ${l.operationId}`, (per.get(`${l.route} ${l.operationId}`) ?? 0) + 1)
    assert.ok(per.size >= 1)
    for (const [op, n] of per) assert.equal(n, 1, op)
  })
})

describe('property-filter with userinfo-auth principals (the demo API sessions, roles from /role)', () => {
  let api: DemoApi
  let gw: GatewayProcess
  const session: Record<string, string> = {}

  before(async () => {
    api = await startDemoApi({ host: '127.0.0.1', port: 0 })
    const dir = tempDir()
    const spec = parse(readFileSync(join(ROOT, 'examples/demo/openapi.yaml'), 'utf8'))
    spec.components.schemas.User.properties.email['x-portcullis-roles'] = ['admin']
    writeFileSync(join(dir, 'openapi.yaml'), stringify(spec))
    const filter = {
      spec: 'openapi.yaml',
      reserved: { role: ['admin'], isAdmin: ['admin'] },
      operations: { login: { allowSensitive: ['token'] } },
    }
    const config = {
      listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
      admin: { host: '127.0.0.1', port: 0 },
      upstreams: { demo: { targets: [{ url: api.url }] } },
      routes: [
        {
          name: 'login',
          match: { pathPrefix: '/api/v2/login' },
          upstream: 'demo',
          policies: { 'property-filter': filter },
        },
        {
          name: 'api',
          match: { pathPrefix: '/api/v2' },
          upstream: 'demo',
          policies: {
            'userinfo-auth': {
              endpoint: `${api.url}/api/v2/users/me`,
              idPointer: '/id',
              rolesPointers: ['/role'],
            },
            'property-filter': filter,
          },
        },
      ],
    }
    gw = await spawnGateway(stringify(config), dir)
    for (const user of ['alice', 'admin'] as const) {
      const r = await call(
        `${gw.url}/api/v2/login`,
        'POST',
        {},
        { username: user, password: demoCredentials[user] },
      )
      assert.equal(r.status, 200, r.text)
      session[user] = r.body.token as string
    }
  })

  after(async () => {
    await gw?.stop()
    await api?.close()
  })

  const as = (who: 'alice' | 'admin') => ({ authorization: `Bearer ${session[who]}` })

  test('the user gets bob without email or passwordHash; the admin gets the email, never the hash', async () => {
    const user = await call(`${gw.url}/api/v2/users/2`, 'GET', as('alice'))
    assert.equal(user.status, 200, user.text)
    assert.equal(user.body.email, undefined)
    assert.doesNotMatch(user.text, /passwordHash/)
    const admin = await call(`${gw.url}/api/v2/users/2`, 'GET', as('admin'))
    assert.equal(admin.status, 200, admin.text)
    assert.equal(typeof admin.body.email, 'string')
    assert.doesNotMatch(admin.text, /passwordHash/)
  })

  test('alice cannot make herself admin; she can change her display name; the admin may set role', async () => {
    const r = await call(`${gw.url}/api/v2/users/me`, 'PATCH', as('alice'), { role: 'admin', isAdmin: true })
    assert.equal(r.status, 400, r.text)
    assert.equal(r.body.code, 'GW_ERR_PROPERTY_NOT_ALLOWED')
    assert.deepEqual(
      (r.body.violations as Record<string, unknown>[]).map((v) => v.pointer),
      ['/role', '/isAdmin'],
    )
    const ok = await call(`${gw.url}/api/v2/users/me`, 'PATCH', as('alice'), { displayName: 'Alice B.' })
    assert.equal(ok.status, 200, ok.text)
    assert.equal(ok.body.role, 'user')
    const admin = await call(`${gw.url}/api/v2/users/me`, 'PATCH', as('admin'), { role: 'admin' })
    assert.equal(admin.status, 200, admin.text)
  })
})
