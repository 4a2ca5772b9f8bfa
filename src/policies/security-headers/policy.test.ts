import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import type { ResponseHead } from '../../gateway/pipeline/context.js'
import { testContext, testDeps } from '../testing/context.js'
import { securityHeaders } from './policy.js'
import { SecurityHeadersConfig } from './schema.js'

const deps = testDeps()
const build = (cfg: object) =>
  securityHeaders.create(Value.Default(SecurityHeadersConfig, cfg) as never, deps)
const head = (headers: ResponseHead['headers'] = {}): ResponseHead => ({ status: 200, headers, local: false })

test('defaults: nosniff, DENY, CSP, no-referrer, no-store; technology headers removed', () => {
  const h = head({ server: 'Apache/2.4', 'x-powered-by': 'PHP', 'content-type': 'application/json' })
  build({}).onResponse?.(testContext(), h)
  assert.deepEqual(h.headers, {
    'content-type': 'application/json',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  })
})

test('HSTS only on HTTPS requests', () => {
  const p = build({ hsts: { maxAge: 100, preload: true } })
  const plain = head()
  p.onResponse?.(testContext({ secure: false }), plain)
  assert.equal(plain.headers['strict-transport-security'], undefined)
  const tls = head()
  p.onResponse?.(testContext({ secure: true }), tls)
  assert.equal(tls.headers['strict-transport-security'], 'max-age=100; includeSubDomains; preload')
})

test("the upstream's Cache-Control is kept unless overridden", () => {
  const kept = head({ 'cache-control': 'max-age=60' })
  build({}).onResponse?.(testContext(), kept)
  assert.equal(kept.headers['cache-control'], 'max-age=60')
  const forced = head({ 'cache-control': 'max-age=60' })
  build({ overrideUpstreamCacheControl: true }).onResponse?.(testContext(), forced)
  assert.equal(forced.headers['cache-control'], 'no-store')
})

test('each header can be turned off', () => {
  const h = head({ server: 'x' })
  build({
    noSniff: false,
    frameOptions: false,
    contentSecurityPolicy: false,
    referrerPolicy: false,
    cacheControl: false,
    removeHeaders: [],
  }).onResponse?.(testContext({ secure: true }), h)
  assert.deepEqual(Object.keys(h.headers).sort(), ['server', 'strict-transport-security'])
})
