/**
 * The demo config (examples/demo/portcullis.yaml, what `npm start` runs) against the demo API:
 * every flaw of docs/demo.md that a policy closes is tried through the real `portcullis serve`,
 * with two users (alice, bob) and an admin logged in through the gateway with the demo's own
 * sessions (userinfo-auth). BOLA by id in the path, the query (`?ids=`), a JSON body, with
 * spelling and encoding variants and HEAD; BFLA; method override; mass assignment; data exposure;
 * undeclared routes. The owners' own requests must all pass. Only the config's ports and the
 * demo API's address are rewritten.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type DemoApi, demoCredentials, startDemoApi } from '../examples/demo/api.js'
import { request } from './helpers/http.js'
import { demoConfigYaml } from './helpers/demo-config.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

const _ROOT = new URL('../../', import.meta.url).pathname

type Who = 'alice' | 'bob' | 'admin' | 'anonymous'

describe('the demo config closes the demo API flaws (issue 4 and 5 acceptance, end to end)', () => {
  let api: DemoApi
  let gw: GatewayProcess
  const session: Record<string, string> = {}

  const send = async (
    who: Who,
    method: string,
    path: string,
    body?: unknown,
    extra: Record<string, string> = {},
  ) => {
    const headers: Record<string, string> = { ...extra }
    if (who !== 'anonymous') headers.authorization = `Bearer ${session[who]}`
    let text: string | undefined
    if (body !== undefined) {
      text = typeof body === 'string' ? body : JSON.stringify(body)
      headers['content-type'] ??= 'application/json'
    }
    const r = await request(gw.url, { method, path, headers, ...(text === undefined ? {} : { body: text }) })
    let json: unknown
    try {
      json = JSON.parse(r.body)
    } catch {}
    return { status: r.status, body: r.body, json, code: (json as { code?: string } | undefined)?.code }
  }

  before(async () => {
    api = await startDemoApi({ host: '127.0.0.1', port: 0 })
    gw = await spawnGateway(demoConfigYaml(api.url))
    for (const who of ['alice', 'bob', 'admin'] as const) {
      const r = await send('anonymous', 'POST', '/api/v2/login', {
        username: who,
        password: demoCredentials[who],
      })
      assert.equal(r.status, 200, `login ${who}: ${r.body}`)
      session[who] = (r.json as { token: string }).token
      assert.ok(session[who], 'the login answer keeps its token (allowSensitive: token)')
    }
  })

  after(async () => {
    await gw?.stop()
    await api?.close()
  })

  test("BOLA: alice is refused bob's user record, account and order in every form; her own pass", async () => {
    const refused: [string, string, unknown?][] = [
      ['GET', '/api/v2/users/2'],
      ['HEAD', '/api/v2/users/2'],
      ['GET', '/api/v2/users/%32'], // an unreserved escape: the canonical path is /users/2
      ['GET', '/api/v2/users/2/'],
      ['GET', '/api/v2/users/02'],
      ['GET', '/api/v2/accounts/2'],
      ['HEAD', '/api/v2/accounts/2'],
      ['GET', '/api/v2/accounts/%32'],
      ['GET', '/api/v2/accounts?ids=1,2'],
      ['GET', '/api/v2/accounts?ids=2'],
      ['GET', '/api/v2/accounts?ids=1&ids=2'],
      ['GET', '/api/v2/accounts?IDS=2'],
      ['GET', '/api/v2/orders/2'],
      ['HEAD', '/api/v2/orders/2'],
      ['GET', '/api/v2/ORDERS/2'],
      ['GET', '/api/v2/orders/2%2f'],
      ['PUT', '/api/v2/orders/2', { item: 'mouse', quantity: 1 }],
      ['PUT', '/api/v2/orders/1', { item: 'mouse', quantity: 1, id: 2 }], // an id in the body
      ['PUT', '/api/v2/orders/1', { item: 'mouse', quantity: 1, order: { id: 2 } }], // nested
      ['DELETE', '/api/v2/orders/2'],
    ]
    const passed: string[] = []
    for (const [method, path, body] of refused) {
      const r = await send('alice', method, path, body)
      if (r.status < 400) passed.push(`${method} ${path} → ${r.status}`)
    }
    assert.deepEqual(passed, [], 'every cross-user request refused')
    // The denial does not tell whether the object exists (404 by default).
    const r = await send('alice', 'GET', '/api/v2/orders/2')
    assert.equal(r.status, 404)
    assert.equal(r.code, 'GW_ERR_OBJECT_NOT_FOUND')
    // bob's order is intact.
    const bobs = await send('bob', 'GET', '/api/v2/orders/2')
    assert.equal(bobs.status, 200)
    assert.equal((bobs.json as { item: string }).item, 'monitor')

    for (const [method, path] of [
      ['GET', '/api/v2/users/1'],
      ['GET', '/api/v2/users/me'],
      ['GET', '/api/v2/accounts'],
      ['GET', '/api/v2/accounts/1'],
      ['HEAD', '/api/v2/accounts/1'],
      ['GET', '/api/v2/accounts?ids=1'],
      ['GET', '/api/v2/orders'],
      ['GET', '/api/v2/orders/1'],
    ] as const) {
      assert.equal((await send('alice', method, path)).status, 200, `${method} ${path} (alice's own)`)
    }
    // A new order is learned at creation: its owner updates and deletes it, bob cannot even see it.
    const created = await send('alice', 'POST', '/api/v2/orders', { item: 'widget', quantity: 1 })
    assert.equal(created.status, 201)
    const id = (created.json as { id: number }).id
    assert.equal((await send('bob', 'GET', `/api/v2/orders/${id}`)).status, 404)
    assert.equal((await send('bob', 'DELETE', `/api/v2/orders/${id}`)).status, 404)
    assert.equal(
      (await send('alice', 'PUT', `/api/v2/orders/${id}`, { item: 'gadget', quantity: 2 })).status,
      200,
    )
    assert.equal((await send('alice', 'DELETE', `/api/v2/orders/${id}`)).status, 204)
    // The admin (allowRoles) reads anyone's objects.
    for (const path of ['/api/v2/users/2', '/api/v2/accounts/2', '/api/v2/orders/2']) {
      assert.equal((await send('admin', 'GET', path)).status, 200, `admin ${path}`)
    }
  })

  test('BFLA: the admin function is refused to users, allowed to the admin; method override refused', async () => {
    const r = await send('alice', 'POST', '/api/v2/admin/users/1/role', { role: 'admin' })
    assert.equal(r.status, 403)
    assert.equal(r.code, 'GW_ERR_FORBIDDEN')
    const me = await send('alice', 'GET', '/api/v2/users/me')
    assert.equal((me.json as { role: string }).role, 'user', 'alice is still a user')
    assert.equal((await send('admin', 'POST', '/api/v2/admin/users/2/role', { role: 'user' })).status, 200)
    for (const h of ['x-http-method-override', 'x-method-override', 'x-http-method']) {
      const o = await send('alice', 'GET', '/api/v2/orders/1', undefined, { [h]: 'DELETE' })
      assert.equal(o.status, 400, h)
      assert.equal(o.code, 'GW_ERR_METHOD_OVERRIDE')
    }
    assert.equal((await send('alice', 'GET', '/api/v2/orders/1')).status, 200, 'order 1 was not deleted')
    assert.equal((await send('anonymous', 'GET', '/api/v2/orders/1')).status, 401)
  })

  test('mass assignment refused with the field named; data exposure: no password hash in any response', async () => {
    for (const [field, value] of [
      ['role', 'admin'],
      ['isAdmin', true],
      ['passwordHash', 'x'],
    ] as const) {
      const r = await send('alice', 'PATCH', '/api/v2/users/me', { displayName: 'A', [field]: value })
      assert.equal(r.status, 400, field)
      assert.ok(r.body.includes(`/${field}`), `the problem names /${field}: ${r.body}`)
    }
    const ok = await send('alice', 'PATCH', '/api/v2/users/me', { displayName: 'Alice A' })
    assert.equal(ok.status, 200)
    for (const [who, path] of [
      ['alice', '/api/v2/users/me'],
      ['alice', '/api/v2/users/1'],
      ['admin', '/api/v2/users/3'],
      ['admin', '/api/v2/users/1'],
    ] as const) {
      const r = await send(who, 'GET', path)
      assert.equal(r.status, 200)
      assert.ok(!/passwordHash|scrypt\$/.test(r.body), `${who} ${path}: ${r.body}`)
    }
    // The API still stores the hash: the gateway removed it.
    const direct = await request(api.url, {
      path: '/api/v2/users/me',
      headers: { authorization: `Bearer ${session.alice}` },
    })
    assert.match(direct.body, /passwordHash/)
  })

  test('inventory: the retired v1 API and the debug endpoint answer 404, with or without a session', async () => {
    for (const who of ['anonymous', 'alice', 'admin'] as const) {
      for (const path of ['/api/v1/users/1', '/api/v2/debug/config']) {
        const r = await send(who, 'GET', path)
        assert.equal(r.status, 404, `${who} ${path}`)
        assert.equal(r.code, 'GW_ERR_ROUTE_NOT_IN_SPEC')
        assert.ok(!r.body.includes('passwordHash') && !r.body.includes('AKIA'))
      }
    }
    // More than the contract's 100 ids is refused before the API.
    const ids = Array.from({ length: 150 }, (_, i) => i + 1).join(',')
    assert.equal((await send('alice', 'GET', `/api/v2/accounts?ids=${ids}`)).status, 400)
  })
})
