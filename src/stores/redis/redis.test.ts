/**
 * The Redis store against real redis-server processes started here (standalone, a one-node Cluster,
 * a Sentinel): the store contract, outages (killed, frozen, restarted server), shared state between
 * two clients, key layout and hash tags, and secrets kept out of logs and errors.
 * redis-server must be installed: without it these tests fail (CI installs it).
 */
import assert from 'node:assert/strict'
import { createConnection, createServer, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Value } from '@sinclair/typebox/value'
import calculateSlot from 'cluster-key-slot'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { createStore, StoresConfig } from '../config.js'
import { HOSTILE_KEYS, realAdvance, storeContract } from '../contract.js'
import { encodeKey } from '../keys.js'
import { isStoreError, type MapEntry, StoreError } from '../types.js'
import {
  createRedisStore,
  type KeyKind,
  MAX_GCRA_BATCH,
  parseRedisUrl,
  type RedisStoreOptions,
  redisKey,
  redisMapKeys,
} from './redis-store.js'
import { RedisServer, rawCommand, requireRedisServer } from './redis-server.js'

const silent = pino({ level: 'silent' })
const TIMEOUT_MS = 200
// Room for timer and scheduling delays on a loaded 2-core CI machine. What these tests catch is an
// operation that waits for a reconnect (seconds, or forever), not a few hundred ms of jitter.
const SLACK_MS = 400
const KINDS: KeyKind[] = ['c', 'k', 's', 'g']

/** A store connected and ready (operations before that fail fast, by design). */
async function readyStore(options: RedisStoreOptions) {
  // A generous deadline: these tests are not about timeouts, and a loaded machine answers slowly.
  const store = createRedisStore({ logger: silent, commandTimeoutMs: 5000, ...options })
  await store.whenReady(5000)
  return store
}

/** The hash tag Redis Cluster hashes: between the first `{` and the next `}`, when not empty. */
function hashTag(key: string): string | undefined {
  const open = key.indexOf('{')
  if (open < 0) return undefined
  const close = key.indexOf('}', open + 1)
  if (close < 0 || close === open + 1) return undefined
  return key.slice(open + 1, close)
}

/** Runs `op`, returns how long it took and whether it rejected with a StoreError. */
async function timed(op: () => Promise<unknown>): Promise<{ ms: number; storeError: boolean; ok: boolean }> {
  const t0 = performance.now()
  try {
    await op()
    return { ms: performance.now() - t0, storeError: false, ok: true }
  } catch (err) {
    return { ms: performance.now() - t0, storeError: isStoreError(err), ok: false }
  }
}

/** One of each kind of operation, on fresh keys. */
function everyOp(store: ReturnType<typeof createRedisStore>, tag: string): (() => Promise<unknown>)[] {
  return [
    () => store.counters.incr(`${tag}:c`, 1, 10_000),
    () => store.counters.get(`${tag}:c`),
    () => store.kv.get(`${tag}:k`),
    () => store.kv.set(`${tag}:k`, 'v', 10_000),
    () => store.kv.setIfAbsent(`${tag}:k2`, 'v'),
    () => store.sets.add(`${tag}:s`, 'm', 10_000),
    () => store.sets.has(`${tag}:s`, 'm'),
    () => store.sets.members(`${tag}:s`, 10),
    () => store.gcra.gcra(`${tag}:g`, { emissionIntervalMs: 100, burst: 5, cost: 1 }),
    () => store.maps.set('outage', tag, 'v'),
    () => store.maps.get('outage', tag),
    () => store.maps.snapshot('outage'),
    () => store.maps.changes('outage', 'AAAAAAAAAAAAAAAA:1-0', 10),
    () => store.ping(),
  ]
}

/** How many script calls (EVALSHA + EVAL) the server has run so far. */
async function scriptCalls(port: number): Promise<number> {
  const info = await rawCommand(port, ['INFO', 'commandstats'])
  let n = 0
  for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) n += Number(m[1])
  return n
}

test('redis-server is installed (the Redis store tests need it)', () => {
  assert.match(requireRedisServer(), /Redis server v=/)
})

describe('redis store (standalone)', () => {
  let server: RedisServer
  before(async () => {
    server = await RedisServer.start()
  })
  after(async () => {
    await server?.stop()
  })

  storeContract(
    'redis',
    async ({ keyPrefix, maxSetMembers, maxHashFields, maxMapEntries, mapLogLength }) => ({
      store: await readyStore({
        port: server.port,
        keyPrefix,
        maxSetMembers,
        maxHashFields,
        maxMapEntries,
        mapLogLength,
        commandTimeoutMs: 1000,
      }),
      advance: realAdvance,
      exactClock: false,
    }),
  )

  test('two clients on one Redis share counters, kv, sets and rate limits exactly', async () => {
    const a = await readyStore({ port: server.port, keyPrefix: 'shared:' })
    const b = await readyStore({ port: server.port, keyPrefix: 'shared:' })
    try {
      await a.counters.incr('fails:bob', 2, 10_000)
      assert.equal((await b.counters.get('fails:bob')).value, 2)
      assert.equal((await b.counters.incr('fails:bob', 1, 10_000)).value, 3)
      const mixed = await Promise.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).counters.incr('fails:race', 1, 10_000)),
      )
      assert.deepEqual(
        mixed.map((r) => r.value).sort((x, y) => x - y),
        Array.from({ length: 100 }, (_, i) => i + 1),
      )

      await a.sets.add('owner:alice', 'order-1')
      await b.sets.add('owner:alice', 'order-2')
      assert.deepEqual((await a.sets.members('owner:alice', 10)).sort(), ['order-1', 'order-2'])
      assert.equal(await b.sets.has('owner:alice', 'order-1'), true)

      const wins = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).kv.setIfAbsent('first', `v${i}`)),
      )
      assert.equal(wins.filter(Boolean).length, 1)

      const p = { emissionIntervalMs: 60_000, burst: 10, cost: 1 }
      const flood = await Promise.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).gcra.gcra('api', p)),
      )
      assert.equal(flood.filter((r) => r.allowed).length, 10)
    } finally {
      await a.close()
      await b.close()
    }
  })

  test(`the GCRA decisions of one turn travel together: 1,100 decisions → 3 script calls (at most ${MAX_GCRA_BATCH} each)`, async () => {
    const store = await readyStore({ port: server.port, keyPrefix: 'batch:' })
    try {
      await store.ping()
      const p = { emissionIntervalMs: 60_000, burst: 100, cost: 1 }
      const before = await scriptCalls(server.port)
      const results = await Promise.all(
        Array.from({ length: 1100 }, (_, i) => store.gcra.gcra(`user-${i % 10}`, p)),
      )
      const calls = (await scriptCalls(server.port)) - before
      assert.equal(calls, Math.ceil(1100 / MAX_GCRA_BATCH))
      // 110 decisions per key, a burst of 100: exactly 100 admitted per key, the first 100
      for (let k = 0; k < 10; k++) {
        const mine = results.filter((_, i) => i % 10 === k)
        assert.deepEqual(
          mine.map((r) => r.allowed),
          mine.map((_, j) => j < 100),
        )
      }
    } finally {
      await store.close()
    }
  })

  test('the commands of one turn leave the client in one socket write', async () => {
    const store = await readyStore({ port: server.port, keyPrefix: 'cork:' })
    try {
      await store.ping()
      const stream = (store.client as Redis).stream as Socket & {
        _write: (...a: unknown[]) => void
        _writev: (...a: unknown[]) => void
      }
      let writes = 0
      const w = stream._write
      const wv = stream._writev
      stream._write = function (...a: unknown[]) {
        writes++
        return w.apply(this, a)
      }
      stream._writev = function (...a: unknown[]) {
        writes++
        return wv.apply(this, a)
      }
      const ops = everyOp(store, 'cork')
        .slice(0, 9)
        .map((op) => op())
      await Promise.all(ops)
      assert.equal(writes, 1)
      stream._write = w
      stream._writev = wv
    } finally {
      await store.close()
    }
  })

  test('key layout: pc:<prefix><kind>:{<key>}; the hash tag is exactly the encoded key', async () => {
    const store = await readyStore({ port: server.port, keyPrefix: 'layout:' })
    const raw = new Redis({ port: server.port, lazyConnect: true })
    try {
      await raw.connect()
      await store.counters.incr('user:{alice}', 1, 10_000)
      await store.kv.set('user:{alice}', 'v')
      await store.sets.add('user:{alice}', 'm')
      await store.gcra.gcra('user:{alice}', { emissionIntervalMs: 1000, burst: 2, cost: 1 })
      const keys = (await raw.keys('pc:layout:*')).sort()
      assert.deepEqual(keys, [
        'pc:layout:c:{user:%7Balice%7D}',
        'pc:layout:g:{user:%7Balice%7D}',
        'pc:layout:k:{user:%7Balice%7D}',
        'pc:layout:s:{user:%7Balice%7D}',
      ])
      assert.equal(await raw.type('pc:layout:s:{user:%7Balice%7D}'), 'zset')
      for (const key of HOSTILE_KEYS) {
        const tags = KINDS.map((kind) => hashTag(redisKey('p:', kind, key)))
        assert.equal(tags[0], encodeKey(key), JSON.stringify(key.slice(0, 20)))
        for (const t of tags) assert.equal(t, tags[0])
      }
      assert.throws(() => createRedisStore({ keyPrefix: 'a{b' }), RangeError)
    } finally {
      raw.disconnect()
      await store.close()
    }
  })
})

describe('redis store: outages', () => {
  let server: RedisServer
  before(async () => {
    server = await RedisServer.start()
  })
  after(async () => {
    await server?.stop()
  })

  test(`killed server: every operation rejects with StoreError within ${TIMEOUT_MS} + ${SLACK_MS} ms; after a restart on the same port the same store works again within 2 s`, async (t) => {
    const store = await readyStore({ port: server.port, commandTimeoutMs: TIMEOUT_MS })
    try {
      assert.equal((await store.counters.incr('before', 1, 60_000)).value, 1)

      // In flight while the server dies, then while it is down.
      const killing = server.kill()
      const inFlight = await Promise.all(everyOp(store, 'inflight').map((op) => timed(op)))
      await killing
      const sequential: Awaited<ReturnType<typeof timed>>[] = []
      for (const op of everyOp(store, 'down')) sequential.push(await timed(op))
      const concurrent = await Promise.all(
        Array.from({ length: 5 }, (_, i) => everyOp(store, `down${i}`).map((op) => timed(op))).flat(),
      )
      const all = [...inFlight, ...sequential, ...concurrent]
      for (const r of all) {
        assert.equal(r.ok, false, 'an operation succeeded against a dead server')
        assert.equal(r.storeError, true, 'rejected with something else than a StoreError')
        assert.ok(r.ms <= TIMEOUT_MS + SLACK_MS, `took ${r.ms.toFixed(1)} ms`)
      }
      const worst = Math.max(...all.map((r) => r.ms))
      t.diagnostic(`server down: ${all.length} operations rejected, slowest ${worst.toFixed(1)} ms`)

      await sleep(1500) // long enough for the reconnect backoff to reach its cap
      await server.launch()
      const t0 = performance.now()
      let recovered = -1
      while (performance.now() - t0 < 2000) {
        const r = await timed(() => store.counters.incr('after', 1, 60_000))
        if (r.ok) {
          recovered = performance.now() - t0
          break
        }
        assert.ok(r.storeError && r.ms <= TIMEOUT_MS + SLACK_MS)
        await sleep(25)
      }
      assert.ok(recovered >= 0, 'the store did not recover within 2 s of the restart')
      t.diagnostic(`restarted: first success after ${recovered.toFixed(0)} ms`)
      // Scripts are reloaded (the restarted server has an empty script cache).
      for (const op of everyOp(store, 'back')) await op()
    } finally {
      await store.close()
    }
  })

  test(`frozen server (SIGSTOP): operations reject within ${TIMEOUT_MS} + ${SLACK_MS} ms, none hangs; after SIGCONT they succeed again`, async (t) => {
    if (!server) throw new Error('no server')
    const store = await readyStore({ port: server.port, commandTimeoutMs: TIMEOUT_MS })
    try {
      await store.ping()
      server.pause()
      const all: Awaited<ReturnType<typeof timed>>[] = []
      const t0 = performance.now()
      // 2 s of traffic: past the 1 s of silence after which the connection is dropped and reopened.
      while (performance.now() - t0 < 2000) {
        all.push(...(await Promise.all(everyOp(store, 'frozen').map((op) => timed(op)))))
      }
      for (const r of all) {
        assert.equal(r.storeError, true)
        assert.ok(r.ms <= TIMEOUT_MS + SLACK_MS, `took ${r.ms.toFixed(1)} ms`)
      }
      t.diagnostic(
        `server frozen: ${all.length} operations rejected, slowest ${Math.max(...all.map((r) => r.ms)).toFixed(1)} ms`,
      )
      server.resume()
      const t1 = performance.now()
      let recovered = -1
      while (performance.now() - t1 < 2000) {
        if ((await timed(() => store.ping())).ok) {
          recovered = performance.now() - t1
          break
        }
        await sleep(25)
      }
      assert.ok(recovered >= 0, 'no recovery within 2 s of SIGCONT')
      t.diagnostic(`resumed: first success after ${recovered.toFixed(0)} ms`)
      await store.counters.incr('after-freeze', 1, 10_000)
    } finally {
      server.resume()
      await store.close()
    }
  })

  test('an operation cut off by a reconnect is not replayed (a counter never counts twice)', async (t) => {
    const store = await readyStore({ port: server.port, keyPrefix: 'replay:', commandTimeoutMs: TIMEOUT_MS })
    try {
      await store.counters.incr('n', 1, 60_000)
      server.pause()
      assert.equal((await timed(() => store.counters.incr('n', 1, 60_000))).storeError, true)
      await sleep(1100)
      // Silence past 1 s: this timeout makes the store drop the connection and open a new one.
      assert.equal((await timed(() => store.ping())).storeError, true)
      await sleep(100)
      server.resume()
      await store.whenReady(3000)
      await sleep(100)
      // The increment that timed out ran at most once (the frozen server may still read it from the
      // old connection); ioredis's default (resend unanswered commands) would run it again.
      const value = (await store.counters.get('n')).value
      t.diagnostic(`counter after the cut-off increment: ${value}`)
      assert.ok(value === 1 || value === 2, `counted ${value - 1} times`)
    } finally {
      server.resume()
      await store.close()
    }
  })

  test('a proxy that accepts but never answers: operations fail fast; once it forwards, the store reconnects by itself', async (t) => {
    // Like a load balancer in front of a dead Redis: TCP connects, the handshake never completes.
    let forward = false
    const held: Socket[] = []
    const proxy = createServer((client) => {
      if (!forward) {
        held.push(client)
        client.on('error', () => {})
        return
      }
      const upstream = createConnection({ host: '127.0.0.1', port: server.port })
      client.pipe(upstream).pipe(client)
      client.on('error', () => upstream.destroy())
      upstream.on('error', () => client.destroy())
      held.push(client, upstream)
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    const address = proxy.address()
    const port = typeof address === 'object' && address ? address.port : 0
    const store = createRedisStore({ port, logger: silent, commandTimeoutMs: TIMEOUT_MS })
    try {
      const all: Awaited<ReturnType<typeof timed>>[] = []
      const t0 = performance.now()
      while (performance.now() - t0 < 1500) {
        all.push(...(await Promise.all(everyOp(store, 'blackhole').map((op) => timed(op)))))
        await sleep(20)
      }
      for (const r of all) {
        assert.equal(r.storeError, true)
        assert.ok(r.ms <= TIMEOUT_MS + SLACK_MS, `took ${r.ms.toFixed(1)} ms`)
      }
      forward = true
      const t1 = performance.now()
      let recovered = -1
      while (performance.now() - t1 < 3000) {
        if ((await timed(() => store.ping())).ok) {
          recovered = performance.now() - t1
          break
        }
        await sleep(25)
      }
      t.diagnostic(
        `black hole: ${all.length} operations rejected; forwarding: first success after ${recovered.toFixed(0)} ms`,
      )
      assert.ok(recovered >= 0, 'the store stayed on the stuck connection')
    } finally {
      await store.close()
      for (const sock of held) sock.destroy()
      await new Promise((resolve) => proxy.close(resolve))
    }
  })

  test('a store created while Redis is down fails fast, then connects by itself', async () => {
    const port = server.port
    await server.kill()
    const store = createRedisStore({ port, logger: silent, commandTimeoutMs: TIMEOUT_MS })
    try {
      const r = await timed(() => store.kv.get('k'))
      assert.equal(r.storeError, true)
      assert.ok(r.ms <= TIMEOUT_MS + SLACK_MS)
      await server.launch()
      await store.whenReady(3000)
      assert.equal(await store.kv.get('k'), undefined)
    } finally {
      await store.close()
    }
  })
})

describe('redis store: replicated maps', () => {
  let server: RedisServer
  let raw: Redis
  before(async () => {
    server = await RedisServer.start()
    raw = new Redis({ port: server.port, lazyConnect: true })
    await raw.connect()
  })
  after(async () => {
    raw?.disconnect()
    await server?.stop()
  })

  const sortedEntries = (m: Map<string, MapEntry>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

  test('key layout: a hash pc:<prefix>m:{<map>}:data and a stream …:log in one slot; fields are the escaped keys', async () => {
    const store = await readyStore({ port: server.port, keyPrefix: 'maplayout:' })
    try {
      await store.maps.set('api-keys', 'k|1', 'v|1', 60_000)
      await store.maps.set('api-keys', '%\uD800', 'x')
      await store.maps.set('api-keys', 'gone', 'x')
      await store.maps.delete('api-keys', 'gone')
      const keys = (await raw.keys('pc:maplayout:*')).sort()
      assert.deepEqual(keys, ['pc:maplayout:m:{api-keys}:data', 'pc:maplayout:m:{api-keys}:log'])
      assert.deepEqual(redisMapKeys('maplayout:', 'api-keys'), {
        data: keys[0],
        log: keys[1],
        meta: 'pc:maplayout:m:{api-keys}:meta',
        epoch: 'pc:maplayout:m:{api-keys}:epoch',
      })
      assert.equal(await raw.type(keys[0] as string), 'hash')
      assert.equal(await raw.type(keys[1] as string), 'stream')
      assert.equal(await raw.xlen(keys[1] as string), 4, 'one stream entry per set or delete')
      const hash = await raw.hgetall(keys[0] as string)
      assert.deepEqual(Object.keys(hash).sort(), ['%25%D800', 'k|1'])
      assert.match(hash['k|1'] as string, /^\d{13}\|v\|1$/)
      assert.equal(hash['%25%D800'], '0|x')
      assert.throws(() => redisMapKeys('p:', 'Bad{Name}'), RangeError)
    } finally {
      await store.close()
    }
  })

  test('two stores on one Redis, 400 concurrent sets and deletes: snapshots of both equal the final state', async () => {
    const a = await readyStore({ port: server.port, keyPrefix: 'mapshare:' })
    const b = await readyStore({ port: server.port, keyPrefix: 'mapshare:' })
    try {
      const start = await b.maps.snapshot('shared')
      await Promise.all(
        Array.from({ length: 400 }, (_, i) => {
          const s = i % 2 ? a : b
          const key = `k${i % 25}`
          return i % 9 === 8 ? s.maps.delete('shared', key) : s.maps.set('shared', key, `v${i}`)
        }),
      )
      const sa = await a.maps.snapshot('shared')
      const sb = await b.maps.snapshot('shared')
      assert.deepEqual(sortedEntries(sa.entries), sortedEntries(sb.entries))
      assert.equal(sa.cursor, sb.cursor)
      for (let k = 0; k < 25; k++) {
        assert.deepEqual(await a.maps.get('shared', `k${k}`), sb.entries.get(`k${k}`))
      }
      // A reader that followed the feed from before the writes reaches the same state.
      const copy = new Map<string, MapEntry>()
      let cursor = start.cursor
      for (let i = 0; i < 20; i++) {
        const r = await a.maps.changes('shared', cursor, 50)
        assert.equal(r.reset, false)
        if (r.reset) return
        for (const c of r.changes) {
          if (c.entry) copy.set(c.key, c.entry)
          else copy.delete(c.key)
        }
        cursor = r.cursor
      }
      assert.equal(cursor, sa.cursor)
      assert.deepEqual(sortedEntries(copy), sortedEntries(sa.entries))
    } finally {
      await a.close()
      await b.close()
    }
  })

  test('FLUSHALL: a cursor of the lost stream gives reset, whether or not the map was written again', async () => {
    const store = await readyStore({ port: server.port, keyPrefix: 'mapflush:' })
    try {
      await store.maps.set('m', 'a', '1')
      const before = await store.maps.snapshot('m')
      await raw.flushall()
      assert.deepEqual(await store.maps.changes('m', before.cursor, 10), { reset: true }, 'stream gone')
      await store.maps.set('m', 'b', '2')
      await store.maps.set('m', 'c', '3')
      assert.deepEqual(await store.maps.changes('m', before.cursor, 10), { reset: true }, 'another stream')
      const after = await store.maps.snapshot('m')
      assert.deepEqual(sortedEntries(after.entries), [
        ['b', { value: '2' }],
        ['c', { value: '3' }],
      ])
    } finally {
      await store.close()
    }
  })

  test('a snapshot of a map without a stream starts one (a marker the feed skips), so a later loss is seen', async () => {
    const store = await readyStore({ port: server.port, keyPrefix: 'mapmarker:', mapLogLength: 10 })
    const { data, log } = redisMapKeys('mapmarker:', 'm')
    try {
      const empty = await store.maps.snapshot('m')
      assert.equal(await raw.xlen(log), 1, 'the marker entry')
      await store.maps.set('m', 'a', '1')
      assert.deepEqual(await store.maps.changes('m', empty.cursor, 10), {
        reset: false,
        changes: [{ key: 'a', entry: { value: '1' } }],
        cursor: `${empty.cursor.split(':')[0]}:${(await raw.xrevrange(log, '+', '-', 'COUNT', 1))[0]?.[0]}`,
      })
      // The hash survived but its stream did not (evicted, deleted by hand): a reader that took its
      // snapshot then must still notice when Redis later loses the data.
      await raw.del(log)
      const orphan = await store.maps.snapshot('m')
      assert.deepEqual([...orphan.entries.keys()], ['a'])
      assert.notEqual(orphan.cursor, empty.cursor)
      assert.deepEqual(await store.maps.changes('m', orphan.cursor, 10), {
        reset: false,
        changes: [],
        cursor: orphan.cursor,
      })
      await raw.del(data, log) // a restart without persistence
      assert.deepEqual(await store.maps.changes('m', orphan.cursor, 10), { reset: true })
      // After the loss, a fresh snapshot starts a new stream and its feed continues.
      const fresh = await store.maps.snapshot('m')
      assert.deepEqual(await store.maps.changes('m', fresh.cursor, 10), {
        reset: false,
        changes: [],
        cursor: fresh.cursor,
      })
    } finally {
      await store.close()
    }
  })

  test('a cursor from another Redis server, or from a Redis restarted empty, gives reset', async () => {
    const other = await RedisServer.start()
    const store = await readyStore({ port: server.port, keyPrefix: 'mapother:' })
    const elsewhere = await readyStore({ port: other.port, keyPrefix: 'mapother:' })
    try {
      await elsewhere.maps.set('m', 'x', '1')
      const foreign = await elsewhere.maps.snapshot('m')
      await store.maps.set('m', 'y', '1')
      await store.maps.set('m', 'z', '1')
      assert.deepEqual(await store.maps.changes('m', foreign.cursor, 10), { reset: true })

      const before = await elsewhere.maps.snapshot('m')
      await other.kill()
      await other.launch()
      await elsewhere.whenReady(3000)
      assert.deepEqual(await elsewhere.maps.changes('m', before.cursor, 10), { reset: true })
      assert.equal((await elsewhere.maps.snapshot('m')).entries.size, 0)
    } finally {
      await store.close()
      await elsewhere.close()
      await other.stop()
    }
  })

  test('expired fields are removed lazily: by a snapshot, and by a set into a full map', async () => {
    const store = await readyStore({ port: server.port, keyPrefix: 'mapexpire:', maxMapEntries: 5 })
    const { data, meta } = redisMapKeys('mapexpire:', 'm')
    try {
      for (let i = 0; i < 3; i++) await store.maps.set('m', `short${i}`, 'v', 50)
      await store.maps.set('m', 'long', 'v')
      assert.equal(await raw.hlen(data), 4)
      await sleep(80)
      assert.deepEqual([...(await store.maps.snapshot('m')).entries.keys()], ['long'])
      assert.equal(await raw.hlen(data), 1, 'the snapshot dropped the expired fields')

      for (let i = 0; i < 4; i++) await store.maps.set('m', `short${i}`, 'v', 50)
      assert.equal(await raw.hlen(data), 5)
      await sleep(80)
      await store.maps.set('m', 'new', 'v') // full: expired fields go first
      assert.equal(await raw.hlen(data), 2)

      // The meta key: after a full scan, a lower bound of the earliest expiry, lowered by later sets.
      for (let i = 0; i < 3; i++) await store.maps.set('m', `forever${i}`, 'v')
      await assert.rejects(store.maps.set('m', 'refused', 'v'), RangeError)
      assert.equal(await raw.get(meta), '1000000000000000', 'nothing expires')
      await assert.rejects(store.maps.set('m', 'refused', 'v'), RangeError)
      const t0 = Date.now()
      await store.maps.set('m', 'forever0', 'v', 60_000)
      const floor = Number(await raw.get(meta))
      assert.ok(floor >= t0 + 60_000 - 50 && floor <= Date.now() + 60_000 + 50, `floor ${floor}`)
    } finally {
      await store.close()
    }
  })
})

describe('redis store: secrets', () => {
  const PASSWORD = 'pc-test-S3cret-pass'
  const WRONG = 'pc-test-Wr0ng-pass'
  let server: RedisServer
  before(async () => {
    server = await RedisServer.start({ args: ['--requirepass', PASSWORD] })
  })
  after(async () => {
    await server?.stop()
  })

  function capture() {
    const lines: string[] = []
    const logger = pino(
      { level: 'trace' },
      {
        write(line: string) {
          lines.push(line)
        },
      },
    )
    return { logger, lines }
  }

  test('AUTH with the configured password or a URL; a wrong one fails with StoreError; never in logs or errors', async () => {
    const { logger, lines } = capture()
    const good = createStore(
      Value.Default(StoresConfig, {
        backend: 'redis',
        redis: { port: server.port, password: PASSWORD },
      }) as StoresConfig,
      { logger },
    )
    const viaUrl = createRedisStore({ url: `redis://:${PASSWORD}@127.0.0.1:${server.port}/1`, logger })
    const bad = createRedisStore({ port: server.port, password: WRONG, logger, commandTimeoutMs: TIMEOUT_MS })
    try {
      const deadline = Date.now() + 3000
      while (Date.now() < deadline && !(await timed(() => good.ping())).ok) await sleep(25)
      await good.kv.set('k', 'v')
      assert.equal(await good.kv.get('k'), 'v')
      await viaUrl.whenReady(3000)
      assert.equal(await viaUrl.kv.get('k'), undefined, 'url /1 selects database 1')

      await sleep(300)
      const err = await bad.kv.get('k').then(
        () => undefined,
        (e: unknown) => e,
      )
      assert.ok(err instanceof StoreError)
      const errText = `${err.message} ${String(err.cause)} ${JSON.stringify(err)} ${JSON.stringify(err.cause)}`
      const logText = lines.join('\n')
      assert.match(logText, /redis store (connected|unavailable)/)
      for (const secret of [PASSWORD, WRONG]) {
        assert.ok(!logText.includes(secret), 'a password reached the log')
        assert.ok(!errText.includes(secret), 'a password reached an error')
      }
    } finally {
      await good.close()
      await viaUrl.close()
      await bad.close()
    }
  })

  test('URL parsing: scheme, credentials, db; errors never quote the URL', () => {
    assert.deepEqual(parseRedisUrl('rediss://user:p%40ss@cache.internal:6380/3'), {
      host: 'cache.internal',
      port: 6380,
      username: 'user',
      password: 'p@ss',
      db: 3,
      tls: true,
    })
    assert.deepEqual(parseRedisUrl('redis://[::1]'), { host: '::1', port: 6379, tls: false })
    assert.throws(
      () => parseRedisUrl('http://u:secret@x'),
      (e: Error) => !e.message.includes('secret'),
    )
    assert.throws(
      () => parseRedisUrl('redis://u:secret@x/abc'),
      (e: Error) => !e.message.includes('secret'),
    )
    assert.throws(
      () => parseRedisUrl('not a url secret'),
      (e: Error) => !e.message.includes('secret'),
    )
  })
})

describe('redis store (one-node Cluster)', () => {
  let server: RedisServer
  before(async () => {
    server = await RedisServer.start({
      args: ['--cluster-enabled', 'yes', '--cluster-announce-ip', '127.0.0.1'],
    })
    await rawCommand(server.port, ['CLUSTER', 'ADDSLOTSRANGE', '0', '16383'])
    const deadline = Date.now() + 10_000
    while (!(await rawCommand(server.port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok')) {
      if (Date.now() > deadline) throw new Error('cluster did not reach cluster_state:ok')
      await sleep(50)
    }
  })
  after(async () => {
    await server?.stop()
  })

  storeContract(
    'redis cluster',
    async ({ keyPrefix, maxSetMembers, maxHashFields, maxMapEntries, mapLogLength }) => ({
      store: await readyStore({
        cluster: [{ host: '127.0.0.1', port: server.port }],
        keyPrefix,
        maxSetMembers,
        maxHashFields,
        maxMapEntries,
        mapLogLength,
        commandTimeoutMs: 5000, // generous: a loaded machine answers slowly
      }),
      advance: realAdvance,
      exactClock: false,
    }),
  )

  test('GCRA decisions of one turn are batched per slot: one script call per slot, no CROSSSLOT', async () => {
    const store = await readyStore({ cluster: [{ host: '127.0.0.1', port: server.port }], keyPrefix: 'cb:' })
    try {
      const p = { emissionIntervalMs: 60_000, burst: 3, cost: 1 }
      // 50 clients whose keys fall in 5 slots (10 different keys per slot), 4 decisions each
      const bySlot = new Map<number, string[]>()
      const clients: string[] = []
      for (let j = 0; clients.length < 50; j++) {
        const c = `client-${j}`
        const slot = calculateSlot(redisKey('cb:', 'g', c))
        const group = bySlot.get(slot) ?? []
        group.push(c)
        bySlot.set(slot, group)
        if (group.length === 10 && clients.length < 50) clients.push(...group)
      }
      const keys = Array.from({ length: 200 }, (_, i) => clients[i % 50] as string)
      await store.ping()
      const before = await scriptCalls(server.port)
      const results = await Promise.all(keys.map((k) => store.gcra.gcra(k, p)))
      const calls = (await scriptCalls(server.port)) - before
      assert.equal(calls, 5)
      // 4 decisions per client, a burst of 3: the first 3 of each admitted
      for (let c = 0; c < 50; c++) {
        const mine = results.filter((_, i) => i % 50 === c)
        assert.deepEqual(
          mine.map((r) => r.allowed),
          [true, true, true, false],
        )
      }
    } finally {
      await store.close()
    }
  })

  test('every key of one logical item is in one slot (CLUSTER KEYSLOT), for hostile keys too', async () => {
    const raw = new Redis({ port: server.port, lazyConnect: true })
    try {
      await raw.connect()
      for (const key of HOSTILE_KEYS) {
        const slots = new Set<number>()
        for (const kind of KINDS)
          slots.add(Number(await raw.call('CLUSTER', 'KEYSLOT', redisKey('x:', kind, key))))
        assert.equal(slots.size, 1, JSON.stringify(key.slice(0, 20)))
      }
      for (const map of ['api-keys', 'a', 'x'.repeat(64)]) {
        const { data, log, meta } = redisMapKeys('x:', map)
        const slot = await raw.call('CLUSTER', 'KEYSLOT', data)
        assert.equal(await raw.call('CLUSTER', 'KEYSLOT', log), slot)
        assert.equal(await raw.call('CLUSTER', 'KEYSLOT', meta), slot)
      }
    } finally {
      raw.disconnect()
    }
  })
})

describe('redis store (Sentinel)', () => {
  let master: RedisServer
  let sentinel: RedisServer
  before(async () => {
    master = await RedisServer.start()
    sentinel = await RedisServer.start({
      sentinelConfig: `sentinel monitor pcmaster 127.0.0.1 ${master.port} 1\n`,
    })
  })
  after(async () => {
    await sentinel?.stop()
    await master?.stop()
  })

  test('finds the master through the sentinel and shares state with a direct client', async () => {
    const viaSentinel = await readyStore({
      sentinels: [{ host: '127.0.0.1', port: sentinel.port }],
      name: 'pcmaster',
    })
    const direct = await readyStore({ port: master.port })
    try {
      await viaSentinel.counters.incr('s', 4, 10_000)
      assert.equal((await direct.counters.get('s')).value, 4)
      assert.equal(
        (await viaSentinel.gcra.gcra('g', { emissionIntervalMs: 1000, burst: 1, cost: 1 })).allowed,
        true,
      )
      assert.equal(
        (await direct.gcra.gcra('g', { emissionIntervalMs: 1000, burst: 1, cost: 1 })).allowed,
        false,
      )
    } finally {
      await viaSentinel.close()
      await direct.close()
    }
  })
})
