import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadOpenApi, type OpenApiSpec } from '../openapi/index.js'
import { findExposures } from './checks/excessive-data-exposure.js'
import { fillFrom, findResources, idOf, isAdminOperation, listItems, typeOf, unwrap } from './resources.js'
import {
  declaredProperties,
  generateValue,
  pointerGet,
  readOnlyProperties,
  requestBody,
  resolveSchema,
  responseSchema,
} from './schema-tools.js'
import { createdId, personalize } from './seed.js'

const SPEC = {
  openapi: '3.1.0',
  info: { title: 't', version: '1' },
  paths: {
    '/api/nodes': {
      get: {
        responses: {
          '200': {
            description: 'x',
            content: {
              'application/json': { schema: { type: 'array', items: { $ref: '#/components/schemas/Node' } } },
            },
          },
        },
      },
      post: {
        requestBody: {
          content: { 'application/json': { schema: { $ref: '#/components/schemas/NodeCreate' } } },
        },
        responses: {
          '201': {
            description: 'x',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } },
          },
        },
      },
    },
    '/api/nodes/{nodeId}': {
      get: {
        parameters: [{ name: 'nodeId', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '2XX': {
            description: 'x',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Node' } } },
          },
        },
      },
      delete: {
        parameters: [{ name: 'nodeId', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '204': { description: 'x' } },
      },
    },
    '/api/nodes/me': { get: { responses: { '200': { description: 'x' } } } },
    '/api/teams/{teamId}/members/{memberId}': {
      get: {
        parameters: [
          { name: 'teamId', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'memberId', in: 'path', required: true, schema: { type: 'string' } },
        ],
        responses: { '200': { description: 'x' } },
      },
    },
    '/internal/stats': { get: { responses: { '200': { description: 'x' } } } },
  },
  components: {
    schemas: {
      // A cycle: a node has children that are nodes.
      Node: {
        type: 'object',
        additionalProperties: false,
        properties: {
          id: { type: 'string', readOnly: true },
          name: { type: 'string' },
          children: { type: 'array', items: { $ref: '#/components/schemas/Node' } },
        },
      },
      NodeCreate: {
        allOf: [
          { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 20 } } },
          {
            type: 'object',
            properties: {
              email: { type: 'string', format: 'email' },
              size: { type: 'integer', minimum: 5, maximum: 7 },
              kind: { enum: ['a', 'b'] },
              tags: { type: 'array', minItems: 2, items: { type: 'string', maxLength: 3 } },
              id: { type: 'string', readOnly: true },
            },
          },
        ],
      },
    },
  },
}

describe('schema tools and resources', () => {
  let dir: string
  let spec: OpenApiSpec
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'schema-tools-'))
    writeFileSync(join(dir, 'openapi.json'), JSON.stringify(SPEC))
    spec = loadOpenApi(join(dir, 'openapi.json'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  const op = (method: string, path: string) => {
    const o = spec.operations.find((x) => x.method === method && x.path === path)
    assert.ok(o)
    return o
  }

  it('inlines $refs, cutting cycles at a bounded depth', () => {
    const s = responseSchema(spec, op('GET', '/api/nodes/{nodeId}'), 200) // via 2XX
    assert.ok(s)
    let depth = 0
    let cur: unknown = s
    while (
      cur &&
      typeof cur === 'object' &&
      (cur as { properties?: { children?: { items?: unknown } } }).properties?.children
    ) {
      cur = (cur as { properties: { children: { items: unknown } } }).properties.children.items
      depth++
    }
    assert.ok(depth >= 3 && depth <= 8, `depth ${depth}`)
    assert.deepEqual(
      resolveSchema(spec, { $ref: '#/nope' }, { file: spec.documents.rootFile, pointer: '' }),
      {},
    )
    assert.deepEqual(readOnlyProperties(s), ['id'])
    assert.deepEqual([...(declaredProperties(s)?.names ?? [])], ['id', 'name', 'children'])
    assert.equal(
      declaredProperties({ type: 'object', properties: {}, additionalProperties: true }),
      undefined,
    )
    assert.equal(declaredProperties({ type: 'object' }), undefined)
  })

  it('generates a minimal valid body: allOf merged, formats, bounds, enums, readOnly left out', () => {
    const body = requestBody(spec, op('POST', '/api/nodes'))
    assert.ok(body)
    assert.deepEqual(generateValue(body.schema), {
      name: 'portcullis-scanxxxxx',
      email: 'scanner@example.com',
      size: 5,
      kind: 'a',
      tags: ['por', 'por'],
    })
    assert.equal(generateValue({ type: ['null', 'integer'], exclusiveMinimum: 9 }), 10)
    assert.equal(generateValue({ type: 'string', format: 'date-time' }), '2026-01-01T00:00:00Z')
    assert.equal(generateValue({ type: 'string', example: 'given' }), 'given')
    assert.equal(generateValue({ oneOf: [{ type: 'null' }, { type: 'boolean' }] }), false)
    assert.equal(generateValue('not a schema'), undefined)
  })

  it('finds collections with their item path, the …/me profile, admin-looking operations', () => {
    const rs = findResources(spec.operations)
    const r = rs.find((x) => x.type === 'nodes')
    // Nested collections are resources too, their parents included (for filling {teamId}).
    const members = rs.find((x) => x.type === 'members')
    assert.equal(members?.collectionPath, '/api/teams/{teamId}/members')
    assert.equal(members?.itemParam, 'memberId')
    assert.ok(rs.some((x) => x.itemPath === '/api/teams/{teamId}'))
    assert.equal(r?.type, 'nodes')
    assert.equal(r?.itemParam, 'nodeId')
    assert.equal(r?.me?.path, '/api/nodes/me')
    assert.ok(r?.create && r.list && r.get && r.delete)
    assert.ok(isAdminOperation(op('GET', '/internal/stats')))
    assert.ok(!isAdminOperation(op('GET', '/api/nodes')))
  })

  it('reads ids from bodies, lists and Location headers', () => {
    assert.equal(idOf({ id: 7 }, 'orders'), '7')
    assert.equal(idOf({ orderId: 'o-1' }, 'orders'), 'o-1')
    assert.equal(idOf({ data: { categoryId: 3 } }, 'categories'), '3')
    assert.equal(idOf({ id: Number.NaN }, 'x'), undefined)
    assert.equal(idOf([1], 'x'), undefined)
    assert.deepEqual(listItems({ items: [1] }), [1])
    assert.deepEqual(listItems({ orders: [1] }, 'orders'), [1])
    assert.equal(listItems({ nope: [1], total: 1 }), undefined)
    // An object holding a list is an object, not a list.
    assert.equal(listItems({ id: 3, items: [{ sku: 'a' }] }), undefined)
    assert.equal(idOf({ order: { number: 'ORD-1', items: [] } }, 'orders', 'orderNo'), 'ORD-1')
    assert.equal(idOf({ username: 'alice', email: 'a@x' }, 'users', 'username'), 'alice')
    assert.equal(idOf({ data: { book_id: 4 } }, 'books', 'book_id'), '4')
    assert.deepEqual(unwrap({ data: { id: 1 }, meta: { n: 1 } }), { id: 1 })
    assert.deepEqual(unwrap({ profile: { id: 'u-1' } }), { id: 'u-1' })
    assert.deepEqual(unwrap({ session: { t: 1 }, user: { id: 2 } }), { session: { t: 1 }, user: { id: 2 } })
    assert.equal(typeOf('/books/v1'), 'books')
    assert.equal(typeOf('/v2/users'), 'users')
    assert.equal(typeOf('/api/v2/users/{userId}/addresses'), 'addresses')
    assert.equal(
      createdId('books', undefined, 'http://h/books/v1/17', {
        itemPath: '/books/v1/{book_id}',
        itemParam: 'book_id',
      }),
      '17',
    )
    assert.deepEqual(
      fillFrom('/v2/users/{userId}/addresses', [
        {
          type: 'users',
          id: 'u-1',
          owner: 'a',
          path: '/v2/users/u-1',
          createdByScanner: false,
          template: '/v2/users/{id}',
          params: { id: 'u-1' },
        },
      ]),
      { userId: 'u-1' },
    )
    assert.equal(createdId('orders', {}, '/api/orders/42?x=1'), '42')
    assert.equal(createdId('orders', { id: 5 }, '/api/orders/42'), '5')
    assert.equal(pointerGet({ a: [{ 'b/c': 1 }] }, '/a/0/b~1c'), 1)
    assert.equal(pointerGet({ a: 1 }, 'a'), undefined)
    const schema = {
      type: 'object',
      properties: {
        title: { type: 'string' },
        code: { type: 'string', maxLength: 4 },
        mail: { type: 'string', format: 'email' },
        n: { type: 'integer' },
      },
    }
    assert.deepEqual(
      personalize({ title: 'note', code: 'abc', mail: 'a@b.c', n: 1, other: 'x' }, schema, 'bob'),
      {
        title: 'note-bob',
        code: 'abc',
        mail: 'a@b.c',
        n: 1,
        other: 'x',
      },
    )
  })

  it('exposure walk: undeclared and sensitive fields, bounded on hostile answers', () => {
    const schema = {
      type: 'object',
      additionalProperties: false,
      properties: {
        id: { type: 'integer' },
        user: { type: 'object', properties: { name: { type: 'string' } } },
      },
    }
    const found = findExposures(
      { id: 1, ssn: '123', user: { name: 'x', passwordHash: 'h', hasPassword: true } },
      schema,
    )
    assert.deepEqual(found, [
      { path: '$.ssn', undeclared: true, sensitive: true },
      { path: '$.user.passwordHash', undeclared: true, sensitive: true },
      { path: '$.user.hasPassword', undeclared: true, sensitive: false },
    ])
    // Deep nesting and huge arrays: bounded, no stack overflow.
    let deep: unknown = { secret: 's' }
    for (let i = 0; i < 100_000; i++) deep = { a: deep }
    const t0 = performance.now()
    assert.deepEqual(findExposures(deep, undefined), [])
    const wide = findExposures(
      Array.from({ length: 100_000 }, () => ({ token: 't' })),
      undefined,
    )
    assert.deepEqual(wide, [{ path: '$[0].token', undeclared: false, sensitive: true }])
    assert.ok(performance.now() - t0 < 2000)
  })
})
