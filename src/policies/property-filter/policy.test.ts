import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import type { AuditEvent } from '../../audit/event.js'
import type { GatewayError } from '../../gateway/errors.js'
import type { Principal, ResponseHead } from '../../gateway/pipeline/context.js'
import type { PolicyInstance } from '../../gateway/pipeline/policy.js'
import { testContext, testDeps } from '../testing/context.js'
import { propertyFilter } from './policy.js'
import { PropertyFilterConfig } from './schema.js'

const SPEC = `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /users/{id}:
    parameters: [{ name: id, in: path, required: true, schema: { type: integer } }]
    get:
      operationId: getUser
      responses:
        '200':
          description: ok
          content: { application/json: { schema: { $ref: '#/components/schemas/User' } } }
    patch:
      operationId: updateUser
      requestBody:
        content: { application/json: { schema: { $ref: '#/components/schemas/User' } } }
      responses:
        '200':
          description: ok
          content: { application/json: { schema: { $ref: '#/components/schemas/User' } } }
  /users:
    get:
      operationId: listUsers
      responses:
        '2XX':
          description: ok
          content:
            application/json:
              schema:
                type: object
                properties:
                  items: { type: array, items: { $ref: '#/components/schemas/User' } }
  /login:
    post:
      operationId: login
      security: []
      requestBody:
        content: { application/json: { schema: { $ref: '#/components/schemas/Login' } } }
      responses:
        '200':
          description: ok
          content: { application/json: { schema: { type: object, properties: { token: { type: string } } } } }
  /tree:
    get:
      operationId: getTree
      responses:
        '200':
          description: ok
          content: { application/json: { schema: { $ref: '#/components/schemas/Tree' } } }
components:
  schemas:
    User:
      type: object
      properties:
        id: { type: integer, readOnly: true }
        name: { type: string }
        salary: { type: number, x-portcullis-roles: [admin, hr] }
        role: { $ref: '#/components/schemas/Role' }
        profile:
          allOf:
            - type: object
              properties:
                nickname: { type: string }
            - type: object
              properties:
                internalNote: { type: string, x-portcullis-roles: [admin] }
        pin: { type: string, writeOnly: true }
    Role:
      type: string
      x-portcullis-roles: [admin]
    Login:
      type: object
      properties:
        username: { type: string }
        password: { type: string, writeOnly: true }
    Tree:
      type: object
      properties:
        label: { type: string }
        secretLabel: { type: string, x-portcullis-roles: [admin] }
        children: { type: array, items: { $ref: '#/components/schemas/Tree' } }
`

const dir = mkdtempSync(join(tmpdir(), 'pcl-pf-'))
writeFileSync(join(dir, 'api.yaml'), SPEC)

function make(cfg: Record<string, unknown> = {}) {
  const deps = testDeps({ baseDir: dir })
  const policy = propertyFilter.create(
    Value.Default(PropertyFilterConfig, structuredClone(cfg)) as never,
    deps,
  ) as Required<PolicyInstance>
  return { policy, events: (deps.audit as unknown as { events: AuditEvent[] }).events }
}

function principal(roles: string[], claims: Record<string, unknown> = {}): Principal {
  return { id: 'u1', type: 'user', scopes: [], roles, claims, authMethod: 'test' }
}

async function respond(
  policy: Required<PolicyInstance>,
  opts: {
    method?: string
    path: string
    body: unknown
    status?: number
    who?: Principal
    headers?: Record<string, string>
  },
): Promise<{ body: unknown; raw: Buffer; ctx: ReturnType<typeof testContext> }> {
  const ctx = testContext({ method: opts.method ?? 'GET', path: opts.path })
  ctx.principal = opts.who
  await policy.onRequest(ctx)
  const head: ResponseHead = {
    status: opts.status ?? 200,
    headers: { 'content-type': 'application/json; charset=utf-8', ...opts.headers },
    local: false,
  }
  const input = Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body))
  const raw = await policy.onResponseBody(ctx, head, input)
  return { body: JSON.parse(raw.toString('utf8')), raw, ctx }
}

async function send(
  policy: Required<PolicyInstance>,
  opts: { method?: string; path: string; body: unknown; who?: Principal; type?: string },
): Promise<GatewayError | undefined> {
  const text = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body)
  const ctx = testContext({
    method: opts.method ?? 'PATCH',
    path: opts.path,
    headers: {
      'content-type': opts.type ?? 'application/json',
      'content-length': String(Buffer.byteLength(text)),
    },
  })
  ctx.principal = opts.who
  ctx.readBody = () => Promise.resolve(Buffer.from(text))
  try {
    await policy.onRequest(ctx)
    return undefined
  } catch (err) {
    return err as GatewayError
  }
}

function violationsOf(err: GatewayError | undefined): { pointer: string; reason: string }[] {
  return (err?.extensions?.violations ?? []) as { pointer: string; reason: string }[]
}

const USER = {
  id: 1,
  name: 'alice',
  salary: 100,
  role: 'user',
  passwordHash: 'scrypt$abc',
  profile: { nickname: 'al', internalNote: 'vip', Password: 'x' },
  pin: '1234',
}

test('responses: sensitive names at any depth (any case, _ and -), writeOnly and role-marked properties removed', async () => {
  const { policy, events } = make({ spec: 'api.yaml' })
  const r = await respond(policy, { path: '/users/1', body: USER, who: principal(['user']) })
  assert.deepEqual(r.body, { id: 1, name: 'alice', profile: { nickname: 'al' } })
  assert.equal(events.length, 1)
  const e = events[0] as AuditEvent
  assert.equal(e.type, 'property.removed')
  assert.equal(e.operation, 'getUser')
  assert.deepEqual(
    new Set((e.data as { properties: string[] }).properties),
    new Set(['salary', 'role', 'passwordHash', 'internalNote', 'Password', 'pin']),
  )
  // names, never values
  assert.ok(!JSON.stringify(e).includes('scrypt$abc'))
  assert.ok(!JSON.stringify(e).includes('1234'))
})

test('responses: an admin sees role-marked properties (roles from principal.roles or a claim); never sensitive ones', async () => {
  const { policy } = make({ spec: 'api.yaml' })
  const admin = await respond(policy, { path: '/users/1', body: USER, who: principal(['admin']) })
  assert.deepEqual(admin.body, {
    id: 1,
    name: 'alice',
    salary: 100,
    role: 'user',
    profile: { nickname: 'al', internalNote: 'vip' },
  })
  const hr = await respond(policy, {
    path: '/users/1',
    body: USER,
    who: principal([], { realm_access: { roles: ['hr'] } }),
  })
  assert.equal((hr.body as { salary?: number }).salary, 100)
  assert.equal((hr.body as { role?: string }).role, undefined)
  const anon = await respond(policy, { path: '/users/1', body: USER })
  assert.equal((anon.body as { salary?: number }).salary, undefined)
})

test('responses: arrays, status ranges (2XX) and recursive schemas', async () => {
  const { policy } = make({ spec: 'api.yaml' })
  const list = await respond(policy, {
    path: '/users',
    status: 201,
    body: { items: [USER, { ...USER, id: 2 }] },
  })
  const items = (list.body as { items: Record<string, unknown>[] }).items
  assert.equal(items.length, 2)
  for (const u of items) {
    assert.equal(u.salary, undefined)
    assert.equal(u.passwordHash, undefined)
  }
  let deep: Record<string, unknown> = { label: 'leaf', secretLabel: 's' }
  for (let i = 0; i < 50; i++) deep = { label: `n${i}`, secretLabel: 's', children: [deep] }
  const tree = await respond(policy, { path: '/tree', body: deep })
  assert.ok(!tree.raw.toString().includes('secretLabel'))
  assert.ok(tree.raw.toString().includes('"label":"leaf"'))
})

test('responses: a login operation may return its token (allowSensitive); others may not', async () => {
  const { policy } = make({ spec: 'api.yaml', operations: { login: { allowSensitive: ['token'] } } })
  const login = await respond(policy, { method: 'POST', path: '/login', body: { token: 't0k' } })
  assert.deepEqual(login.body, { token: 't0k' })
  const other = await respond(policy, {
    path: '/users/1',
    body: { id: 1, token: 't0k', nested: [{ token: 1 }] },
  })
  assert.deepEqual(other.body, { id: 1, nested: [{}] })
})

test('responses: configured patterns (linear engine, case-insensitive) and restricted names', async () => {
  const { policy } = make({
    sensitive: { patterns: ['^api_?key$', 'private'] },
    restricted: { email: ['admin'] },
  })
  const body = { apiKey: 1, API_KEY: 2, privateThing: 3, email: 'a@b', ok: { email: 'c@d', keep: true } }
  const user = await respond(policy, { path: '/x', body, who: principal(['user']) })
  assert.deepEqual(user.body, { ok: { keep: true } })
  const admin = await respond(policy, { path: '/x', body, who: principal(['admin']) })
  assert.deepEqual(admin.body, { email: 'a@b', ok: { email: 'c@d', keep: true } })
})

test('responses: nothing removed → the same bytes; other content types, HEAD and gateway responses pass', async () => {
  const { policy, events } = make()
  const raw = '{ "id" : 1 }'
  const r = await respond(policy, { path: '/x', body: raw })
  assert.equal(r.raw.toString(), raw)
  assert.equal(events.length, 0)
  const ctx = testContext({ path: '/x' })
  await policy.onRequest(ctx)
  const text = Buffer.from('password=hunter2')
  const plain = await policy.onResponseBody(
    ctx,
    { status: 200, headers: { 'content-type': 'text/plain' }, local: false },
    text,
  )
  assert.equal(plain, text)
  const local = Buffer.from('{"token":"x"}')
  const out = await policy.onResponseBody(
    ctx,
    { status: 401, headers: { 'content-type': 'application/json' }, local: true },
    local,
  )
  assert.equal(out, local)
})

test('responses: fail closed on compressed, unparseable or oversized JSON; onOversize: pass passes', async () => {
  const { policy } = make({ maxBodyBytes: 64 })
  const cases: [Record<string, string>, string][] = [
    [{ 'content-encoding': 'gzip' }, '{"a":1}'],
    [{}, '{"password": "x", '],
    [{}, JSON.stringify({ a: 'x'.repeat(100), password: 'p' })],
  ]
  for (const [headers, body] of cases) {
    await assert.rejects(respond(policy, { path: '/x', body, headers }), (e: GatewayError) => {
      assert.equal(e.code, 'GW_ERR_RESPONSE_NOT_FILTERED')
      assert.equal(e.status, 502)
      return true
    })
  }
  const pass = make({ maxBodyBytes: 64, onOversize: 'pass' }).policy
  const big = JSON.stringify({ a: 'x'.repeat(100), password: 'p' })
  assert.equal((await respond(pass, { path: '/x', body: big })).raw.toString(), big)
})

test('responses: the upstream is asked for an uncompressed response', async () => {
  const { policy } = make()
  const ctx = testContext({ path: '/x' })
  const set: [string, string | undefined][] = []
  ctx.setUpstreamHeader = (n, v) => set.push([n, v])
  await policy.onRequest(ctx)
  assert.deepEqual(set, [['accept-encoding', 'identity']])
})

test('requests: readOnly, role-marked and reserved properties → 400 naming the field (JSON pointer)', async () => {
  const { policy } = make({ spec: 'api.yaml', reserved: { isAdmin: ['admin'], passwordHash: [] } })
  const user = principal(['user'])
  const cases: [unknown, { pointer: string; reason: string }[]][] = [
    [{ id: 5 }, [{ pointer: '/id', reason: 'readOnly' }]],
    [{ role: 'admin' }, [{ pointer: '/role', reason: 'role' }]],
    [{ is_admin: true }, [{ pointer: '/is_admin', reason: 'reserved' }]],
    [{ name: 'x', profile: { internalNote: 'n' } }, [{ pointer: '/profile/internalNote', reason: 'role' }]],
    [{ extra: [{ deep: { IsAdmin: 1 } }] }, [{ pointer: '/extra/0/deep/IsAdmin', reason: 'reserved' }]],
    [
      { 'a/b~c': { isAdmin: true }, role: 'x' },
      [
        { pointer: '/role', reason: 'role' },
        { pointer: '/a~1b~0c/isAdmin', reason: 'reserved' },
      ],
    ],
  ]
  for (const [body, expected] of cases) {
    const err = await send(policy, { path: '/users/1', body, who: user })
    assert.ok(err, JSON.stringify(body))
    assert.equal(err.code, 'GW_ERR_PROPERTY_NOT_ALLOWED')
    assert.equal(err.status, 400)
    assert.deepEqual(
      violationsOf(err).map((v) => ({
        pointer: v.pointer,
        reason: v.reason,
      })),
      expected,
    )
  }
  // passwordHash: [] — nobody, admins included
  const admin = principal(['admin'])
  assert.equal(
    (await send(policy, { path: '/users/1', body: { passwordHash: 'x' }, who: admin }))?.code,
    'GW_ERR_PROPERTY_NOT_ALLOWED',
  )
  // an admin may set role-marked and reserved fields; readOnly stays refused
  assert.equal(
    await send(policy, { path: '/users/1', body: { role: 'admin', isAdmin: true }, who: admin }),
    undefined,
  )
  assert.equal(
    (await send(policy, { path: '/users/1', body: { id: 2 }, who: admin }))?.code,
    'GW_ERR_PROPERTY_NOT_ALLOWED',
  )
  assert.equal(
    await send(policy, { path: '/users/1', body: { name: 'bob', profile: { nickname: 'b' } }, who: user }),
    undefined,
  )
})

test('requests: hostile input — malformed JSON, duplicate keys, __proto__, deep nesting; echo bounded', async () => {
  const { policy } = make({ reserved: { role: ['admin'] }, json: { maxDepth: 20 } })
  for (const body of [
    '{"a":',
    '{"role":1,"role":2}',
    '{"__proto__":{"role":"admin"}}',
    `${'['.repeat(30)}${']'.repeat(30)}`,
  ]) {
    const err = await send(policy, { path: '/x', body })
    assert.equal(err?.code, 'GW_ERR_MALFORMED_BODY', body)
  }
  const long = 'k'.repeat(500)
  const err = await send(policy, { path: '/x', body: { [long]: { [long]: { role: 1 } } } })
  assert.equal(err?.code, 'GW_ERR_PROPERTY_NOT_ALLOWED')
  const v = violationsOf(err)[0] as { pointer: string }
  assert.ok(v.pointer.length <= 101, `${v.pointer.length}`)
  assert.ok(v.pointer.endsWith('…'))
  // at most maxViolations listed
  const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`o${i}`, { role: 1 }]))
  const e2 = await send(policy, { path: '/x', body: many })
  assert.equal(violationsOf(e2).length, 10)
})

test('requests: form bodies (bracket and dot names) and JSON sent under another content type are checked', async () => {
  const { policy } = make({ reserved: { role: ['admin'] } })
  const form = 'application/x-www-form-urlencoded'
  assert.equal(
    (await send(policy, { path: '/x', body: 'name=a&role=admin', type: form }))?.code,
    'GW_ERR_PROPERTY_NOT_ALLOWED',
  )
  const nested = await send(policy, { path: '/x', body: 'user%5Brole%5D=admin', type: form })
  assert.deepEqual(violationsOf(nested)[0]?.pointer, '/user/role')
  assert.equal(
    (await send(policy, { path: '/x', body: 'user.role=admin', type: form }))?.code,
    'GW_ERR_PROPERTY_NOT_ALLOWED',
  )
  assert.equal(
    (await send(policy, { path: '/x', body: '{"role":"admin"}', type: 'text/plain' }))?.code,
    'GW_ERR_PROPERTY_NOT_ALLOWED',
  )
  assert.equal(
    await send(policy, { path: '/x', body: 'not json at all', type: 'application/octet-stream' }),
    undefined,
  )
  assert.equal(await send(policy, { path: '/x', body: 'name=a', type: form }), undefined)
})

test('requests: requests: off, and operations without checks do not read the body', async () => {
  const off = make({ reserved: { role: [] }, requests: 'off' }).policy
  assert.equal(await send(off, { path: '/x', body: { role: 1 } }), undefined)
  const { policy } = make({ spec: 'api.yaml' })
  const ctx = testContext({ method: 'POST', path: '/login', headers: { 'content-length': '2' } })
  let read = false
  ctx.readBody = () => {
    read = true
    return Promise.resolve(Buffer.from('{}'))
  }
  await policy.onRequest(ctx)
  assert.equal(read, false)
})

test('operations without a spec: METHOD /template keys', async () => {
  const { policy } = make({ operations: { 'POST /api/login': { allowSensitive: ['token'] } } })
  const login = await respond(policy, { method: 'POST', path: '/api/login', body: { token: 't' } })
  assert.deepEqual(login.body, { token: 't' })
  const other = await respond(policy, { method: 'POST', path: '/api/other', body: { token: 't' } })
  assert.deepEqual(other.body, {})
})

test('basePath: spec paths are relative to it', async () => {
  const { policy } = make({
    spec: 'api.yaml',
    basePath: '/v1',
    operations: { login: { allowSensitive: ['token'] } },
  })
  assert.deepEqual(
    (await respond(policy, { method: 'POST', path: '/v1/login', body: { token: 't' } })).body,
    { token: 't' },
  )
  assert.deepEqual((await respond(policy, { method: 'POST', path: '/login', body: { token: 't' } })).body, {})
})

test('config errors: unknown operation, bad key, bad pattern, malformed x-portcullis-roles', () => {
  const bad = (cfg: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => make(cfg),
      (e: Error) => e.name === 'ConfigError' && re.test(e.message),
    )
  bad({ spec: 'api.yaml', operations: { nope: {} } }, /operations\.nope: no such operation/)
  bad({ operations: { login: {} } }, /keys are `METHOD \/path/)
  bad({ sensitive: { patterns: ['(a)\\1'] } }, /sensitive\.patterns\[0\]/)
  writeFileSync(
    join(dir, 'bad.yaml'),
    `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /a:
    get:
      responses:
        '200':
          description: ok
          content: { application/json: { schema: { type: object, properties: { x: { type: string, x-portcullis-roles: admin } } } } }
`,
  )
  bad({ spec: 'bad.yaml' }, /x-portcullis-roles must be a non-empty list/)
})

test('responses: hostile bodies — deep nesting is filtered without recursion or refused (502), wide arrays are linear', async () => {
  const { policy } = make({ maxBodyBytes: 50_000_000 })
  const ctx = testContext({ path: '/x' })
  await policy.onRequest(ctx)
  const head = (): ResponseHead => ({
    status: 200,
    headers: { 'content-type': 'application/json' },
    local: false,
  })
  const depth = 100_000
  const deep = `${'{"a":'.repeat(depth)}{"password":1}${'}'.repeat(depth)}`
  try {
    const out = await policy.onResponseBody(ctx, head(), Buffer.from(deep))
    assert.ok(!out.toString().includes('password'))
  } catch (err) {
    assert.equal((err as GatewayError).code, 'GW_ERR_RESPONSE_NOT_FILTERED')
  }
  const wide = JSON.stringify(Array.from({ length: 50_000 }, (_, i) => ({ id: i, token: 't', ok: true })))
  const t0 = process.hrtime.bigint()
  const out = await policy.onResponseBody(ctx, head(), Buffer.from(wide))
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  const parsed = JSON.parse(out.toString()) as Record<string, unknown>[]
  assert.equal(parsed.length, 50_000)
  assert.ok(parsed.every((o) => o.token === undefined && o.ok === true))
  assert.ok(ms < 5000, `${ms} ms`)
})

test('responses: removals at several levels in any key order; a __proto__ member stays a plain member', async () => {
  const { policy } = make()
  const body = {
    a: { password: 1, b: { keep: 1, password: 2 }, c: [{ ssn: 3, d: { secret: 4, e: 5 } }] },
    z: { f: { token: 6 }, password: 7 },
  }
  const r = await respond(policy, { path: '/x', body })
  assert.deepEqual(r.body, { a: { b: { keep: 1 }, c: [{ d: { e: 5 } }] }, z: { f: {} } })
  const proto = await respond(policy, {
    path: '/x',
    body: '{"__proto__":{"polluted":true},"password":"p","x":1}',
  })
  assert.equal(r.raw.includes('password'), false)
  assert.equal(proto.raw.toString(), '{"__proto__":{"polluted":true},"x":1}')
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
})
