import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Value } from '@sinclair/typebox/value'
import { pino } from 'pino'
import { createStore, StoresConfig } from '../config.js'
import { storeContract } from '../contract.js'
import { encodeKey } from '../keys.js'
import { createMemoryStore, MemoryStore } from './memory-store.js'

function fakeClock(start = 1_700_000_000_000) {
  let t = start
  return {
    now: () => t,
    advance: async (ms: number) => {
      t += ms
    },
  }
}

storeContract('memory', ({ maxSetMembers, maxHashFields, maxMapEntries, mapLogLength }) => {
  const clock = fakeClock()
  return {
    store: createMemoryStore({ now: clock.now, maxSetMembers, maxHashFields, maxMapEntries, mapLogLength }),
    advance: clock.advance,
    exactClock: true,
  }
})

describe('memory store: bounds', () => {
  test('LRU: the least recently used key goes first; reads count as use', async () => {
    const store = createMemoryStore({ maxKeys: 3 })
    await store.kv.set('a', '1')
    await store.kv.set('b', '2')
    await store.kv.set('c', '3')
    assert.equal(await store.kv.get('a'), '1') // a is now the most recently used
    await store.kv.set('d', '4')
    assert.equal(await store.kv.get('b'), undefined, 'b was the least recently used')
    assert.equal(await store.kv.get('a'), '1')
    assert.equal(await store.kv.get('c'), '3')
    assert.equal(await store.kv.get('d'), '4')
    await store.counters.incr('e', 1, 60_000) // counts too, in any key space
    assert.equal(await store.kv.get('a'), undefined)
    assert.deepEqual(store.stats(), { entries: 3, weight: 3 })
    await store.close()
  })

  test('100,000 distinct keys into a store of 1,000: never more than 1,000 held', async () => {
    const store = createMemoryStore({ maxKeys: 1000 })
    let peak = 0
    for (let i = 0; i < 100_000; i++) {
      const space = i % 4
      if (space === 0) await store.kv.set(`k${i}`, 'v', 60_000)
      else if (space === 1) await store.counters.incr(`k${i}`, 1, 60_000)
      else if (space === 2) await store.sets.add(`k${i}`, 'm', 60_000)
      else await store.gcra.gcra(`k${i}`, { emissionIntervalMs: 10, burst: 5, cost: 1 })
      peak = Math.max(peak, store.stats().weight)
    }
    assert.equal(peak, 1000)
    assert.deepEqual(store.stats(), { entries: 1000, weight: 1000 })
    // The most recent survive.
    assert.equal(await store.kv.get('k99996'), 'v')
    assert.equal(await store.kv.get('k0'), undefined)
    await store.close()
  })

  test('set members count toward maxKeys; one big set evicts whole older keys', async () => {
    const store = createMemoryStore({ maxKeys: 10, maxSetMembers: 8 })
    await store.kv.set('x', '1')
    await store.kv.set('y', '2')
    for (let i = 0; i < 8; i++) await store.sets.add('big', `m${i}`)
    assert.deepEqual(store.stats(), { entries: 3, weight: 10 })
    await store.sets.add('other', 'm')
    assert.equal(await store.kv.get('x'), undefined)
    assert.equal(await store.kv.get('y'), '2')
    assert.equal(store.stats().weight, 10)
    // A set never exceeds maxSetMembers, and the whole store never exceeds maxKeys.
    for (let i = 8; i < 100; i++) await store.sets.add('big', `m${i}`)
    assert.equal(await store.sets.size('big'), 8)
    assert.ok(store.stats().weight <= 10)
    await store.close()
  })

  test('maxSetMembers is capped by maxKeys', () => {
    const store = new MemoryStore({ maxKeys: 5, maxSetMembers: 100 })
    assert.equal(store.maxSetMembers, 5)
    void store.close()
  })

  test('invalid bounds are refused', () => {
    assert.throws(() => new MemoryStore({ maxKeys: 0 }), RangeError)
    assert.throws(() => new MemoryStore({ maxSetMembers: 1.5 }), RangeError)
    assert.throws(() => new MemoryStore({ sweepIntervalMs: -1 }), RangeError)
  })
})

describe('memory store: expiry', () => {
  test('sweep() removes expired entries and set members without them being read', async () => {
    const clock = fakeClock()
    const store = createMemoryStore({ now: clock.now })
    for (let i = 0; i < 100; i++) await store.kv.set(`short${i}`, 'v', 1000)
    for (let i = 0; i < 50; i++) await store.counters.incr(`c${i}`, 1, 1000)
    await store.kv.set('long', 'v', 60_000)
    await store.sets.add('mixed', 'short', 1000)
    await store.sets.add('mixed', 'long', 60_000)
    await store.gcra.gcra('g', { emissionIntervalMs: 100, burst: 5, cost: 5 }) // tat = now + 500 ms
    assert.deepEqual(store.stats(), { entries: 153, weight: 154 })
    await clock.advance(999)
    assert.equal(store.sweep(), 1, 'only the gcra key is past its reset')
    await clock.advance(1)
    assert.equal(store.sweep(), 151)
    assert.deepEqual(store.stats(), { entries: 2, weight: 2 })
    assert.deepEqual(await store.sets.members('mixed', 10), ['long'])
    await store.close()
  })

  test('the periodic sweep runs on its own (one unref’d timer)', async () => {
    const clock = fakeClock()
    const store = createMemoryStore({ now: clock.now, sweepIntervalMs: 20 })
    for (let i = 0; i < 10; i++) await store.kv.set(`k${i}`, 'v', 100)
    await clock.advance(100)
    const deadline = Date.now() + 2000
    while (store.stats().entries > 0 && Date.now() < deadline) await sleep(10)
    assert.equal(store.stats().entries, 0)
    await store.close()
  })

  test('an explicit nowMs cannot make gcra state expire early', async () => {
    const clock = fakeClock()
    const store = createMemoryStore({ now: clock.now })
    const p = { emissionIntervalMs: 1000, burst: 1, cost: 1, nowMs: 5 }
    assert.equal((await store.gcra.gcra('g', p)).allowed, true)
    store.sweep()
    assert.equal((await store.gcra.gcra('g', p)).allowed, false)
    await store.close()
  })
})

describe('memory store: replicated maps', () => {
  test('a cursor from another store instance (or another process) gives reset', async () => {
    const a = createMemoryStore()
    const b = createMemoryStore()
    await a.maps.set('m', 'k', 'v')
    await b.maps.set('m', 'k', 'v')
    const fromA = await a.maps.snapshot('m')
    const fromB = await b.maps.snapshot('m')
    assert.notEqual(fromA.cursor, fromB.cursor)
    assert.deepEqual(await b.maps.changes('m', fromA.cursor, 10), { reset: true })
    assert.deepEqual(await a.maps.changes('m', fromA.cursor, 10), {
      reset: false,
      changes: [],
      cursor: fromA.cursor,
    })
    await a.close()
    await b.close()
  })

  test('maps are outside maxKeys: a full LRU does not evict map entries, maps do not evict keys', async () => {
    const store = createMemoryStore({ maxKeys: 3, maxMapEntries: 1000 })
    for (let i = 0; i < 500; i++) await store.maps.set('m', `k${i}`, 'v')
    await store.kv.set('a', '1')
    await store.kv.set('b', '2')
    await store.kv.set('c', '3')
    for (let i = 0; i < 100; i++) await store.kv.set(`x${i}`, 'v')
    assert.equal((await store.maps.snapshot('m')).entries.size, 500)
    assert.deepEqual(store.stats(), { entries: 3, weight: 3 })
    assert.deepEqual(store.maps.sizes(), { m: 500 })
    await store.close()
  })

  test('the sweep drops expired map entries (not logged as changes)', async () => {
    const clock = fakeClock()
    const store = createMemoryStore({ now: clock.now })
    for (let i = 0; i < 10; i++) await store.maps.set('m', `short${i}`, 'v', 1000)
    await store.maps.set('m', 'long', 'v')
    const snap = await store.maps.snapshot('m')
    await clock.advance(1000)
    assert.equal(store.sweep(), 10)
    assert.deepEqual(store.maps.sizes(), { m: 1 })
    assert.deepEqual(await store.maps.changes('m', snap.cursor, 10), {
      reset: false,
      changes: [],
      cursor: snap.cursor,
    })
    await store.close()
  })

  test('the change log is a ring of mapLogLength: a reader exactly at its edge continues, one behind resets', async () => {
    const store = createMemoryStore({ mapLogLength: 5 })
    const start = await store.maps.snapshot('m')
    for (let i = 0; i < 5; i++) await store.maps.set('m', `k${i}`, 'v')
    const r = await store.maps.changes('m', start.cursor, 100)
    assert.equal(r.reset, false)
    assert.equal(r.reset ? 0 : r.changes.length, 5)
    await store.maps.set('m', 'k5', 'v')
    assert.deepEqual(await store.maps.changes('m', start.cursor, 100), { reset: true })
    const r2 = await store.maps.changes('m', r.reset ? '' : r.cursor, 100)
    assert.deepEqual(r2.reset ? [] : r2.changes, [{ key: 'k5', entry: { value: 'v' } }])
    await store.close()
  })

  test('invalid map bounds are refused', () => {
    assert.throws(() => new MemoryStore({ maxMapEntries: 0 }), RangeError)
    assert.throws(() => new MemoryStore({ mapLogLength: 1.5 }), RangeError)
  })
})

describe('stores config', () => {
  test('defaults: memory backend, 100,000 keys, 10,000 set members, Redis with a 200 ms deadline', () => {
    const config = Value.Default(StoresConfig, {}) as StoresConfig
    assert.equal(config.backend, 'memory')
    assert.equal(config.memory.maxKeys, 100_000)
    assert.equal(config.maxSetMembers, 10_000)
    assert.deepEqual(config.maps, { maxEntries: 100_000, logLength: 10_000 })
    assert.equal(config.redis.commandTimeoutMs, 200)
    assert.equal(config.redis.keyPrefix, '')
    assert.ok(
      Value.Check(StoresConfig, config),
      [...Value.Errors(StoresConfig, config)].map((e) => e.message).join(),
    )
  })

  test('every field has a description, and a default unless optional', () => {
    const walk = (schema: Record<string, unknown>, path: string, optional: boolean) => {
      assert.equal(typeof schema.description, 'string', `${path}: description`)
      if (!optional) assert.ok('default' in schema, `${path}: default`)
      const props = schema.properties as Record<string, Record<string, unknown>> | undefined
      if (!props) return
      const required = new Set((schema.required as string[] | undefined) ?? [])
      for (const [k, v] of Object.entries(props)) walk(v, `${path}.${k}`, !required.has(k))
    }
    walk(StoresConfig as unknown as Record<string, unknown>, 'stores', false)
  })

  test('the schema refuses unknown fields, braces in keyPrefix, a bad backend', () => {
    const bad = [
      { backend: 'etcd' },
      { redis: { keyPrefix: 'a{b}' } },
      { memory: { maxKeys: 0 } },
      { extra: 1 },
    ]
    for (const b of bad) {
      assert.equal(Value.Check(StoresConfig, Value.Default(StoresConfig, b)), false, JSON.stringify(b))
    }
  })

  test('createStore builds the memory store with the configured bounds and clock', async () => {
    const clock = fakeClock()
    const config = Value.Default(StoresConfig, {
      memory: { maxKeys: 50 },
      maxSetMembers: 7,
      maps: { maxEntries: 3, logLength: 100 },
    }) as StoresConfig
    const store = createStore(config, { logger: pino({ level: 'silent' }), now: clock.now })
    assert.ok(store instanceof MemoryStore)
    assert.equal(store.backend, 'memory')
    assert.equal(store.maxKeys, 50)
    assert.equal(store.maxSetMembers, 7)
    assert.equal(store.maxMapEntries, 3)
    await store.kv.set('k', 'v', 100)
    await clock.advance(100)
    assert.equal(await store.kv.get('k'), undefined)
    await store.close()
  })

  test('createStore refuses contradictory Redis settings', () => {
    const logger = pino({ level: 'silent' })
    const make = (redis: object) =>
      createStore(Value.Default(StoresConfig, { backend: 'redis', redis }) as StoresConfig, { logger })
    assert.throws(() => make({ sentinels: [{ host: 'a', port: 26379 }] }), /name: required/)
    assert.throws(
      () => make({ cluster: [{ host: 'a', port: 1 }], sentinels: [{ host: 'b', port: 2 }], name: 'm' }),
      /not both/,
    )
    assert.throws(() => make({ cluster: [{ host: 'a', port: 1 }], db: 2 }), /only database 0/)
    assert.throws(() => make({ url: 'http://x' }), /redis:\/\//)
  })
})

describe('key encoding', () => {
  test('never contains braces, never empty, bounded, injective on tricky pairs', () => {
    const pairs: [string, string][] = [
      ['', '%e'],
      ['{', '%7B'],
      ['%', '%25'],
      ['\uD800', '%D800'],
      ['\uD800', '\uFFFD'],
    ]
    for (const [a, b] of pairs) assert.notEqual(encodeKey(a), encodeKey(b), `${JSON.stringify(a)} vs ${b}`)
    for (const k of ['', '{}', '}{', 'a'.repeat(100_000), '🔥', '\uDC00x']) {
      const e = encodeKey(k)
      assert.ok(e.length > 0 && e.length <= 256)
      assert.doesNotMatch(e, /[{}]/)
      assert.doesNotMatch(e, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/)
    }
    assert.equal(encodeKey('plain:key'), 'plain:key')
    assert.equal(encodeKey('🔥'), '🔥')
  })
})
