import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import type { GatewayError } from '../../gateway/errors.js'
import { testContext, testDeps } from '../testing/context.js'
import { compileApi } from './compiled.js'
import { openApiValidation } from './policy.js'
import { mediaTypeOf, parseQuery, validateParams } from './request.js'
import { OpenApiValidationConfig } from './schema.js'

const SPEC = `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /items/{id}:
    parameters:
      - { name: id, in: path, required: true, schema: { type: integer, minimum: 1 } }
    get:
      operationId: getItem
      parameters:
        - { name: tags, in: query, schema: { type: array, items: { type: string } } }
        - { name: ids, in: query, explode: false, schema: { type: array, items: { type: integer } } }
        - { name: words, in: query, style: spaceDelimited, explode: false, schema: { type: array, items: { type: string } } }
        - { name: filter, in: query, style: deepObject, schema: { type: object, properties: { min: { type: integer } }, additionalProperties: false } }
        - { name: limit, in: query, schema: { type: integer, maximum: 100 } }
        - { name: flag, in: query, schema: { type: boolean } }
        - { name: X-Tenant, in: header, required: true, schema: { type: string, pattern: '^[a-z]+$' } }
        - { name: sid, in: cookie, schema: { type: string, minLength: 4 } }
        - { name: where, in: query, content: { application/json: { schema: { type: object, required: [a] } } } }
      responses: { '200': { description: ok } }
  /items/{name}.json:
    get:
      operationId: getJson
      parameters: [{ name: name, in: path, required: true, schema: { type: string } }]
      responses: { '200': { description: ok } }
`

function setup(extra = '') {
  const d = mkdtempSync(join(tmpdir(), 'pcl-oav-'))
  writeFileSync(join(d, 'api.yaml'), SPEC + extra)
  return d
}

const dir = setup()
const api = compileApi(join(dir, 'api.yaml'), {})
const op = api.byId.get('getItem')
assert.ok(op)

function check(query: string, headers: Record<string, string> = { 'x-tenant': 'acme' }, id = '5') {
  const ctx = testContext({ path: `/items/${id}`, query, headers })
  const r = validateParams(op as NonNullable<typeof op>, ctx.req, query, { id })
  return { kinds: r.violations.map((v) => `${v.kind}:${v.name ?? ''}${v.pointer}`), unknown: r.unknownQuery }
}

test('parameter styles: exploded and delimited arrays, deepObject, typed scalars, content JSON', () => {
  assert.deepEqual(
    check('tags=a&tags=b&ids=1,2,3&words=x%20y&filter[min]=3&limit=100&flag=true&where=%7B%22a%22%3A1%7D'),
    {
      kinds: [],
      unknown: [],
    },
  )
  assert.deepEqual(check('ids=1,x').kinds, ['schema:ids/1'])
  assert.deepEqual(check('limit=101').kinds, ['schema:limit'])
  assert.deepEqual(check('limit=').kinds, ['schema:limit'])
  assert.deepEqual(check('flag=yes').kinds, ['schema:flag'])
  assert.deepEqual(check('filter[min]=x').kinds, ['schema:filter/min'])
  assert.deepEqual(check('filter[max]=1').kinds, ['undeclared-property:filter/max'])
  assert.deepEqual(check('filter[__proto__]=1').kinds, ['schema:filter'])
  assert.deepEqual(check('where=%7B%7D').kinds, ['schema:where'])
  assert.deepEqual(check('', {}, '0').kinds, ['schema:id', 'schema:X-Tenant'])
})

test('parameter pollution: a singular query parameter, header or cookie sent twice', () => {
  assert.deepEqual(check('limit=1&limit=2').kinds, ['pollution:limit'])
  assert.deepEqual(check('ids=1&ids=2').kinds, ['pollution:ids'])
  assert.deepEqual(check('filter[min]=1&filter[min]=2').kinds, ['pollution:filter'])
  assert.deepEqual(check('', { 'x-tenant': 'acme', cookie: 'sid=abcd; sid=efgh' }).kinds, ['pollution:sid'])
  const ctx = testContext({ path: '/items/5', headers: { 'x-tenant': 'acme' } })
  ctx.req.rawHeaders = ['X-Tenant', 'acme', 'x-tenant', 'evil']
  const r = validateParams(op as NonNullable<typeof op>, ctx.req, '', { id: '5' })
  assert.deepEqual(
    r.violations.map((v) => v.kind),
    ['pollution'],
  )
})

test('unknown query parameters are reported by decoded name', () => {
  assert.deepEqual(check('limit=1&debug=1&a%20b=2').unknown, ['debug', 'a b'])
  assert.equal(parseQuery('a=%FF'), undefined)
  assert.deepEqual(
    [...(parseQuery('a=1+2&&b') ?? [])],
    [
      ['a', ['1 2']],
      ['b', ['']],
    ],
  )
})

test('media types: parameters and charset are read, junk is not a type', () => {
  assert.deepEqual(mediaTypeOf('Application/JSON; Charset="UTF-8"'), {
    type: 'application/json',
    charset: 'utf-8',
  })
  assert.deepEqual(mediaTypeOf('json'), { type: '', charset: undefined })
  assert.equal(mediaTypeOf(undefined), undefined)
})

function build(cfg: object, d = dir) {
  return openApiValidation.create(
    Value.Default(OpenApiValidationConfig, { spec: 'api.yaml', ...cfg }) as never,
    testDeps({ baseDir: d }),
  )
}
function code(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return (err as GatewayError).code
  }
}

test('the policy: routes, methods, basePath, monitor, strip of query parameters, operation info', () => {
  const p = build({})
  const ok = testContext({ path: '/items/5', headers: { 'x-tenant': 'acme' } })
  assert.equal(
    code(() => p.onRequest?.(ok)),
    undefined,
  )
  assert.equal((ok.state['openapi-validation'] as { operationId: string }).operationId, 'getItem')
  assert.equal(
    code(() => p.onRequest?.(testContext({ path: '/items/a.json' }))),
    undefined,
  )
  assert.equal(
    code(() => p.onRequest?.(testContext({ path: '/nope' }))),
    'GW_ERR_ROUTE_NOT_IN_SPEC',
  )
  assert.equal(
    code(() => p.onRequest?.(testContext({ method: 'POST', path: '/items/5' }))),
    'GW_ERR_METHOD_NOT_IN_SPEC',
  )
  assert.equal(
    code(() =>
      p.onRequest?.(
        testContext({ path: '/items/5', query: 'limit=1&limit=2', headers: { 'x-tenant': 'a' } }),
      ),
    ),
    'GW_ERR_PARAMETER_POLLUTION',
  )
  const based = build({ basePath: '/api' })
  assert.equal(
    code(() => based.onRequest?.(testContext({ path: '/api/items/5', headers: { 'x-tenant': 'a' } }))),
    undefined,
  )
  assert.equal(
    code(() => based.onRequest?.(testContext({ path: '/items/5' }))),
    'GW_ERR_ROUTE_NOT_IN_SPEC',
  )
  assert.equal(
    code(() => based.onRequest?.(testContext({ path: '/apix/items/5' }))),
    'GW_ERR_ROUTE_NOT_IN_SPEC',
  )
  const mon = build({ mode: 'monitor', undeclaredRoutes: 'monitor' })
  assert.equal(
    code(() => mon.onRequest?.(testContext({ path: '/nope' }))),
    undefined,
  )
  assert.equal(
    code(() => mon.onRequest?.(testContext({ path: '/items/0', query: 'limit=x' }))),
    undefined,
  )
  const strip = build({ unknownQueryParams: 'strip' })
  const s = testContext({ path: '/items/5', query: 'debug=1&limit=3&x%20y=2', headers: { 'x-tenant': 'a' } })
  assert.equal(
    code(() => strip.onRequest?.(s)),
    undefined,
  )
  assert.equal(s.query, 'limit=3')
  const perOp = build({ operations: { getItem: { unknownQueryParams: 'monitor' } } })
  assert.equal(
    code(() =>
      perOp.onRequest?.(testContext({ path: '/items/5', query: 'debug=1', headers: { 'x-tenant': 'a' } })),
    ),
    undefined,
  )
  assert.equal(
    code(() =>
      build({}).onRequest?.(
        testContext({ path: '/items/5', query: 'debug=1', headers: { 'x-tenant': 'a' } }),
      ),
    ),
    'GW_ERR_VALIDATION',
  )
  assert.throws(
    () => build({ operations: { nope: { mode: 'monitor' } } }),
    /operations\.nope: no such operation/,
  )
})

test('the compiled spec is reused while its files are unchanged, and rebuilt when one changes', async () => {
  const d = setup()
  const a = build({}, d)
  const b = build({}, d)
  assert.ok(a && b)
  const { compileApiCached } = await import('./compiled.js')
  const x = compileApiCached(join(d, 'api.yaml'), { allowRemoteHosts: [], rootDir: d })
  assert.equal(compileApiCached(join(d, 'api.yaml'), { allowRemoteHosts: [], rootDir: d }), x)
  writeFileSync(
    join(d, 'api.yaml'),
    `${SPEC}  /more:\n    get:\n      responses: { '200': { description: ok } }\n`,
  )
  const y = compileApiCached(join(d, 'api.yaml'), { allowRemoteHosts: [], rootDir: d })
  assert.notEqual(y, x)
  assert.ok(y.byId.has('GET /more'))
})

const BODIES = `  /forms:
    post:
      operationId: postForm
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [name]
              properties:
                name: { type: string, maxLength: 10 }
                age: { type: integer, minimum: 0 }
                tags: { type: array, items: { type: string }, maxItems: 3 }
          text/plain:
            schema: { type: string, maxLength: 5, pattern: '^[a-z]+$' }
          application/json:
            schema: { type: object, properties: { a: { type: integer } } }
      responses: { '200': { description: ok } }
`

async function send(p: ReturnType<typeof build>, contentType: string, body: string) {
  const ctx = testContext({
    method: 'POST',
    path: '/forms',
    headers: { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) },
  })
  const headers: Record<string, string | undefined> = {}
  ctx.readBody = () => Promise.resolve(Buffer.from(body))
  ctx.setUpstreamHeader = (n, v) => {
    headers[n] = v
  }
  try {
    await p.onRequest?.(ctx)
    return { code: undefined, body: ctx.body?.toString(), headers }
  } catch (err) {
    const e = err as GatewayError
    return { code: e.code, violations: e.extensions?.violations, body: undefined, headers }
  }
}

test('form bodies: typed fields, repeated array fields, pollution, NUL, prototype names, strip', async () => {
  const d = setup(BODIES)
  const p = build({}, d)
  const form = 'application/x-www-form-urlencoded'
  assert.equal((await send(p, form, 'name=ann&age=3&tags=a&tags=b')).code, undefined)
  assert.equal((await send(p, form, 'name=ann&age=x')).code, 'GW_ERR_VALIDATION')
  assert.equal((await send(p, form, 'age=3')).code, 'GW_ERR_VALIDATION')
  assert.equal((await send(p, form, 'name=ann&tags=a&tags=b&tags=c&tags=d')).code, 'GW_ERR_VALIDATION')
  assert.equal((await send(p, form, 'name=ann&name=bob')).code, 'GW_ERR_PARAMETER_POLLUTION')
  assert.equal((await send(p, form, 'name=a%00b')).code, 'GW_ERR_MALFORMED_BODY')
  assert.equal((await send(p, form, 'name=a&__proto__=x')).code, 'GW_ERR_MALFORMED_BODY')
  assert.equal((await send(p, form, 'name=%FF')).code, 'GW_ERR_MALFORMED_BODY')
  assert.equal((await send(p, `${form}; charset=iso-8859-1`, 'name=a')).code, 'GW_ERR_UNSUPPORTED_MEDIA_TYPE')
  const blocked = await send(p, form, 'name=ann&role=admin')
  assert.equal(blocked.code, 'GW_ERR_VALIDATION')
  assert.deepEqual(blocked.violations, [{ in: 'body', pointer: '/role', expected: 'no undeclared property' }])
  const stripped = await send(build({ undeclaredProperties: 'strip' }, d), form, 'name=ann&role=admin&age=4')
  assert.equal(stripped.code, undefined)
  assert.equal(stripped.body, 'name=ann&age=4')
  assert.equal(stripped.headers['content-length'], '14')
})

test('text/plain and JSON bodies on the same operation; monitor passes, strip rewrites', async () => {
  const d = setup(BODIES)
  const p = build({}, d)
  assert.equal((await send(p, 'text/plain', 'abc')).code, undefined)
  assert.equal((await send(p, 'text/plain; charset=us-ascii', 'abc')).code, undefined)
  assert.equal((await send(p, 'text/plain', 'abcdef')).code, 'GW_ERR_VALIDATION')
  assert.equal((await send(p, 'text/plain', 'ab\u0000')).code, 'GW_ERR_MALFORMED_BODY')
  assert.equal((await send(p, 'text/csv', 'a,b')).code, 'GW_ERR_UNSUPPORTED_MEDIA_TYPE')
  assert.equal((await send(p, 'application/json', '{"a":1}')).code, undefined)
  assert.equal((await send(p, 'application/json', '{"a":1,"b":2}')).code, 'GW_ERR_VALIDATION')
  assert.equal(
    (await send(build({ undeclaredProperties: 'monitor' }, d), 'application/json', '{"a":1,"b":2}')).code,
    undefined,
  )
  assert.equal((await send(build({ mode: 'monitor' }, d), 'application/json', '{"a":"x"}')).code, undefined)
  const s = await send(build({ undeclaredProperties: 'strip' }, d), 'application/json', '{"a":1,"b":{"c":2}}')
  assert.equal(s.body, '{"a":1}')
  assert.equal(s.headers['content-length'], '7')
})
