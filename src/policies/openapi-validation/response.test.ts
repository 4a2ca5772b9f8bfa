import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { compileApi } from './compiled.js'
import { schemaViolations } from './request.js'
import { validateResponse } from './response.js'

const api = compileApi('examples/demo/openapi.yaml', { responses: true })
const list = api.byId.get('listOrders')
const getUser = api.byId.get('getCurrentUser')
assert.ok(list && getUser)
const order = (id: number) => ({ id, ownerId: 1, item: 'k', quantity: 1, total: 1 })
const head = (status = 200) => ({ status, headers: { 'content-type': 'application/json' }, local: false })
const body = (v: unknown) => Buffer.from(JSON.stringify(v))

test('large arrays are validated on a bounded sample; pointers name the original index', () => {
  const items = Array.from({ length: 10000 }, (_, i) => order(i + 1))
  const ok = validateResponse(list, head(), body(items), false, 100)
  assert.deepEqual(ok.violations, [])
  assert.equal(ok.skipped, 9900)
  // Index 7 is in the sampled head; 9999 is not sampled (skipped), so only one violation.
  const bad = items.map((o, i) => (i === 7 || i === 5001 ? { ...o, quantity: 0 } : o))
  const r = validateResponse(list, head(), body(bad), false, 100)
  assert.deepEqual(
    r.violations.map((v) => v.pointer),
    ['/7/quantity'],
  )
  // A sampled index in the spread part maps back to its real position.
  const spread = Array.from({ length: 1000 }, (_, i) => order(i + 1))
  // maxItems 100: the first 50, then 50 spread over the other 950: the first of those is 50 + ⌊950/51⌋.
  spread[68] = { ...order(1), quantity: 0 }
  assert.deepEqual(
    validateResponse(list, head(), body(spread), false, 100).violations.map((v) => v.pointer),
    ['/68/quantity'],
  )
  // Everything is checked in strip mode.
  assert.equal(validateResponse(list, head(), body(bad), true, 100).violations.length, 2)
})

test('status, content type and body checks; strip removes undeclared properties', () => {
  const user = { id: 1, username: 'a', displayName: 'A', email: 'a@b.io', role: 'user', passwordHash: 'x' }
  assert.deepEqual(
    validateResponse(getUser, head(), body(user), false, 10).violations.map((v) => v.pointer),
    ['/passwordHash'],
  )
  const stripped = validateResponse(getUser, head(), body(user), true, 10)
  assert.deepEqual(JSON.parse(String(stripped.body)), {
    id: 1,
    username: 'a',
    displayName: 'A',
    email: 'a@b.io',
    role: 'user',
  })
  assert.match(
    validateResponse(getUser, head(500), body({}), false, 10).violations[0]?.expected ?? '',
    /declared status/,
  )
  assert.match(
    validateResponse(getUser, { ...head(), headers: { 'content-type': 'text/html' } }, body(user), false, 10)
      .violations[0]?.expected ?? '',
    /Content-Type/,
  )
  assert.match(
    validateResponse(getUser, head(), Buffer.from('{'), false, 10).violations[0]?.expected ?? '',
    /valid JSON/,
  )
  const problem = { ...head(401), headers: { 'content-type': 'application/problem+json' } }
  assert.deepEqual(
    validateResponse(getUser, problem, body({ type: 'x', title: 't', status: 401 }), false, 10).violations,
    [],
  )
})

test('readOnly / writeOnly per direction: readOnly refused in requests (not required there), writeOnly removed or reported in responses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-rw-'))
  for (const version of ['3.0.3', '3.1.0']) {
    const file = join(dir, `api-${version}.yaml`)
    writeFileSync(
      file,
      `openapi: ${version}
info: { title: t, version: '1' }
paths:
  /users:
    post:
      operationId: createUser
      requestBody:
        content: { application/json: { schema: { $ref: '#/components/schemas/User' } } }
      responses:
        '201':
          description: ok
          content: { application/json: { schema: { $ref: '#/components/schemas/User' } } }
components:
  schemas:
    Id: { type: integer, readOnly: true }
    User:
      type: object
      required: [id, name, password]
      properties:
        id: { $ref: '#/components/schemas/Id' }
        name: { type: string }
        password: { type: string, writeOnly: true }
        nested:
          type: object
          properties:
            createdAt: { type: string, readOnly: true }
`,
    )
    const op = compileApi(file, { responses: true }).byId.get('createUser')
    assert.ok(op?.body)
    const validate = op.body.media[0]?.validate
    assert.ok(validate)
    // request: id (readOnly through $ref) and nested.createdAt refused; id not required
    assert.equal(validate({ name: 'a', password: 'p' }), true, version)
    assert.equal(validate({ id: 1, name: 'a', password: 'p' }), false, version)
    assert.deepEqual(
      schemaViolations('body', undefined, validate.errors).map((v) => [v.pointer, v.expected]),
      [['/id', 'no such property here (readOnly/writeOnly)']],
    )
    assert.equal(validate({ name: 'a', password: 'p', nested: { createdAt: 'x' } }), false, version)
    // response: password (writeOnly) reported in block/monitor, removed in strip; not required
    const res = { id: 1, name: 'a', password: 'hunter2' }
    assert.deepEqual(
      validateResponse(op, head(201), body(res), false, 10).violations.map((v) => v.pointer),
      ['/password'],
    )
    const stripped = validateResponse(op, head(201), body(res), true, 10)
    assert.deepEqual(JSON.parse(String(stripped.body)), { id: 1, name: 'a' })
    assert.deepEqual(stripped.violations, [])
    assert.deepEqual(validateResponse(op, head(201), body({ id: 1, name: 'a' }), false, 10).violations, [])
  }
})
