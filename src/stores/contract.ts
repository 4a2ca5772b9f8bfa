/**
 * The store contract: one node:test suite that every Store implementation passes. A backend's test
 * file calls `storeContract(name, makeStore)`; makeStore builds a fresh store for each test (with
 * the given key prefix and set bound) and says how time passes for it: a fake clock that advance()
 * moves exactly, or the real one (advance() sleeps, and time assertions get a little slack).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { isStoreError, type MapChanges, type MapEntry, type Store } from './types.js'

export interface ContractSubject {
  store: Store
  /** Lets `ms` of store time pass: moves a fake clock, or sleeps. */
  advance(ms: number): Promise<void>
  /** True when advance() moves a fake clock: time assertions are then exact. */
  exactClock: boolean
}

export interface ContractStoreOptions {
  /** Keys of stores with different prefixes must never meet. */
  keyPrefix: string
  /** The set bound the store must apply. */
  maxSetMembers: number
  /** The bound of one hash's fields the store must apply. */
  maxHashFields: number
  /** The bound of one replicated map the store must apply. */
  maxMapEntries: number
  /** Changes a replicated map's feed must keep (at least: Redis trims approximately). */
  mapLogLength: number
}

export type MakeStore = (options: ContractStoreOptions) => ContractSubject | Promise<ContractSubject>

export interface ContractOptions {
  /** The TTL / window used by time tests, in ms. Default 200 (short real windows for Redis). */
  windowMs?: number
}

/** Keys that must be stored and told apart correctly (and never break a script or hash tag). */
export const HOSTILE_KEYS: readonly string[] = (() => {
  const long = 'k'.repeat(10_000)
  return [
    '',
    ' ',
    'a b',
    'a\nb',
    '\r\n',
    '\t',
    '{',
    '}',
    '{}',
    '}{',
    '{a}',
    'a{b}c',
    'a%7Bb%7Dc',
    '{{}}',
    '}x',
    '%',
    '%25',
    '%e',
    'ü',
    '日本語のキー',
    '🔥🔑',
    '\uD800',
    '\uDC00',
    '\uFFFD',
    'a\u0000b',
    "'; redis.call('FLUSHALL') --",
    ']]..redis.call("FLUSHALL")..[[',
    '*1\r\n$4\r\nPING\r\n',
    'pc:c:{x}',
    long,
    `${long}!`,
    `%h${createHash('sha256').update(long, 'utf8').digest('hex')}`,
    'x'.repeat(100_000),
  ]
})()

/** Values and set members that must round-trip exactly (well-formed UTF-8 text). */
export const HOSTILE_VALUES: readonly string[] = [
  '',
  ' ',
  '\n',
  '\r\n*1\r\n$8\r\nFLUSHALL\r\n',
  '{}',
  '}{',
  'ü日本🔥',
  '\u0000',
  '%',
  "'; return 1 --",
  'v'.repeat(100_000),
]

/** Keys of replicated maps that must round-trip exactly (any string up to 1 KiB of UTF-8). */
export const HOSTILE_MAP_KEYS: readonly string[] = [
  '',
  ' ',
  '|',
  '0|x',
  '123',
  'a\nb',
  '\r\n',
  '{',
  '}',
  '{}',
  '}{',
  '{m:keys}',
  '%',
  '%25',
  '%D800',
  '%e',
  'ü',
  '日本語のキー',
  '🔥🔑',
  '\uD800',
  '\uDC00',
  '\uDBFF\uDBFF',
  'x\uDC00\uD800y',
  '\uFFFD',
  'a\u0000b',
  "'; redis.call('FLUSHALL') --",
  '*1\r\n$4\r\nPING\r\n',
  'k'.repeat(1024),
  'é'.repeat(512),
  '🔥'.repeat(256),
]

/** Values of replicated maps that must round-trip exactly (any string up to 64 KiB of UTF-8). */
export const HOSTILE_MAP_VALUES: readonly string[] = [
  '',
  '|',
  '||',
  '0|',
  '12|34',
  '%',
  '%25',
  '%D800',
  '\uD800',
  'a\uDC00b',
  '\uFFFD',
  '{"owner":"alice","scopes":["read|write"]}',
  '\r\n*1\r\n$8\r\nFLUSHALL\r\n',
  '\u0000',
  'ü日本🔥',
  'v'.repeat(64 * 1024),
  'é'.repeat(32 * 1024),
]

const SET_BOUND = 20
/** maxHashFields of the contract's stores. */
const HASH_BOUND = 30
/** maxMapEntries of the contract's stores. */
const MAP_BOUND = 60
/** mapLogLength of the contract's stores. */
const MAP_LOG = 150
let seq = 0

/** Applies a feed's changes to a local copy (as a mirror does). */
function applyChanges(copy: Map<string, MapEntry>, result: MapChanges): string {
  assert.equal(result.reset, false, 'unexpected reset')
  if (result.reset) throw new Error('unreachable')
  for (const c of result.changes) {
    if (c.entry === undefined) copy.delete(c.key)
    else copy.set(c.key, c.entry)
  }
  return result.cursor
}

/** A map's entries as a sorted array (deepEqual regardless of order). */
function sorted(entries: Map<string, MapEntry>): [string, MapEntry][] {
  return [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

/** Registers the contract suite for one backend. */
export function storeContract(name: string, makeStore: MakeStore, options: ContractOptions = {}): void {
  const W = options.windowMs ?? 200
  const run = `${process.pid.toString(36)}${Date.now().toString(36)}`

  async function make(prefix?: string): Promise<ContractSubject> {
    seq++
    return makeStore({
      keyPrefix: prefix ?? `t${run}-${seq}:`,
      maxSetMembers: SET_BOUND,
      maxHashFields: HASH_BOUND,
      maxMapEntries: MAP_BOUND,
      mapLogLength: MAP_LOG,
    })
  }

  /** Runs `fn` with a fresh store and closes it afterwards. */
  async function withStore(fn: (s: ContractSubject) => Promise<void>): Promise<void> {
    const s = await make()
    try {
      await fn(s)
    } finally {
      await s.store.close()
    }
  }

  /** Extra wait past an expiry with a real clock (timers, ms rounding). */
  const slack = (s: ContractSubject) => (s.exactClock ? 0 : 60)

  describe(`${name}: store contract`, () => {
    test('ping answers', () =>
      withStore(async ({ store }) => {
        await store.ping()
      }))

    describe('counters', () => {
      test('increment by any amount, report the window left, reset deletes', () =>
        withStore(async (s) => {
          const c = s.store.counters
          const first = await c.incr('hits', 1, W)
          assert.equal(first.value, 1)
          if (s.exactClock) assert.equal(first.ttlMs, W)
          else assert.ok(first.ttlMs > 0 && first.ttlMs <= W, `ttl ${first.ttlMs}`)
          assert.equal((await c.incr('hits', 5, W)).value, 6)
          assert.equal((await c.incr('hits', -2, W)).value, 4)
          const got = await c.get('hits')
          assert.equal(got.value, 4)
          assert.ok(got.ttlMs > 0 && got.ttlMs <= W)
          assert.deepEqual(await c.get('absent'), { value: 0, ttlMs: 0 })
          await c.reset('hits')
          assert.deepEqual(await c.get('hits'), { value: 0, ttlMs: 0 })
          await c.reset('absent') // no error
          assert.equal((await c.incr('hits', 1, W)).value, 1)
        }))

      test('the window is fixed: later increments keep its end, then it expires as a whole', () =>
        withStore(async (s) => {
          const c = s.store.counters
          await c.incr('login:alice', 1, W)
          await s.advance(W / 2)
          const second = await c.incr('login:alice', 1, W)
          assert.equal(second.value, 2)
          assert.ok(second.ttlMs <= W / 2 + 2, `window was extended: ttl ${second.ttlMs}`)
          await s.advance(W / 2 + slack(s))
          assert.deepEqual(await c.get('login:alice'), { value: 0, ttlMs: 0 })
          const fresh = await c.incr('login:alice', 1, W)
          assert.equal(fresh.value, 1)
          assert.ok(fresh.ttlMs > W / 2, `new window: ttl ${fresh.ttlMs}`)
        }))

      test('50 concurrent increments are exact', () =>
        withStore(async (s) => {
          const c = s.store.counters
          const results = await Promise.all(Array.from({ length: 50 }, () => c.incr('race', 1, 60_000)))
          const values = results.map((r) => r.value).sort((a, b) => a - b)
          assert.deepEqual(
            values,
            Array.from({ length: 50 }, (_, i) => i + 1),
          )
          assert.equal((await c.get('race')).value, 50)
          const by3 = await Promise.all(Array.from({ length: 50 }, () => c.incr('race3', 3, 60_000)))
          assert.equal(Math.max(...by3.map((r) => r.value)), 150)
          assert.equal((await c.get('race3')).value, 150)
        }))

      test('invalid arguments reject with RangeError', () =>
        withStore(async ({ store }) => {
          await assert.rejects(store.counters.incr('k', 1.5, W), RangeError)
          await assert.rejects(store.counters.incr('k', 1, 0), RangeError)
          await assert.rejects(store.counters.incr('k', 1, Number.NaN), RangeError)
          await assert.rejects(store.counters.incr('k', 1, -5), RangeError)
        }))
    })

    describe('kv', () => {
      test('set, get, replace, delete; empty values', () =>
        withStore(async ({ store }) => {
          const kv = store.kv
          assert.equal(await kv.get('k'), undefined)
          await kv.set('k', 'one')
          assert.equal(await kv.get('k'), 'one')
          await kv.set('k', 'two')
          assert.equal(await kv.get('k'), 'two')
          assert.equal(await kv.delete('k'), true)
          assert.equal(await kv.delete('k'), false)
          assert.equal(await kv.get('k'), undefined)
          await kv.set('empty', '')
          assert.equal(await kv.get('empty'), '')
        }))

      test('TTL: a value expires; a set without TTL clears the previous TTL', () =>
        withStore(async (s) => {
          const kv = s.store.kv
          await kv.set('temp', 'v', W)
          await kv.set('kept', 'a', W)
          await kv.set('kept', 'b')
          assert.equal(await kv.get('temp'), 'v')
          await s.advance(W + slack(s))
          assert.equal(await kv.get('temp'), undefined)
          assert.equal(await kv.get('kept'), 'b')
        }))

      test('setIfAbsent: of 50 concurrent callers exactly one wins; it honours TTL', () =>
        withStore(async (s) => {
          const kv = s.store.kv
          const wins = await Promise.all(
            Array.from({ length: 50 }, (_, i) => kv.setIfAbsent('nonce', `v${i}`)),
          )
          const winners = wins.flatMap((won, i) => (won ? [i] : []))
          assert.equal(winners.length, 1, `winners: ${winners.join(',')}`)
          assert.equal(await kv.get('nonce'), `v${winners[0]}`)
          assert.equal(await kv.setIfAbsent('nonce', 'late'), false)

          assert.equal(await kv.setIfAbsent('lock', 'a', W), true)
          assert.equal(await kv.setIfAbsent('lock', 'b', W), false)
          await s.advance(W + slack(s))
          assert.equal(await kv.setIfAbsent('lock', 'c', W), true)
          assert.equal(await kv.get('lock'), 'c')
        }))
    })

    describe('sets', () => {
      test('add, has, remove, size, members (bounded by limit)', () =>
        withStore(async ({ store }) => {
          const sets = store.sets
          assert.equal(await sets.add('owner:1', 'a'), true)
          assert.equal(await sets.add('owner:1', 'a'), false)
          await sets.add('owner:1', 'b')
          await sets.add('owner:1', 'c')
          assert.equal(await sets.size('owner:1'), 3)
          assert.equal(await sets.has('owner:1', 'a'), true)
          assert.equal(await sets.has('owner:1', 'z'), false)
          assert.deepEqual((await sets.members('owner:1', 10)).sort(), ['a', 'b', 'c'])
          const two = await sets.members('owner:1', 2)
          assert.equal(two.length, 2)
          for (const m of two) assert.ok(['a', 'b', 'c'].includes(m))
          assert.deepEqual(await sets.members('owner:1', 0), [])
          assert.equal(await sets.remove('owner:1', 'b'), true)
          assert.equal(await sets.remove('owner:1', 'b'), false)
          assert.equal(await sets.size('owner:1'), 2)
          assert.equal(await sets.size('absent'), 0)
          assert.deepEqual(await sets.members('absent', 10), [])
          assert.equal(await sets.has('absent', 'a'), false)
          assert.equal(await sets.remove('absent', 'a'), false)
          await assert.rejects(sets.members('owner:1', -1), RangeError)
        }))

      test('TTL per member; the set goes with its last member', () =>
        withStore(async (s) => {
          const sets = s.store.sets
          await sets.add('seen', 'short', W)
          await sets.add('seen', 'forever')
          await sets.add('seen', 'long', W * 50)
          await sets.add('gone', 'only', W)
          assert.equal(await sets.size('seen'), 3)
          await s.advance(W + slack(s))
          assert.equal(await sets.has('seen', 'short'), false)
          assert.equal(await sets.has('seen', 'forever'), true)
          assert.equal(await sets.has('seen', 'long'), true)
          assert.equal(await sets.size('seen'), 2)
          assert.deepEqual((await sets.members('seen', 10)).sort(), ['forever', 'long'])
          assert.equal(await sets.remove('seen', 'short'), false)
          assert.equal(await sets.size('gone'), 0)
          assert.deepEqual(await sets.members('gone', 10), [])
          // Re-adding refreshes a member's TTL and counts as new once it had expired.
          assert.equal(await sets.add('seen', 'short', W), true)
          assert.equal(await sets.has('seen', 'short'), true)
        }))

      test(`a set holds at most maxSetMembers (${SET_BOUND}); the oldest go first`, () =>
        withStore(async ({ store }) => {
          const sets = store.sets
          const names = Array.from({ length: SET_BOUND + 5 }, (_, i) => `m${String(i).padStart(2, '0')}`)
          for (const m of names) await sets.add('big', m, 60_000)
          assert.equal(await sets.size('big'), SET_BOUND)
          const members = (await sets.members('big', 1000)).sort()
          assert.deepEqual(members, names.slice(5))
          for (const m of names) await sets.add('big-nottl', m)
          assert.equal(await sets.size('big-nottl'), SET_BOUND)
          assert.deepEqual((await sets.members('big-nottl', 1000)).sort(), names.slice(5))
        }))
    })

    describe('gcra', () => {
      test('exact arithmetic at a given time: burst, then one per interval; retryAfter, remaining, reset', () =>
        withStore(async ({ store }) => {
          const N = 1_000_000
          const p = { emissionIntervalMs: 100, burst: 5, cost: 1 }
          for (let i = 0; i < 5; i++) {
            assert.deepEqual(await store.gcra.gcra('api', { ...p, nowMs: N }), {
              allowed: true,
              retryAfterMs: 0,
              remaining: 4 - i,
              resetMs: 100 * (i + 1),
            })
          }
          assert.deepEqual(await store.gcra.gcra('api', { ...p, nowMs: N }), {
            allowed: false,
            retryAfterMs: 100,
            remaining: 0,
            resetMs: 500,
          })
          assert.deepEqual(await store.gcra.gcra('api', { ...p, nowMs: N + 40 }), {
            allowed: false,
            retryAfterMs: 60,
            remaining: 0,
            resetMs: 460,
          })
          const later = await store.gcra.gcra('api', { ...p, nowMs: N + 100 })
          assert.deepEqual(later, { allowed: true, retryAfterMs: 0, remaining: 0, resetMs: 500 })
          assert.equal((await store.gcra.gcra('api', { ...p, nowMs: N + 150 })).retryAfterMs, 50)
          // Steady rate: one per interval, never more.
          for (let t = N + 200; t < N + 1000; t += 100) {
            assert.equal((await store.gcra.gcra('api', { ...p, nowMs: t })).allowed, true, `at +${t - N}`)
            assert.equal(
              (await store.gcra.gcra('api', { ...p, nowMs: t })).allowed,
              false,
              `twice at +${t - N}`,
            )
          }
          // After a long pause the full burst is back.
          const rested = await store.gcra.gcra('api', { ...p, nowMs: N + 100_000 })
          assert.deepEqual(rested, { allowed: true, retryAfterMs: 0, remaining: 4, resetMs: 100 })
        }))

      test('cost, peeking with cost 0, fractional intervals, invalid parameters', () =>
        withStore(async ({ store }) => {
          const N = 5_000_000
          const p = { emissionIntervalMs: 100, burst: 5 }
          assert.deepEqual(await store.gcra.gcra('c', { ...p, cost: 3, nowMs: N }), {
            allowed: true,
            retryAfterMs: 0,
            remaining: 2,
            resetMs: 300,
          })
          assert.deepEqual(await store.gcra.gcra('c', { ...p, cost: 3, nowMs: N }), {
            allowed: false,
            retryAfterMs: 100,
            remaining: 2,
            resetMs: 300,
          })
          assert.equal((await store.gcra.gcra('c', { ...p, cost: 2, nowMs: N })).remaining, 0)
          const peek = await store.gcra.gcra('c', { ...p, cost: 0, nowMs: N })
          assert.deepEqual(peek, { allowed: true, retryAfterMs: 0, remaining: 0, resetMs: 500 })
          assert.deepEqual(await store.gcra.gcra('fresh', { ...p, cost: 0, nowMs: N }), {
            allowed: true,
            retryAfterMs: 0,
            remaining: 5,
            resetMs: 0,
          })
          // 3 per second: an interval of 333.33… ms; retryAfter is rounded up.
          const third = { emissionIntervalMs: 1000 / 3, burst: 1, cost: 1 }
          assert.equal((await store.gcra.gcra('f', { ...third, nowMs: N })).allowed, true)
          const early = await store.gcra.gcra('f', { ...third, nowMs: N + 333 })
          assert.equal(early.allowed, false)
          assert.equal(early.retryAfterMs, 1)
          assert.equal((await store.gcra.gcra('f', { ...third, nowMs: N + 334 })).allowed, true)

          for (const bad of [
            { emissionIntervalMs: 0, burst: 1, cost: 1 },
            { emissionIntervalMs: 100, burst: 0, cost: 1 },
            { emissionIntervalMs: 100, burst: 2, cost: 3 },
            { emissionIntervalMs: 100, burst: 2, cost: -1 },
            { emissionIntervalMs: 100, burst: 1.5, cost: 1 },
            { emissionIntervalMs: Number.POSITIVE_INFINITY, burst: 1, cost: 1 },
          ]) {
            await assert.rejects(store.gcra.gcra('bad', bad), RangeError, JSON.stringify(bad))
          }
        }))

      test('decisions issued together (one turn, 1,100 of them, 40 keys, mixed parameters) equal the same decisions made one at a time', async () => {
        const N = 9_000_000
        const shapes = [
          { emissionIntervalMs: 10_000, burst: 5, cost: 1 },
          { emissionIntervalMs: 10_000 / 3, burst: 2, cost: 1 },
          { emissionIntervalMs: 5_000, burst: 10, cost: 3 },
          { emissionIntervalMs: 10_000, burst: 5, cost: 0 },
        ]
        // the i-th call: a key among 40 (so keys repeat within the batch), a shape, a time that
        // moves forward by a second every 25 calls (intervals of seconds: a Redis key's real TTL
        // outlasts the test however slow the machine)
        const call = (i: number) => {
          const shape = shapes[(i * 7) % shapes.length] as (typeof shapes)[number]
          return { key: `k${(i * 13) % 40}:{x}`, params: { ...shape, nowMs: N + 1000 * Math.floor(i / 25) } }
        }
        const calls = Array.from({ length: 1100 }, (_, i) => call(i))
        const one = await make()
        const together = await make()
        try {
          const expected = []
          for (const c of calls) expected.push(await one.store.gcra.gcra(c.key, c.params))
          // no await in between: every call of this loop is issued in the same event-loop turn
          const pending = calls.map((c) => together.store.gcra.gcra(c.key, c.params))
          // a bad call among them fails alone
          const bad = assert.rejects(
            together.store.gcra.gcra('bad', { emissionIntervalMs: 100, burst: 1, cost: 2 }),
            RangeError,
          )
          const got = await Promise.all(pending)
          await bad
          assert.deepEqual(got, expected)
          assert.ok(expected.some((r) => !r.allowed) && expected.some((r) => r.allowed))
        } finally {
          await one.store.close()
          await together.store.close()
        }
      })

      test("the store's own clock: burst, then retryAfter is when the next one is admitted", () =>
        withStore(async (s) => {
          const g = s.store.gcra
          const T = W / 2
          const p = { emissionIntervalMs: T, burst: 3, cost: 1 }
          for (let i = 0; i < 3; i++) assert.equal((await g.gcra('clock', p)).allowed, true, `burst #${i}`)
          const denied = await g.gcra('clock', p)
          assert.equal(denied.allowed, false)
          if (s.exactClock) assert.equal(denied.retryAfterMs, T)
          else
            assert.ok(
              denied.retryAfterMs > 0 && denied.retryAfterMs <= T,
              `retryAfter ${denied.retryAfterMs}`,
            )
          if (s.exactClock) {
            await s.advance(denied.retryAfterMs - 1)
            assert.equal((await g.gcra('clock', p)).allowed, false, 'admitted before retryAfter')
            await s.advance(1)
          } else {
            await s.advance(denied.retryAfterMs + 15)
          }
          assert.equal((await g.gcra('clock', p)).allowed, true, 'not admitted after retryAfter')
          // Steady state: one per interval.
          let admitted = 0
          const rounds = 3
          for (let r = 0; r < rounds; r++) {
            const next = await g.gcra('clock', p)
            assert.equal(next.allowed, false, `round ${r}: admitted twice in one interval`)
            await s.advance(next.retryAfterMs + (s.exactClock ? 0 : 5))
            if ((await g.gcra('clock', p)).allowed) admitted++
          }
          assert.equal(admitted, rounds)
        }))

      test('200 concurrent requests: exactly the burst is admitted', () =>
        withStore(async ({ store }) => {
          const p = { emissionIntervalMs: 60_000, burst: 50, cost: 1 }
          const results = await Promise.all(Array.from({ length: 200 }, () => store.gcra.gcra('flood', p)))
          const allowed = results.filter((r) => r.allowed)
          assert.equal(allowed.length, 50)
          assert.deepEqual(
            allowed.map((r) => r.remaining).sort((a, b) => a - b),
            Array.from({ length: 50 }, (_, i) => i),
          )
          for (const r of results) if (!r.allowed) assert.ok(r.retryAfterMs > 0)
        }))
    })

    describe('hashes', () => {
      test('incr adds, max raises, min lowers; getAll and delete', () =>
        withStore(async ({ store }) => {
          const h = store.hashes
          assert.deepEqual(await h.getAll('op'), {})
          assert.equal(
            await h.update('op', { incr: { n: 2, s2: 1 }, max: { last: 100 }, min: { first: 100 } }),
            0,
          )
          await h.update('op', { incr: { n: 3, s4: 1 }, max: { last: 50 }, min: { first: 50 } })
          await h.update('op', { incr: { n: -1 }, max: { last: 700 }, min: { first: 90 } })
          assert.deepEqual(await h.getAll('op'), { n: 4, s2: 1, s4: 1, last: 700, first: 50 })
          // One field in several parts of one update: incr, then max, then min.
          await h.update('x', { incr: { f: 5 }, max: { f: 9 }, min: { f: 7 } })
          assert.deepEqual(await h.getAll('x'), { f: 7 })
          const big = Number.MAX_SAFE_INTEGER - 1
          await h.update('x', { max: { big }, min: { neg: -big } })
          assert.deepEqual(await h.getAll('x'), { f: 7, big, neg: -big })
          assert.equal(await h.delete('op'), true)
          assert.equal(await h.delete('op'), false)
          assert.deepEqual(await h.getAll('op'), {})
          await assert.rejects(h.update('x', { incr: { f: 1.5 } }), RangeError)
          await assert.rejects(h.update('x', { max: { f: Number.NaN } }), RangeError)
          await assert.rejects(h.update('x', { incr: { ['k'.repeat(1025)]: 1 } }), RangeError)
          await assert.rejects(h.update('x', { incr: { f: 1 } }, -5), RangeError)
        }))

      test('a TTL expires the whole hash; each update with a TTL renews it', () =>
        withStore(async (s) => {
          const h = s.store.hashes
          await h.update('t', { incr: { a: 1 } }, W)
          await h.update('keep', { incr: { a: 1 } })
          assert.deepEqual(await h.getAll('t'), { a: 1 })
          await s.advance(W + slack(s))
          assert.deepEqual(await h.getAll('t'), {})
          assert.deepEqual(await h.getAll('keep'), { a: 1 })
          await h.update('t', { incr: { a: 1 } }, W * 50)
          assert.deepEqual(await h.getAll('t'), { a: 1 }, 'a new hash after expiry starts from 0')
        }))

      test(`a hash holds at most maxHashFields (${HASH_BOUND}); existing fields still update`, () =>
        withStore(async ({ store }) => {
          const h = store.hashes
          const first: Record<string, number> = {}
          for (let i = 0; i < HASH_BOUND - 2; i++) first[`f${i}`] = 1
          assert.equal(await h.update('full', { incr: first }), 0)
          const more: Record<string, number> = { f0: 1 }
          for (let i = 0; i < 5; i++) more[`g${i}`] = 1
          assert.equal(await h.update('full', { incr: more }), 3, 'two new fields fit, three are dropped')
          const all = await h.getAll('full')
          assert.equal(Object.keys(all).length, HASH_BOUND)
          assert.equal(all.f0, 2)
          assert.equal(await h.update('full', { max: { f1: 9, zz: 1 } }), 1)
          assert.equal((await h.getAll('full')).f1, 9)
        }))

      test('50 concurrent updates merge exactly', () =>
        withStore(async ({ store }) => {
          const h = store.hashes
          await Promise.all(
            Array.from({ length: 50 }, (_, i) =>
              h.update('c', { incr: { n: 1, [`k${i % 5}`]: 2 }, max: { hi: i }, min: { lo: 100 + i } }),
            ),
          )
          assert.deepEqual(await h.getAll('c'), {
            n: 50,
            k0: 20,
            k1: 20,
            k2: 20,
            k3: 20,
            k4: 20,
            hi: 49,
            lo: 100,
          })
        }))

      test('hostile field names round-trip exactly; hashes are their own key space', () =>
        withStore(async ({ store }) => {
          const h = store.hashes
          const fields = [...HOSTILE_MAP_KEYS, '__proto__', 'constructor', 'toString'].slice(0, HASH_BOUND)
          const incr: Record<string, number> = {}
          fields.forEach((f, i) => {
            Object.defineProperty(incr, f, { value: i + 1, enumerable: true })
          })
          await h.update('hostile', { incr })
          const back = await h.getAll('hostile')
          assert.equal(Object.getPrototypeOf(back), Object.prototype)
          assert.deepEqual(Object.keys(back).sort(), [...fields].sort())
          fields.forEach((f, i) => {
            assert.equal(
              Object.getOwnPropertyDescriptor(back, f)?.value,
              i + 1,
              JSON.stringify(f.slice(0, 20)),
            )
          })
          for (const key of HOSTILE_KEYS.slice(0, 12)) {
            await h.update(key, { incr: { n: 1 } })
            assert.deepEqual(await h.getAll(key), { n: 1 })
          }
          await store.counters.incr('space', 1, 60_000)
          await store.kv.set('space', 'v')
          assert.deepEqual(await h.getAll('space'), {})
          await h.update('space', { incr: { n: 1 } })
          assert.equal(await store.kv.get('space'), 'v')
          assert.equal((await store.counters.get('space')).value, 1)
        }))
    })

    describe('isolation', () => {
      test('stores with different key prefixes never share a key', async () => {
        const a = await make(`iso-a-${run}:`)
        const b = await make(`iso-b-${run}:`)
        try {
          await a.store.counters.incr('k', 7, 60_000)
          assert.equal((await b.store.counters.get('k')).value, 0)
          await a.store.kv.set('k', 'from-a')
          assert.equal(await b.store.kv.get('k'), undefined)
          assert.equal(await b.store.kv.setIfAbsent('k', 'from-b'), true)
          assert.equal(await a.store.kv.get('k'), 'from-a')
          await a.store.sets.add('k', 'm')
          assert.equal(await b.store.sets.size('k'), 0)
          const p = { emissionIntervalMs: 60_000, burst: 1, cost: 1 }
          assert.equal((await a.store.gcra.gcra('k', p)).allowed, true)
          assert.equal((await a.store.gcra.gcra('k', p)).allowed, false)
          assert.equal((await b.store.gcra.gcra('k', p)).allowed, true)
        } finally {
          await a.store.close()
          await b.store.close()
        }
      })

      test('counters, kv, sets and gcra are separate key spaces', () =>
        withStore(async ({ store }) => {
          await store.counters.incr('same', 3, 60_000)
          assert.equal(await store.kv.get('same'), undefined)
          await store.kv.set('same', 'text')
          await store.sets.add('same', 'member')
          assert.equal(
            (await store.gcra.gcra('same', { emissionIntervalMs: 1000, burst: 1, cost: 1 })).allowed,
            true,
          )
          assert.equal((await store.counters.incr('same', 1, 60_000)).value, 4)
          assert.equal(await store.kv.get('same'), 'text')
          assert.deepEqual(await store.sets.members('same', 10), ['member'])
        }))
    })

    describe('hostile keys and values', () => {
      test(`${HOSTILE_KEYS.length} hostile keys are stored, told apart and retrieved in every key space`, () =>
        withStore(async ({ store }) => {
          const keys = HOSTILE_KEYS
          assert.equal(new Set(keys).size, keys.length)
          for (const [i, key] of keys.entries()) {
            await store.kv.set(key, `value-${i}`)
            await store.counters.incr(key, i + 1, 60_000)
            await store.sets.add(key, `member-${i}`)
          }
          for (const [i, key] of keys.entries()) {
            const label = `key #${i} (${JSON.stringify(key.slice(0, 20))}, length ${key.length})`
            assert.equal(await store.kv.get(key), `value-${i}`, label)
            assert.equal((await store.counters.get(key)).value, i + 1, label)
            assert.deepEqual(await store.sets.members(key, 10), [`member-${i}`], label)
            assert.equal(await store.sets.has(key, `member-${i}`), true, label)
            const p = { emissionIntervalMs: 60_000, burst: 1, cost: 1 }
            assert.equal((await store.gcra.gcra(key, p)).allowed, true, label)
            assert.equal((await store.gcra.gcra(key, p)).allowed, false, label)
            assert.equal(await store.kv.setIfAbsent(key, 'other'), false, label)
          }
          for (const key of keys) assert.equal(await store.kv.delete(key), true)
          for (const key of keys) assert.equal(await store.kv.get(key), undefined)
        }))

      test(`${HOSTILE_VALUES.length} hostile values and members round-trip exactly`, () =>
        withStore(async ({ store }) => {
          for (const [i, value] of HOSTILE_VALUES.entries()) {
            await store.kv.set(`v${i}`, value)
            assert.equal(await store.kv.get(`v${i}`), value, `value #${i}`)
            assert.equal(await store.sets.add('members', value), true, `member #${i}`)
          }
          for (const value of HOSTILE_VALUES) assert.equal(await store.sets.has('members', value), true)
          assert.deepEqual((await store.sets.members('members', 1000)).sort(), [...HOSTILE_VALUES].sort())
          assert.equal(await store.sets.size('members'), HOSTILE_VALUES.length)
        }))
    })

    describe('maps (replicated)', () => {
      test('set, get, replace, delete; entries without TTL have no expiresAt', () =>
        withStore(async ({ store }) => {
          const m = store.maps
          assert.equal(await m.get('keys', 'a'), undefined)
          await m.set('keys', 'a', 'one')
          assert.deepEqual(await m.get('keys', 'a'), { value: 'one' })
          await m.set('keys', 'a', 'two')
          assert.deepEqual(await m.get('keys', 'a'), { value: 'two' })
          await m.set('keys', 'empty', '')
          assert.deepEqual(await m.get('keys', 'empty'), { value: '' })
          assert.equal(await m.delete('keys', 'a'), true)
          assert.equal(await m.delete('keys', 'a'), false)
          assert.equal(await m.delete('keys', 'never'), false)
          assert.equal(await m.delete('absent-map', 'a'), false)
          assert.equal(await m.get('keys', 'a'), undefined)
          // Maps are separate from each other and from the kv key space.
          await m.set('other', 'empty', 'x')
          assert.deepEqual(await m.get('keys', 'empty'), { value: '' })
          assert.equal(await store.kv.get('empty'), undefined)
          const snap = await m.snapshot('absent-map')
          assert.equal(snap.entries.size, 0)
          assert.equal(typeof snap.cursor, 'string')
        }))

      test('TTL: an entry expires (get, snapshot, delete); a set without TTL clears it', () =>
        withStore(async (s) => {
          const m = s.store.maps
          const before = Date.now()
          await m.set('bans', 'temp', 'v', W)
          await m.set('bans', 'kept', 'a', W)
          await m.set('bans', 'kept', 'b')
          const temp = await m.get('bans', 'temp')
          assert.equal(temp?.value, 'v')
          assert.equal(typeof temp?.expiresAt, 'number')
          if (!s.exactClock) {
            const exp = temp?.expiresAt ?? 0
            assert.ok(exp >= before + W - 50 && exp <= Date.now() + W + 50, `expiresAt ${exp}`)
          }
          assert.deepEqual(await m.get('bans', 'kept'), { value: 'b' })
          if (s.exactClock) {
            await s.advance(W - 1)
            assert.equal((await m.get('bans', 'temp'))?.value, 'v', 'expired early')
            await s.advance(1)
          } else {
            await s.advance(W + slack(s))
          }
          assert.equal(await m.get('bans', 'temp'), undefined)
          assert.deepEqual(sorted((await m.snapshot('bans')).entries), [['kept', { value: 'b' }]])
          assert.equal(await m.delete('bans', 'temp'), false, 'an expired entry did not exist')
          await m.set('bans', 'temp', 'again', W)
          assert.equal((await m.get('bans', 'temp'))?.value, 'again')
        }))

      test('snapshot + changes: a copy that follows the feed equals a fresh snapshot', () =>
        withStore(async (s) => {
          const m = s.store.maps
          await m.set('feed', 'a', '1')
          await m.set('feed', 'b', '2')
          await m.set('feed', 'c', '3')
          const snap = await m.snapshot('feed')
          assert.deepEqual(sorted(snap.entries), [
            ['a', { value: '1' }],
            ['b', { value: '2' }],
            ['c', { value: '3' }],
          ])
          const copy = new Map(snap.entries)
          const idle = await m.changes('feed', snap.cursor, 100)
          assert.deepEqual(idle, { reset: false, changes: [], cursor: snap.cursor })

          await m.set('feed', 'a', '1b')
          await m.delete('feed', 'b')
          await m.set('feed', 'd', '4', 60_000)
          await m.set('feed', 'e', 'gone')
          await m.delete('feed', 'e')
          await m.delete('feed', 'never') // not a change
          const r = await m.changes('feed', snap.cursor, 100)
          assert.equal(r.reset, false)
          if (r.reset) return
          const byKey = new Map(r.changes.map((c) => [c.key, c.entry]))
          assert.deepEqual(byKey.get('a'), { value: '1b' })
          assert.ok(byKey.has('b'), 'the delete of b is a change')
          assert.equal(byKey.get('b'), undefined)
          assert.equal(byKey.get('d')?.value, '4')
          assert.ok(byKey.has('e'))
          assert.equal(byKey.get('e'), undefined, 'a key set then deleted reads deleted')
          assert.equal(byKey.has('never'), false)
          assert.ok(r.changes.length <= 5)
          let cursor = applyChanges(copy, r)
          assert.deepEqual(sorted(copy), sorted((await m.snapshot('feed')).entries))
          assert.deepEqual(await m.changes('feed', cursor, 100), { reset: false, changes: [], cursor })

          // A change carries the key's current entry, not the value written then.
          await m.set('feed', 'x', 'old')
          await m.set('feed', 'x', 'new')
          const current = await m.changes('feed', cursor, 1)
          assert.equal(current.reset, false)
          if (current.reset) return
          assert.deepEqual(current.changes, [{ key: 'x', entry: { value: 'new' } }])
          cursor = applyChanges(copy, current)
          cursor = applyChanges(copy, await m.changes('feed', cursor, 100))
          assert.deepEqual(sorted(copy), sorted((await m.snapshot('feed')).entries))

          // An entry that expired is reported as gone.
          await m.set('feed', 'short', 'v', W)
          await s.advance(W + slack(s))
          const expired = await m.changes('feed', cursor, 100)
          assert.equal(expired.reset, false)
          if (expired.reset) return
          assert.deepEqual(expired.changes, [{ key: 'short', entry: undefined }])
        }))

      test('changes after many writes come in batches of at most `limit`, oldest first', () =>
        withStore(async ({ store }) => {
          const m = store.maps
          const snap = await m.snapshot('batches')
          const n = Math.min(MAP_BOUND, MAP_LOG) - 5
          for (let i = 0; i < n; i++) await m.set('batches', `k${String(i).padStart(3, '0')}`, `v${i}`)
          let cursor = snap.cursor
          const seen: string[] = []
          let calls = 0
          for (;;) {
            const r = await m.changes('batches', cursor, 7)
            assert.equal(r.reset, false)
            if (r.reset) return
            calls++
            assert.ok(r.changes.length <= 7, `batch of ${r.changes.length}`)
            if (r.changes.length === 0) {
              assert.equal(r.cursor, cursor)
              break
            }
            assert.notEqual(r.cursor, cursor)
            for (const c of r.changes) {
              assert.equal(c.entry?.value, `v${Number(c.key.slice(1))}`)
              seen.push(c.key)
            }
            cursor = r.cursor
            assert.ok(calls < 100)
          }
          assert.deepEqual(
            seen,
            Array.from({ length: n }, (_, i) => `k${String(i).padStart(3, '0')}`),
          )
          assert.equal(calls, Math.ceil(n / 7) + 1)
        }))

      test('a cursor the feed no longer reaches gives reset: trimmed log, garbage, from the future', () =>
        withStore(async ({ store }) => {
          const m = store.maps
          await m.set('trim', 'first', 'v')
          const snap = await m.snapshot('trim')
          // Redis trims its stream in whole nodes (MAXLEN ~): write well past the log length.
          const n = MAP_LOG * 2 + 300
          for (let i = 0; i < n; i++) await m.set('trim', `k${i % 10}`, String(i))
          assert.deepEqual(await m.changes('trim', snap.cursor, 10), { reset: true })
          const fresh = await m.snapshot('trim')
          assert.equal(fresh.entries.size, 11)
          assert.deepEqual(fresh.entries.get('k9'), { value: String(n - 1) })
          assert.deepEqual(await m.changes('trim', fresh.cursor, 10), {
            reset: false,
            changes: [],
            cursor: fresh.cursor,
          })
          const future = fresh.cursor.replace(/\d+$/, (d) => String(Number(d) + 1000))
          assert.notEqual(future, fresh.cursor)
          for (const bad of ['', 'garbage', '0', ':', 'x:1', '1-', '99999999999999-0', '%h', '\n', future]) {
            assert.deepEqual(await m.changes('trim', bad, 10), { reset: true }, JSON.stringify(bad))
          }
          // The empty map's cursor stays valid while nothing is written.
          const empty = await m.snapshot('never-written')
          assert.deepEqual(await m.changes('never-written', empty.cursor, 10), {
            reset: false,
            changes: [],
            cursor: empty.cursor,
          })
          await m.set('never-written', 'now', 'it is')
          const first = await m.changes('never-written', empty.cursor, 10)
          assert.equal(first.reset, false)
          if (first.reset) return
          assert.deepEqual(first.changes, [{ key: 'now', entry: { value: 'it is' } }])
        }))

      test(`a map holds at most maxMapEntries (${MAP_BOUND}); a new key into a full map is refused after expired entries went`, () =>
        withStore(async (s) => {
          const m = s.store.maps
          for (let i = 0; i < MAP_BOUND; i++) await m.set('full', `k${i}`, 'v')
          await assert.rejects(m.set('full', 'one-more', 'v'), RangeError)
          assert.equal(await m.get('full', 'one-more'), undefined)
          await m.set('full', 'k0', 'replaced') // replacing is not growing
          assert.deepEqual(await m.get('full', 'k0'), { value: 'replaced' })
          assert.equal((await m.snapshot('full')).entries.size, MAP_BOUND)
          assert.equal(await m.delete('full', 'k1'), true)
          await m.set('full', 'one-more', 'v')
          await assert.rejects(m.set('full', 'two-more', 'v'), RangeError)
          // Other maps have their own bound.
          await m.set('full-2', 'k', 'v')

          for (let i = 0; i < MAP_BOUND; i++) await m.set('expiring', `k${i}`, 'v', i < 5 ? W : 60_000)
          await assert.rejects(m.set('expiring', 'new', 'v'), RangeError)
          await s.advance(W + slack(s))
          for (let i = 0; i < 5; i++) await m.set('expiring', `new${i}`, 'v')
          await assert.rejects(m.set('expiring', 'new5', 'v'), RangeError)
          assert.equal((await m.snapshot('expiring')).entries.size, MAP_BOUND)
        }))

      test(`${HOSTILE_MAP_KEYS.length} hostile keys and ${HOSTILE_MAP_VALUES.length} hostile values round-trip through get, snapshot and changes`, () =>
        withStore(async ({ store }) => {
          const m = store.maps
          assert.equal(new Set(HOSTILE_MAP_KEYS).size, HOSTILE_MAP_KEYS.length)
          const start = await m.snapshot('hostile')
          const expected = new Map<string, MapEntry>()
          for (const [i, key] of HOSTILE_MAP_KEYS.entries()) {
            const value = HOSTILE_MAP_VALUES[i % HOSTILE_MAP_VALUES.length] as string
            await m.set('hostile', key, value)
            expected.set(key, { value })
          }
          for (const [i, value] of HOSTILE_MAP_VALUES.entries()) {
            await m.set('hostile', `value-${i}`, value)
            expected.set(`value-${i}`, { value })
          }
          for (const [key, entry] of expected) {
            const label = `key ${JSON.stringify(key.slice(0, 20))} (length ${key.length})`
            assert.deepEqual(await m.get('hostile', key), entry, label)
          }
          const snap = await m.snapshot('hostile')
          assert.deepEqual(sorted(snap.entries), sorted(expected))
          const copy = new Map<string, MapEntry>()
          let cursor = start.cursor
          for (let i = 0; i < 10; i++) cursor = applyChanges(copy, await m.changes('hostile', cursor, 20))
          assert.deepEqual(sorted(copy), sorted(expected))
          // Lookalikes stay apart: the lone surrogate is not U+FFFD, `%D800` is not the surrogate.
          assert.notDeepEqual(await m.get('hostile', '\uD800'), await m.get('hostile', '\uFFFD'))
          for (const key of HOSTILE_MAP_KEYS) assert.equal(await m.delete('hostile', key), true)
          assert.equal((await m.snapshot('hostile')).entries.size, HOSTILE_MAP_VALUES.length)
        }))

      test('bounds and invalid arguments reject with RangeError', () =>
        withStore(async ({ store }) => {
          const m = store.maps
          await assert.rejects(m.set('bounds', 'k'.repeat(1025), 'v'), RangeError)
          await assert.rejects(m.set('bounds', 'é'.repeat(513), 'v'), RangeError)
          await assert.rejects(m.set('bounds', '\uD800'.repeat(342), 'v'), RangeError) // 3 bytes each
          await assert.rejects(m.get('bounds', 'k'.repeat(1025)), RangeError)
          await assert.rejects(m.delete('bounds', 'k'.repeat(1025)), RangeError)
          await assert.rejects(m.set('bounds', 'k', 'v'.repeat(64 * 1024 + 1)), RangeError)
          await assert.rejects(m.set('bounds', 'k', 'é'.repeat(32 * 1024 + 1)), RangeError)
          for (const name of ['', 'A', 'a_b', 'a:b', '{a}', 'a b', 'x'.repeat(65), 'ü']) {
            await assert.rejects(m.set(name, 'k', 'v'), RangeError, JSON.stringify(name))
            await assert.rejects(m.get(name, 'k'), RangeError, JSON.stringify(name))
            await assert.rejects(m.snapshot(name), RangeError, JSON.stringify(name))
            await assert.rejects(m.changes(name, '', 10), RangeError, JSON.stringify(name))
          }
          await m.set('x'.repeat(64), 'k', 'v') // the longest name
          for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
            await assert.rejects(m.set('bounds', 'k', 'v', ttl), RangeError, String(ttl))
          }
          const snap = await m.snapshot('bounds')
          for (const limit of [0, -1, 1.5]) {
            await assert.rejects(m.changes('bounds', snap.cursor, limit), RangeError, String(limit))
          }
          assert.equal(await m.get('bounds', 'k'), undefined, 'a refused set wrote nothing')
        }))

      test('100 concurrent sets and deletes: snapshot, get and the followed feed agree', () =>
        withStore(async ({ store }) => {
          const m = store.maps
          const start = await m.snapshot('race')
          await Promise.all(
            Array.from({ length: 100 }, (_, i) =>
              i % 7 === 6 ? m.delete('race', `k${i % 10}`) : m.set('race', `k${i % 10}`, `v${i}`),
            ),
          )
          const snap = await m.snapshot('race')
          for (let k = 0; k < 10; k++) {
            assert.deepEqual(await m.get('race', `k${k}`), snap.entries.get(`k${k}`), `k${k}`)
          }
          const copy = new Map<string, MapEntry>()
          let cursor = start.cursor
          for (let i = 0; i < 10; i++) cursor = applyChanges(copy, await m.changes('race', cursor, 30))
          assert.deepEqual(sorted(copy), sorted(snap.entries))
        }))
    })

    test('after close, operations reject with StoreError', async () => {
      const { store } = await make()
      await store.close()
      await store.close() // idempotent
      const ops: [string, () => Promise<unknown>][] = [
        ['counters.incr', () => store.counters.incr('k', 1, W)],
        ['kv.get', () => store.kv.get('k')],
        ['sets.add', () => store.sets.add('k', 'm')],
        ['gcra', () => store.gcra.gcra('k', { emissionIntervalMs: 1, burst: 1, cost: 1 })],
        ['ping', () => store.ping()],
        ['maps.set', () => store.maps.set('m', 'k', 'v')],
        ['maps.get', () => store.maps.get('m', 'k')],
        ['maps.delete', () => store.maps.delete('m', 'k')],
        ['maps.snapshot', () => store.maps.snapshot('m')],
        ['maps.changes', () => store.maps.changes('m', '', 10)],
        ['hashes.update', () => store.hashes.update('h', { incr: { a: 1 } })],
        ['hashes.getAll', () => store.hashes.getAll('h')],
        ['hashes.delete', () => store.hashes.delete('h')],
      ]
      for (const [label, op] of ops) {
        await assert.rejects(
          op(),
          (err: unknown) => isStoreError(err) && err.code === 'STORE_UNAVAILABLE',
          label,
        )
      }
    })
  })
}

/** A real-clock `advance` for backends without a fake clock. */
export async function realAdvance(ms: number): Promise<void> {
  await sleep(ms)
}
