import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import type { GatewayError } from '../../gateway/errors.js'
import type { Principal, RequestContext } from '../../gateway/pipeline/context.js'
import { type TestRequest, testContext, testDeps } from '../testing/context.js'
import { authorize } from './policy.js'
import { AuthorizeConfig } from './schema.js'

const SPEC = `openapi: 3.1.0
info: { title: t, version: '1' }
security:
  - oauth: [items:read]
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows: { clientCredentials: { tokenUrl: 'https://idp.example/token', scopes: { 'items:read': r, 'items:write': w } } }
    key: { type: apiKey, in: header, name: x-api-key }
paths:
  /health:
    get: { operationId: health, security: [], responses: { '200': { description: ok } } }
  /items:
    get: { operationId: listItems, tags: [items], security: [{}, { oauth: [items:read] }], responses: { '200': { description: ok } } }
    post:
      operationId: createItem
      tags: [items]
      security: [{ oauth: [items:write, items:read] }, { key: [] }]
      responses: { '201': { description: ok } }
  /items/{id}:
    parameters: [{ name: id, in: path, required: true, schema: { type: integer } }]
    get: { operationId: getItem, tags: [items], responses: { '200': { description: ok } } }
    delete: { operationId: deleteItem, tags: [items, admin], responses: { '204': { description: ok } } }
  /reports/{year}:
    get:
      operationId: getReport
      x-portcullis-roles: [auditor, admin]
      parameters: [{ name: year, in: path, required: true, schema: { type: integer } }]
      responses: { '200': { description: ok } }
`
const NO_SECURITY_SPEC = `openapi: 3.0.3
info: { title: t, version: '1' }
paths:
  /open:
    get: { operationId: open, responses: { '200': { description: ok } } }
`

const dir = mkdtempSync(join(tmpdir(), 'pcl-authz-'))
writeFileSync(join(dir, 'api.yaml'), SPEC)
writeFileSync(join(dir, 'bare.yaml'), NO_SECURITY_SPEC)

function build(cfg: Record<string, unknown>) {
  const config = Value.Default(AuthorizeConfig, structuredClone(cfg)) as never
  assert.ok(Value.Check(AuthorizeConfig, config), JSON.stringify([...Value.Errors(AuthorizeConfig, config)]))
  return authorize.create(config, testDeps({ baseDir: dir }))
}

function principal(o: Partial<Principal> = {}): Principal {
  return { id: 'u1', type: 'user', scopes: [], roles: [], claims: { sub: 'u1' }, authMethod: 'jwt', ...o }
}

function ctx(r: TestRequest, p?: Principal): RequestContext {
  const c = testContext(r)
  c.principal = p
  return c
}

async function run(inst: ReturnType<typeof build>, c: RequestContext): Promise<GatewayError | undefined> {
  try {
    await inst.onRequest?.(c)
    return undefined
  } catch (err) {
    return err as GatewayError
  }
}

describe('authorize: spec security', () => {
  const inst = build({ spec: 'api.yaml' })

  test('explicitly public operations pass without a principal', async () => {
    assert.equal(await run(inst, ctx({ path: '/health' })), undefined)
    assert.equal(await run(inst, ctx({ path: '/items' })), undefined) // security: [{}, ...]: optional
  })

  test('document-level security applies: 401 without a principal', async () => {
    const e = await run(inst, ctx({ path: '/items/1' }))
    assert.equal(e?.code, 'GW_ERR_AUTH_MISSING')
    assert.equal(e?.status, 401)
    assert.equal(e?.headers?.['WWW-Authenticate'], 'Bearer')
  })

  test('a missing scope is 403 insufficient_scope naming the scope (RFC 6750)', async () => {
    const e = await run(inst, ctx({ path: '/items/1' }, principal({ scopes: ['other'] })))
    assert.equal(e?.code, 'GW_ERR_INSUFFICIENT_SCOPE')
    assert.equal(e?.status, 403)
    assert.equal(e?.headers?.['WWW-Authenticate'], 'Bearer error="insufficient_scope", scope="items:read"')
    assert.equal(await run(inst, ctx({ path: '/items/1' }, principal({ scopes: ['items:read'] }))), undefined)
  })

  test('OR of requirement objects, AND inside one', async () => {
    const post = { method: 'POST', path: '/items' }
    // only one of the two scopes of the first requirement: not enough
    const e = await run(inst, ctx(post, principal({ scopes: ['items:write'] })))
    assert.equal(e?.code, 'GW_ERR_INSUFFICIENT_SCOPE')
    assert.equal(await run(inst, ctx(post, principal({ scopes: ['items:write', 'items:read'] }))), undefined)
    // the second requirement (an apiKey scheme, no scopes) is met by an API key principal only
    assert.equal(await run(inst, ctx(post, principal({ type: 'api-key', authMethod: 'api-key' }))), undefined)
    // a JWT principal cannot use the API key alternative: its missing scope is named
    const e2 = await run(inst, ctx(post, principal({ scopes: ['items:read'] })))
    assert.equal(e2?.code, 'GW_ERR_INSUFFICIENT_SCOPE')
    assert.equal(
      e2?.headers?.['WWW-Authenticate'],
      'Bearer error="insufficient_scope", scope="items:write items:read"',
    )
    // an API key principal on an operation that only accepts OAuth: 403
    const e3 = await run(
      inst,
      ctx({ path: '/items/1' }, principal({ authMethod: 'api-key', scopes: ['items:read'] })),
    )
    assert.equal(e3?.code, 'GW_ERR_FORBIDDEN')
  })

  test('admin tag needs the admin role, from principal roles or configured claims', async () => {
    const del = { method: 'DELETE', path: '/items/1' }
    const user = principal({ scopes: ['items:read'], roles: ['user'] })
    const e = await run(inst, ctx(del, user))
    assert.equal(e?.code, 'GW_ERR_FORBIDDEN')
    assert.equal(
      await run(inst, ctx(del, principal({ scopes: ['items:read'], roles: ['admin'] }))),
      undefined,
    )
    const keycloak = principal({
      scopes: ['items:read'],
      claims: { sub: 'u1', realm_access: { roles: ['admin'] } },
    })
    assert.equal(await run(inst, ctx(del, keycloak)), undefined)
    const groups = principal({ scopes: ['items:read'], claims: { sub: 'u1', groups: 'admin' } })
    assert.equal(await run(inst, ctx(del, groups)), undefined)
  })

  test('x-portcullis-roles: any of the listed roles', async () => {
    const r = { path: '/reports/2024' }
    const base = { scopes: ['items:read'] }
    assert.equal((await run(inst, ctx(r, principal({ ...base, roles: ['user'] }))))?.code, 'GW_ERR_FORBIDDEN')
    assert.equal(await run(inst, ctx(r, principal({ ...base, roles: ['auditor'] }))), undefined)
  })

  test('HEAD is authorized as the GET it falls back to', async () => {
    const e = await run(inst, ctx({ method: 'HEAD', path: '/items/1' }, principal()))
    assert.equal(e?.code, 'GW_ERR_INSUFFICIENT_SCOPE')
  })

  test('a request matching no operation is denied by default, allowed with default: allow', async () => {
    const p = principal({ scopes: ['items:read'], roles: ['admin'] })
    assert.equal((await run(inst, ctx({ path: '/nope' }, p)))?.code, 'GW_ERR_FORBIDDEN')
    assert.equal((await run(inst, ctx({ path: '/ITEMS/1' }, p)))?.code, 'GW_ERR_FORBIDDEN')
    assert.equal(
      await run(build({ spec: 'api.yaml', default: 'allow' }), ctx({ path: '/nope' }, p)),
      undefined,
    )
  })

  test('an operation without any security requirement is denied by default', async () => {
    const bare = build({ spec: 'bare.yaml' })
    assert.equal((await run(bare, ctx({ path: '/open' }, principal())))?.code, 'GW_ERR_FORBIDDEN')
    const ruled = build({
      spec: 'bare.yaml',
      rules: [{ match: { operationIds: ['open'] }, anonymous: true }],
    })
    assert.equal(await run(ruled, ctx({ path: '/open' })), undefined)
  })

  test('specSecurity: ignore leaves only rules', async () => {
    const inst2 = build({ spec: 'api.yaml', specSecurity: 'ignore', rules: [{ match: { tags: ['items'] } }] })
    assert.equal(await run(inst2, ctx({ path: '/items/1' }, principal())), undefined)
    assert.equal((await run(inst2, ctx({ path: '/items/1' })))?.code, 'GW_ERR_AUTH_MISSING')
  })

  test('basePath: spec paths are relative to it', async () => {
    const inst2 = build({ spec: 'api.yaml', basePath: '/api' })
    assert.equal(await run(inst2, ctx({ path: '/api/health' })), undefined)
    assert.equal((await run(inst2, ctx({ path: '/health' })))?.code, 'GW_ERR_FORBIDDEN')
  })
})

describe('authorize: rules', () => {
  test('roles from rules, by method and path template, with a path condition', async () => {
    const inst = build({
      rules: [
        {
          match: { methods: ['GET'], path: '/tenants/{tenant}/items' },
          conditions: [{ path: 'tenant', equals: 'acme' }],
        },
        { match: { methods: ['DELETE'], pathPrefix: '/tenants' }, roles: ['owner'] },
      ],
    })
    assert.equal(await run(inst, ctx({ path: '/tenants/acme/items' }, principal())), undefined)
    assert.equal(
      await run(inst, ctx({ method: 'HEAD', path: '/tenants/acme/items' }, principal())),
      undefined,
    )
    assert.equal(
      (await run(inst, ctx({ path: '/tenants/evil/items' }, principal())))?.code,
      'GW_ERR_FORBIDDEN',
    )
    assert.equal((await run(inst, ctx({ path: '/tenants/acme/items' })))?.code, 'GW_ERR_AUTH_MISSING')
    const del = { method: 'DELETE', path: '/TENANTS/acme' } // prefixes compare without case
    assert.equal((await run(inst, ctx(del, principal())))?.code, 'GW_ERR_FORBIDDEN')
    assert.equal(await run(inst, ctx(del, principal({ roles: ['owner'] }))), undefined)
    // POST is covered by no rule: default deny
    assert.equal(
      (await run(inst, ctx({ method: 'POST', path: '/tenants/acme/items' }, principal())))?.code,
      'GW_ERR_FORBIDDEN',
    )
  })

  test('every matching rule must pass (AND), together with the spec', async () => {
    const inst = build({
      spec: 'api.yaml',
      rules: [
        { match: { tags: ['items'] }, roles: ['staff'] },
        { match: { operationIds: ['getItem'] }, scopes: ['items:extra'] },
      ],
    })
    const ok = principal({ scopes: ['items:read', 'items:extra'], roles: ['staff'] })
    assert.equal(await run(inst, ctx({ path: '/items/7' }, ok)), undefined)
    const noRole = principal({ scopes: ['items:read', 'items:extra'] })
    assert.equal((await run(inst, ctx({ path: '/items/7' }, noRole)))?.code, 'GW_ERR_FORBIDDEN')
    const noScope = principal({ scopes: ['items:read'], roles: ['staff'] })
    const e = await run(inst, ctx({ path: '/items/7' }, noScope))
    assert.equal(e?.code, 'GW_ERR_INSUFFICIENT_SCOPE')
    assert.equal(e?.headers?.['WWW-Authenticate'], 'Bearer error="insufficient_scope", scope="items:extra"')
  })

  test('conditions: equals, in, contains, numeric compare on claims, query and headers', async () => {
    const inst = build({
      rules: [
        {
          match: { pathPrefix: '/x' },
          conditions: [
            { claim: 'tenant', in: ['acme', 'globex'] },
            { claim: 'org.level', gte: 3, lt: 10 },
            { claim: 'amr', contains: 'mfa' },
            { query: 'limit', lte: 100 },
            { header: 'x-region', equals: 'eu' },
          ],
        },
      ],
    })
    const claims = { sub: 'u1', tenant: 'acme', org: { level: 5 }, amr: ['pwd', 'mfa'] }
    const good = { path: '/x', query: 'limit=50', headers: { 'x-region': 'eu' } }
    assert.equal(await run(inst, ctx(good, principal({ claims }))), undefined)
    const bad: [TestRequest, Record<string, unknown>][] = [
      [good, { ...claims, tenant: 'initech' }],
      [good, { ...claims, org: { level: 2 } }],
      [good, { ...claims, org: { level: 10 } }],
      [good, { ...claims, org: { level: '5x' } }],
      [good, { ...claims, amr: ['pwd'] }],
      [good, { ...claims, amr: 'mfa-ish' }],
      [good, { sub: 'u1' }],
      [{ ...good, query: 'limit=500' }, claims],
      [{ ...good, query: 'limit=1e2' }, claims], // not a plain decimal
      [{ ...good, query: '' }, claims],
      [{ ...good, headers: { 'x-region': 'us' } }, claims],
      [{ ...good, headers: {} }, claims],
    ]
    for (const [r, c] of bad) {
      assert.equal(
        (await run(inst, ctx(r, principal({ claims: c }))))?.code,
        'GW_ERR_FORBIDDEN',
        JSON.stringify([r, c]),
      )
    }
    // Repeated or spelled another way: ambiguous, refused by the one query parser (400).
    for (const query of [
      'limit=5&limit=500',
      'limit=5&LIMIT=500',
      'limit=5&limit[]=500',
      'x=1;limit=500&limit=5',
    ])
      assert.equal(
        (await run(inst, ctx({ ...good, query }, principal({ claims }))))?.code,
        'GW_ERR_PARAMETER_POLLUTION',
        query,
      )
  })

  test('matches: a linear-time pattern on a request value, hostile input included', async () => {
    const inst = build({
      rules: [
        { match: { path: '/m' }, anonymous: true, conditions: [{ header: 'x-tenant', matches: '^(a+)+$' }] },
      ],
    })
    assert.equal(await run(inst, ctx({ path: '/m', headers: { 'x-tenant': 'aaa' } })), undefined)
    assert.equal(
      (await run(inst, ctx({ path: '/m', headers: { 'x-tenant': 'aab' } })))?.code,
      'GW_ERR_FORBIDDEN',
    )
    // Exponential on a backtracking engine; linear here, so this returns.
    const hostile = `${'a'.repeat(50_000)}!`
    assert.equal(
      (await run(inst, ctx({ path: '/m', headers: { 'x-tenant': hostile } })))?.code,
      'GW_ERR_FORBIDDEN',
    )
  })

  test("path conditions read the rule's own template, else the spec operation's parameters", async () => {
    const inst = build({
      spec: 'api.yaml',
      rules: [
        { match: { path: '/reports/{other}' }, conditions: [{ path: 'other', lte: 3000 }] },
        { match: { operationIds: ['getReport'] }, conditions: [{ path: 'year', gte: 2020 }] },
      ],
    })
    const p = principal({ scopes: ['items:read'], roles: ['auditor'] })
    assert.equal(await run(inst, ctx({ path: '/reports/2024' }, p)), undefined)
    assert.equal((await run(inst, ctx({ path: '/reports/2019' }, p)))?.code, 'GW_ERR_FORBIDDEN')
    assert.equal((await run(inst, ctx({ path: '/reports/3001' }, p)))?.code, 'GW_ERR_FORBIDDEN')
  })

  test('a request-value condition can gate an anonymous rule', async () => {
    const inst = build({
      rules: [{ match: { path: '/pub' }, anonymous: true, conditions: [{ query: 'v', equals: 1 }] }],
    })
    assert.equal(await run(inst, ctx({ path: '/pub', query: 'v=1' })), undefined)
    assert.equal((await run(inst, ctx({ path: '/pub', query: 'v=2' })))?.code, 'GW_ERR_FORBIDDEN')
  })
})

describe('authorize: method override', () => {
  const rules = [{ match: { pathPrefix: '/' }, anonymous: true }]
  test('reject: each override header and _method are refused with 400', async () => {
    const inst = build({ rules })
    for (const h of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override']) {
      const e = await run(inst, ctx({ method: 'POST', path: '/a', headers: { [h]: 'DELETE' } }))
      assert.equal(e?.code, 'GW_ERR_METHOD_OVERRIDE', h)
      assert.equal(e?.status, 400)
    }
    for (const q of ['_method=DELETE', 'a=1&_METHOD=put', '%5Fmethod=DELETE']) {
      const e = await run(inst, ctx({ method: 'POST', path: '/a', query: q }))
      assert.equal(e?.code, 'GW_ERR_METHOD_OVERRIDE', q)
    }
    assert.equal(await run(inst, ctx({ method: 'POST', path: '/a', query: 'method=x' })), undefined)
  })

  test('hostile queries: bad escapes, encoded and empty names neither crash nor slip through', async () => {
    const inst = build({ rules })
    const refused = ['%5f%4D%45%54%48%4F%44=DELETE', 'a&&=&_method=', '_method']
    for (const q of refused)
      assert.equal((await run(inst, ctx({ path: '/a', query: q })))?.code, 'GW_ERR_METHOD_OVERRIDE', q)
    // A query that does not decode is refused whole (the one query parser's rule).
    for (const q of ['%E0%A4%A&_method', '%E0%A4%A=1', '%'])
      assert.equal((await run(inst, ctx({ path: '/a', query: q })))?.code, 'GW_ERR_BAD_REQUEST', q)
    const passed = ['&&&', '=', '_methods=1', 'x_method=1', `${'a'.repeat(100000)}=1`]
    for (const q of passed)
      assert.equal(await run(inst, ctx({ path: '/a', query: q })), undefined, q.slice(0, 20))
  })

  test('strip: passed, with the headers and parameter listed for removal', async () => {
    const inst = build({ rules, methodOverride: 'strip' })
    assert.equal(
      await run(inst, ctx({ method: 'POST', path: '/a', headers: { 'X-HTTP-Method-Override': 'DELETE' } })),
      undefined,
    )
    assert.deepEqual([...(inst.stripRequestHeaders ?? [])].sort(), [
      'x-http-method',
      'x-http-method-override',
      'x-method-override',
    ])
    assert.deepEqual(inst.stripQueryParams, ['_method'])
  })
})

describe('authorize: config errors', () => {
  const bad: [string, Record<string, unknown>, RegExp][] = [
    [
      'unknown operationId',
      { spec: 'api.yaml', rules: [{ match: { operationIds: ['nope'] } }] },
      /no operation "nope"/,
    ],
    ['tags without spec', { rules: [{ match: { tags: ['a'] } }] }, /need `spec`/],
    ['empty match', { rules: [{ match: {} }] }, /at least one key/],
    [
      'condition without operator',
      { rules: [{ match: { path: '/a' }, conditions: [{ claim: 'x' }] }] },
      /at least one operator/,
    ],
    [
      'matches with a lookahead (not linear-time)',
      { rules: [{ match: { path: '/a' }, conditions: [{ claim: 'x', matches: '^(?=a)' }] }] },
      /matches: pattern not supported by the linear-time engine/,
    ],
    [
      'condition with two sources',
      { rules: [{ match: { path: '/a' }, conditions: [{ claim: 'x', query: 'y', equals: 1 }] }] },
      /exactly one/,
    ],
    [
      'path condition not in template',
      { rules: [{ match: { path: '/a/{id}' }, conditions: [{ path: 'other', equals: 1 }] }] },
      /no variable \{other\}/,
    ],
    [
      'anonymous with roles',
      { rules: [{ match: { path: '/a' }, anonymous: true, roles: ['x'] }] },
      /anonymous rule/,
    ],
    ['bad scope token', { rules: [{ match: { path: '/a' }, scopes: ['a"b'] }] }, /not a valid scope token/],
  ]
  for (const [name, cfg, re] of bad) {
    test(name, () => {
      assert.throws(
        () => build(cfg),
        (err: Error) => err.name === 'ConfigError' && re.test(err.message),
      )
    })
  }
  test('a spec with a scope unsafe for the challenge header is refused', () => {
    writeFileSync(
      join(dir, 'evil.yaml'),
      SPEC.replace('[items:read]\ncomponents', '["items:read\\r\\nX-Evil: 1"]\ncomponents'),
    )
    assert.throws(() => build({ spec: 'evil.yaml' }), /not a valid scope token/)
  })
})
