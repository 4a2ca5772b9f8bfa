/**
 * The audit events the policies emit, from the policy instances themselves with an in-memory
 * emitter: jwt-auth and oauth2-introspection refusals (`auth.failure` with the reason, never the
 * token), brute-force lockouts; and a gateway that cannot open its audit log does not start.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { SignJWT } from 'jose'
import { type AuditEvent, memoryAudit } from '../src/audit/event.js'
import type { GatewayError } from '../src/gateway/errors.js'
import type { PolicyInstance } from '../src/gateway/pipeline/policy.js'
import { bruteForceLockout } from '../src/policies/brute-force-lockout/policy.js'
import { BruteForceLockoutConfig } from '../src/policies/brute-force-lockout/schema.js'
import { jwtAuth } from '../src/policies/jwt-auth/policy.js'
import { JwtAuthConfig } from '../src/policies/jwt-auth/schema.js'
import { oauth2Introspection } from '../src/policies/oauth2-introspection/policy.js'
import { OAuth2IntrospectionConfig } from '../src/policies/oauth2-introspection/schema.js'
import { testContext, testDeps } from '../src/policies/testing/context.js'
import { type IntrospectionServer, startIntrospectionServer } from './helpers/introspection-server.js'
import { generateIssuerKey, type IssuerKey } from './helpers/jwks-issuer.js'
import { tempDir } from './helpers/process.js'

const ROOT = new URL('../../', import.meta.url).pathname

/** Runs a request hook; the GatewayError code it threw, or undefined. */
async function run(
  p: PolicyInstance,
  headers: Record<string, string>,
  clientIp?: string,
): Promise<string | undefined> {
  const ctx = testContext({ headers, path: '/api/orders/7' })
  if (clientIp) (ctx as { clientIp: string }).clientIp = clientIp
  try {
    await p.onRequest?.(ctx)
    return undefined
  } catch (err) {
    return (err as GatewayError).code
  }
}

describe('audit events from policies', () => {
  const closers: PolicyInstance[] = []
  let key: IssuerKey
  let idp: IntrospectionServer
  before(async () => {
    key = await generateIssuerKey('RS256', 'k-audit')
    idp = await startIntrospectionServer({ clientId: 'gw', clientSecret: 'introspection-secret-9d2c' })
  })
  after(async () => {
    for (const p of closers) await p.close?.()
    await idp?.close()
  })

  test('jwt-auth: each refused token is an auth.failure with its reason; a missing one is not; no token in any event', async () => {
    const audit = memoryAudit()
    const config = Value.Default(JwtAuthConfig, {
      algorithms: ['RS256'],
      issuer: 'https://idp.test',
      audience: 'api',
      keys: [{ kid: 'k-audit', pem: key.spki }],
    }) as never
    const p = jwtAuth.create(config, testDeps({ audit }))
    closers.push(p)
    const now = Math.floor(Date.now() / 1000)
    const mint = (claims: Record<string, unknown>) =>
      new SignJWT({ sub: 'alice', ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: 'k-audit' })
        .setIssuer('https://idp.test')
        .setAudience('api')
        .sign(key.privateKey)
    const expired = await mint({ iat: now - 600, exp: now - 300 })
    const good = await mint({ iat: now, exp: now + 300 })
    const tampered = `${good.slice(0, -4)}AAAA`
    assert.equal(await run(p, {}), 'GW_ERR_AUTH_MISSING')
    assert.equal(audit.events.length, 0, 'a missing token is only the request record')
    assert.equal(await run(p, { authorization: `Bearer ${expired}` }), 'GW_ERR_TOKEN_EXPIRED')
    assert.equal(await run(p, { authorization: `Bearer ${tampered}` }), 'GW_ERR_AUTH_INVALID')
    assert.equal(await run(p, { authorization: `Bearer ${good}` }), undefined)
    assert.deepEqual(
      audit.events.map((e) => [e.type, e.code, e.reason, e.data?.method, e.decision]),
      [
        ['auth.failure', 'GW_ERR_TOKEN_EXPIRED', 'expired', 'jwt', 'deny'],
        ['auth.failure', 'GW_ERR_AUTH_INVALID', 'bad signature', 'jwt', 'deny'],
      ],
    )
    const e = audit.events[0] as AuditEvent
    assert.equal(e.requestId, 'test-request')
    assert.equal(e.clientIp, '127.0.0.1')
    assert.equal(e.path, '/api/orders/7')
    const text = JSON.stringify(audit.events)
    for (const t of [expired, good, tampered, good.split('.')[2] as string])
      assert.equal(text.includes(t), false)
  })

  test('oauth2-introspection: an inactive token and an unreachable endpoint are auth.failure events', async () => {
    const audit = memoryAudit()
    const config = Value.Default(OAuth2IntrospectionConfig, {
      endpoint: idp.endpoint,
      clientId: 'gw',
      clientSecret: 'introspection-secret-9d2c',
      timeoutMs: 500,
    }) as never
    const p = oauth2Introspection.create(config, testDeps({ audit }))
    closers.push(p)
    const token = 'opaque-token-4b7e1a90c3'
    assert.equal(await run(p, { authorization: `Bearer ${token}` }), 'GW_ERR_AUTH_INVALID')
    assert.equal(await run(p, { authorization: `Bearer ${token}` }), 'GW_ERR_AUTH_INVALID') // cached
    await idp.stop()
    assert.equal(await run(p, { authorization: 'Bearer another-token-77' }), 'GW_ERR_AUTH_UNAVAILABLE')
    assert.deepEqual(
      audit.events.map((e) => [e.type, e.code, e.reason, e.decision]),
      [
        ['auth.failure', 'GW_ERR_AUTH_INVALID', 'inactive', 'deny'],
        ['auth.failure', 'GW_ERR_AUTH_INVALID', 'inactive (cached)', 'deny'],
        ['auth.failure', 'GW_ERR_AUTH_UNAVAILABLE', audit.events[2]?.reason, 'error'],
      ],
    )
    assert.match(String(audit.events[2]?.reason), /^introspection failed/)
    const text = JSON.stringify(audit.events)
    assert.equal(
      text.includes(token) || text.includes('another-token-77') || text.includes('introspection-secret'),
      false,
    )
  })

  test('brute-force-lockout: a lockout is an event with the subject (an IP or an account hash), level and duration', async () => {
    const audit = memoryAudit()
    const config = Value.Default(BruteForceLockoutConfig, {
      maxFailures: 2,
      lockoutSec: 30,
      by: ['ip', 'credential'],
      credential: { header: 'x-user' },
    }) as never
    const p = bruteForceLockout.create(config, testDeps({ audit }))
    for (let i = 0; i < 2; i++) {
      const ctx = testContext({ headers: { 'x-user': 'Alice@Example.com' } })
      await p.onRequest?.(ctx)
      p.onLog?.({ ctx, status: 401, durationMs: 1, decision: 'allowed', errorCode: undefined })
    }
    for (const deadline = Date.now() + 2000; audit.events.length < 2 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 5))
    }
    const subjects = audit.events.map((e) => String(e.data?.subject)).sort()
    assert.equal(subjects.length, 2)
    assert.equal(subjects[1], 'ip:127.0.0.1')
    assert.match(subjects[0] as string, /^acct:[A-Za-z0-9_-]{22}$/)
    for (const e of audit.events) {
      assert.equal(e.type, 'lockout')
      assert.equal(e.code, 'GW_ERR_LOCKED_OUT')
      assert.deepEqual([e.data?.level, e.data?.seconds], [1, 30])
    }
    assert.equal(
      JSON.stringify(audit.events).toLowerCase().includes('alice'),
      false,
      'the account name is hashed',
    )
  })
})

describe('a gateway whose audit log cannot be opened does not start', () => {
  test('no keyring, a missing keyring file, an invalid redact path: exit 2 with the reason', () => {
    const dir = tempDir('pc-audit-bad-')
    const base = `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { main: { targets: [ { url: "http://127.0.0.1:9" } ] } }
routes: [ { name: r, match: { pathPrefix: / }, upstream: main } ]
accessLog: { enabled: false }
`
    const cases: [string, RegExp][] = [
      ['audit: { enabled: true }', /audit.enabled needs audit.keyring/],
      ['audit: { enabled: true, keyring: { file: nope.json } }', /keyring .*nope\.json: ENOENT/],
      [
        'audit: { enabled: true, keyring: { env: PCL_TEST_KR }, redact: [mac] }',
        /mac belongs to the chain and cannot be redacted/,
      ],
    ]
    for (const [audit, re] of cases) {
      const file = join(dir, 'portcullis.yaml')
      writeFileSync(file, base + audit)
      const r = spawnSync(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'serve', '--config', file], {
        encoding: 'utf8',
        timeout: 20_000,
        env: {
          ...process.env,
          PCL_TEST_KR: JSON.stringify({ active: 'k', keys: { k: Buffer.alloc(32, 7).toString('base64') } }),
        },
      })
      assert.equal(r.status, 2, `${audit}: ${r.stderr}`)
      assert.match(r.stderr, re)
    }
  })
})
