/**
 * The authorize policy through the real `portcullis serve` process, in front of the demo API with
 * its OpenAPI document: tokens from a local JWKS issuer (sent in `X-Gateway-Token`; the demo
 * API's own session travels in `Authorization`). A user calling an admin operation is refused, an
 * admin passes, a token without a required scope gets 403 insufficient_scope, method override
 * headers are refused, paths outside the spec are denied by default.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { type DemoApi, demoCredentials, startDemoApi } from '../examples/demo/api.js'
import { JwksIssuer, TEST_AUDIENCE } from './helpers/jwks-issuer.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

const ROOT = new URL('../../', import.meta.url).pathname

interface Res {
  status: number
  headers: Headers
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
  return { status: r.status, headers: r.headers, body: parsed }
}

describe('authorize through the gateway, in front of the demo API', () => {
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
    jwt.alice = await issuer.mint({ claims: { sub: 'alice', roles: ['user'], scope: 'orders:read' } })
    jwt.admin = await issuer.mint({
      claims: { sub: 'admin', realm_access: { roles: ['admin'] }, scope: 'orders:read' },
    })
    jwt.noScope = await issuer.mint({ claims: { sub: 'alice', roles: ['user'] } })
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
            authorize: {
              spec: join(ROOT, 'examples/demo/openapi.yaml'),
              rules: [
                {
                  name: 'order reads',
                  match: { operationIds: ['getOrder', 'listOrders'] },
                  scopes: ['orders:read'],
                },
              ],
            },
          },
        },
      ],
    }
    gw = await spawnGateway(stringify(config))
  })

  after(async () => {
    await gw?.stop()
    await api?.close()
    await issuer?.close()
  })

  const as = (who: 'alice' | 'admin', token = jwt[who] as string) => ({
    'x-gateway-token': token,
    authorization: `Bearer ${session[who]}`,
  })

  test('a user token calling an admin operation (tag admin, x-portcullis-roles) → 403', async () => {
    const r = await call(`${gw.url}/api/v2/admin/users/2/role`, 'POST', as('alice'), { role: 'admin' })
    assert.equal(r.status, 403)
    assert.equal(r.body.code, 'GW_ERR_FORBIDDEN')
    // the demo API would have obeyed (API5): the role did not change
    const bob = await call(`${api.url}/api/v2/users/2`, 'GET', { authorization: `Bearer ${session.admin}` })
    assert.equal(bob.body.role, 'user')
  })

  test('an admin token (role from realm_access.roles) passes to the API', async () => {
    const r = await call(`${gw.url}/api/v2/admin/users/2/role`, 'POST', as('admin'), { role: 'user' })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.deepEqual(r.body, { id: 2, username: 'bob', role: 'user' })
  })

  test("a token without the rule's scope → 403 insufficient_scope; with it, the order is read", async () => {
    const r = await call(`${gw.url}/api/v2/orders`, 'GET', as('alice', jwt.noScope))
    assert.equal(r.status, 403)
    assert.equal(r.body.code, 'GW_ERR_INSUFFICIENT_SCOPE')
    assert.equal(r.headers.get('www-authenticate'), 'Bearer error="insufficient_scope", scope="orders:read"')
    const ok = await call(`${gw.url}/api/v2/orders`, 'GET', as('alice'))
    assert.equal(ok.status, 200)
    assert.ok(Array.isArray(ok.body) || typeof ok.body === 'object')
  })

  test('method override headers and _method are refused (400), never obeyed', async () => {
    for (const h of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override']) {
      const r = await call(`${gw.url}/api/v2/orders/1`, 'GET', { ...as('alice'), [h]: 'DELETE' })
      assert.equal(r.status, 400, h)
      assert.equal(r.body.code, 'GW_ERR_METHOD_OVERRIDE')
    }
    const q = await call(`${gw.url}/api/v2/orders/1?_method=DELETE`, 'GET', as('alice'))
    assert.equal(q.status, 400)
    // the order is still there
    const still = await call(`${api.url}/api/v2/orders/1`, 'GET', {
      authorization: `Bearer ${session.alice}`,
    })
    assert.equal(still.status, 200)
  })

  test('paths the spec does not declare are denied by default (debug endpoint, case variants)', async () => {
    for (const p of ['/api/v2/debug/config', '/api/v2/ADMIN/users/2/role', '/api/v2/admin/users/2/role/']) {
      const r = await call(
        `${gw.url}${p}`,
        p.includes('role') ? 'POST' : 'GET',
        as('alice'),
        p.includes('role') ? { role: 'admin' } : undefined,
      )
      assert.equal(r.status, 403, p)
      assert.equal(r.body.code, 'GW_ERR_FORBIDDEN', p)
    }
  })
})
