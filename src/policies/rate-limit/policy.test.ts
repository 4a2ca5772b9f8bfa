import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import type { GatewayError } from '../../gateway/errors.js'
import type { Principal, RequestContext, ResponseHead } from '../../gateway/pipeline/context.js'
import type { PolicyInstance } from '../../gateway/pipeline/policy.js'
import { freePort } from '../../stores/redis/redis-server.js'
import { createMemoryStore } from '../../stores/memory/memory-store.js'
import { createRedisStore } from '../../stores/redis/redis-store.js'
import type { Store } from '../../stores/types.js'
import { testContext, testDeps } from '../testing/context.js'
import { compileKey, compilePathParam, keyValue } from './keys.js'
import { acquireInsurance } from './insurance.js'
import { ConcurrencyTable } from './load.js'
import { localShare, rateLimit } from './policy.js'
import { RateLimitConfig } from './schema.js'
import { ThrottleQueues } from './throttle.js'

function fakeClock(start = 1_700_000_000_000) {
  let t = start
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms
    },
  }
}

function setup(cfg: object, opts: { store?: Store; routeName?: string } = {}) {
  const clock = fakeClock()
  const store = opts.store ?? createMemoryStore({ now: clock.now })
  const config = Value.Default(RateLimitConfig, structuredClone(cfg))
  assert.ok(Value.Check(RateLimitConfig, config), JSON.stringify([...Value.Errors(RateLimitConfig, config)]))
  const p = rateLimit.create(
    config as never,
    testDeps({ store, now: clock.now, routeName: opts.routeName ?? 'r' }),
  )
  return { p, clock, store }
}

type Ctx = ReturnType<typeof testContext>

/** Runs the request phase; resolves the error code (undefined: admitted) and the response head. */
async function send(
  p: PolicyInstance,
  ctx: Ctx = testContext(),
): Promise<{ code: string | undefined; head: ResponseHead; err: GatewayError | undefined }> {
  let err: GatewayError | undefined
  try {
    await p.onRequest?.(ctx)
  } catch (e) {
    err = e as GatewayError
  }
  const head: ResponseHead = {
    status: err ? err.status : 200,
    headers: { ...(err?.headers ?? {}) },
    local: !!err,
  }
  p.onResponse?.(ctx, head)
  p.onLog?.({
    ctx,
    status: head.status,
    durationMs: 1,
    decision: err ? 'denied' : 'allowed',
    errorCode: err?.code,
  })
  return { code: err?.code, head, err }
}

function withIp(ip: string, r: Parameters<typeof testContext>[0] = {}): Ctx {
  const ctx = testContext(r)
  ;(ctx as { clientIp: string }).clientIp = ip
  return ctx
}

const principal = (
  id: string,
  claims: Record<string, unknown> = {},
  type: Principal['type'] = 'user',
): Principal => ({
  id,
  type,
  scopes: [],
  roles: [],
  claims,
  authMethod: 'test',
})

describe('rate-limit: gcra', () => {
  test('admits the burst, then 429 with Retry-After and RateLimit headers; refills at the rate', async () => {
    const { p, clock } = setup({ limits: [{ name: 'per-min', rate: 3, per: 'minute' }] })
    for (let i = 0; i < 3; i++) {
      const r = await send(p)
      assert.equal(r.code, undefined)
      assert.equal(r.head.headers['ratelimit-policy'], '"per-min";q=3;w=60')
      assert.equal(r.head.headers.ratelimit, `"per-min";r=${2 - i};t=${20 * (i + 1)}`)
    }
    const denied = await send(p)
    assert.equal(denied.code, 'GW_ERR_RATE_LIMITED')
    assert.equal(denied.err?.status, 429)
    assert.equal(denied.head.headers['retry-after'], '20')
    assert.equal(denied.head.headers.ratelimit, '"per-min";r=0;t=20')
    clock.advance(19_999)
    assert.equal((await send(p)).code, 'GW_ERR_RATE_LIMITED')
    clock.advance(1)
    assert.equal((await send(p)).code, undefined)
  })

  test('burst larger than the rate; per in milliseconds', async () => {
    const { p, clock } = setup({ limits: [{ rate: 10, per: 1000, burst: 20 }] })
    let ok = 0
    for (let i = 0; i < 30; i++) if ((await send(p)).code === undefined) ok++
    assert.equal(ok, 20)
    clock.advance(500)
    ok = 0
    for (let i = 0; i < 30; i++) if ((await send(p)).code === undefined) ok++
    assert.equal(ok, 5)
  })

  test('keys: separate buckets per IP', async () => {
    const { p } = setup({ limits: [{ rate: 1, per: 'hour' }] })
    assert.equal((await send(p, withIp('10.0.0.1'))).code, undefined)
    assert.equal((await send(p, withIp('10.0.0.1'))).code, 'GW_ERR_RATE_LIMITED')
    assert.equal((await send(p, withIp('10.0.0.2'))).code, undefined)
  })

  test('several limits: every one must pass; headers list each', async () => {
    const { p, clock } = setup({
      limits: [
        { name: 'burst', rate: 2, per: 'second' },
        { name: 'hourly', rate: 3, per: 'hour' },
      ],
    })
    const a = await send(p)
    assert.equal(a.head.headers['ratelimit-policy'], '"burst";q=2;w=1, "hourly";q=3;w=3600')
    assert.match(String(a.head.headers.ratelimit), /^"burst";r=1;t=1, "hourly";r=2;t=\d+$/)
    assert.equal((await send(p)).code, undefined)
    assert.equal((await send(p)).code, 'GW_ERR_RATE_LIMITED') // burst
    clock.advance(1000)
    assert.equal((await send(p)).code, 'GW_ERR_RATE_LIMITED') // hourly: the denied one above counted too
    clock.advance(3_600_000)
    assert.equal((await send(p)).code, undefined)
  })

  test('routes count apart unless scope is gateway', async () => {
    const store = createMemoryStore({})
    const cfg = { limits: [{ name: 'x', rate: 1, per: 'hour' }] }
    const a = setup(cfg, { store, routeName: 'a' }).p
    const b = setup(cfg, { store, routeName: 'b' }).p
    assert.equal((await send(a)).code, undefined)
    assert.equal((await send(b)).code, undefined)
    const g = { limits: [{ name: 'x', rate: 1, per: 'hour', scope: 'gateway' }] }
    const ga = setup(g, { store, routeName: 'a' }).p
    const gb = setup(g, { store, routeName: 'b' }).p
    assert.equal((await send(ga)).code, undefined)
    assert.equal((await send(gb)).code, 'GW_ERR_RATE_LIMITED')
  })

  test('cost larger than burst and throttle on sliding-window are config errors', () => {
    assert.throws(() => setup({ limits: [{ rate: 2, cost: 3 }] }), /cost 3/)
    assert.throws(
      () => setup({ limits: [{ rate: 2, algorithm: 'sliding-window', throttle: {} }] }),
      /throttle needs algorithm gcra/,
    )
    assert.throws(
      () =>
        setup({
          limits: [
            { name: 'a', rate: 2 },
            { name: 'a', rate: 3 },
          ],
        }),
      /two limits named a/,
    )
  })
})

describe('rate-limit: sliding window', () => {
  test('at most rate in a window, the previous window weighted by what is left of it', async () => {
    const { p, clock } = setup({ limits: [{ algorithm: 'sliding-window', rate: 10, per: 'minute' }] })
    // Start at a window boundary.
    clock.advance(60_000 - (clock.now() % 60_000))
    let ok = 0
    for (let i = 0; i < 15; i++) if ((await send(p)).code === undefined) ok++
    assert.equal(ok, 10)
    clock.advance(60_000) // next window, nothing of it elapsed: the previous counts fully
    const d = await send(p)
    assert.equal(d.code, 'GW_ERR_RATE_LIMITED')
    assert.equal(d.head.headers['retry-after'], '6') // 10 × (1 − x/60 s) + 0 + 1 ≤ 10 → x = 6 s
    clock.advance(30_000) // half elapsed: 5 of the previous count
    ok = 0
    for (let i = 0; i < 15; i++) if ((await send(p)).code === undefined) ok++
    assert.equal(ok, 5)
  })

  test('denied requests give their unit back', async () => {
    const { p, clock } = setup({ limits: [{ algorithm: 'sliding-window', rate: 3, per: 'hour' }] })
    clock.advance(3_600_000 - (clock.now() % 3_600_000))
    for (let i = 0; i < 3; i++) assert.equal((await send(p)).code, undefined)
    for (let i = 0; i < 50; i++) assert.equal((await send(p)).code, 'GW_ERR_RATE_LIMITED')
    clock.advance(3_600_000 * 2) // two windows later: all forgotten
    for (let i = 0; i < 3; i++) assert.equal((await send(p)).code, undefined)
  })
})

describe('rate-limit: keys', () => {
  test('principal, falling back to the IP for anonymous requests', async () => {
    const { p } = setup({ limits: [{ rate: 1, per: 'hour', key: ['principal'] }] })
    const alice = withIp('10.0.0.1')
    alice.principal = principal('alice')
    assert.equal((await send(p, alice)).code, undefined)
    const alice2 = withIp('10.0.0.9')
    alice2.principal = principal('alice')
    assert.equal((await send(p, alice2)).code, 'GW_ERR_RATE_LIMITED')
    assert.equal((await send(p, withIp('10.0.0.1'))).code, undefined) // anonymous: under its IP
    assert.equal((await send(p, withIp('10.0.0.1'))).code, 'GW_ERR_RATE_LIMITED')
    const ipNamed = withIp('10.0.0.2')
    ipNamed.principal = principal('10.0.0.1') // a principal named like an IP is not that IP's bucket
    assert.equal((await send(p, ipNamed)).code, undefined)
  })

  test('onMissingKey deny (400) and skip', async () => {
    const deny = setup({ limits: [{ rate: 1, key: [{ header: 'X-Tenant' }], onMissingKey: 'deny' }] }).p
    assert.equal((await send(deny)).code, 'GW_ERR_BAD_REQUEST')
    assert.equal((await send(deny, testContext({ headers: { 'x-tenant': 't1' } }))).code, undefined)
    const skip = setup({ limits: [{ rate: 1, per: 'hour', key: ['api-key'], onMissingKey: 'skip' }] }).p
    for (let i = 0; i < 5; i++) assert.equal((await send(skip)).code, undefined)
    const k = testContext()
    k.principal = principal('key-1', {}, 'api-key')
    assert.equal((await send(skip, k)).code, undefined)
    const k2 = testContext()
    k2.principal = principal('key-1', {}, 'api-key')
    assert.equal((await send(skip, k2)).code, 'GW_ERR_RATE_LIMITED')
  })

  test('combination of claim and header; methods filter', async () => {
    const { p } = setup({
      limits: [{ rate: 1, per: 'day', key: [{ claim: 'org.id' }, { header: 'x-op' }], methods: ['POST'] }],
    })
    const mk = (org: string, op: string, method = 'POST') => {
      const c = testContext({ method, headers: { 'x-op': op } })
      c.principal = principal('u', { org: { id: org } })
      return c
    }
    assert.equal((await send(p, mk('o1', 'a'))).code, undefined)
    assert.equal((await send(p, mk('o1', 'a'))).code, 'GW_ERR_RATE_LIMITED')
    assert.equal((await send(p, mk('o1', 'b'))).code, undefined)
    assert.equal((await send(p, mk('o2', 'a'))).code, undefined)
    assert.equal((await send(p, mk('o1', 'a', 'GET'))).code, undefined) // GET does not count
  })

  test('JSON body fields: hostile bodies count as a missing key, never as a crash', async () => {
    const { p } = setup({
      limits: [{ rate: 1, per: 'hour', key: [{ jsonField: 'a.b' }], onMissingKey: 'deny' }],
    })
    const withBody = (body: string | Buffer, ct = 'application/json') => {
      const c = testContext({ method: 'POST', headers: { 'content-type': ct } })
      c.readBody = () => Promise.resolve(Buffer.isBuffer(body) ? body : Buffer.from(body))
      return c
    }
    const hostile = [
      '',
      'null',
      '[]',
      '"a"',
      '{"a":null}',
      '{"a":[{"b":"x"}]}',
      '{"a":{"b":{"c":1}}}',
      '{"a":{"b":""}}',
      '{"a":{"b":"x"',
      `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
      `{"a":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`,
      '{"__proto__":{"b":"x"}}',
      '\uFEFF{"a":{"b":"x"}}',
      Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
      `{"a":{"b":"${'x'.repeat(2 * 1024 * 1024)}"}}`, // over the 1 MiB parse bound
    ]
    for (const body of hostile) {
      assert.equal((await send(p, withBody(body))).code, 'GW_ERR_BAD_REQUEST', String(body).slice(0, 40))
    }
    // Not JSON by content type: the body is not read at all.
    const plain = withBody('{"a":{"b":"x"}}', 'text/plain')
    plain.readBody = () => Promise.reject(new Error('must not be read'))
    assert.equal((await send(p, plain)).code, 'GW_ERR_BAD_REQUEST')
    // Numbers and booleans are values; the same value from JSON and from another part differ.
    assert.equal((await send(p, withBody('{"a":{"b":7}}'))).code, undefined)
    assert.equal((await send(p, withBody('{"a":{"b":7},"z":1}'))).code, 'GW_ERR_RATE_LIMITED')
    assert.equal((await send(p, withBody('{"a":{"b":"7"}}'))).code, 'GW_ERR_RATE_LIMITED') // "7" and 7 are one account
    assert.equal((await send(p, withBody('{"a":{"b":true}}'))).code, undefined)
  })

  test('key values cannot collide through separators; long values are hashed', () => {
    const key = compileKey([{ header: 'a' }, { header: 'b' }], false)
    const k1 = key(testContext({ headers: { a: 'x;b=1:y', b: 'z' } }))
    const k2 = key(testContext({ headers: { a: 'x', b: '1:y;b=z' } }))
    assert.ok('key' in k1 && 'key' in k2)
    assert.notEqual(k1.key, k2.key)
    const long = keyValue('x'.repeat(100_000))
    assert.ok(long.length < 60)
    assert.notEqual(long, keyValue(`${'x'.repeat(99_999)}y`))
  })

  test('path parameters: hostile paths', () => {
    const m = compilePathParam('/api/v2/users/{id}/orders', 'id')
    assert.equal(m('/api/v2/users/42/orders'), '42')
    assert.equal(m('/api/v2/users/42/orders/7'), '42')
    assert.equal(m('/api/v2/users//orders'), undefined)
    assert.equal(m('/api/v2/users/42'), undefined)
    assert.equal(m('/api/v2/admins/42/orders'), undefined)
    assert.equal(m(''), undefined)
    assert.equal(m('/'.repeat(10_000)), undefined)
    assert.throws(() => compilePathParam('/users/{uid}', 'id'), /no \{id\}/)
  })

  test('query values: encoded names; repeats, other spellings and bad percent-encoding refused', () => {
    const key = compileKey([{ query: 'account id' }], false)
    const v = (q: string) => {
      const r = key(testContext({ query: q }))
      return 'key' in r ? r.key : undefined
    }
    assert.equal(v('account%20id=a'), `q:account id=${keyValue('a', true)};`)
    // A key a client could spell twice would let it pick its own bucket: refused (400).
    assert.throws(() => v('account%20id=a&account+id=b'), { code: 'GW_ERR_PARAMETER_POLLUTION' })
    assert.throws(() => v('account+id=a&ACCOUNT+ID=b'), { code: 'GW_ERR_PARAMETER_POLLUTION' })
    assert.throws(() => v('account+id=%E0%A4%A'), { code: 'GW_ERR_BAD_REQUEST' })
    assert.notEqual(v('account+id=b'), v('account+id=a'))
    // Request data is hashed in keys: a token in a header never becomes part of a store key.
    const auth = compileKey(
      [{ header: 'authorization' }],
      false,
    )(testContext({ headers: { authorization: 'Bearer s3cret' } }))
    assert.ok('key' in auth && !auth.key.includes('s3cret'))
    assert.equal(v('other=1'), undefined)
    assert.equal(v('account+id='), undefined)
  })
})

describe('rate-limit: throttle queues', () => {
  test('releases in order at the reserved times, one timer per key', async () => {
    // The three waits are reserved at one instant (a stall between the calls on a loaded machine
    // would otherwise move their release times), then time runs.
    let frozen: number | undefined = performance.now()
    const q = new ThrottleQueues(100, () => frozen ?? performance.now())
    const order: number[] = []
    const start = performance.now()
    const waits = [30, 10, 20].map((d, i) => q.wait('k', d).promise.then(() => order.push(i)))
    frozen = undefined
    assert.equal(q.size, 3)
    assert.equal(q.keys, 1)
    await Promise.all(waits)
    assert.deepEqual(order, [1, 2, 0])
    assert.ok(performance.now() - start >= 29)
    assert.equal(q.size, 0)
    assert.equal(q.keys, 0)
  })

  test('a cancelled waiter is dropped; the bound is enforced; close rejects the rest', async () => {
    const q = new ThrottleQueues(2)
    const a = q.wait('k', 10_000)
    const b = q.wait('k', 10_000)
    assert.equal(q.hasRoom(), false)
    a.cancel(new Error('gone'))
    await assert.rejects(a.promise, /gone/)
    assert.equal(q.size, 1)
    q.close(new Error('closed'))
    await assert.rejects(b.promise, /closed/)
    assert.equal(q.keys, 0)
  })

  test('the policy delays the excess instead of rejecting it, up to maxWaitMs', async () => {
    const clock = fakeClock()
    const store = createMemoryStore({ now: clock.now })
    const config = Value.Default(RateLimitConfig, {
      limits: [{ rate: 10, per: 'second', burst: 1, throttle: { maxQueue: 3, maxWaitMs: 1000 } }],
    })
    const p = rateLimit.create(config as never, testDeps({ store, now: clock.now }))
    const ctxs = Array.from({ length: 6 }, () => testContext())
    const results = ctxs.map((c) =>
      (async () => p.onRequest?.(c))().then(
        () => 'ok',
        (e: GatewayError) => e.code,
      ),
    )
    // The first is admitted, three wait (100, 200, 300 ms of the fake clock), two are refused.
    await new Promise((r) => setImmediate(r))
    const state = (c: RequestContext) => (c.state['rate-limit'] as { wait?: unknown }).wait
    assert.equal(ctxs.filter((c) => state(c) !== undefined).length, 3)
    // Abort one waiter through the log phase (the client went away).
    p.onLog?.({
      ctx: ctxs[3] as RequestContext,
      status: 499,
      durationMs: 1,
      decision: 'error',
      errorCode: undefined,
    })
    p.close?.()
    assert.deepEqual(await Promise.all(results), [
      'ok',
      'GW_ERR_SHUTTING_DOWN',
      'GW_ERR_SHUTTING_DOWN',
      'GW_ERR_RATE_LIMITED',
      'GW_ERR_RATE_LIMITED',
      'GW_ERR_RATE_LIMITED',
    ])
  })
})

describe('rate-limit: concurrency caps', () => {
  test('concurrency table: max per key, release, bounded keys', () => {
    const t = new ConcurrencyTable(2, 2)
    assert.equal(t.acquire('a'), 'ok')
    assert.equal(t.acquire('a'), 'ok')
    assert.equal(t.acquire('a'), 'full')
    assert.equal(t.acquire('b'), 'ok')
    assert.equal(t.acquire('c'), 'table-full')
    t.release('a')
    t.release('a')
    t.release('a') // extra releases are harmless
    assert.equal(t.inFlight('a'), 0)
    assert.equal(t.keys, 1)
    assert.equal(t.acquire('c'), 'ok')
  })

  test('the policy caps requests in flight per key and releases in the log phase', async () => {
    const { p } = setup({ concurrency: { max: 2, key: ['ip'] } })
    const a = testContext()
    const b = testContext()
    await p.onRequest?.(a)
    await p.onRequest?.(b)
    await assert.rejects((async () => p.onRequest?.(testContext()))(), {
      code: 'GW_ERR_CONCURRENCY_LIMITED',
    })
    assert.equal((await send(p, withIp('10.9.9.9'))).code, undefined) // another key
    p.onLog?.({ ctx: a, status: 200, durationMs: 1, decision: 'allowed', errorCode: undefined })
    p.onLog?.({ ctx: a, status: 200, durationMs: 1, decision: 'allowed', errorCode: undefined }) // once only
    await p.onRequest?.(testContext())
    await assert.rejects((async () => p.onRequest?.(testContext()))(), {
      code: 'GW_ERR_CONCURRENCY_LIMITED',
    })
  })
})

describe('rate-limit: store outage insurance', () => {
  test('instances: auto counts the gateways sharing the store from heartbeats', async () => {
    const store = createMemoryStore({})
    const logger = testDeps().logger
    // Two "processes": the same store seen through two WeakMap keys (proxies of it).
    const one = acquireInsurance(store, logger, 250, true)
    const other = acquireInsurance(new Proxy(store, {}), logger, 250, true)
    const deadline = Date.now() + 2000
    while (other.instances() < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10))
    }
    // Each beats at once when acquired: the second one sees both members of the set.
    assert.equal(other.instances(), 2)
    assert.ok(one.instances() >= 1 && one.instances() <= 2)
    one.release()
    other.release()
  })

  test('local share of a limit', () => {
    const g = { algorithm: 'gcra' as const, rate: 100, perMs: 60_000, burst: 30, cost: 1, queue: 9 }
    assert.deepEqual(localShare(g, 1), g)
    assert.deepEqual(localShare(g, 3), { ...g, rate: 100 / 3, burst: 10, queue: 3 })
    const w = { algorithm: 'sliding-window' as const, rate: 5, perMs: 1000, burst: 5, cost: 2, queue: 0 }
    assert.deepEqual(localShare(w, 10), { ...w, rate: 2, burst: 2 })
  })

  test('an unreachable Redis: failOpen limits locally with this instance’s share; failOpen false: 503', async () => {
    const port = await freePort() // nothing listens there
    const store = createRedisStore({ host: '127.0.0.1', port, commandTimeoutMs: 100, connectTimeoutMs: 100 })
    try {
      const open = setup({ instances: 2, limits: [{ rate: 4, per: 'hour' }] }, { store }).p
      const started = Date.now()
      const codes: (string | undefined)[] = []
      for (let i = 0; i < 4; i++) codes.push((await send(open)).code)
      assert.ok(Date.now() - started < 1000, 'no request waits for the dead store beyond its timeout')
      assert.deepEqual(codes, [undefined, undefined, 'GW_ERR_RATE_LIMITED', 'GW_ERR_RATE_LIMITED'])
      const closed = setup({ limits: [{ rate: 4, per: 'hour', failOpen: false }] }, { store }).p
      assert.equal((await send(closed)).code, 'GW_ERR_STATE_UNAVAILABLE')
      const unlimited = setup({ localFallback: false, limits: [{ rate: 1, per: 'hour' }] }, { store }).p
      for (let i = 0; i < 3; i++) assert.equal((await send(unlimited)).code, undefined)
      for (const p of [open, closed, unlimited]) await p.close?.()
    } finally {
      await store.close()
    }
  })
})

describe('rate-limit: in-process decisions', () => {
  test('GCRA on the memory store decides without a promise; sliding window and a refused request are still right', async () => {
    const { p } = setup({ limits: [{ name: 'per-ip', rate: 2, per: 'minute', key: ['ip'] }] })
    assert.equal(p.onRequest?.(testContext()), undefined, 'an admitted request goes on synchronously')
    assert.equal(p.onRequest?.(testContext()), undefined)
    assert.throws(() => p.onRequest?.(testContext()), { code: 'GW_ERR_RATE_LIMITED' })
    const sliding = setup({
      limits: [{ name: 'per-ip', rate: 1, per: 'minute', key: ['ip'], algorithm: 'sliding-window' }],
    }).p
    const r = sliding.onRequest?.(testContext())
    assert.ok(r instanceof Promise, 'the sliding window takes the store promise path')
    await r
    await assert.rejects((async () => sliding.onRequest?.(testContext()))(), { code: 'GW_ERR_RATE_LIMITED' })
  })
})
