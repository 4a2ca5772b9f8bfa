/**
 * Detector counts shared through the store: two engines on ONE memory store stand in for two
 * gateways on one Redis (the flag is injected). Fake clocks; `idle()` waits for the store chains.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import pino from 'pino'
import type { LogEntry } from '../gateway/pipeline/policy.js'
import { testContext } from '../policies/testing/context.js'
import { createMemoryStore } from '../stores/memory/memory-store.js'
import { type Store, StoreError } from '../stores/types.js'
import { BANS_MAP } from './bans.js'
import { DetectConfig } from './config.js'
import { DetectEngine } from './engine.js'

const cfg = (over: object = {}) => Value.Default(DetectConfig, over) as DetectConfig
const T0 = 1_700_000_000_000

function entry(
  status: number,
  o: {
    ip?: string
    path?: string
    query?: string
    principal?: string
    headers?: Record<string, string>
  } = {},
): LogEntry {
  const ctx = testContext({ path: o.path ?? '/login', query: o.query, headers: o.headers })
  ;(ctx as { clientIp: string }).clientIp = o.ip ?? '10.0.0.1'
  if (o.principal !== undefined)
    ctx.principal = { id: o.principal, type: 'user', scopes: [], roles: [], claims: {}, authMethod: 'jwt' }
  return { ctx, status, durationMs: 1, decision: status < 400 ? 'allowed' : 'denied', errorCode: undefined }
}

function pair(config: DetectConfig, shared = true, store?: Store) {
  const c = { t: T0 }
  const s = store ?? createMemoryStore({ now: () => c.t })
  const mk = () =>
    new DetectEngine({ config, store: s, logger: pino({ level: 'silent' }), now: () => c.t, shared })
  return { c, store: s, a: mk(), b: mk() }
}

const only = (over: object) =>
  cfg({
    bruteForce: { enabled: false },
    credentialStuffing: { enabled: false },
    enumeration: { enabled: false },
    flood: { enabled: false },
    globalSpike: { enabled: false },
    scraping: { enabled: false },
    errorSpike: { enabled: false },
    ...over,
  })

test('shared brute-force: 25 failures on each of two engines, threshold 40 → exactly one alert in total', async () => {
  const config = only({ bruteForce: { failures: 40 } })
  const { c, store, a, b } = pair(config)
  for (let i = 0; i < 25; i++) {
    c.t += 10
    a.observe(entry(401, { ip: '192.0.2.1' }))
    b.observe(entry(401, { ip: '192.0.2.1' }))
  }
  await Promise.all([a.idle(), b.idle()])
  assert.equal(a.alerts.total + b.alerts.total, 1)
  const alert = [...a.alerts.recent(5), ...b.alerts.recent(5)][0]
  assert.equal(alert?.detector, 'brute-force')
  assert.equal(alert?.subject, 'ip:192.0.2.1')
  // All adds of a batch can land before the first size is read: the count reported is at least 40.
  assert.ok(Number(alert?.data.failures) >= 40, String(alert?.data.failures))
  // More failures within the suppression window raise nothing more, on either engine.
  for (let i = 0; i < 20; i++) a.observe(entry(401, { ip: '192.0.2.1' }))
  await a.idle()
  assert.equal(a.alerts.total + b.alerts.total, 1)
  a.close()
  b.close()
  await store.close()

  // The same traffic without sharing: each engine's 25 stay under 40.
  const local = pair(config, false)
  for (let i = 0; i < 25; i++) {
    local.a.observe(entry(401, { ip: '192.0.2.1' }))
    local.b.observe(entry(401, { ip: '192.0.2.1' }))
  }
  await Promise.all([local.a.idle(), local.b.idle()])
  assert.equal(local.a.alerts.total + local.b.alerts.total, 0)
  assert.equal(local.a.shared, undefined)
  await local.store.close()
})

test('shared credential-stuffing, enumeration and scraping cross on the sum of both engines, once', async () => {
  const config = only({
    credentialStuffing: { identities: 10 },
    enumeration: { foreignObjects: 25, sequentialRun: 0, sequentialRunAllowed: 0 },
    scraping: { pages: 100 },
  })
  const { c, store, a, b } = pair(config)
  for (let i = 0; i < 5; i++) {
    a.observe(entry(401, { ip: '192.0.2.2', headers: { authorization: `Bearer a-${i}` } }))
    b.observe(entry(401, { ip: '192.0.2.2', headers: { authorization: `Bearer b-${i}` } }))
  }
  for (let i = 0; i < 15; i++) {
    c.t += 10
    a.observe(entry(404, { principal: 'mallory', path: `/api/orders/${i * 7}` }))
    b.observe(entry(403, { principal: 'mallory', path: `/api/orders/${1000 + i * 7}` }))
  }
  for (let i = 0; i < 60; i++) {
    a.observe(entry(200, { principal: 'scraper', path: '/api/items', query: `page=${i}` }))
    b.observe(entry(200, { principal: 'scraper', path: '/api/items', query: `page=${100 + i}` }))
  }
  await Promise.all([a.idle(), b.idle()])
  const all = [...a.alerts.recent(50), ...b.alerts.recent(50)]
  assert.deepEqual(all.map((x) => `${x.detector} ${x.subject}`).sort(), [
    'credential-stuffing ip:192.0.2.2',
    'enumeration principal:mallory',
    'scraping principal:scraper',
  ])
  // Shared enumeration counts refused ids only: 25 distinct refusals over both gateways (each saw
  // 15 locally, below the local 25). (All 30 adds land before the first size is read here, so the
  // count the alert reports can be 30.)
  const refusals = Number(all.find((x) => x.detector === 'enumeration')?.data.deniedObjects)
  assert.ok(refusals >= 25 && refusals <= 30, `deniedObjects ${refusals}`)
  a.close()
  b.close()
  await store.close()
})

test('shared enumeration: mostly allowed requests (low denied ratio) raise nothing', async () => {
  const { c, store, a, b } = pair(only({ enumeration: { foreignObjects: 10, sequentialRun: 0 } }))
  for (let i = 0; i < 30; i++) {
    c.t += 10
    a.observe(entry(200, { principal: 'alice', path: `/api/orders/${i * 3}` }))
    b.observe(entry(i % 5 === 0 ? 404 : 200, { principal: 'alice', path: `/api/orders/${500 + i * 3}` }))
  }
  await Promise.all([a.idle(), b.idle()])
  assert.equal(a.alerts.total + b.alerts.total, 0)
  await store.close()
})

/** `inner` with some of its parts replaced (a class instance's methods do not spread). */
function wrap(inner: Store, parts: Partial<Store>): Store {
  return {
    backend: inner.backend,
    counters: inner.counters,
    kv: inner.kv,
    sets: inner.sets,
    gcra: inner.gcra,
    maps: inner.maps,
    hashes: inner.hashes,
    ping: () => inner.ping(),
    close: () => inner.close(),
    ...parts,
  }
}

/** A store whose counters, sets and kv always reject (Redis down). */
function failingStore(inner: Store): Store {
  const fail = () => Promise.reject(new StoreError('store unavailable'))
  return wrap(inner, {
    backend: 'redis',
    counters: { incr: fail, get: fail, reset: fail },
    sets: { add: fail, has: fail, remove: fail, members: fail, size: fail },
    kv: { get: fail, set: fail, setIfAbsent: fail, delete: fail },
  })
}

test('store down: the local detectors still raise (fail to local); the errors are logged once per interval', async () => {
  const c = { t: T0 }
  const inner = createMemoryStore({ now: () => c.t })
  const lines: { msg: string; errors?: number }[] = []
  const logger = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l)) })
  const e = new DetectEngine({
    config: only({ bruteForce: { failures: 5 }, suppressionSec: 60 }),
    store: failingStore(inner),
    logger,
    now: () => c.t,
  })
  assert.ok(e.shared, 'auto: on with a Redis store')
  for (let i = 0; i < 8; i++) e.observe(entry(401, { ip: '192.0.2.3' }))
  await e.idle()
  assert.equal(e.alerts.total, 1, 'the local count crossed; the dedup claim failed → raised anyway')
  assert.ok((e.shared?.errors ?? 0) >= 9)
  const failing = lines.filter((l) => /shared detector counts failing/.test(l.msg))
  assert.equal(failing.length, 1, 'one log line per interval, not one per error')
  c.t += 11_000
  e.observe(entry(401, { ip: '192.0.2.3' }))
  await e.idle()
  assert.equal(lines.filter((l) => /shared detector counts failing/.test(l.msg)).length, 2)
  e.close()
  await inner.close()
})

test('bounded in flight: past maxInFlight observations are dropped and counted; observe stays synchronous', async () => {
  const inner = createMemoryStore({})
  const pending: (() => void)[] = []
  const hang = <T>(v: T) => new Promise<T>((r) => pending.push(() => r(v)))
  const store = wrap(inner, {
    sets: {
      has: (k, m) => inner.sets.has(k, m),
      remove: (k, m) => inner.sets.remove(k, m),
      members: (k, l) => inner.sets.members(k, l),
      size: (k) => inner.sets.size(k),
      add: () => hang(true),
    },
  })
  const e = new DetectEngine({
    config: only({ bruteForce: { failures: 1000 } }),
    store,
    logger: pino({ level: 'silent' }),
    shared: true,
    sharedMaxInFlight: 3,
  })
  for (let i = 0; i < 10; i++) e.observe(entry(401, { ip: '192.0.2.4' }))
  assert.equal(e.shared?.inFlight, 3)
  assert.equal(e.shared?.dropped, 7)
  for (const r of pending) r()
  await e.idle()
  assert.equal(e.shared?.inFlight, 0)
  await inner.close()
})

test('shared keys: namespaced `detect:`, subjects hashed (a 10 kB principal makes short keys); default off on memory', async () => {
  const inner = createMemoryStore({})
  const keys: string[] = []
  const rec =
    <A extends unknown[], R>(f: (k: string, ...a: A) => R) =>
    (k: string, ...a: A): R => {
      keys.push(k)
      return f(k, ...a)
    }
  const { counters: ic, sets: is, kv: ik } = inner
  const store = wrap(inner, {
    counters: { incr: rec(ic.incr.bind(ic)), get: rec(ic.get.bind(ic)), reset: rec(ic.reset.bind(ic)) },
    sets: {
      add: rec(is.add.bind(is)),
      has: rec(is.has.bind(is)),
      remove: rec(is.remove.bind(is)),
      members: rec(is.members.bind(is)),
      size: rec(is.size.bind(is)),
    },
    kv: {
      get: rec(ik.get.bind(ik)),
      set: rec(ik.set.bind(ik)),
      setIfAbsent: rec(ik.setIfAbsent.bind(ik)),
      delete: rec(ik.delete.bind(ik)),
    },
  })
  const long = 'p'.repeat(10_000)
  const e = new DetectEngine({
    config: only({ bruteForce: { failures: 1 }, enumeration: { foreignObjects: 2, sequentialRun: 0 } }),
    store,
    logger: pino({ level: 'silent' }),
    shared: true,
  })
  e.observe(entry(401, { principal: long, path: '/api/orders/1' }))
  e.observe(entry(404, { principal: long, path: '/api/orders/2' }))
  e.observe(entry(404, { principal: long, path: '/api/orders/3' }))
  await e.idle()
  assert.ok(keys.length >= 6)
  for (const k of keys) {
    assert.match(k, /^detect:/)
    assert.ok(k.length <= 64, k)
    assert.equal(k.includes('ppp'), false)
  }
  assert.ok(keys.some((k) => k.startsWith('detect:alert:brute-force:')))
  assert.ok(keys.some((k) => k.startsWith('detect:alert:enumeration:')))
  const plain = new DetectEngine({ config: cfg(), store: inner, logger: pino({ level: 'silent' }) })
  assert.equal(plain.shared, undefined, 'memory store: local only')
  const off = new DetectEngine({
    config: cfg({ shared: 'off' }),
    store: failingStore(inner),
    logger: pino({ level: 'silent' }),
  })
  assert.equal(off.shared, undefined, 'shared: off on Redis: local only')
  await inner.close()
})

test('shared dedup: both engines cross locally (10 each, threshold 5) → one alert and one ban in total', async () => {
  const { store, a, b } = pair(only({ bruteForce: { failures: 5, action: 'ban', banSec: 120 } }))
  for (let i = 0; i < 10; i++) {
    a.observe(entry(401, { ip: '192.0.2.5' }))
    b.observe(entry(401, { ip: '192.0.2.5' }))
  }
  await Promise.all([a.idle(), b.idle()])
  const all = [...a.alerts.recent(10), ...b.alerts.recent(10)]
  assert.equal(all.length, 1, JSON.stringify(all))
  assert.equal(all[0]?.action, 'ban')
  await new Promise((r) => setImmediate(r))
  assert.ok(await store.maps.get(BANS_MAP, 'ip:192.0.2.5'), 'the winner stored the ban')
  a.close()
  b.close()
  await store.close()
})
