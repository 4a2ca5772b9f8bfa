import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { type AuditEvent, memoryAudit } from '../../audit/event.js'
import { accountHash, LOGIN_STATE, type LoginAttempt } from '../../detect/identity.js'
import type { GatewayError } from '../../gateway/errors.js'
import type { RequestContext, ResponseHead } from '../../gateway/pipeline/context.js'
import type { PolicyInstance } from '../../gateway/pipeline/policy.js'
import { createMemoryStore } from '../../stores/memory/memory-store.js'
import { testContext, testDeps } from '../testing/context.js'
import { bruteForceLockout } from './policy.js'
import { BruteForceLockoutConfig } from './schema.js'

function setup(over: object) {
  const c = { t: 1_700_000_000_000 }
  const store = createMemoryStore({ now: () => c.t })
  const audit = memoryAudit()
  const config = Value.Default(BruteForceLockoutConfig, {
    maxFailures: 3,
    windowSec: 60,
    lockoutSec: 30,
    ...over,
  })
  const p = bruteForceLockout.create(
    config as Parameters<typeof bruteForceLockout.create>[0],
    testDeps({ store, now: () => c.t, audit }),
  ) as PolicyInstance
  return { c, store, audit, p }
}

interface Attempt {
  ip?: string
  json?: unknown
  form?: string
  headers?: Record<string, string>
}

function ctxOf(a: Attempt): RequestContext & { upstream: Map<string, string | undefined> } {
  const body =
    a.json !== undefined
      ? Buffer.from(JSON.stringify(a.json))
      : a.form !== undefined
        ? Buffer.from(a.form)
        : undefined
  const ctx = testContext({
    method: 'POST',
    path: '/login',
    headers: {
      ...(a.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(a.form !== undefined ? { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' } : {}),
      ...a.headers,
    },
  })
  ;(ctx as { clientIp: string }).clientIp = a.ip ?? '10.0.0.1'
  const upstream = new Map<string, string | undefined>()
  ctx.readBody = async () => body ?? Buffer.alloc(0)
  ctx.setUpstreamHeader = (n, v) => upstream.set(n, v)
  return Object.assign(ctx, { upstream })
}

const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r))
}

/** One login attempt: the request phase, then (when it went through) the answer `status` and the log phase. */
async function attempt(p: PolicyInstance, a: Attempt, status = 401) {
  const ctx = ctxOf(a)
  try {
    await p.onRequest?.(ctx)
  } catch (err) {
    const e = err as GatewayError
    p.onLog?.({ ctx, status: e.status, durationMs: 1, decision: 'denied', errorCode: e.code })
    await settle()
    return { status: e.status, retryAfter: e.headers?.['retry-after'], ctx }
  }
  p.onLog?.({ ctx, status, durationMs: 1, decision: 'allowed', errorCode: undefined })
  await settle()
  return { status, retryAfter: undefined, ctx }
}

test('account names are normalized as the application does: variants are one account (issue 25, item 3)', async () => {
  const { p } = setup({ by: ['credential'], credential: { jsonField: 'username' } })
  const statuses: number[] = []
  for (const [i, name] of ['alice ', '\talice', 'ALICE', '\uff41lice', ' Alice\n'].entries())
    statuses.push((await attempt(p, { ip: `10.0.1.${i}`, json: { username: name, password: 'x' } })).status)
  assert.deepEqual(statuses, [401, 401, 401, 429, 429])
  // Normalization off: whitespace variants are other accounts (as an application that keeps them would have it).
  const raw = setup({
    by: ['credential'],
    credential: { jsonField: 'username', normalize: { trim: false, caseFold: false, unicode: 'none' } },
  })
  const s2: number[] = []
  for (const name of ['alice ', '\talice', 'ALICE', 'alice'])
    s2.push((await attempt(raw.p, { json: { username: name, password: 'x' } })).status)
  assert.deepEqual(s2, [401, 401, 401, 401])
})

test('the account is read from JSON, a form or Basic auth, never the password; the state names its hash', async () => {
  const { p } = setup({ credential: { jsonField: 'user', formField: 'username', basicAuth: true } })
  const want = accountHash('bob')
  const basic = `Basic ${Buffer.from('Bob:hunter2').toString('base64')}`
  for (const a of [
    { json: { user: ' BOB', password: 'hunter2' } },
    { form: 'grant_type=password&username=bob&password=hunter2' },
    { headers: { authorization: basic } },
  ] as Attempt[]) {
    const r = await attempt(p, a, 200)
    const s = r.ctx.state[LOGIN_STATE] as LoginAttempt
    assert.equal(s.account, want, JSON.stringify(a))
    assert.ok(s.subjects.includes(`acct:${want}`))
    assert.equal(JSON.stringify(s).includes('hunter2'), false)
    assert.ok(s.failureStatuses.has(401))
  }
  // Hostile or absent names count per IP only.
  for (const a of [
    { json: { user: 'x'.repeat(300) } },
    { json: { user: 42 } },
    { json: '[' },
    { form: 'username=&password=x' },
    { headers: { authorization: 'Basic !!' } },
    { json: { user: '   ' } },
  ] as Attempt[]) {
    const s = (await attempt(p, a, 200)).ctx.state[LOGIN_STATE] as LoginAttempt
    assert.equal(s.account, undefined, JSON.stringify(a))
    assert.deepEqual(s.subjects, ['ip:10.0.0.1'])
  }
})

test('by ip-credential: a guesser locks out only itself from that account; the real user from elsewhere is not refused (issue 25, item 2)', async () => {
  const { p } = setup({ by: ['ip-credential'], credential: { jsonField: 'username' } })
  const s: number[] = []
  for (let i = 0; i < 5; i++)
    s.push((await attempt(p, { ip: '10.6.6.6', json: { username: 'carol' } })).status)
  assert.deepEqual(s, [401, 401, 401, 429, 429])
  assert.equal(
    (await attempt(p, { ip: '10.6.6.6', json: { username: 'dave' } })).status,
    401,
    'other accounts',
  )
  assert.equal(
    (await attempt(p, { ip: '10.1.1.1', json: { username: 'carol' } }, 200)).status,
    200,
    'the real user',
  )
})

test('accountAction lock refuses the real user everywhere (the documented risk); step-up asks the application for a second factor instead (issue 25, item 2)', async () => {
  const lock = setup({ by: ['ip', 'credential'], credential: { jsonField: 'username' } })
  for (let i = 0; i < 3; i++) await attempt(lock.p, { ip: `10.2.0.${i}`, json: { username: 'carol' } })
  assert.equal((await attempt(lock.p, { ip: '10.9.9.9', json: { username: 'carol' } }, 200)).status, 429)

  const up = setup({
    by: ['ip', 'credential'],
    accountAction: 'step-up',
    credential: { jsonField: 'username' },
  })
  for (let i = 0; i < 3; i++) await attempt(up.p, { ip: `10.2.0.${i}`, json: { username: 'carol' } })
  const real = await attempt(up.p, { ip: '10.9.9.9', json: { username: 'carol' } }, 200)
  assert.equal(real.status, 200, 'not refused')
  assert.equal(real.ctx.upstream.get('x-portcullis-step-up'), 'required')
  const other = await attempt(up.p, { ip: '10.9.9.9', json: { username: 'dave' } }, 200)
  assert.equal(other.ctx.upstream.get('x-portcullis-step-up'), undefined)
  assert.deepEqual(up.p.stripRequestHeaders, ['x-portcullis-step-up'], 'a client cannot send it')
  const ev = (up.audit as ReturnType<typeof memoryAudit>).events.find(
    (e: AuditEvent) => e.type === 'lockout' && String(e.data?.subject).startsWith('acct:'),
  )
  assert.equal(ev?.data?.kind, 'step-up')
  assert.equal(ev?.decision, 'allow')
  // An IP past the threshold is still locked.
  const ipLock = setup({
    by: ['ip', 'credential'],
    accountAction: 'step-up',
    credential: { jsonField: 'username' },
  })
  for (let i = 0; i < 3; i++) await attempt(ipLock.p, { ip: '10.3.3.3', json: { username: `u${i}` } })
  assert.equal((await attempt(ipLock.p, { ip: '10.3.3.3', json: { username: 'z' } })).status, 429)
})

test('progressive delays: past afterFailures each failure makes the source wait, doubling, before the lockout', async () => {
  const { c, p } = setup({ by: ['ip'], maxFailures: 10, delay: { afterFailures: 2, baseSec: 1, maxSec: 4 } })
  const waits: (string | undefined)[] = []
  for (let i = 0; i < 6; i++) {
    let r = await attempt(p, {})
    // Wait out any delay, as a patient client does.
    while (r.status === 429) {
      waits.push(r.retryAfter)
      c.t += Number(r.retryAfter) * 1000
      r = await attempt(p, {})
    }
  }
  assert.deepEqual(waits, ['1', '2', '4', '4'], 'after the 2nd, 3rd, 4th and 5th failures (4: maxSec)')
})

test('failures are counted over a sliding window; after a lockout the next failure within the window locks again, longer', async () => {
  const { c, p } = setup({ by: ['ip'], maxFailures: 3, windowSec: 60, lockoutSec: 10 })
  await attempt(p, {})
  c.t += 58_000
  await attempt(p, {})
  c.t += 1_000
  assert.equal((await attempt(p, {})).status, 401, 'the third failure within 60 s …')
  const locked = await attempt(p, {})
  assert.equal(locked.status, 429, '… locks, whatever window boundary lies between them')
  assert.equal(locked.retryAfter, '10')
  c.t += 11_000
  assert.equal((await attempt(p, {})).status, 401)
  const again = await attempt(p, {})
  assert.equal(again.status, 429)
  assert.equal(again.retryAfter, '20', 'the second lockout is twice as long')
  c.t += 200_000
  for (let i = 0; i < 2; i++) assert.equal((await attempt(p, {})).status, 401)
})

test('config: an account subject without a place to read the account is refused', () => {
  assert.throws(
    () => setup({ by: ['credential'] }),
    (err: Error) => err.name === 'ConfigError' && /credential/.test(err.message),
  )
})

const buildUniform = (cfg: object) =>
  bruteForceLockout.create(Value.Default(BruteForceLockoutConfig, cfg) as never, testDeps())

test('without uniformFailures the route is not buffered (no body hook)', () => {
  assert.equal(buildUniform({}).onResponseBody, undefined)
})

test('uniformFailures: a 404 "no such user" and a 401 "wrong password" become the same answer', async () => {
  const p = buildUniform({ uniformFailures: { minDurationMs: 0 } })
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
  const p = buildUniform({ uniformFailures: { minDurationMs: 0 } })
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
  const p = buildUniform({ uniformFailures: { minDurationMs: 120 } })
  const ctx = Object.assign(testContext(), { startTime: performance.now() })
  await p.onResponseBody?.(ctx, { status: 401, local: false, headers: {} }, Buffer.from('x'))
  assert.ok(performance.now() - ctx.startTime >= 119)
})
