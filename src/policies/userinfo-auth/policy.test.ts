/**
 * Unit tests of the userinfo-auth policy against a real userinfo endpoint on 127.0.0.1 (a
 * node:http server below that counts its calls), with a fake clock for the cache.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import pino from 'pino'
import { closedPort } from '../../../test/helpers/upstream.js'
import { memoryAudit } from '../../audit/event.js'
import { GatewayError } from '../../gateway/errors.js'
import type { PolicyInstance } from '../../gateway/pipeline/policy.js'
import { testContext, testDeps } from '../testing/context.js'
import { userinfoAuth } from './policy.js'
import { UserinfoAuthConfig } from './schema.js'

/** How the endpoint answers one token. */
interface Behaviour {
  status?: number
  body?: string
  contentType?: string
  delayMs?: number
}

let clock = Date.now()
const logLines: string[] = []
const logger = pino({ level: 'debug' }, { write: (s: string) => logLines.push(s) })
const audit = memoryAudit()
const deps = testDeps({ logger, now: () => clock, routeName: 'unit', audit })

/** token → record (200) or behaviour; unknown tokens get 401. */
const tokens = new Map<string, Record<string, unknown> | Behaviour>()
const calls = new Map<string, number>()
const seen: { method: string; authorization: string | undefined }[] = []
let server: Server
let endpoint = ''
/** Every token the tests used, for the log/error check. */
const used: string[] = []
const errors: GatewayError[] = []

function token(record?: Record<string, unknown> | Behaviour): string {
  const t = `sess-${randomBytes(18).toString('base64url')}`
  used.push(t)
  if (record !== undefined) tokens.set(t, record)
  return t
}

const callsOf = (t: string) => calls.get(t) ?? 0

before(async () => {
  server = createServer((req, res) => {
    const auth = req.headers.authorization
    seen.push({ method: req.method ?? '', authorization: auth })
    const t = auth?.startsWith('Bearer ') ? auth.slice(7) : ''
    calls.set(t, callsOf(t) + 1)
    const entry = tokens.get(t)
    const behaviour = (entry && 'status' in entry ? entry : undefined) as Behaviour | undefined
    const delay = (entry as Behaviour | undefined)?.delayMs ?? 0
    const answer = () => {
      if (entry === undefined) {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' })
        res.end('{"error":"unauthorized"}')
      } else if (behaviour !== undefined) {
        res.writeHead(behaviour.status ?? 200, {
          'content-type': behaviour.contentType ?? 'application/json',
        })
        res.end(behaviour.body ?? '')
      } else {
        const { delayMs: _d, ...rec } = entry as Record<string, unknown>
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
        res.end(JSON.stringify(rec))
      }
    }
    if (delay > 0) setTimeout(answer, delay)
    else answer()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v2/users/me`
})

const built: PolicyInstance[] = []
after(async () => {
  await Promise.all(built.map((p) => p.close?.()))
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
  // No token ever appears in a log line, an audit event or an error a client could see.
  const everything = [
    ...logLines,
    ...audit.events.map((e) => JSON.stringify(e)),
    ...errors.map((e) => `${e.message} ${JSON.stringify(e.detail ?? '')} ${JSON.stringify(e.headers ?? {})}`),
  ].join('\n')
  assert.ok(used.length > 20)
  for (const t of used) assert.equal(everything.includes(t), false, 'a token leaked into logs/errors')
})

function build(cfg: object = {}): PolicyInstance {
  const config = Value.Default(UserinfoAuthConfig, { endpoint, ...cfg })
  const p = userinfoAuth.create(config as never, deps)
  built.push(p)
  return p
}

const bearer = (t: string) => testContext({ headers: { authorization: `Bearer ${t}` } })

/** Runs onRequest; resolves the GatewayError it denied with, or undefined when allowed. */
async function run(p: PolicyInstance, ctx = testContext()): Promise<GatewayError | undefined> {
  try {
    await p.onRequest?.(ctx)
    return undefined
  } catch (err) {
    if (err instanceof GatewayError) {
      errors.push(err)
      return err
    }
    throw err
  }
}

const alice = () => ({ id: 7, username: 'alice', role: 'customer', passwordHash: 'scrypt$x' })

describe('config', () => {
  test('the endpoint must be https, or http to a loopback host, and is required', () => {
    const mk = (endpointCfg: unknown) => () =>
      userinfoAuth.create(Value.Default(UserinfoAuthConfig, { endpoint: endpointCfg }) as never, deps)
    assert.throws(mk('http://api.example/me'), /must use https/)
    assert.throws(mk(undefined), /`endpoint` is required/)
    assert.throws(mk('https://u:p@api.example/me'), /credentials/)
  })

  test('the schema accepts JSON Pointers only; claims never name a secret-like member', () => {
    const ok = (c: object) => Value.Check(UserinfoAuthConfig, Value.Default(UserinfoAuthConfig, c))
    assert.equal(ok({ endpoint, idPointer: '/id', rolesPointers: ['/role', '/a~1b/c~0'] }), true)
    assert.equal(ok({ endpoint, rolesPointers: '/role' }), true)
    assert.equal(ok({ endpoint, idPointer: 'id' }), false)
    assert.equal(ok({ endpoint, idPointer: '/a~2' }), false)
    assert.equal(ok({ endpoint, method: 'PUT' }), false)
    assert.throws(() => build({ claims: ['/passwordHash'] }), /named like a secret/)
    assert.throws(() => build({ claims: ['/user/API_TOKEN'] }), /named like a secret/)
    assert.throws(() => build({ claims: [''] }), /must name a member/)
  })
})

describe('valid, invalid and missing tokens', () => {
  test('a valid token: principal from the pointers, numbers as strings, secret-like members dropped', async () => {
    const p = build({ idPointer: '/id', rolesPointers: ['/role', '/groups'], scopesPointer: '/scope' })
    const t = token({
      ...alice(),
      groups: ['beta', 7],
      scope: 'read write',
      nested: { apiSecret: 's', ok: 1 },
    })
    const ctx = bearer(t)
    assert.equal(await run(p, ctx), undefined)
    const pr = ctx.principal
    assert.ok(pr)
    assert.equal(pr.id, '7')
    assert.equal(pr.type, 'user')
    assert.equal(pr.authMethod, 'userinfo')
    assert.deepEqual(pr.roles, ['customer', 'beta'])
    assert.deepEqual(pr.scopes, ['read', 'write'])
    assert.deepEqual(pr.claims, {
      id: 7,
      username: 'alice',
      role: 'customer',
      groups: ['beta', 7],
      scope: 'read write',
      nested: { ok: 1 },
    })
    assert.ok(Object.isFrozen(pr.claims))
    // The endpoint got the token as a bearer token, by GET.
    assert.deepEqual(seen.at(-1), { method: 'GET', authorization: `Bearer ${t}` })
    assert.equal(p.stripRequestHeaders, undefined, 'forwardToken defaults to true')
  })

  test('claims: only the listed pointers, at their place', async () => {
    const p = build({ idPointer: '/id', claims: ['/username', '/org/id', '/missing', '/__proto__/role'] })
    const rec = JSON.parse(
      '{"id":"u1","username":"bob","org":{"id":3,"name":"x"},"__proto__":{"role":"admin"}}',
    )
    const ctx = bearer(token(rec))
    assert.equal(await run(p, ctx), undefined)
    const claims = ctx.principal?.claims as Record<string, unknown>
    assert.equal(JSON.stringify(claims), '{"username":"bob","org":{"id":3},"__proto__":{"role":"admin"}}')
    assert.equal(Object.getPrototypeOf(claims), Object.prototype)
    assert.equal(claims.role, undefined, 'a __proto__ member never becomes an inherited claim')
    assert.equal(({} as Record<string, unknown>).role, undefined)
  })

  test('default claims: a __proto__ member in the answer stays a plain member', async () => {
    const p = build({ idPointer: '/id' })
    const rec = JSON.parse('{"id":"u2","__proto__":{"role":"admin","nested":{"__proto__":{"isAdmin":true}}}}')
    const ctx = bearer(token(rec))
    assert.equal(await run(p, ctx), undefined)
    const claims = ctx.principal?.claims as Record<string, unknown>
    assert.equal(Object.getPrototypeOf(claims), Object.prototype)
    assert.equal(claims.role, undefined)
    assert.ok(Object.hasOwn(claims, '__proto__'))
    const inner = Object.getOwnPropertyDescriptor(claims, '__proto__')?.value as Record<string, unknown>
    assert.equal((inner.nested as Record<string, unknown>).isAdmin, undefined)
  })

  test('method POST, a custom header carrying the bare token, forwardToken false', async () => {
    const p = build({ method: 'POST', tokenHeader: 'X-Session', forwardToken: false })
    const t = token({ sub: 'carol' })
    const ctx = testContext({ headers: { 'x-session': t } })
    assert.equal(await run(p, ctx), undefined)
    assert.equal(ctx.principal?.id, 'carol')
    assert.deepEqual(seen.at(-1), { method: 'POST', authorization: `Bearer ${t}` })
    assert.deepEqual(p.stripRequestHeaders, ['x-session'])
  })

  test('no token (or another scheme): 401 GW_ERR_AUTH_MISSING with a challenge, no endpoint call', async () => {
    const p = build({ realm: 'demo' })
    const before = seen.length
    for (const ctx of [testContext(), testContext({ headers: { authorization: 'Basic YTpi' } })]) {
      const err = await run(p, ctx)
      assert.equal(err?.code, 'GW_ERR_AUTH_MISSING')
      assert.equal(err?.status, 401)
      assert.equal(err?.headers?.['www-authenticate'], 'Bearer realm="demo"')
    }
    assert.equal(seen.length, before)
  })

  test('an unknown token: 401 GW_ERR_AUTH_INVALID, audited as auth.failure without the token', async () => {
    const p = build()
    const t = token()
    const err = await run(p, bearer(t))
    assert.equal(err?.code, 'GW_ERR_AUTH_INVALID')
    assert.match(String(err?.headers?.['www-authenticate']), /error="invalid_token"/)
    const ev = audit.events.at(-1)
    assert.equal(ev?.type, 'auth.failure')
    assert.equal(ev?.code, 'GW_ERR_AUTH_INVALID')
    assert.deepEqual(ev?.data, { method: 'userinfo-auth' })
    assert.match(String(ev?.reason), /refused the token \(401\)/)
  })

  test('403 from the endpoint is an invalid token too; malformed and oversized tokens never reach it', async () => {
    const p = build({ maxTokenBytes: 32 })
    assert.equal((await run(p, bearer(token({ status: 403, body: '{}' }))))?.code, 'GW_ERR_AUTH_INVALID')
    const before = seen.length
    const long = `x${'y'.repeat(40)}`
    used.push(long)
    const big = await run(p, bearer(long))
    assert.equal(big?.code, 'GW_ERR_AUTH_INVALID')
    assert.match(String(big?.detail), /longer than 32 bytes/)
    assert.equal(
      (await run(p, testContext({ headers: { authorization: 'Bearer ' } })))?.code,
      'GW_ERR_AUTH_INVALID',
    )
    assert.equal(
      (await run(p, testContext({ headers: { authorization: 'Bearer a\u00e9b' } })))?.code,
      'GW_ERR_AUTH_INVALID',
    )
    const twice = testContext({ headers: { authorization: 'Bearer abc' } })
    twice.req.rawHeaders.push('Authorization', 'Bearer def')
    assert.equal((await run(p, twice))?.code, 'GW_ERR_AUTH_INVALID')
    assert.equal(seen.length, before)
  })
})

describe('fail closed (503)', () => {
  const unavailable = async (p: PolicyInstance, t: string) => {
    const err = await run(p, bearer(t))
    assert.equal(err?.code, 'GW_ERR_AUTH_UNAVAILABLE')
    assert.equal(err?.status, 503)
    return err
  }

  test('endpoint down: 503 quickly', async () => {
    const dead = await closedPort()
    const p = build({ endpoint: `http://127.0.0.1:${dead}/me` })
    const t0 = performance.now()
    await unavailable(p, token({ sub: 'x' }))
    assert.ok(performance.now() - t0 < 1000)
    const ev = audit.events.at(-1)
    assert.equal(ev?.decision, 'error')
    assert.match(String(ev?.reason), /could not be reached \(ECONNREFUSED\)/)
  })

  test('slow endpoint: 503 at the deadline', async () => {
    const p = build({ timeoutMs: 150 })
    const t0 = performance.now()
    await unavailable(p, token({ sub: 'slow', delayMs: 3000 }))
    const took = performance.now() - t0
    assert.ok(took >= 140 && took < 1500, `took ${took} ms`)
  })

  test('oversized, garbage, HTML, non-object, 5xx, 3xx and id-less answers: 503, never cached', async () => {
    const p = build({ maxResponseBytes: 256, idPointer: '/id' })
    const cases: (Record<string, unknown> | Behaviour)[] = [
      { status: 200, body: JSON.stringify({ id: 1, pad: 'x'.repeat(300) }) },
      { status: 200, body: '{"id": 1,' },
      { status: 200, body: '<html><body>Login</body></html>', contentType: 'text/html' },
      { status: 200, body: '{"id":1}', contentType: 'text/plain' },
      { status: 200, body: '[{"id":1}]' },
      { status: 200, body: 'null' },
      { status: 500, body: '{"id":1}' },
      { status: 302, body: '' },
      { status: 200, body: '{"name":"no id"}' },
      { status: 200, body: '{"id":""}' },
      { status: 200, body: '{"id":{"x":1}}' },
      { status: 200, body: '{"id":true}' },
    ]
    for (const c of cases) {
      const t = token(c)
      await unavailable(p, t)
      await unavailable(p, t)
      assert.equal(callsOf(t), 2, `not cached: ${JSON.stringify(c).slice(0, 60)}`)
    }
  })

  test('a failure warning is rate-limited and names no token', async () => {
    const p = build({ timeoutMs: 100 })
    const before = logLines.length
    clock += 60000
    await unavailable(p, token({ sub: 's', delayMs: 1000 }))
    await unavailable(p, token({ sub: 's', delayMs: 1000 }))
    const warns = logLines.slice(before).filter((l) => l.includes('userinfo call failed'))
    assert.equal(warns.length, 1)
  })
})

describe('cache and single flight', () => {
  test('a valid token is cached (synchronous hit) until maxTtlSec', async () => {
    const p = build({ cache: { maxTtlSec: 30 } })
    const t = token({ sub: 'cached' })
    assert.equal(await run(p, bearer(t)), undefined)
    const ctx = bearer(t)
    const r = p.onRequest?.(ctx)
    assert.equal(r, undefined, 'a cache hit returns no promise')
    assert.equal(ctx.principal?.id, 'cached')
    assert.equal(callsOf(t), 1)
    clock += 29000
    assert.equal(await run(p, bearer(t)), undefined)
    assert.equal(callsOf(t), 1)
    clock += 2000
    assert.equal(await run(p, bearer(t)), undefined)
    assert.equal(callsOf(t), 2)
  })

  test('maxTtlSec 0: every request calls the endpoint', async () => {
    const p = build({ cache: { maxTtlSec: 0 } })
    const t = token({ sub: 'nocache' })
    for (let i = 0; i < 3; i++) assert.equal(await run(p, bearer(t)), undefined)
    assert.equal(callsOf(t), 3)
  })

  test('a refused token is cached negatively for negativeTtlSec', async () => {
    const p = build({ cache: { negativeTtlSec: 5 } })
    const t = token()
    for (let i = 0; i < 3; i++) assert.equal((await run(p, bearer(t)))?.code, 'GW_ERR_AUTH_INVALID')
    assert.equal(callsOf(t), 1)
    assert.match(String(audit.events.at(-1)?.reason), /cached/)
    // The session becomes valid (e.g. a login after a restart): accepted after the negative TTL.
    tokens.set(t, { sub: 'late' })
    clock += 5001
    assert.equal(await run(p, bearer(t)), undefined)
    assert.equal(callsOf(t), 2)
  })

  test('10 parallel requests with one uncached token share one endpoint call', async () => {
    const p = build()
    const t = token({ sub: 'flight', delayMs: 100 })
    const ctxs = Array.from({ length: 10 }, () => bearer(t))
    const results = await Promise.all(ctxs.map((c) => run(p, c)))
    assert.deepEqual(results, Array(10).fill(undefined))
    assert.equal(callsOf(t), 1)
    for (const c of ctxs) assert.equal(c.principal?.id, 'flight')
  })

  test('10 parallel requests with one unknown token: one call, ten 401s', async () => {
    const p = build()
    const t = token()
    tokens.set(t, { status: 401, body: '{}', delayMs: 100 })
    const results = await Promise.all(Array.from({ length: 10 }, () => run(p, bearer(t))))
    assert.deepEqual(
      results.map((e) => e?.code),
      Array(10).fill('GW_ERR_AUTH_INVALID'),
    )
    assert.equal(callsOf(t), 1)
  })

  test('the positive cache is a bounded LRU', async () => {
    const p = build({ cache: { maxEntries: 3 } })
    const ts = [1, 2, 3, 4].map((i) => token({ sub: `lru-${i}` }))
    for (const t of ts.slice(0, 3)) await run(p, bearer(t))
    await run(p, bearer(ts[0] as string)) // touch 1: 2 is now the least recently used
    await run(p, bearer(ts[3] as string)) // evicts 2
    assert.deepEqual(ts.map(callsOf), [1, 1, 1, 1])
    // Hits for 4, 1 and 3 (no call), then 2 was evicted: a new call.
    for (const i of [3, 0, 2, 1]) assert.equal(await run(p, bearer(ts[i] as string)), undefined)
    assert.deepEqual(ts.map(callsOf), [1, 2, 1, 1])
  })

  test('the negative cache is bounded too', async () => {
    const p = build({ cache: { maxNegativeEntries: 2 } })
    const ts = [token(), token(), token()]
    for (const t of ts) await run(p, bearer(t))
    for (const t of ts) await run(p, bearer(t))
    assert.deepEqual(ts.map(callsOf), [2, 2, 2]) // 3 junk tokens cycling through 2 slots: all evicted
  })

  test('routes sharing one config share one instance (one cache)', async () => {
    const config = Value.Default(UserinfoAuthConfig, { endpoint })
    const a = userinfoAuth.create(config as never, deps)
    const b = userinfoAuth.create(config as never, deps)
    built.push(a, b)
    const t = token({ sub: 'shared' })
    assert.equal(await run(a, bearer(t)), undefined)
    assert.equal(await run(b, bearer(t)), undefined)
    assert.equal(callsOf(t), 1)
  })
})

describe('RFC 6750 bearer syntax', () => {
  test('one or more spaces after a case-insensitive Bearer; the endpoint gets the bare token', async () => {
    const p = build({ idPointer: '/id' })
    const t = token(alice())
    for (const v of [`Bearer  ${t}`, `bearer ${t}`, `BEARER    ${t}`]) {
      assert.equal(await run(p, testContext({ headers: { authorization: v } })), undefined, v.slice(0, 9))
    }
    assert.equal(callsOf(t), 1, 'every spelling of the header is the same cached token')
    const tab = await run(p, testContext({ headers: { authorization: `Bearer\t${t}` } }))
    assert.equal(tab?.code, 'GW_ERR_AUTH_INVALID')
  })
})
