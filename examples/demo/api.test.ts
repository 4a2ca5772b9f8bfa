import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { parse as parseYaml } from 'yaml'
import {
  AVATAR_MAX_BYTES,
  type DemoApi,
  type DemoUsername,
  demoCredentials,
  demoOpenApiPath,
  MAX_BODY_BYTES,
  startDemoApi,
} from './api.js'

type Json = Record<string, unknown>

interface Reply {
  status: number
  headers: Headers
  text: string
  json: unknown
}

async function call(
  api: DemoApi,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  let body: string | undefined
  if (opts.rawBody !== undefined) body = opts.rawBody
  else if (opts.body !== undefined) body = JSON.stringify(opts.body)
  if (body !== undefined) headers['content-type'] ??= 'application/json'
  const res = await fetch(api.url + path, { method, headers, body })
  const text = await res.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json }
}

function obj(value: unknown): Json {
  assert.equal(typeof value, 'object')
  assert.ok(value !== null && !Array.isArray(value))
  return value as Json
}

function list(value: unknown): Json[] {
  assert.ok(Array.isArray(value))
  return value.map(obj)
}

async function login(api: DemoApi, username: DemoUsername): Promise<string> {
  const r = await call(api, 'POST', '/api/v2/login', {
    body: { username, password: demoCredentials[username] },
  })
  assert.equal(r.status, 200)
  const token = obj(r.json).token
  assert.equal(typeof token, 'string')
  return token as string
}

/** A throwaway local http server standing in for an internal service the API should never reach. */
async function startInternalServer(
  handler: Parameters<typeof createServer>[1],
): Promise<{ url: string; server: Server; hits: () => number }> {
  let hits = 0
  const server = createServer((req, res) => {
    hits++
    handler?.(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, server, hits: () => hits }
}

async function stopServer(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

describe('demo API: normal behaviour', () => {
  let api: DemoApi
  before(async () => {
    api = await startDemoApi({ port: 0 })
  })
  after(async () => {
    await api.close()
  })

  test('starts on 127.0.0.1 with an ephemeral port', () => {
    assert.ok(api.port > 0)
    assert.equal(api.url, `http://127.0.0.1:${api.port}`)
  })

  test('GET /healthz answers without auth', async () => {
    const r = await call(api, 'GET', '/healthz')
    assert.equal(r.status, 200)
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/)
    assert.deepEqual(r.json, { status: 'ok' })
  })

  test('HEAD works and returns headers without a body', async () => {
    const r = await call(api, 'HEAD', '/healthz')
    assert.equal(r.status, 200)
    assert.equal(r.text, '')
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/)
    assert.equal(r.headers.get('content-length'), String(JSON.stringify({ status: 'ok' }).length))

    const token = await login(api, 'alice')
    const me = await call(api, 'HEAD', '/api/v2/users/me', { token })
    assert.equal(me.status, 200)
    assert.equal(me.text, '')
    const anon = await call(api, 'HEAD', '/api/v2/users/me')
    assert.equal(anon.status, 401)
  })

  test('login with the right password returns a token and the user summary', async () => {
    const r = await call(api, 'POST', '/api/v2/login', {
      body: { username: 'alice', password: 'alice-password-1' },
    })
    assert.equal(r.status, 200)
    const body = obj(r.json)
    assert.deepEqual(body.user, { id: 1, username: 'alice', role: 'user' })
    assert.match(String(body.token), /^[A-Za-z0-9_-]{32}$/)

    const admin = await call(api, 'POST', '/api/v2/login', {
      body: { username: 'admin', password: 'admin-password-3' },
    })
    assert.equal(admin.status, 200)
    assert.deepEqual(obj(admin.json).user, { id: 3, username: 'admin', role: 'admin' })
    assert.notEqual(obj(admin.json).token, body.token)
  })

  test('login with a wrong password or an unknown user is 401 with one message', async () => {
    const wrong = await call(api, 'POST', '/api/v2/login', { body: { username: 'alice', password: 'nope' } })
    const unknown = await call(api, 'POST', '/api/v2/login', { body: { username: 'mallory', password: 'x' } })
    assert.equal(wrong.status, 401)
    assert.equal(unknown.status, 401)
    assert.match(wrong.headers.get('content-type') ?? '', /^application\/problem\+json/)
    assert.equal(obj(wrong.json).detail, 'Invalid username or password')
    assert.deepEqual(wrong.json, unknown.json)
    assert.equal(obj(wrong.json).token, undefined)
  })

  test('login with missing fields is 400', async () => {
    const r = await call(api, 'POST', '/api/v2/login', { body: { username: 'alice' } })
    assert.equal(r.status, 400)
    assert.equal(obj(r.json).detail, '"password" must be a non-empty string')
  })

  test('protected routes are 401 without a valid bearer token', async () => {
    for (const path of ['/api/v2/users/me', '/api/v2/users/1', '/api/v2/accounts/1', '/api/v2/orders']) {
      const r = await call(api, 'GET', path)
      assert.equal(r.status, 401, path)
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="demo-api"')
      assert.deepEqual(r.json, {
        type: 'about:blank',
        title: 'Unauthorized',
        status: 401,
        detail: 'A valid bearer token is required',
      })
    }
    const forged = await call(api, 'GET', '/api/v2/users/me', { token: 'not-a-real-token' })
    assert.equal(forged.status, 401)
    const basic = await call(api, 'GET', '/api/v2/users/me', {
      headers: { authorization: 'Basic YWxpY2U6eA==' },
    })
    assert.equal(basic.status, 401)
  })

  test('GET /api/v2/users/me returns the caller', async () => {
    const token = await login(api, 'bob')
    const r = await call(api, 'GET', '/api/v2/users/me', { token })
    assert.equal(r.status, 200)
    const me = obj(r.json)
    assert.equal(me.id, 2)
    assert.equal(me.username, 'bob')
    assert.equal(me.email, 'bob@example.com')
    assert.equal(me.role, 'user')
  })

  test('orders: create (201 + Location), list own, get, replace, delete', async () => {
    const token = await login(api, 'alice')
    const created = await call(api, 'POST', '/api/v2/orders', { token, body: { item: 'mouse', quantity: 2 } })
    assert.equal(created.status, 201)
    const order = obj(created.json)
    assert.equal(typeof order.id, 'number')
    assert.equal(created.headers.get('location'), `/api/v2/orders/${order.id}`)
    assert.deepEqual(order, { id: order.id, ownerId: 1, item: 'mouse', quantity: 2, total: 39.98 })

    const mine = list((await call(api, 'GET', '/api/v2/orders', { token })).json)
    assert.ok(mine.every((o) => o.ownerId === 1))
    assert.ok(mine.some((o) => o.id === order.id))
    assert.ok(mine.some((o) => o.id === 1))

    const got = await call(api, 'GET', `/api/v2/orders/${order.id}`, { token })
    assert.deepEqual(got.json, order)

    const put = await call(api, 'PUT', `/api/v2/orders/${order.id}`, {
      token,
      body: { item: 'keyboard', quantity: 3 },
    })
    assert.equal(put.status, 200)
    assert.deepEqual(put.json, { id: order.id, ownerId: 1, item: 'keyboard', quantity: 3, total: 149.7 })

    const del = await call(api, 'DELETE', `/api/v2/orders/${order.id}`, { token })
    assert.equal(del.status, 204)
    assert.equal(del.text, '')
    const gone = await call(api, 'GET', `/api/v2/orders/${order.id}`, { token })
    assert.equal(gone.status, 404)
  })

  test('order validation: bad quantity is 400', async () => {
    const token = await login(api, 'alice')
    const r = await call(api, 'POST', '/api/v2/orders', { token, body: { item: 'mouse', quantity: 0 } })
    assert.equal(r.status, 400)
    assert.equal(obj(r.json).detail, '"quantity" must be an integer between 1 and 1000')
  })

  test('unknown routes are 404 JSON', async () => {
    const token = await login(api, 'alice')
    for (const path of ['/nope', '/api/v2/widgets', '/api/v3/users/1', '/api/v2/users/abc']) {
      const r = await call(api, 'GET', path, { token })
      assert.equal(r.status, 404, path)
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/)
      assert.equal(obj(r.json).title, 'Not Found')
      assert.equal(obj(r.json).status, 404)
    }
    const missing = await call(api, 'GET', '/api/v2/users/999', { token })
    assert.equal(missing.status, 404)
    assert.deepEqual(missing.json, {
      type: 'about:blank',
      title: 'Not Found',
      status: 404,
      detail: 'No such resource',
    })
  })

  test('a wrong method on a known route is 405 with Allow', async () => {
    const r = await call(api, 'DELETE', '/api/v2/users/me')
    assert.equal(r.status, 405)
    assert.equal(r.headers.get('allow'), 'GET, PATCH, HEAD, OPTIONS')
    assert.equal(obj(r.json).status, 405)
  })

  test('bad JSON is 400 JSON, and so is a non-object body', async () => {
    const login400 = await call(api, 'POST', '/api/v2/login', { rawBody: '{"username": "alice",' })
    assert.equal(login400.status, 400)
    assert.deepEqual(login400.json, {
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'Malformed JSON body',
    })
    const token = await login(api, 'alice')
    const patch = await call(api, 'PATCH', '/api/v2/users/me', { token, rawBody: 'not json' })
    assert.equal(patch.status, 400)
    assert.equal(obj(patch.json).detail, 'Malformed JSON body')
    const array = await call(api, 'POST', '/api/v2/orders', { token, rawBody: '[1,2]' })
    assert.equal(array.status, 400)
    assert.equal(obj(array.json).detail, 'The JSON body must be an object')
    const empty = await call(api, 'POST', '/api/v2/orders', { token, rawBody: '' })
    assert.equal(empty.status, 400)
    assert.equal(obj(empty.json).detail, 'A JSON object body is required')
  })

  test('bodies over 1 MiB are refused with 413 and the server keeps working', async () => {
    const big = JSON.stringify({ username: 'a'.repeat(MAX_BODY_BYTES), password: 'x' })
    const r = await call(api, 'POST', '/api/v2/login', { rawBody: big })
    assert.equal(r.status, 413)
    assert.equal(obj(r.json).title, 'Payload Too Large')
    const health = await call(api, 'GET', '/healthz')
    assert.equal(health.status, 200)
  })

  test('state is fresh per startDemoApi call', async () => {
    const token = await login(api, 'alice')
    const created = await call(api, 'POST', '/api/v2/orders', { token, body: { item: 'mouse', quantity: 1 } })
    assert.equal(created.status, 201)
    const other = await startDemoApi()
    try {
      assert.notEqual(other.port, api.port)
      const t2 = await login(other, 'alice')
      const orders = list((await call(other, 'GET', '/api/v2/orders', { token: t2 })).json)
      assert.deepEqual(
        orders.map((o) => o.id),
        [1],
      )
      const stale = await call(other, 'GET', '/api/v2/users/me', { token })
      assert.equal(stale.status, 401)
    } finally {
      await other.close()
    }
  })
})

describe('demo API: the deliberate flaws exist as documented', () => {
  let api: DemoApi
  let alice: string
  let bob: string
  before(async () => {
    api = await startDemoApi()
    alice = await login(api, 'alice')
    bob = await login(api, 'bob')
  })
  after(async () => {
    await api.close()
  })

  test('API1 BOLA: alice reads bob account by id and by ?ids', async () => {
    const r = await call(api, 'GET', '/api/v2/accounts/2', { token: alice })
    assert.equal(r.status, 200)
    assert.deepEqual(r.json, {
      id: 2,
      ownerId: 2,
      balance: 98250,
      currency: 'EUR',
      iban: 'GB82WEST12345698765432',
    })
    const own = list((await call(api, 'GET', '/api/v2/accounts', { token: alice })).json)
    assert.deepEqual(
      own.map((a) => a.id),
      [1],
    )
    const many = list((await call(api, 'GET', '/api/v2/accounts?ids=1,2,3', { token: alice })).json)
    assert.deepEqual(
      many.map((a) => a.ownerId),
      [1, 2, 3],
    )
    const bad = await call(api, 'GET', '/api/v2/accounts?ids=1;DROP', { token: alice })
    assert.equal(bad.status, 400)
  })

  test('API1 BOLA: alice reads, replaces and deletes bob order', async () => {
    const read = await call(api, 'GET', '/api/v2/orders/2', { token: alice })
    assert.equal(read.status, 200)
    assert.equal(obj(read.json).ownerId, 2)
    assert.equal(obj(read.json).item, 'monitor')
    const put = await call(api, 'PUT', '/api/v2/orders/2', {
      token: alice,
      body: { item: 'mouse', quantity: 1 },
    })
    assert.equal(put.status, 200)
    assert.deepEqual(put.json, { id: 2, ownerId: 2, item: 'mouse', quantity: 1, total: 19.99 })
    const bobSees = await call(api, 'GET', '/api/v2/orders', { token: bob })
    assert.equal(list(bobSees.json)[0]?.item, 'mouse')
    const del = await call(api, 'DELETE', '/api/v2/orders/2', { token: alice })
    assert.equal(del.status, 204)
    assert.deepEqual((await call(api, 'GET', '/api/v2/orders', { token: bob })).json, [])
  })

  test('API1 + API3: any user reads any user, passwordHash included', async () => {
    const r = await call(api, 'GET', '/api/v2/users/3', { token: alice })
    assert.equal(r.status, 200)
    const admin = obj(r.json)
    assert.equal(admin.username, 'admin')
    assert.equal(admin.role, 'admin')
    assert.equal(admin.email, 'admin@example.com')
    assert.match(String(admin.passwordHash), /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/)
    const me = obj((await call(api, 'GET', '/api/v2/users/me', { token: alice })).json)
    assert.equal(typeof me.passwordHash, 'string')
  })

  test('API3 mass assignment: PATCH /users/me role and isAdmin stick', async () => {
    const mallory = await login(api, 'bob')
    const r = await call(api, 'PATCH', '/api/v2/users/me', {
      token: mallory,
      body: { displayName: 'Bob B.', role: 'admin', isAdmin: true, id: 99 },
    })
    assert.equal(r.status, 200)
    const patched = obj(r.json)
    assert.equal(patched.id, 2)
    assert.equal(patched.role, 'admin')
    assert.equal(patched.isAdmin, true)
    assert.equal(patched.displayName, 'Bob B.')
    const again = obj((await call(api, 'GET', '/api/v2/users/me', { token: mallory })).json)
    assert.equal(again.role, 'admin')
    assert.equal(again.isAdmin, true)
    const relogin = await call(api, 'POST', '/api/v2/login', {
      body: { username: 'bob', password: demoCredentials.bob },
    })
    assert.equal(obj(obj(relogin.json).user).role, 'admin')
  })

  test('mass assignment does not pollute prototypes', async () => {
    const r = await call(api, 'PATCH', '/api/v2/users/me', {
      token: alice,
      rawBody: '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}',
    })
    assert.equal(r.status, 200)
    assert.equal(({} as Json).polluted, undefined)
    assert.equal(obj(r.json).polluted, undefined)
  })

  test('API5 BFLA: alice (role user) calls the admin role endpoint', async () => {
    const before = obj((await call(api, 'GET', '/api/v2/users/1', { token: alice })).json)
    assert.equal(before.role, 'user')
    const r = await call(api, 'POST', '/api/v2/admin/users/1/role', { token: alice, body: { role: 'admin' } })
    assert.equal(r.status, 200)
    assert.deepEqual(r.json, { id: 1, username: 'alice', role: 'admin' })
    const after = obj((await call(api, 'GET', '/api/v2/users/me', { token: alice })).json)
    assert.equal(after.role, 'admin')
    const invalid = await call(api, 'POST', '/api/v2/admin/users/1/role', {
      token: alice,
      body: { role: 'root' },
    })
    assert.equal(invalid.status, 400)
    const anon = await call(api, 'POST', '/api/v2/admin/users/1/role', { body: { role: 'user' } })
    assert.equal(anon.status, 401)
  })

  test('API2/API4: no lockout or rate limit on login', async () => {
    for (let i = 0; i < 25; i++) {
      const r = await call(api, 'POST', '/api/v2/login', {
        body: { username: 'admin', password: `guess-${i}` },
      })
      assert.equal(r.status, 401)
    }
    const ok = await call(api, 'POST', '/api/v2/login', {
      body: { username: 'admin', password: demoCredentials.admin },
    })
    assert.equal(ok.status, 200)
    assert.equal(ok.headers.get('retry-after'), null)
  })

  test('API7 SSRF: the avatar endpoint fetches a local-only server', async () => {
    const secret = 'internal-only: db password hunter2'
    const internal = await startInternalServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(secret)
    })
    try {
      const r = await call(api, 'POST', '/api/v2/users/me/avatar', {
        token: alice,
        body: { imageUrl: `${internal.url}/admin/secrets` },
      })
      assert.equal(r.status, 200)
      assert.deepEqual(r.json, {
        fetched: true,
        url: `${internal.url}/admin/secrets`,
        status: 200,
        bytes: Buffer.byteLength(secret),
        contentType: 'text/plain',
        truncated: false,
      })
      assert.equal(internal.hits(), 1)
      const me = obj((await call(api, 'GET', '/api/v2/users/me', { token: alice })).json)
      assert.equal(me.avatarUrl, `${internal.url}/admin/secrets`)
    } finally {
      await stopServer(internal.server)
    }
  })

  test('avatar fetch: 64 KiB cap, http/https only, errors are reported', async () => {
    const internal = await startInternalServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' })
      res.end(Buffer.alloc(AVATAR_MAX_BYTES * 3, 1))
    })
    try {
      const r = await call(api, 'POST', '/api/v2/users/me/avatar', {
        token: alice,
        body: { imageUrl: `${internal.url}/big.png` },
      })
      assert.equal(r.status, 200)
      assert.equal(obj(r.json).bytes, 65536)
      assert.equal(obj(r.json).truncated, true)
      assert.equal(obj(r.json).contentType, 'image/png')
    } finally {
      await stopServer(internal.server)
    }
    const file = await call(api, 'POST', '/api/v2/users/me/avatar', {
      token: alice,
      body: { imageUrl: 'file:///etc/passwd' },
    })
    assert.equal(file.status, 400)
    assert.equal(obj(file.json).detail, 'Only http and https URLs are supported')
    const relative = await call(api, 'POST', '/api/v2/users/me/avatar', {
      token: alice,
      body: { imageUrl: '/x' },
    })
    assert.equal(relative.status, 400)
    // The closed port's error text comes back: a port-scanning oracle.
    const closed = await startInternalServer(undefined)
    const closedUrl = closed.url
    await stopServer(closed.server)
    const refused = await call(api, 'POST', '/api/v2/users/me/avatar', {
      token: alice,
      body: { imageUrl: closedUrl },
    })
    assert.equal(refused.status, 502)
    assert.match(String(obj(refused.json).detail), /ECONNREFUSED/)
  })

  test('avatar fetch gives up after 2 s', async () => {
    const hanging = await startInternalServer(() => {
      // never answers
    })
    try {
      const started = Date.now()
      const r = await call(api, 'POST', '/api/v2/users/me/avatar', {
        token: alice,
        body: { imageUrl: hanging.url },
      })
      const elapsed = Date.now() - started
      assert.equal(r.status, 502)
      assert.match(String(obj(r.json).detail), /timed out after 2000 ms/)
      assert.ok(elapsed >= 1900 && elapsed < 5000, `elapsed ${elapsed} ms`)
    } finally {
      await stopServer(hanging.server)
    }
  })

  test('API8 + API9: the undocumented debug route answers without auth', async () => {
    const r = await call(api, 'GET', '/api/v2/debug/config')
    assert.equal(r.status, 200)
    const config = obj(r.json)
    assert.equal(config.environment, 'production')
    assert.equal(config.debug, true)
    assert.deepEqual(config.aws, {
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    })
    assert.match(String(obj(config.database).url), /^postgres:\/\/demo_app:[^@]+@db\.internal\.example/)
  })

  test('API9: the old /api/v1 answers unauthenticated with the full user', async () => {
    const r = await call(api, 'GET', '/api/v1/users/2')
    assert.equal(r.status, 200)
    const user = obj(r.json)
    assert.equal(user.id, 2)
    assert.equal(user.username, 'bob')
    assert.match(String(user.passwordHash), /^scrypt\$/)
    assert.equal((await call(api, 'GET', '/api/v1/users/42')).status, 404)
  })

  test('API8: Server and X-Powered-By are sent on every response', async () => {
    for (const [method, path] of [
      ['GET', '/healthz'],
      ['GET', '/does-not-exist'],
      ['GET', '/api/v2/users/me'],
      ['POST', '/api/v2/login'],
    ] as const) {
      const r = await call(api, method, path, method === 'POST' ? { rawBody: '{' } : {})
      assert.equal(r.headers.get('server'), 'demo-api', `${method} ${path}`)
      assert.equal(r.headers.get('x-powered-by'), 'demo-express/4.0', `${method} ${path}`)
    }
  })
})

describe('demo OpenAPI document', () => {
  type Doc = {
    openapi: string
    paths: Record<string, Record<string, Json>>
    components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> }
  }
  const doc = parseYaml(readFileSync(demoOpenApiPath(), 'utf8')) as Doc
  const methods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options']
  const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => methods.includes(m))
      .map(([method, op]) => ({ path, method, op })),
  )

  test('is OpenAPI 3.1 and documents only the intended routes', () => {
    assert.equal(doc.openapi, '3.1.0')
    const paths = Object.keys(doc.paths)
    assert.ok(paths.includes('/api/v2/users/{id}'))
    assert.ok(paths.includes('/api/v2/admin/users/{id}/role'))
    assert.ok(!paths.some((p) => p.includes('debug')))
    assert.ok(!paths.some((p) => p.startsWith('/api/v1')))
    assert.equal(operations.length, 14)
  })

  test('every operation has an operationId, tags and explicit security', () => {
    const ids = new Set<string>()
    for (const { path, method, op } of operations) {
      assert.equal(typeof op.operationId, 'string', `${method} ${path}`)
      ids.add(String(op.operationId))
      assert.ok(Array.isArray(op.tags) && op.tags.length > 0, `${method} ${path}`)
      assert.ok(Array.isArray(op.security), `${method} ${path}`)
    }
    assert.equal(ids.size, operations.length)
    const admin = doc.paths['/api/v2/admin/users/{id}/role']?.post
    assert.deepEqual(admin?.tags, ['admin'])
    assert.deepEqual(admin?.['x-portcullis-roles'], ['admin'])
    assert.deepEqual(doc.components.securitySchemes.bearerAuth, {
      type: 'http',
      scheme: 'bearer',
      description: 'The opaque token returned by `POST /api/v2/login`.',
    })
  })

  test('schemas: User hides passwordHash, UserUpdate is closed, ids are readOnly', () => {
    const { schemas } = doc.components
    for (const name of ['User', 'UserUpdate', 'Account', 'Order', 'OrderCreate', 'Login', 'Error']) {
      assert.ok(schemas[name], name)
    }
    const userProps = obj(schemas.User?.properties)
    assert.equal(userProps.passwordHash, undefined)
    assert.equal(schemas.User?.additionalProperties, false)
    assert.deepEqual(Object.keys(obj(schemas.UserUpdate?.properties)).sort(), ['displayName', 'email'])
    assert.equal(schemas.UserUpdate?.additionalProperties, false)
    for (const name of ['User', 'Account', 'Order']) {
      assert.equal(obj(obj(schemas[name]?.properties).id).readOnly, true, name)
    }
  })

  test('every documented operation exists on the running API', async () => {
    const api = await startDemoApi()
    try {
      const token = await login(api, 'alice')
      for (const { path, method } of operations) {
        const concrete = path.replace('{id}', '1')
        const withBody = method === 'get' ? {} : { rawBody: '{}' }
        const r = await call(api, method.toUpperCase(), concrete, { token, ...withBody })
        assert.ok(r.status !== 404 && r.status !== 405, `${method} ${path} → ${r.status}`)
      }
    } finally {
      await api.close()
    }
  })
})
