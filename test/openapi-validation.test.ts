/**
 * openapi-validation through the real `portcullis serve` process with the demo API's spec
 * (examples/demo/openapi.yaml): in front of the real demo API (mass assignment, the debug
 * endpoint, the retired v1 API), and in front of a recording upstream (what passes, what is
 * stripped, a hostile corpus and a valid one).
 */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type DemoApi, startDemoApi } from '../examples/demo/api.js'
import { request, type Res } from './helpers/http.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'
import { type RecordingUpstream, startRecordingUpstream } from './helpers/servers.js'

const ROOT = new URL('../../', import.meta.url).pathname
const SPEC = join(ROOT, 'examples/demo/openapi.yaml')

/** The demo spec rewritten as OAS 3.0 (nullable instead of a null type, enum instead of const). */
function spec30(): string {
  const text = readFileSync(SPEC, 'utf8')
    .replace('openapi: 3.1.0', 'openapi: 3.0.3')
    .replace(/\n(\s+)type: \[string, "null"\]/g, '\n$1type: string\n$1nullable: true')
    .replace(/\n(\s+)const: ok/g, '\n$1enum: [ok]')
    .replace(/\n\s+identifier: Apache-2.0/, '')
  assert.ok(!text.includes('3.1.0') && text.includes('nullable: true'))
  const file = join(tempDir(), 'openapi-3.0.yaml')
  writeFileSync(file, text)
  return file
}

function config(upstream: string, policy: string, spec = SPEC): string {
  return `listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${upstream}" } ] } }
routes:
  - name: all
    match: { pathPrefix: / }
    upstream: up
    policies:
      openapi-validation:
        spec: ${JSON.stringify(spec)}
${policy
  .split('\n')
  .map((l) => `        ${l}`)
  .join('\n')}
accessLog: { enabled: false }
reload: { watch: false }
log: { level: info }
`
}

const json = (body: unknown, extra: Record<string, string> = {}) => ({
  headers: { 'content-type': 'application/json', ...extra },
  body: typeof body === 'string' ? body : JSON.stringify(body),
})

function problem(r: Res): {
  code: string
  violations?: { in: string; name?: string; pointer: string; expected: string }[]
} {
  assert.equal(r.headers['content-type'], 'application/problem+json', r.body)
  return JSON.parse(r.body)
}

describe('in front of the demo API', () => {
  let api: DemoApi
  let gw: GatewayProcess
  before(async () => {
    api = await startDemoApi()
    gw = await spawnGateway(config(api.url, 'mode: block'))
  })
  after(async () => {
    await gw?.stop()
    await api?.close()
  })

  test('mass assignment and unknown fields are refused; declared changes pass', async () => {
    const login = await request(gw.url, {
      method: 'POST',
      path: '/api/v2/login',
      ...json({ username: 'alice', password: 'alice-password-1' }),
    })
    assert.equal(login.status, 200, login.body)
    const token = (JSON.parse(login.body) as { token: string }).token
    const auth = { authorization: `Bearer ${token}` }
    const escalate = await request(gw.url, {
      method: 'PATCH',
      path: '/api/v2/users/me',
      ...json({ displayName: 'A', role: 'admin', passwordHash: 'x' }, auth),
    })
    assert.equal(escalate.status, 400)
    const p = problem(escalate)
    assert.equal(p.code, 'GW_ERR_VALIDATION')
    assert.deepEqual(
      p.violations?.map((v) => v.pointer),
      ['/role', '/passwordHash'],
    )
    const ok = await request(gw.url, {
      method: 'PATCH',
      path: '/api/v2/users/me',
      ...json({ displayName: 'Alice E.' }, auth),
    })
    assert.equal(ok.status, 200, ok.body)
    const me = JSON.parse((await request(gw.url, { path: '/api/v2/users/me', headers: auth })).body) as {
      role: string
    }
    assert.equal(me.role, 'user')
    const order = await request(gw.url, {
      method: 'POST',
      path: '/api/v2/orders',
      ...json({ item: 'mouse', quantity: 2, total: 0, ownerId: 2 }, auth),
    })
    assert.equal(order.status, 400)
  })

  test('the undocumented debug endpoint and the retired v1 API are closed', async () => {
    for (const path of ['/api/v2/debug/config', '/api/v1/users/1', '/api/v2/users/1/extra']) {
      const r = await request(gw.url, { path })
      assert.equal(r.status, 404, path)
      assert.equal(problem(r).code, 'GW_ERR_ROUTE_NOT_IN_SPEC')
    }
    const r = await request(gw.url, { method: 'DELETE', path: '/api/v2/users/1' })
    assert.equal(r.status, 405)
    assert.equal(r.headers.allow, 'GET')
    assert.equal(problem(r).code, 'GW_ERR_METHOD_NOT_IN_SPEC')
  })
})

describe('in front of a recording upstream', () => {
  let up: RecordingUpstream
  let block: GatewayProcess
  let strip: GatewayProcess
  let monitor: GatewayProcess
  let block30: GatewayProcess
  before(async () => {
    up = await startRecordingUpstream()
    block = await spawnGateway(config(up.url, 'mode: block'))
    block30 = await spawnGateway(config(up.url, 'mode: block', spec30()))
    strip = await spawnGateway(
      config(
        up.url,
        'unknownQueryParams: strip\nundeclaredProperties: strip\noperations:\n  getHealth: { mode: monitor }',
      ),
    )
    monitor = await spawnGateway(config(up.url, 'mode: monitor\nundeclaredRoutes: monitor'))
  })
  after(async () => {
    await Promise.all([block?.stop(), block30?.stop(), strip?.stop(), monitor?.stop()])
    await up?.close()
  })

  test('strip: undeclared body properties and query parameters are removed before the upstream', async () => {
    up.clear()
    const r = await request(strip.url, {
      method: 'PATCH',
      path: '/api/v2/users/me?debug=1&x=2',
      ...json({ displayName: 'A', role: 'admin', nested: { a: 1 } }),
    })
    assert.equal(r.status, 200, r.body)
    const seen = up.requests[0]
    assert.equal(seen?.url, '/api/v2/users/me')
    assert.deepEqual(JSON.parse(seen?.body.toString() ?? ''), { displayName: 'A' })
    assert.equal(seen?.headers['content-length'], String(seen?.body.length))
    // A type error is still refused in strip mode.
    const bad = await request(strip.url, {
      method: 'PATCH',
      path: '/api/v2/users/me',
      ...json({ displayName: 5, role: 'admin' }),
    })
    assert.equal(bad.status, 400)
  })

  test('monitor: violations and shadow routes pass and are logged', async () => {
    up.clear()
    const r = await request(monitor.url, {
      method: 'PATCH',
      path: '/api/v2/users/me',
      ...json({ role: 'admin' }),
    })
    assert.equal(r.status, 200)
    const shadow = await request(monitor.url, { path: '/api/v2/debug/config' })
    assert.equal(shadow.status, 200)
    assert.equal(up.requests.length, 2)
    const deadline = Date.now() + 3000
    while (!/shadow-api/.test(monitor.stderr()) && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 20))
    assert.match(monitor.stderr(), /"event":"shadow-api"/)
    assert.match(monitor.stderr(), /request violates the spec \(monitor mode, passed\)/)
  })

  test('a per-operation override: getHealth is monitored on the strip gateway', async () => {
    const r = await request(strip.url, { path: '/healthz?verbose=1' })
    assert.equal(r.status, 200)
  })

  test('problem documents: at most 100 characters of input echoed, at most maxViolations items', async () => {
    const long = 'k'.repeat(5000)
    const body: Record<string, number> = {}
    for (let i = 0; i < 30; i++) body[`${long}${i}`] = i
    const r = await request(block.url, { method: 'PATCH', path: '/api/v2/users/me', ...json(body) })
    assert.equal(r.status, 400)
    const p = problem(r)
    assert.equal(p.violations?.length, 10)
    assert.ok(r.body.length < 3000, `problem is ${r.body.length} bytes`)
    assert.ok(!r.body.includes('k'.repeat(101)))
  })

  // The corpus: [description, request] → expected status and code. None may reach the upstream.
  const token = { authorization: 'Bearer t' }
  const hostile: [string, Parameters<typeof request>[1], number, string][] = [
    [
      'mass assignment: role',
      { method: 'PATCH', path: '/api/v2/users/me', ...json({ role: 'admin' }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'extra field on order',
      { method: 'POST', path: '/api/v2/orders', ...json({ item: 'a', quantity: 1, price: 0 }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'type confusion: quantity string',
      { method: 'POST', path: '/api/v2/orders', ...json({ item: 'a', quantity: '1' }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'type confusion: quantity array',
      { method: 'POST', path: '/api/v2/orders', ...json({ item: 'a', quantity: [1] }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'type confusion: body array',
      { method: 'POST', path: '/api/v2/orders', ...json([{ item: 'a', quantity: 1 }]) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'quantity over maximum',
      { method: 'POST', path: '/api/v2/orders', ...json({ item: 'a', quantity: 1001 }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'quantity fractional',
      { method: 'POST', path: '/api/v2/orders', ...json({ item: 'a', quantity: 1.5 }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'missing required',
      { method: 'POST', path: '/api/v2/orders', ...json({ item: 'a' }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'empty body object',
      { method: 'PATCH', path: '/api/v2/users/me', ...json({}) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'string too long',
      { method: 'POST', path: '/api/v2/orders', ...json({ item: 'a'.repeat(101), quantity: 1 }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'bad email format',
      { method: 'PATCH', path: '/api/v2/users/me', ...json({ email: 'not-an-email' }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'role enum',
      { method: 'POST', path: '/api/v2/admin/users/2/role', ...json({ role: 'root' }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'avatar scheme',
      { method: 'POST', path: '/api/v2/users/me/avatar', ...json({ imageUrl: 'file:///etc/passwd' }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'prototype pollution __proto__',
      { method: 'PATCH', path: '/api/v2/users/me', ...json('{"__proto__":{"role":"admin"}}') },
      400,
      'GW_ERR_MALFORMED_BODY',
    ],
    [
      'prototype pollution constructor',
      { method: 'PATCH', path: '/api/v2/users/me', ...json('{"constructor":{"prototype":{"x":1}}}') },
      400,
      'GW_ERR_MALFORMED_BODY',
    ],
    [
      'duplicate keys',
      { method: 'PATCH', path: '/api/v2/users/me', ...json('{"displayName":"a","displayName":"b"}') },
      400,
      'GW_ERR_MALFORMED_BODY',
    ],
    [
      'deep nesting',
      { method: 'PATCH', path: '/api/v2/users/me', ...json(`${'['.repeat(100)}${']'.repeat(100)}`) },
      400,
      'GW_ERR_MALFORMED_BODY',
    ],
    [
      'huge array',
      { method: 'PATCH', path: '/api/v2/users/me', ...json(`[${Array(20000).fill(0).join(',')}]`) },
      400,
      'GW_ERR_MALFORMED_BODY',
    ],
    [
      'NUL escape',
      { method: 'PATCH', path: '/api/v2/users/me', ...json('{"displayName":"a\\u0000b"}') },
      400,
      'GW_ERR_MALFORMED_BODY',
    ],
    [
      'invalid JSON',
      { method: 'PATCH', path: '/api/v2/users/me', ...json('{"displayName":') },
      400,
      'GW_ERR_MALFORMED_BODY',
    ],
    [
      'invalid UTF-8',
      {
        method: 'PATCH',
        path: '/api/v2/users/me',
        headers: { 'content-type': 'application/json' },
        body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]),
      },
      400,
      'GW_ERR_MALFORMED_BODY',
    ],
    [
      'JSON as text/plain',
      {
        method: 'PATCH',
        path: '/api/v2/users/me',
        headers: { 'content-type': 'text/plain' },
        body: '{"displayName":"a"}',
      },
      415,
      'GW_ERR_UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'JSON as a form',
      {
        method: 'PATCH',
        path: '/api/v2/users/me',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'displayName=a',
      },
      415,
      'GW_ERR_UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'charset utf-16',
      {
        method: 'PATCH',
        path: '/api/v2/users/me',
        headers: { 'content-type': 'application/json; charset=utf-16' },
        body: '{"displayName":"a"}',
      },
      415,
      'GW_ERR_UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'no content type',
      { method: 'PATCH', path: '/api/v2/users/me', body: '{"displayName":"a"}' },
      415,
      'GW_ERR_UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'missing body',
      { method: 'POST', path: '/api/v2/orders', headers: { 'content-type': 'application/json' } },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'body on GET',
      { method: 'GET', path: '/api/v2/orders', ...json('{"a":1}', { 'content-length': '7' }) },
      400,
      'GW_ERR_VALIDATION',
    ],
    ['path param not integer', { path: '/api/v2/users/abc', headers: token }, 400, 'GW_ERR_VALIDATION'],
    ['path param zero', { path: '/api/v2/orders/0', headers: token }, 400, 'GW_ERR_VALIDATION'],
    [
      'path param too big',
      { path: '/api/v2/accounts/99999999999', headers: token },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'path param injection',
      { path: "/api/v2/users/1'%20OR%201=1", headers: token },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'query pollution (form, explode false)',
      { path: '/api/v2/accounts?ids=1&ids=2', headers: token },
      400,
      'GW_ERR_PARAMETER_POLLUTION',
    ],
    [
      'query item not integer',
      { path: '/api/v2/accounts?ids=1,x', headers: token },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'query too many items',
      { path: `/api/v2/accounts?ids=${Array(101).fill(1).join(',')}`, headers: token },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'unknown query parameter',
      { path: '/api/v2/orders?admin=true', headers: token },
      400,
      'GW_ERR_VALIDATION',
    ],
    [
      'bad percent-encoding in query',
      { path: '/api/v2/orders?a=%FF', headers: token },
      400,
      'GW_ERR_VALIDATION',
    ],
    ['undeclared route', { path: '/api/v2/debug/config' }, 404, 'GW_ERR_ROUTE_NOT_IN_SPEC'],
    ['undeclared method', { method: 'PUT', path: '/api/v2/users/me' }, 405, 'GW_ERR_METHOD_NOT_IN_SPEC'],
  ]
  // Generated: type confusion per field, read-only and unknown fields, nested prototype keys,
  // bad path ids, content-type confusion on every JSON operation.
  for (const [field, bad] of [
    ['item', [null, true, 1, {}, [], '']],
    ['quantity', [null, true, '2', {}, [], 1.5, 0, -1, 1001, 1e300]],
  ] as const) {
    for (const v of bad) {
      const body = { item: 'a', quantity: 1, [field]: v }
      hostile.push([
        `${field}=${JSON.stringify(v)}`,
        { method: 'POST', path: '/api/v2/orders', ...json(body) },
        400,
        'GW_ERR_VALIDATION',
      ])
    }
  }
  for (const extra of ['id', 'ownerId', 'total', 'role', 'passwordHash', 'isAdmin']) {
    hostile.push([
      `POST order + ${extra}`,
      { method: 'POST', path: '/api/v2/orders', ...json({ item: 'a', quantity: 1, [extra]: 1 }) },
      400,
      'GW_ERR_VALIDATION',
    ])
    hostile.push([
      `PUT order + ${extra}`,
      { method: 'PUT', path: '/api/v2/orders/1', ...json({ item: 'a', quantity: 1, [extra]: 1 }) },
      400,
      'GW_ERR_VALIDATION',
    ])
    hostile.push([
      `PATCH me + ${extra}`,
      { method: 'PATCH', path: '/api/v2/users/me', ...json({ displayName: 'a', [extra]: 'x' }) },
      400,
      'GW_ERR_VALIDATION',
    ])
  }
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    hostile.push([
      `nested ${key}`,
      {
        method: 'POST',
        path: '/api/v2/orders',
        ...json(`{"item":"a","quantity":1,"x":{"${key}":{"isAdmin":true}}}`),
      },
      400,
      'GW_ERR_MALFORMED_BODY',
    ])
    hostile.push([
      `array ${key}`,
      { method: 'POST', path: '/api/v2/orders', ...json(`[{"${key}":1}]`) },
      400,
      'GW_ERR_MALFORMED_BODY',
    ])
  }
  for (const base of ['/api/v2/users/', '/api/v2/accounts/', '/api/v2/orders/']) {
    for (const id of ['abc', '-1', '0', '1.5', '1e3', '%20', '0x10', '1000000000']) {
      hostile.push([`id ${base}${id}`, { path: `${base}${id}`, headers: token }, 400, 'GW_ERR_VALIDATION'])
    }
  }
  for (const [method, path] of [
    ['POST', '/api/v2/login'],
    ['PATCH', '/api/v2/users/me'],
    ['POST', '/api/v2/users/me/avatar'],
    ['POST', '/api/v2/orders'],
    ['PUT', '/api/v2/orders/1'],
    ['POST', '/api/v2/admin/users/1/role'],
  ]) {
    for (const ct of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
    ]) {
      hostile.push([
        `${method} ${path} as ${ct}`,
        { method, path, headers: { 'content-type': ct }, body: '{"role":"admin"}' },
        415,
        'GW_ERR_UNSUPPORTED_MEDIA_TYPE',
      ])
    }
  }

  for (const [name, gw] of [
    ['3.1', () => block],
    ['3.0', () => block30],
  ] as const) {
    test(`hostile corpus, OAS ${name}: all refused with the right code, none reaches the upstream`, async () => {
      up.clear()
      let refused = 0
      for (const [what, req, status, code] of hostile) {
        const r = await request(gw().url, req).catch((err: Error) => assert.fail(`${what}: ${err.message}`))
        assert.equal(r.status, status, `${what}: ${r.body}`)
        assert.equal(problem(r).code, code, what)
        refused++
      }
      assert.equal(up.requests.length, 0)
      assert.ok(refused >= 100)
      console.log(`OAS ${name}: hostile requests refused: ${refused}/${hostile.length}`)
    })
  }

  const valid: [string, Parameters<typeof request>[1]][] = [
    ['health', { path: '/healthz' }],
    ['login', { method: 'POST', path: '/api/v2/login', ...json({ username: 'alice', password: 'pw' }) }],
    ['me', { path: '/api/v2/users/me', headers: token }],
    ['patch name', { method: 'PATCH', path: '/api/v2/users/me', ...json({ displayName: 'Alice' }) }],
    ['patch email', { method: 'PATCH', path: '/api/v2/users/me', ...json({ email: 'a@example.com' }) }],
    [
      'patch charset',
      {
        method: 'PATCH',
        path: '/api/v2/users/me',
        ...json({ displayName: 'é' }, { 'content-type': 'application/json; charset=UTF-8' }),
      },
    ],
    [
      'avatar',
      {
        method: 'POST',
        path: '/api/v2/users/me/avatar',
        ...json({ imageUrl: 'https://img.example.com/a.png' }),
      },
    ],
    ['user', { path: '/api/v2/users/7', headers: token }],
    ['accounts', { path: '/api/v2/accounts', headers: token }],
    ['accounts ids', { path: '/api/v2/accounts?ids=1,2,3', headers: token }],
    ['account', { path: '/api/v2/accounts/1', headers: token }],
    ['orders', { path: '/api/v2/orders', headers: token }],
    ['create order', { method: 'POST', path: '/api/v2/orders', ...json({ item: 'mouse', quantity: 2 }) }],
    ['order', { path: '/api/v2/orders/3', headers: token }],
    ['replace order', { method: 'PUT', path: '/api/v2/orders/3', ...json({ item: 'kb', quantity: 1000 }) }],
    ['delete order', { method: 'DELETE', path: '/api/v2/orders/3', headers: token }],
    ['set role', { method: 'POST', path: '/api/v2/admin/users/2/role', ...json({ role: 'admin' }) }],
    ['HEAD as GET', { method: 'HEAD', path: '/api/v2/orders', headers: token }],
  ]
  for (const quantity of [1, 2, 10, 999, 1000]) {
    for (const item of ['a', 'mouse', 'x'.repeat(100), 'ünïcödé ✓', 'with space']) {
      valid.push([
        `order ${quantity} ${item}`,
        { method: 'POST', path: '/api/v2/orders', ...json({ item, quantity }) },
      ])
      valid.push([
        `replace ${quantity} ${item}`,
        { method: 'PUT', path: '/api/v2/orders/7', ...json({ quantity, item }) },
      ])
    }
  }
  for (const id of [1, 2, 3, 7, 42, 100, 12345, 999999999]) {
    for (const base of ['/api/v2/users/', '/api/v2/accounts/', '/api/v2/orders/'])
      valid.push([`${base}${id}`, { path: `${base}${id}`, headers: token }])
  }
  for (const ids of ['1', '1,2', '5,4,3,2,1', Array(100).fill(7).join(',')]) {
    valid.push([`accounts ids=${ids.slice(0, 10)}`, { path: `/api/v2/accounts?ids=${ids}`, headers: token }])
  }
  for (const body of [
    { displayName: '' + 'n'.repeat(100) },
    { email: 'x.y+z@sub.example.org' },
    { displayName: 'A', email: 'a@b.io' },
    { displayName: 'null' },
  ]) {
    valid.push([
      `patch ${Object.keys(body).join(',')}`,
      { method: 'PATCH', path: '/api/v2/users/me', ...json(body) },
    ])
  }
  for (const role of ['user', 'admin'])
    valid.push([
      `role ${role}`,
      {
        method: 'POST',
        path: '/api/v2/admin/users/9/role',
        ...json({ role }, { 'content-type': 'application/json;charset=utf-8' }),
      },
    ])

  for (const [name, gw] of [
    ['3.1', () => block],
    ['3.0', () => block30],
  ] as const) {
    test(`valid corpus, OAS ${name}: all passed`, async () => {
      up.clear()
      for (const [what, req] of valid) {
        const r = await request(gw().url, req)
        assert.equal(r.status, 200, `${what}: ${r.body}`)
      }
      assert.equal(up.requests.length, valid.length)
      assert.ok(valid.length >= 100)
      console.log(`OAS ${name}: valid requests passed: ${valid.length}/${valid.length}`)
    })
  }
})
