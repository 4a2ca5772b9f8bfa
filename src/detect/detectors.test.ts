import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { DetectConfig } from './config.js'
import {
  bruteForce,
  credentialStuffing,
  type Detector,
  enumeration,
  errorSpike,
  type Finding,
  flood,
  type Observation,
  objectIdOf,
} from './detectors.js'

const cfg = (over: object = {}) => Value.Default(DetectConfig, over) as DetectConfig

function clock(start = 1_700_000_000_000) {
  const c = { t: start, now: () => c.t }
  return c
}

function obs(c: { t: number }, o: Partial<Observation> = {}): Observation {
  return {
    now: c.t,
    ip: '10.0.0.1',
    principal: undefined,
    identity: undefined,
    authFailed: false,
    status: 200,
    route: 'api',
    objectId: undefined,
    ...o,
  }
}

function feed(d: Detector, o: Observation): Finding[] {
  const out: Finding[] = []
  d.observe(o, out)
  return out
}

test('objectIdOf: last numeric or UUID segment, else undefined', () => {
  assert.equal(objectIdOf('/api/items/42'), '/api/items/42')
  assert.equal(objectIdOf('/api/items/42/'), '/api/items/42')
  assert.equal(
    objectIdOf('/a/3F2504E0-4F89-11D3-9A0C-0305E82C3301'),
    '/a/3f2504e0-4f89-11d3-9a0c-0305e82c3301',
  )
  assert.equal(objectIdOf('/api/items'), undefined)
  assert.equal(objectIdOf('/api/items/abc'), undefined)
  assert.equal(objectIdOf('/'), undefined)
  assert.equal(objectIdOf(''), undefined)
  assert.equal(objectIdOf(`/x/${'9'.repeat(100)}`), undefined, 'overlong segment')
  assert.equal(objectIdOf('/x/12a'), undefined)
})

test('brute force: fires at the threshold per IP, counts only failures, window restarts after expiry', () => {
  const c = clock()
  const d = bruteForce(cfg({ bruteForce: { failures: 5, windowSec: 60 } }), c.now)
  for (let i = 0; i < 4; i++) assert.deepEqual(feed(d, obs(c, { authFailed: true, status: 401 })), [])
  for (let i = 0; i < 10; i++)
    assert.deepEqual(feed(d, obs(c, { status: 200 })), [], 'successes do not count')
  const f = feed(d, obs(c, { authFailed: true, status: 401 }))
  assert.equal(f.length, 1)
  assert.equal(f[0]?.subject, 'ip:10.0.0.1')
  assert.equal(f[0]?.detector, 'brute-force')
  // another IP is counted apart
  assert.deepEqual(feed(d, obs(c, { ip: '10.0.0.2', authFailed: true })), [])
  // after the window, counting starts over
  c.t += 61_000
  for (let i = 0; i < 4; i++) assert.deepEqual(feed(d, obs(c, { authFailed: true })), [])
})

test('brute force: per identity across IPs', () => {
  const c = clock()
  const d = bruteForce(cfg({ bruteForce: { failures: 3 } }), c.now)
  let hits: Finding[] = []
  for (let i = 0; i < 3; i++)
    hits = feed(d, obs(c, { ip: `10.1.0.${i}`, identity: 'account:abc', authFailed: true }))
  assert.deepEqual(
    hits.map((h) => h.subject),
    ['account:abc'],
  )
})

test('credential stuffing: distinct identities per IP; repeats of one identity do not count', () => {
  const c = clock()
  const d = credentialStuffing(cfg({ credentialStuffing: { identities: 4 } }), c.now)
  for (let i = 0; i < 20; i++)
    assert.deepEqual(feed(d, obs(c, { identity: 'account:same', authFailed: true })), [])
  let out: Finding[] = []
  for (let i = 0; i < 3; i++) out = feed(d, obs(c, { identity: `account:u${i}`, authFailed: true }))
  assert.equal(out.length, 1, '4th distinct identity (same + 3) crosses')
  assert.equal(out[0]?.subject, 'ip:10.0.0.1')
  // no identity known: nothing counted
  const d2 = credentialStuffing(cfg({ credentialStuffing: { identities: 2 } }), c.now)
  for (let i = 0; i < 10; i++) assert.deepEqual(feed(d2, obs(c, { authFailed: true })), [])
})

test('enumeration: many distinct ids with a high denied ratio fires; a normal user does not', () => {
  const c = clock()
  const d = enumeration(cfg({ enumeration: { objects: 10, deniedRatio: 0.5 } }), c.now)
  let fired: Finding[] = []
  for (let i = 1; i <= 10; i++) {
    fired = feed(d, obs(c, { principal: 'mallory', objectId: `/items/${i}`, status: i <= 2 ? 200 : 404 }))
    if (i < 10) assert.deepEqual(fired, [])
  }
  assert.equal(fired.length, 1)
  assert.equal(fired[0]?.subject, 'principal:mallory')
  // a user reading many of their own objects (all 200) does not fire
  const n = enumeration(cfg({ enumeration: { objects: 10 } }), c.now)
  for (let i = 1; i <= 100; i++)
    assert.deepEqual(feed(n, obs(c, { principal: 'alice', objectId: `/items/${i}` })), [])
  // one object retried many times with 404 does not fire (not distinct)
  for (let i = 1; i <= 100; i++) {
    assert.deepEqual(feed(n, obs(c, { principal: 'bob', objectId: '/items/7', status: 404 })), [])
  }
})

test('enumeration: state per subject is bounded (maxSubjects) and expires', () => {
  const c = clock()
  const d = enumeration(cfg({ maxSubjects: 3, enumeration: { objects: 3, deniedRatio: 0 } }), c.now)
  feed(d, obs(c, { ip: 'a', objectId: '/x/1' }))
  feed(d, obs(c, { ip: 'a', objectId: '/x/2' }))
  // three other subjects push `a` out
  for (const ip of ['b', 'c', 'd']) feed(d, obs(c, { ip, objectId: '/x/1' }))
  assert.deepEqual(feed(d, obs(c, { ip: 'a', objectId: '/x/3' })), [], '`a` was evicted and starts over')
  c.t += 301_000
  feed(d, obs(c, { ip: 'e', objectId: '/x/1' }))
  feed(d, obs(c, { ip: 'e', objectId: '/x/2' }))
  assert.equal(feed(d, obs(c, { ip: 'e', objectId: '/x/3' })).length, 1)
})

test('flood: per-IP requests in the window against the threshold', () => {
  const c = clock()
  const d = flood(cfg({ flood: { requests: 100, windowSec: 10 } }), c.now)
  for (let i = 0; i < 99; i++) {
    c.t += 50 // 99 requests within 5 s
    assert.deepEqual(feed(d, obs(c)), [])
  }
  assert.equal(feed(d, obs(c)).length, 1)
  // a slower client: 99 per 10 s window forever, never fires
  const s = flood(cfg({ flood: { requests: 100, windowSec: 10 } }), c.now)
  for (let i = 0; i < 1000; i++) {
    c.t += 102
    assert.deepEqual(feed(s, obs(c, { ip: '10.9.9.9' })), [])
  }
})

test('error spike: 5xx per route with count and ratio thresholds', () => {
  const c = clock()
  const d = errorSpike(cfg({ errorSpike: { errors: 5, ratio: 0.5 } }), c.now)
  for (let i = 0; i < 20; i++) feed(d, obs(c))
  for (let i = 0; i < 10; i++) assert.deepEqual(feed(d, obs(c, { status: 502 })), [], 'ratio below 0.5')
  const e = errorSpike(cfg({ errorSpike: { errors: 5, ratio: 0.5 } }), c.now)
  let out: Finding[] = []
  for (let i = 0; i < 5; i++) out = feed(e, obs(c, { status: 503 }))
  assert.equal(out[0]?.subject, 'route:api')
})
