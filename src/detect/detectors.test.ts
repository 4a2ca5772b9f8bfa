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
  globalSpike,
  MovingBaseline,
  type Observation,
  objectIdOf,
  pageKeyOf,
  scraping,
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
    owned: false,
    path: '/api',
    page: undefined,
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

test('brute force: fires at the threshold per IP, counts only failures, forgets failures older than the window', () => {
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
  // a window (and at most a tenth of one) later, the old failures no longer count
  c.t += 66_000
  for (let i = 0; i < 4; i++) assert.deepEqual(feed(d, obs(c, { authFailed: true })), [])
})

test('window edges hide no burst: 37 failed logins within 2 s across any boundary alert (issue 25, item 6)', () => {
  // The evasion: one failure opens a subject's window, the burst is split around its end.
  const c = clock()
  const d = bruteForce(cfg({ bruteForce: { failures: 20, windowSec: 60 } }), c.now)
  const fired: Finding[] = []
  fired.push(...feed(d, obs(c, { authFailed: true, status: 401 })))
  c.t += 59_000
  for (let i = 0; i < 18; i++) {
    c.t += 50
    fired.push(...feed(d, obs(c, { authFailed: true, status: 401 })))
  }
  for (let i = 0; i < 18; i++) {
    c.t += 50
    fired.push(...feed(d, obs(c, { authFailed: true, status: 401 })))
  }
  assert.equal(fired.length, 1, 'one brute-force finding')
  assert.equal(fired[0]?.data.failures, 20)
  // The same burst at every alignment with the clock: 37 events within 2 s, starting anywhere in
  // a window. Each reaches the threshold.
  for (let offset = 0; offset < 60_000; offset += 997) {
    const t = clock(1_700_000_000_000 + offset)
    const b = bruteForce(cfg({ bruteForce: { failures: 20, windowSec: 60 } }), t.now)
    let n = 0
    for (let i = 0; i < 37; i++) {
      t.t += 54
      n += feed(b, obs(t, { authFailed: true })).length
    }
    assert.equal(n, 1, `offset ${offset}`)
  }
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

test('credential stuffing and brute force each fire on their own signal (issue 25, item 7)', () => {
  const c = clock()
  const config = cfg({})
  const run = (attempts: [string, number][]) => {
    const ds = [bruteForce(config, c.now), credentialStuffing(config, c.now)]
    const out: Finding[] = []
    for (const [identity, times] of attempts)
      for (let i = 0; i < times; i++) {
        c.t += 100
        for (const d of ds) out.push(...feed(d, obs(c, { identity, authFailed: true, status: 401 })))
      }
    return out.map((f) => `${f.detector} ${f.subject}`)
  }
  // Stuffing: 15 accounts once each. Below the brute-force threshold (20).
  const stuffing = run(Array.from({ length: 15 }, (_, i) => [`account:u${i}`, 1] as [string, number]))
  assert.deepEqual(stuffing, ['credential-stuffing ip:10.0.0.1'])
  // Brute force: one account, 30 passwords. Not stuffing.
  const brute = run([['account:alice', 30]])
  assert.deepEqual(brute.sort(), ['brute-force account:alice', 'brute-force ip:10.0.0.1'])
  // Both at once: 40 accounts. Both alerts, the stuffing one first.
  const both = run(Array.from({ length: 40 }, (_, i) => [`account:v${i}`, 1] as [string, number]))
  assert.deepEqual(both, ['credential-stuffing ip:10.0.0.1', 'brute-force ip:10.0.0.1'])
})

test('enumeration: distinct refused objects fire; a normal user, retries and own objects do not', () => {
  const c = clock()
  const d = enumeration(cfg({ enumeration: { foreignObjects: 10 } }), c.now)
  let fired: Finding[] = []
  for (let i = 1; i <= 10; i++) {
    fired = feed(d, obs(c, { principal: 'mallory', objectId: `/items/${i * 3}`, status: 404 }))
    if (i < 10) assert.deepEqual(fired, [])
  }
  assert.equal(fired.length, 1)
  assert.equal(fired[0]?.subject, 'principal:mallory')
  assert.equal(fired[0]?.data.foreignObjects, 10)
  // a user reading many of their own objects (all 200, ids not consecutive) does not fire
  const n = enumeration(cfg({ enumeration: { foreignObjects: 10 } }), c.now)
  for (let i = 1; i <= 100; i++)
    assert.deepEqual(feed(n, obs(c, { principal: 'alice', objectId: `/items/${i * 7}` })), [])
  // one object retried many times with 404 does not fire (not distinct)
  for (let i = 1; i <= 100; i++) {
    assert.deepEqual(feed(n, obs(c, { principal: 'bob', objectId: '/items/7', status: 404 })), [])
  }
  // the older form: objects x deniedRatio distinct refused objects
  const old = enumeration(cfg({ enumeration: { objects: 10, deniedRatio: 0.5 } }), c.now)
  const hits = Array.from({ length: 5 }, (_, i) =>
    feed(old, obs(c, { ip: '10.3.3.3', objectId: `/o/${i * 5}`, status: 403 })),
  ).flat()
  assert.equal(hits.length, 1, 'at 10 x 0.5 = 5')
})

test('enumeration: padding a probe with requests for own objects hides nothing (issue 25, item 4)', () => {
  // 200 other users' ids, shuffled, each probe padded with two requests for the caller's own
  // objects: a third of the requests refused, far below the old 0.5 ratio.
  const ids = Array.from({ length: 200 }, (_, i) => 1000 + i * 13)
  let seed = 7
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  }
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[ids[i], ids[j]] = [ids[j] as number, ids[i] as number]
  }
  for (const owned of [true, false]) {
    const c = clock()
    const d = enumeration(cfg({}), c.now)
    const fired: Finding[] = []
    for (const id of ids) {
      c.t += 300
      fired.push(...feed(d, obs(c, { principal: 'mallory', objectId: `/api/orders/${id}`, status: 404 })))
      for (const own of [5, 6]) {
        c.t += 300
        fired.push(...feed(d, obs(c, { principal: 'mallory', objectId: `/api/orders/${own}`, owned })))
      }
    }
    assert.equal(fired.length, 1, `owned ${owned}: ${JSON.stringify(fired)}`)
    assert.equal(fired[0]?.data.foreignObjects, 25, 'at the default 25 distinct refused objects')
    assert.equal(fired[0]?.alertOnly, undefined, 'a ban or step-up may follow')
  }
})

test('enumeration: state per subject is bounded (maxSubjects) and expires', () => {
  const c = clock()
  const d = enumeration(cfg({ maxSubjects: 3, enumeration: { foreignObjects: 3 } }), c.now)
  feed(d, obs(c, { ip: 'a', objectId: '/x/1', status: 404 }))
  feed(d, obs(c, { ip: 'a', objectId: '/x/5', status: 404 }))
  // three other subjects push `a` out
  for (const ip of ['b', 'c', 'd']) feed(d, obs(c, { ip, objectId: '/x/1', status: 404 }))
  assert.deepEqual(
    feed(d, obs(c, { ip: 'a', objectId: '/x/9', status: 404 })),
    [],
    '`a` was evicted and starts over',
  )
  c.t += 301_000
  feed(d, obs(c, { ip: 'e', objectId: '/x/1', status: 404 }))
  feed(d, obs(c, { ip: 'e', objectId: '/x/5', status: 404 }))
  assert.equal(feed(d, obs(c, { ip: 'e', objectId: '/x/9', status: 404 })).length, 1)
})

test('flood: per-IP requests in the sliding window against the threshold', () => {
  const c = clock()
  const d = flood(cfg({ flood: { requests: 100, windowSec: 10 } }), c.now)
  for (let i = 0; i < 99; i++) {
    c.t += 50 // 99 requests within 5 s
    assert.deepEqual(feed(d, obs(c)), [])
  }
  assert.equal(feed(d, obs(c)).length, 1)
  // a slower client: under 100 per 11 s (the window and its tenth) forever, never fires
  const s = flood(cfg({ flood: { requests: 100, windowSec: 10 } }), c.now)
  for (let i = 0; i < 1000; i++) {
    c.t += 112
    assert.deepEqual(feed(s, obs(c, { ip: '10.9.9.9' })), [])
  }
  // a burst of 100 split around any aligned boundary still fires
  const e = flood(cfg({ flood: { requests: 100, windowSec: 10 } }), c.now)
  c.t = Math.ceil(c.t / 10_000) * 10_000 - 500
  let n = 0
  for (let i = 0; i < 100; i++) {
    c.t += 10
    n += feed(e, obs(c, { ip: '10.9.9.7' })).length
  }
  assert.equal(n, 1)
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

test('enumeration: a walk over refused sequential ids alerts at sequentialRun', () => {
  const c = clock()
  const d = enumeration(cfg({ enumeration: { sequentialRun: 20, foreignObjects: 1000 } }), c.now)
  const fired: Finding[] = []
  for (let id = 100; id < 160; id++) {
    c.t += 100
    fired.push(...feed(d, obs(c, { principal: 'mallory', objectId: `/api/orders/${id}`, status: 404 })))
  }
  assert.equal(fired.length, 1, 'one finding at the 20th consecutive id')
  assert.equal(fired[0]?.data.sequential, 20)
  assert.equal(fired[0]?.data.from, 100)
  assert.equal(fired[0]?.data.to, 119)
  assert.equal(fired[0]?.data.answers, 'refused')
  assert.equal(fired[0]?.subject, 'principal:mallory')
  // Descending walks count too; a repeat of the same id does not break a walk.
  const down = enumeration(cfg({ enumeration: { sequentialRun: 5, foreignObjects: 1000 } }), c.now)
  const seq = [50, 49, 49, 48, 47, 46]
  const got = seq.flatMap((id) =>
    feed(down, obs(c, { principal: 'p', objectId: `/api/orders/${id}`, status: 403 })),
  )
  assert.equal(got.length, 1)
  assert.equal(got[0]?.data.to, 46)
  // A pause of more than the window between two steps ends a walk.
  const slow = enumeration(cfg({ enumeration: { sequentialRun: 5, foreignObjects: 1000 } }), c.now)
  const none = [1, 2, 3, 4, 5].flatMap((id) => {
    c.t += id === 4 ? 301_000 : 100
    return feed(slow, obs(c, { principal: 'q', objectId: `/o/${id}`, status: 404 }))
  })
  assert.deepEqual(none, [])
})

test('enumeration: reading her own objects in id order is no walk (issue 25, item 5)', () => {
  const c = clock()
  // The gateway knows they are hers (object-ownership checked them): never counted, however many.
  const d = enumeration(cfg({}), c.now)
  for (let id = 101; id <= 300; id++) {
    c.t += 200
    assert.deepEqual(feed(d, obs(c, { principal: 'alice', objectId: `/api/orders/${id}`, owned: true })), [])
  }
  // The id is her own principal id: hers too.
  for (let i = 0; i < 50; i++)
    assert.deepEqual(feed(d, obs(c, { principal: '42', objectId: '/api/users/42', owned: true })), [])
  // No ownership check on the route (owner unknown): 30 in order is no alert either …
  const u = enumeration(cfg({}), c.now)
  for (let id = 101; id <= 130; id++) {
    c.t += 200
    assert.deepEqual(feed(u, obs(c, { principal: 'alice', objectId: `/api/docs/${id}` })), [])
  }
  // … a walk of sequentialRunAllowed (100) is, as an alert only: never a ban.
  const fired: Finding[] = []
  for (let id = 131; id <= 250; id++) {
    c.t += 200
    fired.push(...feed(u, obs(c, { principal: 'alice', objectId: `/api/docs/${id}` })))
  }
  assert.equal(fired.length, 1)
  assert.equal(fired[0]?.data.sequential, 100)
  assert.equal(fired[0]?.data.answers, 'open')
  assert.equal(fired[0]?.alertOnly, true)
})

test('enumeration: normal use (jumps, other collections, other answers) is no walk', () => {
  const c = clock()
  const d = enumeration(
    cfg({ enumeration: { sequentialRun: 5, sequentialRunAllowed: 5, foreignObjects: 1000 } }),
    c.now,
  )
  const ids = [
    '/o/1',
    '/o/2',
    '/o/3',
    '/u/4',
    '/o/4',
    '/o/5',
    '/o/9',
    '/o/10',
    '/o/12',
    '/o/13',
    '/o/14',
    '/o/15',
  ]
  const fired = ids.flatMap((id) => feed(d, obs(c, { principal: 'p', objectId: id, status: 404 })))
  assert.deepEqual(fired, [], 'runs broken by another collection or a jump')
  // 401, 429 and 5xx answers are neither refused nor allowed objects: nothing counts.
  const other = [401, 429, 500, 502, 400].flatMap((status) =>
    Array.from({ length: 10 }, (_, i) =>
      feed(d, obs(c, { principal: 'r', objectId: `/o/${i}`, status })),
    ).flat(),
  )
  assert.deepEqual(other, [])
  // Off with 0.
  const off = enumeration(
    cfg({ enumeration: { sequentialRun: 0, sequentialRunAllowed: 0, foreignObjects: 1000 } }),
    c.now,
  )
  const none = Array.from({ length: 50 }, (_, i) =>
    feed(off, obs(c, { objectId: `/o/${i}`, status: 404 })),
  ).flat()
  assert.deepEqual(none, [])
})

test('MovingBaseline: moving averages per window and per active subject; empty windows decay it', () => {
  const b = new MovingBaseline(1000, 0.5)
  let t = 0
  for (let w = 0; w < 4; w++) {
    for (let i = 0; i < 100; i++) b.add(t + i, i < 10) // 100 events from 10 subjects
    t += 1000
  }
  b.add(t, true) // rolls the 4th window in
  assert.equal(b.windows, 4)
  assert.ok(b.averageTotal > 90 && b.averageTotal <= 100, `averageTotal ${b.averageTotal}`)
  assert.ok(b.averagePerSubject > 9 && b.averagePerSubject <= 10, `per subject ${b.averagePerSubject}`)
  b.add(t + 10_000, false) // ten windows later: nine empty ones fold in as zeros
  assert.ok(b.averageTotal < 1, `decayed to ${b.averageTotal}`)
})

test('flood: the moving baseline alerts an IP far above the typical per-IP rate, below the fixed threshold', () => {
  const c = clock(0)
  const d = flood(
    cfg({
      flood: {
        requests: 100_000,
        windowSec: 1,
        baselineFactor: 10,
        baselineMinRequests: 50,
        warmupWindows: 3,
      },
    }),
    c.now,
  )
  const fired: Finding[] = []
  // Five windows of normal traffic: 20 IPs with 5 requests each.
  for (let w = 0; w < 5; w++) {
    for (let ip = 0; ip < 20; ip++)
      for (let k = 0; k < 5; k++) fired.push(...feed(d, obs(c, { ip: `10.0.0.${ip}` })))
    c.t += 1000
  }
  assert.equal(fired.length, 0, 'normal traffic raises nothing')
  // One IP sends 60 in a window: 12x the typical 5, above the 50 minimum.
  for (let k = 0; k < 60; k++) fired.push(...feed(d, obs(c, { ip: '10.9.9.9' })))
  assert.ok(fired.length >= 1)
  assert.equal(fired[0]?.subject, 'ip:10.9.9.9')
  assert.equal(fired[0]?.data.requests, 50, 'fires when it reaches max(50, 10 x 5)')
  // Before the warm-up, only the fixed threshold counts.
  const cold = flood(cfg({ flood: { requests: 100_000, windowSec: 1, baselineMinRequests: 50 } }), c.now)
  const none = Array.from({ length: 500 }, () => feed(cold, obs(c, { ip: '10.9.9.8' }))).flat()
  assert.deepEqual(none, [])
})

test('global spike: total rate against its moving average, after warm-up and above minRequests', () => {
  const c = clock(0)
  const d = globalSpike(cfg({ globalSpike: { factor: 5, minRequests: 200, windowSec: 1, warmupWindows: 3 } }))
  const fired: Finding[] = []
  for (let w = 0; w < 4; w++) {
    for (let k = 0; k < 100; k++) fired.push(...feed(d, obs(c)))
    c.t += 1000
  }
  assert.equal(fired.length, 0)
  for (let k = 0; k < 600; k++) fired.push(...feed(d, obs(c)))
  assert.ok(fired.length >= 1)
  assert.equal(fired[0]?.subject, 'global')
  assert.equal(fired[0]?.data.requests, 500, 'at 5x the average of 100')
})

test('scraping: many distinct pages of one path by one subject; bounded per subject', () => {
  const c = clock()
  const d = scraping(cfg({ scraping: { pages: 30 } }), c.now)
  const fired: Finding[] = []
  for (let p = 1; p <= 200; p++) {
    fired.push(...feed(d, obs(c, { principal: 'bot', path: '/api/products', page: `page=${p}` })))
    // A normal user reading the first pages of several lists.
    fired.push(...feed(d, obs(c, { principal: 'alice', path: `/api/list${p % 10}`, page: `page=${p % 3}` })))
  }
  assert.equal(fired.length, 1)
  assert.equal(fired[0]?.subject, 'principal:bot')
  assert.equal(fired[0]?.data.pages, 30)
})

test('pageKeyOf: paging parameters in config order; none, empty or oversized queries give undefined', () => {
  const params = ['page', 'offset', 'cursor']
  assert.equal(pageKeyOf('page=3&sort=name', params), 'page=3')
  assert.equal(pageKeyOf('offset=40&page=2', params), 'page=2&offset=40')
  assert.equal(pageKeyOf('sort=name', params), undefined)
  assert.equal(pageKeyOf('', params), undefined)
  assert.equal(pageKeyOf(`page=1&x=${'a'.repeat(5000)}`, params), undefined)
  assert.equal(pageKeyOf(`cursor=${'z'.repeat(1000)}`, params)?.length, 256)
})
