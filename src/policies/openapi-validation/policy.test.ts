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
