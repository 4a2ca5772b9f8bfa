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
import { isStoreError, type Store } from './types.js'

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

const SET_BOUND = 20
let seq = 0

/** Registers the contract suite for one backend. */
export function storeContract(name: string, makeStore: MakeStore, options: ContractOptions = {}): void {
  const W = options.windowMs ?? 200
  const run = `${process.pid.toString(36)}${Date.now().toString(36)}`

  async function make(prefix?: string): Promise<ContractSubject> {
    seq++
    return makeStore({ keyPrefix: prefix ?? `t${run}-${seq}:`, maxSetMembers: SET_BOUND })
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
