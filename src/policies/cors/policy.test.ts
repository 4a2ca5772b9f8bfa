import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import type { GatewayError } from '../../gateway/errors.js'
import { PolicyAnswer } from '../../gateway/pipeline/answer.js'
import type { ResponseHead } from '../../gateway/pipeline/context.js'
import { testContext, testDeps } from '../testing/context.js'
import { cors } from './policy.js'
import { CorsConfig } from './schema.js'

const build = (cfg: object) => cors.create(Value.Default(CorsConfig, cfg) as never, testDeps())

function configError(cfg: object): string {
  try {
    build(cfg)
    return ''
  } catch (err) {
    assert.equal((err as Error).name, 'ConfigError')
    return (err as Error).message
  }
}

test('config: never * or a reflecting pattern with credentials; no null; origins only', () => {
  assert.match(configError({ origins: ['*'], credentials: true }), /"\*" cannot be combined with credentials/)
  assert.match(configError({ origins: ['null'] }), /"null" is not allowed/)
  assert.match(configError({ origins: ['https://app.example.com/path'] }), /expected an origin/)
  assert.match(configError({ origins: ['app.example.com'] }), /expected an origin/)
  assert.match(
    configError({ originPatterns: ['https://.*'], credentials: true }),
    /would allow any site with credentials/,
  )
  assert.match(configError({ originPatterns: ['.*'] }), /matches "null"/)
  assert.match(
    configError({ originPatterns: ['https://[a-z]+\\.example\\.com.*'], credentials: true }),
    /app\.example\.com\.portcullis-probe\.invalid/,
  )
  assert.match(configError({ originPatterns: ['https://(?=x)x'] }), /linear-time engine/)
  assert.match(configError({ allowHeaders: ['*'], credentials: true }), /no wildcard with credentials/)
  assert.equal(configError({ origins: ['https://App.Example.com/'], credentials: true }), '')
  assert.equal(configError({ originPatterns: ['https://[a-z0-9-]+\\.example\\.com'], credentials: true }), '')
})

function preflight(p: ReturnType<typeof build>, headers: Record<string, string>): PolicyAnswer | string {
  try {
    p.onRequest?.(testContext({ method: 'OPTIONS', headers }))
    return 'passed'
  } catch (err) {
    if (err instanceof PolicyAnswer) return err
    return (err as GatewayError).code
  }
}

test('preflight: answered with the listed origin (normalized config), methods, requested headers', () => {
  const p = build({ origins: ['https://App.Example.com/'], credentials: true, methods: ['GET', 'PUT'] })
  const a = preflight(p, {
    origin: 'https://app.example.com',
    'access-control-request-method': 'PUT',
    'access-control-request-headers': 'Content-Type,Authorization',
  })
  assert.ok(a instanceof PolicyAnswer)
  assert.equal(a.status, 204)
  assert.deepEqual(a.headers, {
    'access-control-allow-origin': 'https://app.example.com',
    'access-control-allow-methods': 'GET, PUT',
    'access-control-max-age': '600',
    vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    'access-control-allow-headers': 'content-type, authorization',
    'access-control-allow-credentials': 'true',
  })
  const base = { origin: 'https://app.example.com' }
  assert.equal(preflight(p, { ...base, 'access-control-request-method': 'DELETE' }), 'GW_ERR_CORS_ORIGIN')
  assert.equal(preflight(p, { ...base, 'access-control-request-method': 'put' }), 'GW_ERR_CORS_ORIGIN')
  assert.equal(
    preflight(p, { origin: 'https://APP.example.com', 'access-control-request-method': 'GET' }),
    'GW_ERR_CORS_ORIGIN',
    'origins compare exactly as browsers serialize them',
  )
  // Not a preflight: nothing to answer.
  assert.equal(preflight(p, base), 'passed')
})

test('real requests: upstream CORS headers replaced, Vary merged, disallowed origins refused on demand', () => {
  const p = build({ origins: ['https://app.example.com'], exposeHeaders: ['x-request-id'] })
  const head: ResponseHead = {
    status: 200,
    local: false,
    headers: {
      'access-control-allow-origin': '*',
      'access-control-allow-headers': '*',
      vary: 'accept-encoding, origin',
    },
  }
  p.onResponse?.(testContext({ headers: { origin: 'https://app.example.com' } }), head)
  assert.deepEqual(head.headers, {
    vary: 'accept-encoding, origin',
    'access-control-allow-origin': 'https://app.example.com',
    'access-control-expose-headers': 'x-request-id',
  })
  const other: ResponseHead = {
    status: 200,
    local: false,
    headers: { 'access-control-allow-origin': '*', vary: '*' },
  }
  p.onResponse?.(testContext({ headers: { origin: 'https://evil.example' } }), other)
  assert.deepEqual(other.headers, { vary: '*' })
  const strict = build({ origins: ['https://app.example.com'], refuseDisallowedOrigins: true })
  assert.equal(preflight(strict, { origin: 'https://evil.example' }), 'GW_ERR_CORS_ORIGIN')
  assert.equal(preflight(strict, { origin: 'https://app.example.com' }), 'passed')
})
