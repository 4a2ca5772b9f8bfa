import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import pino from 'pino'
import { memoryAudit } from '../audit/event.js'
import type { LogEntry } from '../gateway/pipeline/policy.js'
import type { GatewayError } from '../gateway/errors.js'
import { banPrincipal } from '../policies/ban/policy.js'
import { testContext, testDeps } from '../policies/testing/context.js'
import { createMemoryStore } from '../stores/memory/memory-store.js'
import { BANS_MAP, decodeBan, localBans } from './bans.js'
import { DetectConfig } from './config.js'
import { DetectEngine } from './engine.js'
import { LOGIN_STATE } from './identity.js'
import { OWNERSHIP_CHECKED } from './signals.js'

const cfg = (over: object = {}) => Value.Default(DetectConfig, over) as DetectConfig

function entry(
  status: number,
  o: { ip?: string; path?: string; headers?: Record<string, string> } = {},
): LogEntry {
  const ctx = testContext({ path: o.path ?? '/login', headers: o.headers })
  ;(ctx as { clientIp: string }).clientIp = o.ip ?? '10.0.0.1'
  return { ctx, status, durationMs: 1, decision: status < 400 ? 'allowed' : 'denied', errorCode: undefined }
}

test('engine: one alert per detector and subject per suppression window; then again', () => {
  const c = { t: 1_700_000_000_000 }
  const audit = memoryAudit()
  const e = new DetectEngine({
    config: cfg({ suppressionSec: 60, bruteForce: { failures: 3 }, credentialStuffing: { enabled: false } }),
    store: createMemoryStore({}),
    logger: pino({ level: 'silent' }),
    audit,
    now: () => c.t,
  })
  for (let i = 0; i < 50; i++) e.observe(entry(401))
  assert.equal(e.alerts.total, 1)
  const a = e.alerts.recent(10)[0]
  assert.equal(a?.detector, 'brute-force')
  assert.equal(a?.subject, 'ip:10.0.0.1')
  assert.equal(a?.action, 'alert')
  assert.equal(audit.events.filter((x) => x.type === 'alert').length, 1)
  c.t += 61_000
  for (let i = 0; i < 3; i++) e.observe(entry(401))
  assert.equal(e.alerts.total, 2, 'a new alert after the suppression window')
  e.close()
})

test('engine: action ban writes the ban (store + local at once); banned requests are not evidence', async () => {
  const c = { t: 1_700_000_000_000 }
  const store = createMemoryStore({})
  const e = new DetectEngine({
    config: cfg({ bruteForce: { failures: 5, action: 'ban', banSec: 120 } }),
    store,
    logger: pino({ level: 'silent' }),
    now: () => c.t,
  })
  for (let i = 0; i < 5; i++) e.observe(entry(401, { ip: '192.0.2.7' }))
  assert.ok((localBans(store).get('ip:192.0.2.7') ?? 0) > c.t, 'applied locally, synchronously')
  await new Promise((r) => setImmediate(r))
  const stored = await store.maps.get(BANS_MAP, 'ip:192.0.2.7')
  assert.ok(stored)
  const rec = decodeBan(stored.value, stored.expiresAt)
  assert.equal(rec.by, 'detector:brute-force')
  assert.equal(rec.until, c.t + 120_000)
  const banned = entry(403, { ip: '192.0.2.7' })
  banned.errorCode = 'GW_ERR_BANNED'
  for (let i = 0; i < 5000; i++) e.observe(banned)
  assert.equal(e.alerts.total, 1, 'refused requests of a banned source raise nothing more (not even a flood)')
  e.close()
  await store.close()
})

test('engine: failed attempts carry a hashed credential identity, never the credential', () => {
  const c = { t: 1_700_000_000_000 }
  const e = new DetectEngine({
    config: cfg({ credentialStuffing: { identities: 3 }, bruteForce: { failures: 1000 } }),
    store: createMemoryStore({}),
    logger: pino({ level: 'silent' }),
    now: () => c.t,
  })
  const secrets = ['Bearer secret-token-one', 'Bearer secret-token-two', 'Bearer secret-token-three']
  for (const s of secrets) e.observe(entry(401, { headers: { authorization: s } }))
  const alerts = e.alerts.recent(10)
  assert.equal(alerts.length, 1)
  assert.equal(alerts[0]?.detector, 'credential-stuffing')
  const text = JSON.stringify(alerts)
  for (const s of secrets) assert.equal(text.includes(s.slice(7)), false)
  e.close()
})

test('engine: a normal mix (5 users, 2000 requests, own objects, a few typos) raises nothing', () => {
  const c = { t: 1_700_000_000_000 }
  const e = new DetectEngine({
    config: cfg(),
    store: createMemoryStore({}),
    logger: pino({ level: 'silent' }),
    now: () => c.t,
  })
  for (let i = 0; i < 2000; i++) {
    c.t += 10
    const u = i % 5
    const ip = `10.0.0.${u + 1}`
    if (i % 400 === 0) e.observe(entry(401, { ip, headers: { authorization: `Bearer typo-${u}` } }))
    else e.observe(entry(i % 97 === 0 ? 404 : 200, { ip, path: `/api/items/${u * 100 + (i % 8)}` }))
  }
  assert.equal(e.alerts.total, 0)
  e.close()
})

test('engine: disabled detectors are not built; observe never throws', () => {
  const e = new DetectEngine({
    config: cfg({ flood: { enabled: false, requests: 1 } }),
    store: createMemoryStore({}),
    logger: pino({ level: 'silent' }),
  })
  e.observe(entry(200))
  e.observe({ ctx: undefined, status: 200 } as unknown as LogEntry) // hostile: logged, swallowed
  assert.equal(e.alerts.total, 0)
  e.close()
})

test('engine: action step-up stores `step-up:<principal>` for banSec; the principal then needs MFA (ban-principal)', async () => {
  const c = { t: Date.now() }
  const store = createMemoryStore({})
  const audit = memoryAudit()
  const e = new DetectEngine({
    config: cfg({ enumeration: { sequentialRun: 10, action: 'step-up', banSec: 300 } }),
    store,
    logger: pino({ level: 'silent' }),
    audit,
    now: () => c.t,
  })
  for (let id = 1; id <= 12; id++) {
    const en = entry(404, { path: `/api/orders/${id}` })
    en.ctx.principal = { id: 'mallory', type: 'user', scopes: [], roles: [], claims: {}, authMethod: 'jwt' }
    e.observe(en)
  }
  assert.equal(e.alerts.total, 1)
  assert.equal(e.alerts.recent(1)[0]?.action, 'step-up')
  await new Promise((r) => setImmediate(r))
  const stored = await store.maps.get(BANS_MAP, 'step-up:mallory')
  assert.ok(stored, 'stored as a step-up entry, not a ban')
  assert.equal(await store.maps.get(BANS_MAP, 'principal:mallory'), undefined)
  assert.equal(audit.events.find((x) => x.type === 'step-up')?.code, 'GW_ERR_STEP_UP_REQUIRED')

  const p = banPrincipal.create({}, testDeps({ store }))
  const ctx = testContext()
  ctx.principal = {
    id: 'mallory',
    type: 'user',
    scopes: [],
    roles: [],
    claims: { amr: ['pwd'] },
    authMethod: 'jwt',
  }
  assert.throws(
    () => p.onRequest?.(ctx),
    (err: GatewayError) =>
      err.code === 'GW_ERR_STEP_UP_REQUIRED' &&
      /insufficient_user_authentication/.test(err.headers?.['www-authenticate'] ?? ''),
  )
  ctx.principal = { ...ctx.principal, claims: { amr: ['pwd', 'mfa'] } }
  assert.equal(p.onRequest?.(ctx), undefined, 'a credential with MFA passes')
  ctx.principal = { ...ctx.principal, id: 'alice', claims: {} }
  assert.equal(p.onRequest?.(ctx), undefined, 'others are not affected')
  // An IP subject cannot step up: the same finding for an anonymous walker is an alert only.
  const e2 = new DetectEngine({
    config: cfg({ enumeration: { sequentialRun: 10, action: 'step-up' } }),
    store,
    logger: pino({ level: 'silent' }),
    now: () => c.t,
  })
  for (let id = 1; id <= 12; id++) e2.observe(entry(404, { ip: '192.0.2.9', path: `/api/orders/${id}` }))
  assert.equal(e2.alerts.recent(1)[0]?.action, 'alert')
  p.close?.()
  e.close()
  e2.close()
  await store.close()
})

test('engine: requests refused because the source is locked out count as failed attempts (issue 25, item 1)', () => {
  const e = new DetectEngine({
    config: cfg({ bruteForce: { failures: 20, action: 'ban' }, credentialStuffing: { enabled: false } }),
    store: createMemoryStore({}),
    logger: pino({ level: 'silent' }),
  })
  const attempt = {
    subjects: ['ip:10.0.0.1', 'acct:hash-of-alice'],
    account: 'hash-of-alice',
    failureStatuses: new Set([401]),
  }
  for (let i = 0; i < 30; i++) {
    const en = entry(i < 10 ? 401 : 429, { ip: '10.0.0.1' })
    en.ctx.state[LOGIN_STATE] = attempt
    if (i >= 10) en.errorCode = 'GW_ERR_LOCKED_OUT'
    e.observe(en)
  }
  const got = e.alerts
    .recent(10)
    .map((a) => `${a.detector} ${a.subject} ${a.action}`)
    .sort()
  assert.deepEqual(got, ['brute-force account:hash-of-alice alert', 'brute-force ip:10.0.0.1 ban'])
  e.close()
})

test("engine: the route's own failure statuses (brute-force-lockout failureStatuses) count; Basic auth is one identity per user name", () => {
  const e = new DetectEngine({
    config: cfg({ bruteForce: { failures: 5 }, credentialStuffing: { identities: 3 } }),
    store: createMemoryStore({}),
    logger: pino({ level: 'silent' }),
  })
  // 403 answers a wrong password on this login route.
  for (let i = 0; i < 5; i++) {
    const en = entry(403, { ip: '10.0.0.7' })
    en.ctx.state[LOGIN_STATE] = { subjects: [], account: undefined, failureStatuses: new Set([403]) }
    e.observe(en)
  }
  assert.deepEqual(
    e.alerts.recent(5).map((a) => a.subject),
    ['ip:10.0.0.7'],
  )
  // One user, many passwords, over Basic: one identity (brute force), not stuffing.
  const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`
  for (let i = 0; i < 5; i++)
    e.observe(
      entry(401, { ip: '10.0.0.8', headers: { authorization: basic(i % 2 ? ' Bob' : 'bob', `pw${i}`) } }),
    )
  const bob = e.alerts
    .recent(10)
    .filter((a) => a.subject.startsWith('account:') || a.subject === 'ip:10.0.0.8')
  assert.deepEqual(bob.map((a) => a.detector).sort(), ['brute-force', 'brute-force'])
  // Three user names from one IP: stuffing.
  for (const u of ['u1', 'u2', 'u3'])
    e.observe(entry(401, { ip: '10.0.0.9', headers: { authorization: basic(u, 'x') } }))
  assert.ok(
    e.alerts.recent(20).some((a) => a.detector === 'credential-stuffing' && a.subject === 'ip:10.0.0.9'),
  )
  e.close()
})

test('engine: objects the gateway knows are the caller’s never count; a walk of unknown owner alerts but never bans', () => {
  const c = { t: 1_700_000_000_000 }
  const store = createMemoryStore({})
  const e = new DetectEngine({
    config: cfg({ enumeration: { sequentialRun: 5, sequentialRunAllowed: 8, action: 'ban' } }),
    store,
    logger: pino({ level: 'silent' }),
    now: () => c.t,
  })
  const as = (principal: string, status: number, path: string, checked?: boolean) => {
    const en = entry(status, { path })
    en.ctx.principal = { id: principal, type: 'user', scopes: [], roles: [], claims: {}, authMethod: 'jwt' }
    if (checked !== undefined) en.ctx.state[OWNERSHIP_CHECKED] = checked
    c.t += 100
    e.observe(en)
  }
  for (let id = 1; id <= 50; id++) as('alice', 200, `/api/orders/${id}`, true)
  for (let i = 0; i < 50; i++) as('7', 200, '/api/users/7')
  assert.equal(e.alerts.total, 0, 'own objects in order: nothing')
  for (let id = 1; id <= 8; id++) as('bob', 200, `/api/docs/${id}`, false)
  assert.deepEqual(
    e.alerts.recent(5).map((a) => `${a.subject} ${a.action}`),
    ['principal:bob alert'],
    'unknown owner: an alert, no ban',
  )
  assert.equal(localBans(store).get('principal:bob'), undefined)
  e.close()
})

test('engine: report() raises an outside finding as an alert (never a ban), deduplicated', () => {
  const audit = memoryAudit()
  const e = new DetectEngine({
    config: cfg({}),
    store: createMemoryStore({}),
    logger: pino({ level: 'silent' }),
    audit,
  })
  const f = {
    detector: 'audit-truncation' as const,
    subject: 'audit:gw-1',
    summary: 'audit chain gw-1 truncated',
    data: { missing: 5 },
  }
  e.report(f)
  e.report(f)
  assert.equal(e.alerts.total, 1)
  assert.equal(e.alerts.recent(1)[0]?.action, 'alert')
  assert.equal(audit.events.filter((x) => x.type === 'alert').length, 1)
  e.close()
})
