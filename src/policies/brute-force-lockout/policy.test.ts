import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import type { ResponseHead } from '../../gateway/pipeline/context.js'
import { testContext, testDeps } from '../testing/context.js'
import { bruteForceLockout } from './policy.js'
import { BruteForceLockoutConfig } from './schema.js'

const build = (cfg: object) =>
  bruteForceLockout.create(Value.Default(BruteForceLockoutConfig, cfg) as never, testDeps())

test('without uniformFailures the route is not buffered (no body hook)', () => {
  assert.equal(build({}).onResponseBody, undefined)
})

test('uniformFailures: a 404 "no such user" and a 401 "wrong password" become the same answer', async () => {
  const p = build({ uniformFailures: { minDurationMs: 0 } })
  const ctx = () => {
    const c = testContext({ method: 'POST', path: '/login' })
    return Object.assign(c, { id: 'req-1' })
  }
  const a: ResponseHead = {
    status: 404,
    local: false,
    headers: {
      'content-type': 'application/json',
      etag: '"abc"',
      'x-user-found': 'no',
      'x-request-id': 'req-1',
      'x-content-type-options': 'nosniff',
      'access-control-allow-origin': 'https://app.example.com',
    },
  }
  const b: ResponseHead = {
    status: 401,
    local: false,
    headers: {
      'content-type': 'text/plain',
      'www-authenticate': 'Basic realm="users"',
      'set-cookie': 'tries=3',
      'x-request-id': 'req-1',
      'x-content-type-options': 'nosniff',
      'access-control-allow-origin': 'https://app.example.com',
    },
  }
  const bodyA = await p.onResponseBody?.(ctx(), a, Buffer.from('{"error":"no such user"}'))
  const bodyB = await p.onResponseBody?.(ctx(), b, Buffer.from('wrong password for alice'))
  assert.equal(a.status, 401)
  assert.deepEqual(a, b)
  assert.deepEqual(bodyA, bodyB)
  assert.deepEqual(JSON.parse(String(bodyA)).code, 'GW_ERR_AUTH_INVALID')
  assert.deepEqual(Object.keys(a.headers).sort(), [
    'access-control-allow-origin',
    'cache-control',
    'content-type',
    'x-content-type-options',
    'x-request-id',
  ])
})

test('uniformFailures: successes, other statuses and the gateway’s own answers pass unchanged', async () => {
  const p = build({ uniformFailures: { minDurationMs: 0 } })
  for (const head of [
    { status: 200, local: false, headers: { etag: '"x"' } },
    { status: 400, local: false, headers: { etag: '"x"' } },
    { status: 401, local: true, headers: { etag: '"x"' } },
  ] as ResponseHead[]) {
    const before = structuredClone(head)
    const body = Buffer.from('original')
    assert.equal(await p.onResponseBody?.(testContext(), head, body), body)
    assert.deepEqual(head, before)
  }
})

test('uniformFailures: no failure is answered before minDurationMs', async () => {
  const p = build({ uniformFailures: { minDurationMs: 120 } })
  const ctx = Object.assign(testContext(), { startTime: performance.now() })
  await p.onResponseBody?.(ctx, { status: 401, local: false, headers: {} }, Buffer.from('x'))
  assert.ok(performance.now() - ctx.startTime >= 119)
})
