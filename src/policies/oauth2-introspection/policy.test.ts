/**
 * Unit tests of the oauth2-introspection policy against a real RFC 7662 endpoint on 127.0.0.1
 * (test/helpers/introspection-server.ts), with a fake clock for the cache.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { generateKeyPair, SignJWT } from 'jose'
import pino from 'pino'
import { closedPort } from '../../../test/helpers/upstream.js'
import { otherS, padded, standardAlphabet, unusedBitsSet } from '../../../test/helpers/jws-spellings.js'
import {
  type IntrospectionServer,
  startIntrospectionServer,
} from '../../../test/helpers/introspection-server.js'
import { REVOCATIONS_MAP, SharedRevocations } from '../../auth/revocation.js'
import { tokenHash } from '../../auth/token.js'
import { GatewayError } from '../../gateway/errors.js'
import type { PolicyInstance } from '../../gateway/pipeline/policy.js'
import { createMemoryStore } from '../../stores/memory/memory-store.js'
import { testContext, testDeps } from '../testing/context.js'
import { oauth2Introspection, parseEndpoint } from './policy.js'
import { OAuth2IntrospectionConfig } from './schema.js'

const CLIENT_ID = 'gateway-unit'
const CLIENT_SECRET = 'unit-secret-5f1c9e0b7a'
const NOW_S = Math.floor(Date.now() / 1000)

let clock = Date.now()
const logLines: string[] = []
const logger = pino({ level: 'debug' }, { write: (s: string) => logLines.push(s) })
const deps = testDeps({ logger, now: () => clock, routeName: 'unit' })

let idp: IntrospectionServer
const built: PolicyInstance[] = []

function build(cfg: object): PolicyInstance {
  const config = Value.Default(OAuth2IntrospectionConfig, {
    endpoint: idp.endpoint,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    ...cfg,
  })
  const p = oauth2Introspection.create(config as never, deps)
  built.push(p)
  return p
}

const bearer = (token: string) => testContext({ headers: { authorization: `Bearer ${token}` } })

/** Runs onRequest; resolves the GatewayError it denied with, or undefined when allowed. */
async function run(p: PolicyInstance, ctx = testContext()): Promise<GatewayError | undefined> {
  try {
    await p.onRequest?.(ctx)
    return undefined
  } catch (err) {
    if (err instanceof GatewayError) return err
    throw err
  }
}

let n = 0
/** A fresh token name, registered as active with these claims. */
function activeToken(claims: Record<string, unknown> = {}, opts: { delayMs?: number } = {}): string {
  const t = `tok-${++n}-${Math.random().toString(36).slice(2)}`
  idp.setToken(t, { sub: `user-${n}`, scope: 'read', exp: NOW_S + 3600, ...claims }, opts)
  return t
}

before(async () => {
  idp = await startIntrospectionServer({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
})
after(async () => {
  await Promise.all(built.map((p) => p.close?.()))
  await idp.close()
})

describe('config', () => {
  test('the endpoint must be https, or http to a loopback host', () => {
    assert.equal(parseEndpoint('https://idp.example/introspect', 'x').host, 'idp.example')
    assert.equal(parseEndpoint('http://127.0.0.1:9000/i', 'x').port, '9000')
    assert.equal(parseEndpoint('http://127.1/i', 'x').hostname, '127.0.0.1')
    assert.equal(parseEndpoint('http://localhost/i', 'x').hostname, 'localhost')
    assert.equal(parseEndpoint('http://[::1]:8080/i', 'x').hostname, '[::1]')
    assert.throws(() => parseEndpoint('http://idp.example/introspect', 'x'), /must use https/)
    assert.throws(() => parseEndpoint('http://10.0.0.1/introspect', 'x'), /must use https/)
    assert.throws(() => parseEndpoint('http://127.0.0.1.nip.io/i', 'x'), /must use https/)
    assert.throws(() => parseEndpoint('ftp://idp.example/i', 'x'), /https URL/)
    assert.throws(() => parseEndpoint('/introspect', 'x'), /absolute URL/)
    assert.throws(() => parseEndpoint(undefined, 'x'), /required/)
    assert.throws(() => parseEndpoint('https://u:p@idp.example/i', 'x'), /credentials/)
  })

  test('create() refuses a plain-http remote endpoint and missing credentials, naming no secret', () => {
    const mk = (cfg: object) => () =>
      oauth2Introspection.create(Value.Default(OAuth2IntrospectionConfig, cfg) as never, deps)
    assert.throws(
      mk({ endpoint: 'http://idp.example/introspect', clientId: 'a', clientSecret: CLIENT_SECRET }),
      (err: Error) => /must use https/.test(err.message) && !err.message.includes(CLIENT_SECRET),
    )
    assert.throws(mk({ endpoint: idp.endpoint, clientSecret: 's' }), /clientId` is required/)
    assert.throws(mk({ endpoint: idp.endpoint, clientId: 'a' }), /clientSecret` is required/)
    assert.throws(mk({ clientId: 'a', clientSecret: 's' }), /endpoint` is required/)
  })

  test('defaults', () => {
    const c = Value.Default(OAuth2IntrospectionConfig, {}) as Record<string, unknown>
    assert.equal(c.clientAuthMethod, 'client_secret_basic')
    assert.equal(c.tokenTypeHint, 'access_token')
    assert.equal(c.timeoutMs, 2000)
    assert.equal(c.maxTokenBytes, 8192)
    assert.deepEqual(c.cache, {
      maxEntries: 10000,
      maxTtlSec: 300,
      negativeTtlSec: 5,
      maxNegativeEntries: 10000,
    })
  })
})

describe('tokens', () => {
  test('active token: principal from the response, Basic client auth, token_type_hint', async () => {
    const p = build({})
    const t = activeToken({ sub: 'alice', scope: 'read  write', client_id: 'spa', custom: { a: 1 } })
    const ctx = bearer(t)
    assert.equal(await run(p, ctx), undefined)
    assert.deepEqual(ctx.principal, {
      id: 'alice',
      type: 'user',
      scopes: ['read', 'write'],
      roles: [],
      claims: {
        sub: 'alice',
        scope: 'read  write',
        exp: NOW_S + 3600,
        client_id: 'spa',
        custom: { a: 1 },
        active: true,
      },
      authMethod: 'oauth2-introspection',
    })
    assert.ok(Object.isFrozen(ctx.principal?.claims), 'claims are shared by cached requests: frozen')
    const call = idp.calls.at(-1)
    assert.equal(call?.auth, 'basic')
    assert.equal(call?.authorized, true)
    assert.equal(call?.tokenTypeHint, 'access_token')
    assert.equal(call?.contentType, 'application/x-www-form-urlencoded')
  })

  test('no sub: a service principal named by username, then client_id', async () => {
    const p = build({})
    const a = testContext({
      headers: { authorization: `Bearer ${activeToken({ sub: undefined, client_id: 'batch' })}` },
    })
    assert.equal(await run(p, a), undefined)
    assert.equal(a.principal?.id, 'batch')
    assert.equal(a.principal?.type, 'service')
    const b = bearer(activeToken({ sub: undefined, username: 'bob', client_id: 'batch' }))
    assert.equal(await run(p, b), undefined)
    assert.equal(b.principal?.id, 'bob')
    const none = bearer(activeToken({ sub: undefined }))
    assert.equal((await run(p, none))?.code, 'GW_ERR_AUTH_INVALID', 'no identity at all is not a principal')
  })

  test('client_secret_post sends the credentials as form fields; no hint when tokenTypeHint is false', async () => {
    const p = build({ clientAuthMethod: 'client_secret_post', tokenTypeHint: false })
    assert.equal(await run(p, bearer(activeToken())), undefined)
    const call = idp.calls.at(-1)
    assert.equal(call?.auth, 'post')
    assert.equal(call?.authorized, true)
    assert.equal(call?.tokenTypeHint, undefined)
  })

  test('inactive and unknown tokens → 401 GW_ERR_AUTH_INVALID with error="invalid_token"', async () => {
    const p = build({})
    idp.setToken('inactive-1', { active: false, sub: 'x' })
    for (const t of ['inactive-1', 'unknown-1']) {
      const err = await run(p, bearer(t))
      assert.equal(err?.code, 'GW_ERR_AUTH_INVALID')
      assert.equal(err?.status, 401)
      assert.equal(err?.headers?.['www-authenticate'], 'Bearer realm="portcullis", error="invalid_token"')
    }
  })

  test('missing token → 401 GW_ERR_AUTH_MISSING with a bare challenge; other schemes count as missing', async () => {
    const p = build({ realm: 'orders' })
    const err = await run(p, testContext())
    assert.equal(err?.code, 'GW_ERR_AUTH_MISSING')
    assert.equal(err?.headers?.['www-authenticate'], 'Bearer realm="orders"')
    const basic = await run(p, testContext({ headers: { authorization: 'Basic dXNlcjpwdw==' } }))
    assert.equal(basic?.code, 'GW_ERR_AUTH_MISSING')
    const calls = idp.calls.length
    for (const v of ['Bearer', 'Bearer ', 'Bearer a b', 'Bearer t\u00e9st']) {
      const e = await run(p, testContext({ headers: { authorization: v } }))
      assert.equal(e?.code, 'GW_ERR_AUTH_INVALID', JSON.stringify(v))
    }
    assert.equal(idp.calls.length, calls, 'malformed tokens are never sent to the endpoint')
  })

  test('authenticate(): undefined without a bearer token, the principal for a good one, throws for a bad one', async () => {
    assert.equal(oauth2Introspection.authenticates, true)
    const p = build({ forwardToken: false })
    assert.equal(p.challenge, 'Bearer realm="portcullis"')
    assert.deepEqual(p.stripRequestHeaders, ['authorization'])
    assert.equal(build({}).stripRequestHeaders, undefined, 'the token is forwarded by default')
    const auth = p.authenticate as NonNullable<PolicyInstance['authenticate']>
    assert.equal(auth(testContext()), undefined)
    assert.equal(auth(testContext({ headers: { authorization: 'Basic dXNlcjpwdw==' } })), undefined)
    assert.equal(auth(testContext({ headers: { authorization: `Basic ${'x'.repeat(9000)}` } })), undefined)
    const t = activeToken({ sub: 'ann' })
    const ctx = bearer(t)
    const first = await auth(ctx)
    assert.equal(first?.id, 'ann')
    assert.equal(ctx.principal, undefined, 'authenticate() leaves setting the principal to the caller')
    const again = auth(bearer(t))
    assert.ok(!(again instanceof Promise), 'synchronous on a cache hit')
    assert.equal(again?.id, 'ann')
    await assert.rejects(async () => auth(bearer('unknown-for-authenticate')), {
      code: 'GW_ERR_AUTH_INVALID',
    })
    assert.throws(() => auth(bearer('bad token')), { code: 'GW_ERR_AUTH_INVALID' })
  })

  test('two Authorization headers are refused (Node would keep only the first)', async () => {
    const p = build({})
    const t = activeToken()
    const ctx = bearer(t)
    ctx.req.rawHeaders.push('Authorization', 'Bearer other')
    assert.equal((await run(p, ctx))?.code, 'GW_ERR_AUTH_INVALID')
  })

  test('a token in another header, bare', async () => {
    const p = build({ tokenHeader: 'X-Access-Token' })
    const t = activeToken()
    assert.equal(await run(p, testContext({ headers: { 'x-access-token': t } })), undefined)
    assert.equal((await run(p, bearer(t)))?.code, 'GW_ERR_AUTH_MISSING')
  })

  test('an oversized token → 401 before any call', async () => {
    const p = build({ maxTokenBytes: 64 })
    const long = 'a'.repeat(65)
    idp.setToken(long, { sub: 'x' })
    const calls = idp.calls.length
    const err = await run(p, bearer(long))
    assert.equal(err?.code, 'GW_ERR_AUTH_INVALID')
    assert.equal(idp.calls.length, calls)
    const huge = await run(build({}), bearer('b'.repeat(8193)))
    assert.equal(huge?.code, 'GW_ERR_AUTH_INVALID')
    assert.equal(idp.calls.length, calls)
  })

  test('requiredScopes: all must be present, else 403 insufficient_scope (principal still set)', async () => {
    const p = build({ requiredScopes: ['orders:read', 'orders:write'] })
    const ctx = bearer(activeToken({ scope: 'orders:read' }))
    const err = await run(p, ctx)
    assert.equal(err?.code, 'GW_ERR_FORBIDDEN')
    assert.equal(err?.status, 403)
    assert.equal(
      err?.headers?.['www-authenticate'],
      'Bearer realm="portcullis", error="insufficient_scope", scope="orders:read orders:write"',
    )
    assert.ok(ctx.principal)
    assert.equal(await run(p, bearer(activeToken({ scope: 'orders:write x orders:read' }))), undefined)
  })

  test('audience and issuer checks', async () => {
    const p = build({ audience: ['orders-api', 'other'], issuer: 'https://idp.example' })
    const ok = activeToken({ aud: ['x', 'orders-api'], iss: 'https://idp.example' })
    assert.equal(await run(p, bearer(ok)), undefined)
    assert.equal(await run(p, bearer(activeToken({ aud: 'other', iss: 'https://idp.example' }))), undefined)
    for (const claims of [
      { aud: 'billing-api', iss: 'https://idp.example' },
      { iss: 'https://idp.example' },
      { aud: 'orders-api', iss: 'https://evil.example' },
      { aud: 'orders-api' },
    ]) {
      assert.equal(
        (await run(p, bearer(activeToken(claims))))?.code,
        'GW_ERR_AUTH_INVALID',
        JSON.stringify(claims),
      )
    }
  })
})

describe('fail closed', () => {
  test('wrong client secret: the endpoint answers 401 → 503 GW_ERR_AUTH_UNAVAILABLE', async () => {
    const p = build({ clientSecret: 'wrong-secret-aa11' })
    const err = await run(p, bearer(activeToken()))
    assert.equal(err?.code, 'GW_ERR_AUTH_UNAVAILABLE')
    assert.equal(err?.status, 503)
    assert.equal(idp.calls.at(-1)?.authorized, false)
  })

  test('endpoint down, non-200, malformed, non-JSON, oversized response → 503, never cached', async () => {
    const down = await closedPort()
    const cases: Record<string, object> = {
      down: { endpoint: `http://127.0.0.1:${down}/introspect` },
      500: { endpoint: `${idp.endpoint}?status=500` },
      redirect: { endpoint: `${idp.endpoint}?status=302` },
      json: { endpoint: `${idp.endpoint}?malformed=json` },
      array: { endpoint: `${idp.endpoint}?malformed=array` },
      html: { endpoint: `${idp.endpoint}?malformed=html` },
      huge: { endpoint: `${idp.endpoint}?malformed=huge` },
    }
    for (const [name, cfg] of Object.entries(cases)) {
      const p = build(cfg)
      const t = activeToken()
      for (let i = 0; i < 2; i++) {
        const err = await run(p, bearer(t))
        assert.equal(err?.code, 'GW_ERR_AUTH_UNAVAILABLE', `${name} #${i}`)
      }
    }
  })

  test('malformed members of an active answer → 503', async () => {
    const p = build({})
    for (const claims of [{ exp: 'tomorrow' }, { sub: 42 }, { scope: ['a'] }, { aud: [1] }]) {
      assert.equal(
        (await run(p, bearer(activeToken(claims))))?.code,
        'GW_ERR_AUTH_UNAVAILABLE',
        JSON.stringify(claims),
      )
    }
  })

  test('an endpoint slower than timeoutMs → 503 within the deadline', async () => {
    const p = build({ timeoutMs: 200 })
    const t = activeToken({}, { delayMs: 2000 })
    const started = performance.now()
    const err = await run(p, bearer(t))
    const took = performance.now() - started
    assert.equal(err?.code, 'GW_ERR_AUTH_UNAVAILABLE')
    assert.ok(took < 200 + 500, `took ${took} ms`)
    assert.ok(took >= 190, `took ${took} ms`)
  })

  test('active with exp already past (clock disagreement) → 401, not allowed', async () => {
    const p = build({})
    const t = activeToken({ exp: NOW_S + 3600 })
    const saved = clock
    clock = (NOW_S + 7200) * 1000
    try {
      assert.equal((await run(p, bearer(t)))?.code, 'GW_ERR_AUTH_INVALID')
    } finally {
      clock = saved
    }
  })
})

describe('cache', () => {
  test('a cached token is admitted synchronously with no further call', async () => {
    const p = build({})
    const t = activeToken()
    assert.equal(await run(p, bearer(t)), undefined)
    for (let i = 0; i < 20; i++) {
      const ctx = bearer(t)
      assert.equal(p.onRequest?.(ctx), undefined, 'no promise on a hit')
      assert.ok(ctx.principal)
    }
    assert.equal(idp.callsFor(t), 1)
  })

  test('entries end at exp, and at maxTtlSec at the latest', async () => {
    const p = build({ cache: { maxTtlSec: 60 } })
    const t0 = clock
    const soon = activeToken({ exp: Math.floor(t0 / 1000) + 10 })
    const later = activeToken({ exp: Math.floor(t0 / 1000) + 3600 })
    await run(p, bearer(soon))
    await run(p, bearer(later))
    clock = t0 + 5000
    await run(p, bearer(soon))
    await run(p, bearer(later))
    assert.equal(idp.callsFor(soon), 1)
    assert.equal(idp.callsFor(later), 1)
    clock = t0 + 11000 // past soon's exp: asked again (the endpoint, on real time, says active,
    // but an exp in the past by the gateway's clock is refused)
    assert.equal((await run(p, bearer(soon)))?.code, 'GW_ERR_AUTH_INVALID')
    assert.equal(idp.callsFor(soon), 2, 're-introspected after exp')
    assert.equal(idp.callsFor(later), 1)
    clock = t0 + 61000 // past maxTtlSec
    await run(p, bearer(later))
    assert.equal(idp.callsFor(later), 2, 're-introspected after maxTtlSec')
    clock = t0
  })

  test('negative results are remembered briefly; a token that turns active is accepted after negativeTtlSec', async () => {
    const p = build({ cache: { negativeTtlSec: 2 } })
    const t = `late-${Math.random()}`
    const t0 = clock
    assert.equal((await run(p, bearer(t)))?.code, 'GW_ERR_AUTH_INVALID')
    assert.equal((await run(p, bearer(t)))?.code, 'GW_ERR_AUTH_INVALID')
    assert.equal(idp.callsFor(t), 1, 'a repeated junk token costs one call')
    idp.setToken(t, { sub: 'late', exp: NOW_S + 3600 })
    clock = t0 + 1999
    assert.equal((await run(p, bearer(t)))?.code, 'GW_ERR_AUTH_INVALID')
    clock = t0 + 2000
    assert.equal(await run(p, bearer(t)), undefined)
    assert.equal(idp.callsFor(t), 2)
    clock = t0
  })

  test('failures are not cached', async () => {
    const p = build({ timeoutMs: 100 })
    const t = activeToken({}, { delayMs: 400 })
    assert.equal((await run(p, bearer(t)))?.code, 'GW_ERR_AUTH_UNAVAILABLE')
    idp.setToken(t, { sub: 'x', exp: NOW_S + 3600 })
    assert.equal(await run(p, bearer(t)), undefined)
  })

  test('maxEntries bounds the cache (least recently used goes first)', async () => {
    const p = build({ cache: { maxEntries: 2 } })
    const [a, b, c] = [activeToken(), activeToken(), activeToken()]
    await run(p, bearer(a))
    await run(p, bearer(b))
    await run(p, bearer(a)) // a is now the most recent
    await run(p, bearer(c)) // evicts b
    await run(p, bearer(a))
    await run(p, bearer(b))
    assert.equal(idp.callsFor(a), 1)
    assert.equal(idp.callsFor(b), 2)
    assert.equal(idp.callsFor(c), 1)
  })

  test('junk tokens do not evict active ones', async () => {
    const p = build({ cache: { maxEntries: 5, maxNegativeEntries: 5 } })
    const t = activeToken()
    await run(p, bearer(t))
    for (let i = 0; i < 50; i++) await run(p, bearer(`junk-${i}-${Math.random()}`))
    await run(p, bearer(t))
    assert.equal(idp.callsFor(t), 1)
  })

  test('single flight: 50 concurrent requests with one new token make one call', async () => {
    const p = build({})
    const t = activeToken({}, { delayMs: 100 })
    const ctxs = Array.from({ length: 50 }, () => bearer(t))
    const results = await Promise.all(ctxs.map((ctx) => run(p, ctx)))
    assert.deepEqual(new Set(results), new Set([undefined]))
    assert.ok(ctxs.every((c) => c.principal?.id === ctxs[0]?.principal?.id))
    assert.equal(idp.callsFor(t), 1)
    const bad = `sf-junk-${Math.random()}`
    idp.setToken(bad, { active: false }, { delayMs: 100 })
    const denied = await Promise.all(Array.from({ length: 50 }, () => run(p, bearer(bad))))
    assert.ok(denied.every((e) => e?.code === 'GW_ERR_AUTH_INVALID'))
    assert.equal(idp.callsFor(bad), 1)
  })

  test('single flight shares a failure too, and the next request tries again', async () => {
    // A timeout long enough for all 20 requests to join the flight on a loaded machine.
    const p = build({ timeoutMs: 1000 })
    const t = activeToken({}, { delayMs: 3000 })
    const errs = await Promise.all(Array.from({ length: 20 }, () => run(p, bearer(t))))
    assert.ok(errs.every((e) => e?.code === 'GW_ERR_AUTH_UNAVAILABLE'))
    assert.equal(idp.calls.filter((c) => c.token === t).length, 1)
  })
})

test('routes given the same config object (a global entry) share one cache and pool', async () => {
  const config = Value.Default(OAuth2IntrospectionConfig, {
    endpoint: idp.endpoint,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
  }) as never
  const a = oauth2Introspection.create(config, { ...deps, routeName: 'a' })
  const b = oauth2Introspection.create(config, { ...deps, routeName: 'b' })
  const other = build({})
  const t = activeToken()
  assert.equal(await run(a, bearer(t)), undefined)
  assert.equal(await run(b, bearer(t)), undefined)
  assert.equal(idp.callsFor(t), 1, 'one cache for both routes')
  assert.equal(await run(other, bearer(t)), undefined)
  assert.equal(idp.callsFor(t), 2, 'another config object has its own cache')
  await a.close?.()
  await a.close?.() // idempotent: must not release b's share
  const u = activeToken()
  assert.equal(await run(b, bearer(u)), undefined, 'still open while a route holds it')
  await b.close?.()
  const c = oauth2Introspection.create(config, { ...deps, routeName: 'c' })
  assert.equal(await run(c, bearer(t)), undefined)
  assert.equal(idp.callsFor(t), 3, 'after the last close a new instance starts empty')
  await c.close?.()
})

test('close() stops the sweeper and the connections; secrets never reach the log', async () => {
  const p = oauth2Introspection.create(
    Value.Default(OAuth2IntrospectionConfig, {
      endpoint: idp.endpoint,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
    }) as never,
    deps,
  )
  const t = activeToken()
  assert.equal(await run(p, bearer(t)), undefined)
  await p.close?.()
  const log = logLines.join('')
  assert.ok(log.includes('token introspection failed'), 'failures were logged')
  assert.equal(log.includes(CLIENT_SECRET), false, 'the client secret is never logged')
  assert.equal(log.includes('wrong-secret-aa11'), false)
  for (const c of idp.calls) {
    if (c.token !== undefined && c.token.length > 8) {
      assert.equal(log.includes(c.token), false, 'no token is ever logged')
    }
  }
  const authCode = (e: unknown) => (e as GatewayError).code
  assert.equal(authCode(new GatewayError('GW_ERR_AUTH_UNAVAILABLE')), 'GW_ERR_AUTH_UNAVAILABLE')
})

describe('revocations', () => {
  test('the shared list, by the response jti or the token hash, is checked on cache hits too', async () => {
    const p = build({})
    const shared = new SharedRevocations(deps.store, { logger })
    try {
      const t = activeToken({ jti: 'intro-jti-1' })
      assert.equal(await run(p, bearer(t)), undefined)
      assert.equal(await run(p, bearer(t)), undefined)
      assert.equal(idp.callsFor(t), 1, 'cached')
      await deps.store.maps.set(REVOCATIONS_MAP, 'jti:intro-jti-1', '{}', 60_000)
      await shared.refresh()
      const refused = await run(p, bearer(t))
      assert.equal(refused?.code, 'GW_ERR_AUTH_INVALID')
      assert.match(String(refused?.headers?.['www-authenticate']), /error="invalid_token"/)
      await deps.store.maps.delete(REVOCATIONS_MAP, 'jti:intro-jti-1')
      await shared.refresh()
      assert.equal(await run(p, bearer(t)), undefined)

      // By hash: refused before any introspection call.
      const t2 = activeToken()
      await deps.store.maps.set(REVOCATIONS_MAP, `sha256:${tokenHash(t2)}`, '{}', 60_000)
      await shared.refresh()
      assert.equal((await run(p, bearer(t2)))?.code, 'GW_ERR_AUTH_INVALID')
      assert.equal(idp.callsFor(t2), 0)
    } finally {
      shared.close()
    }
  })

  test('a revocation file (jti and sha256 entries); revocation.shared: false ignores the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-intro-rev-'))
    try {
      const t1 = activeToken({ jti: 'filed-jti' })
      const t2 = activeToken()
      const file = join(dir, 'revoked.txt')
      writeFileSync(file, `jti:filed-jti\nsha256:${tokenHash(t2)}\n`)
      const p = build({ revocation: { file, shared: false } })
      assert.equal((await run(p, bearer(t1)))?.code, 'GW_ERR_AUTH_INVALID')
      assert.equal((await run(p, bearer(t2)))?.code, 'GW_ERR_AUTH_INVALID')
      const t3 = activeToken({ jti: 'in-store-only' })
      await deps.store.maps.set(REVOCATIONS_MAP, 'jti:in-store-only', '{}', 60_000)
      assert.equal(await run(p, bearer(t3)), undefined, 'not shared: the store is not consulted')
      assert.throws(
        () => build({ revocation: { file: join(dir, 'missing.txt') } }),
        /revocation\.file: ENOENT/,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('a store that never answers: 503 GW_ERR_STATE_UNAVAILABLE, or accepted with failOpen', async () => {
    const down = createMemoryStore({})
    await down.close()
    const mk = (revocation: object) => {
      const config = Value.Default(OAuth2IntrospectionConfig, {
        endpoint: idp.endpoint,
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        revocation,
      })
      const p = oauth2Introspection.create(config as never, { ...deps, store: down })
      built.push(p)
      return p
    }
    const t = activeToken()
    const err = await run(mk({}), bearer(t))
    assert.equal(err?.code, 'GW_ERR_STATE_UNAVAILABLE')
    assert.equal(err?.status, 503)
    assert.equal(idp.callsFor(t), 0, 'refused before the introspection call')
    assert.equal(await run(mk({ failOpen: true }), bearer(t)), undefined)
  })
})

describe('one token, one spelling (JWT access tokens through introspection)', () => {
  /** A JWS-shaped token (ES256, signed by a throwaway key): the endpoint knows it by this spelling. */
  async function jwsToken(): Promise<string> {
    const { privateKey } = await generateKeyPair('ES256')
    for (;;) {
      const t = await new SignJWT({ sub: 'jws-user', n: Math.random() })
        .setProtectedHeader({ alg: 'ES256' })
        .sign(privateKey)
      if (standardAlphabet(t) !== undefined) return t
    }
  }

  test('RFC 6750: one or more spaces after a case-insensitive Bearer; a tab is malformed', async () => {
    const p = build({})
    const t = activeToken()
    for (const v of [`Bearer  ${t}`, `bearer ${t}`, `BEARER   ${t}`]) {
      assert.equal(await run(p, testContext({ headers: { authorization: v } })), undefined, v.slice(0, 9))
    }
    const tab = await run(p, testContext({ headers: { authorization: `Bearer\t${t}` } }))
    assert.equal(tab?.code, 'GW_ERR_AUTH_INVALID')
  })

  test('a JWS-shaped token in a non-canonical spelling is refused before any call; its ECDSA twin is the same token', async () => {
    const p = build({})
    const t = await jwsToken()
    idp.setToken(t, { sub: 'jws-user', scope: 'read', exp: NOW_S + 3600 })
    for (const s of [padded(t), unusedBitsSet(t), standardAlphabet(t)]) {
      assert.ok(s !== undefined && s !== t)
      idp.setToken(s, { sub: 'jws-user', scope: 'read', exp: NOW_S + 3600 })
      assert.equal((await run(p, bearer(s)))?.code, 'GW_ERR_AUTH_INVALID')
      assert.equal(idp.callsFor(s), 0)
    }
    assert.equal(await run(p, bearer(t)), undefined)
    const twin = otherS(t)
    assert.equal(await run(p, bearer(twin)), undefined, 'a cache hit: the same token')
    assert.equal(idp.callsFor(twin), 0)
  })

  test('revoked by the hash of the token as issued: refused in every spelling; a numeric jti is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-intro-canon-'))
    try {
      const t = await jwsToken()
      idp.setToken(t, { sub: 'jws-user', scope: 'read', exp: NOW_S + 3600 })
      const file = join(dir, 'revoked.txt')
      writeFileSync(file, `sha256:${tokenHash(t)}\n`)
      const p = build({ revocation: { file, shared: false } })
      for (const s of [t, otherS(t), padded(t) as string, unusedBitsSet(t) as string]) {
        idp.setToken(s, { sub: 'jws-user', scope: 'read', exp: NOW_S + 3600 })
        assert.equal((await run(p, bearer(s)))?.code, 'GW_ERR_AUTH_INVALID')
      }
      const numeric = activeToken({ jti: 42 })
      assert.equal((await run(p, bearer(numeric)))?.code, 'GW_ERR_AUTH_INVALID')
      const stringJti = activeToken({ jti: 'fine' })
      assert.equal(await run(p, bearer(stringJti)), undefined)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
