import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import type { GatewayError } from '../../gateway/errors.js'
import { testContext, testDeps } from '../testing/context.js'
import { requestSizeLimit } from './policy.js'
import { RequestSizeLimitConfig } from './schema.js'

const deps = testDeps()
const build = (cfg: object) =>
  requestSizeLimit.create(Value.Default(RequestSizeLimitConfig, cfg) as never, deps)

function code(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return (err as GatewayError).code
  }
}

test('defaults: 1 MiB bodies, 4096-char queries, 100 headers', () => {
  const p = build({})
  const ctx = testContext({ headers: { 'content-length': '1048576' } })
  p.onRequest?.(ctx)
  assert.equal(ctx.bodyLimit, 1048576)
  assert.equal(
    code(() => p.onRequest?.(testContext({ headers: { 'content-length': '1048577' } }))),
    'GW_ERR_BODY_TOO_LARGE',
  )
})

test('a declared body over the limit is refused before reading', () => {
  const p = build({ maxBodyBytes: 10 })
  assert.equal(
    code(() => p.onRequest?.(testContext({ headers: { 'content-length': '11' } }))),
    'GW_ERR_BODY_TOO_LARGE',
  )
  assert.equal(
    code(() => p.onRequest?.(testContext({ headers: { 'content-length': '10' } }))),
    undefined,
  )
})

test('per media type limits apply case-insensitively and ignore parameters', () => {
  const p = build({ maxBodyBytes: 1000, contentTypes: { 'Application/JSON': 100 } })
  const json = testContext({
    headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': '101' },
  })
  assert.equal(
    code(() => p.onRequest?.(json)),
    'GW_ERR_BODY_TOO_LARGE',
  )
  const other = testContext({ headers: { 'content-type': 'text/plain', 'content-length': '999' } })
  assert.equal(
    code(() => p.onRequest?.(other)),
    undefined,
  )
  assert.equal(other.bodyLimit, 1000)
})

test('the limit only ever goes down', () => {
  const p = build({ maxBodyBytes: 5000 })
  const ctx = testContext()
  ctx.bodyLimit = 100
  p.onRequest?.(ctx)
  assert.equal(ctx.bodyLimit, 100)
})

test('query length and header count', () => {
  const p = build({ maxQueryLength: 5, maxHeaderCount: 2 })
  assert.equal(
    code(() => p.onRequest?.(testContext({ query: 'a=123' }))),
    undefined,
  )
  assert.equal(
    code(() => p.onRequest?.(testContext({ query: 'a=1234' }))),
    'GW_ERR_URI_TOO_LONG',
  )
  assert.equal(
    code(() => p.onRequest?.(testContext({ headers: { a: '1', b: '2', c: '3' } }))),
    'GW_ERR_HEADERS_TOO_LARGE',
  )
})
