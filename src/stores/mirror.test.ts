/**
 * Map mirrors against the memory store and real redis-server processes: propagation time, expiry,
 * read-your-writes, sharing and reference counting, feed resets (trimmed log, FLUSHALL, a Redis
 * restarted empty), outages (the last copy keeps serving) and timers that never hold the process.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { type Logger, pino } from 'pino'
import { createMemoryStore } from './memory/memory-store.js'
import { acquireMapMirror, type MapMirror, openMapMirrors } from './mirror.js'
import { createRedisStore, type RedisStoreOptions } from './redis/redis-store.js'
import { RedisServer } from './redis/redis-server.js'
import { isStoreError, type MapEntry, type MapStore, type Store } from './types.js'

const silent = pino({ level: 'silent' })

/** A logger that keeps its lines (parsed) for assertions. */
function capture(): { logger: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = []
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as { level: number; msg: string })
      },
    },
  )
  return { logger, lines }
}

/** Polls `cond` every 5 ms until it holds; returns the ms it took; fails after `timeoutMs`. */
async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const t0 = performance.now()
  for (;;) {
    if (cond()) return performance.now() - t0
    if (performance.now() - t0 > timeoutMs) assert.fail(`not within ${timeoutMs} ms: ${what}`)
    await sleep(5)
  }
}

function fakeClock(start = 1_700_000_000_000) {
  let t = start
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms
    },
  }
}

/**
 * The store, with its map calls counted and the most map calls ever in flight at once recorded
 * (the real store answers every call).
 */
function counted(store: Store) {
  const calls = { snapshot: 0, changes: 0, active: 0, maxActive: 0 }
  const track = <T>(p: Promise<T>): Promise<T> => {
    calls.active++
    calls.maxActive = Math.max(calls.maxActive, calls.active)
    return p.finally(() => {
      calls.active--
    })
  }
  const maps: MapStore = {
    set: (...a) => store.maps.set(...a),
    get: (...a) => store.maps.get(...a),
    delete: (...a) => store.maps.delete(...a),
    snapshot: (map) => {
      calls.snapshot++
      return track(store.maps.snapshot(map))
    },
    changes: (map, cursor, limit) => {
      calls.changes++
      return track(store.maps.changes(map, cursor, limit))
    },
  }
  const wrapped: Store = {
    backend: store.backend,
    counters: store.counters,
    kv: store.kv,
    sets: store.sets,
    gcra: store.gcra,
    maps,
    hashes: store.hashes,
    ping: () => store.ping(),
    close: () => store.close(),
  }
  return { store: wrapped, calls }
}

function copyOf(mirror: MapMirror): [string, MapEntry][] {
  return [...mirror.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

async function stateOf(store: Store, map: string): Promise<[string, MapEntry][]> {
  return [...(await store.maps.snapshot(map)).entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

describe('map mirror (memory store)', () => {
  test('ready → the snapshot; a write shows up within intervalMs (bounded poll); onChange fires', async () => {
    const store = createMemoryStore()
    await store.maps.set('keys', 'a', '1')
    await store.maps.set('keys', 'b', '2')
    let changes = 0
    const mirror = acquireMapMirror(store, 'keys', {
      logger: silent,
      intervalMs: 20,
      onChange: () => {
        changes++
      },
    })
    try {
      assert.equal(mirror.lastSyncAt, 0)
      await mirror.ready()
      assert.ok(mirror.lastSyncAt > 0)
      assert.deepEqual(mirror.get('a'), { value: '1' })
      assert.equal(mirror.has('b'), true)
      assert.equal(mirror.has('c'), false)
      assert.equal(mirror.get('c'), undefined)
      assert.equal(mirror.size, 2)
      assert.equal(changes, 1, 'the first snapshot is a change')
      await store.maps.set('keys', 'c', '3')
      await store.maps.delete('keys', 'a')
      const ms = await until(
        () => mirror.has('c') && !mirror.has('a'),
        20 + 500,
        'the write reached the mirror',
      )
      assert.deepEqual(copyOf(mirror), [
        ['b', { value: '2' }],
        ['c', { value: '3' }],
      ])
      assert.equal(changes, 2)
      assert.ok(ms < 20 + 500)
      // Entries are frozen: a caller cannot corrupt the copy other routes read.
      assert.throws(() => {
        ;(mirror.get('b') as { value: string }).value = 'x'
      }, TypeError)
    } finally {
      mirror.close()
      await store.close()
    }
  })

  test("expiry follows the mirror's clock (fake): get, has, size, entries; a poll prunes and notifies", async () => {
    const clock = fakeClock()
    const store = createMemoryStore({ now: clock.now })
    await store.maps.set('bans', 'short', 'v', 1000)
    await store.maps.set('bans', 'long', 'v', 5000)
    await store.maps.set('bans', 'forever', 'v')
    let changes = 0
    const mirror = acquireMapMirror(store, 'bans', {
      logger: silent,
      intervalMs: 60_000,
      now: clock.now,
      onChange: () => {
        changes++
      },
    })
    try {
      await mirror.ready()
      assert.deepEqual(mirror.get('short'), { value: 'v', expiresAt: clock.now() + 1000 })
      clock.advance(999)
      assert.equal(mirror.has('short'), true)
      assert.equal(mirror.size, 3)
      clock.advance(1)
      assert.equal(mirror.get('short'), undefined)
      assert.equal(mirror.has('short'), false)
      assert.equal(mirror.size, 2)
      assert.deepEqual(
        copyOf(mirror).map(([k]) => k),
        ['forever', 'long'],
      )
      assert.equal(changes, 1)
      await mirror.refresh()
      assert.equal(changes, 2, 'the poll that dropped an expired entry notified')
      clock.advance(4000)
      assert.equal(mirror.size, 1)
      assert.deepEqual(
        copyOf(mirror).map(([k]) => k),
        ['forever'],
      )
    } finally {
      mirror.close()
      await store.close()
    }
  })

  test('refresh() is read-your-writes; concurrent refreshes share polls and never run two at once', async () => {
    const { store, calls } = counted(createMemoryStore())
    const mirror = acquireMapMirror(store, 'm', { logger: silent, intervalMs: 60_000 })
    try {
      await mirror.ready()
      await store.maps.set('m', 'k', 'v')
      assert.equal(mirror.has('k'), false, 'no poll yet (60 s interval)')
      await mirror.refresh()
      assert.deepEqual(mirror.get('k'), { value: 'v' })

      const before = calls.changes
      await store.maps.set('m', 'k2', 'v')
      await Promise.all(Array.from({ length: 10 }, () => mirror.refresh()))
      assert.equal(mirror.has('k2'), true)
      assert.equal(calls.maxActive, 1, 'two store calls of one mirror overlapped')
      // One poll in flight plus one queued behind it, each: changes → k2, then an empty batch.
      assert.ok(calls.changes - before <= 4, `${calls.changes - before} changes() calls`)
      assert.equal(calls.snapshot, 1)
    } finally {
      mirror.close()
      await store.close()
    }
  })

  test('one mirror per (store, map), reference counted; the last close stops polling', async () => {
    const { store, calls } = counted(createMemoryStore())
    const a = acquireMapMirror(store, 'shared', { logger: silent, intervalMs: 10 })
    const b = acquireMapMirror(store, 'shared', { logger: silent, intervalMs: 10 })
    const other = acquireMapMirror(store, 'other', { logger: silent, intervalMs: 10 })
    try {
      await Promise.all([a.ready(), b.ready(), other.ready()])
      assert.deepEqual(openMapMirrors(store).sort(), ['other', 'shared'])
      assert.equal(calls.snapshot, 2, 'one snapshot per map, not per handle')
      await store.maps.set('shared', 'k', 'v')
      await a.refresh()
      assert.deepEqual(b.get('k'), { value: 'v' }, 'handles share one copy')
      assert.equal(other.has('k'), false)

      other.close()
      a.close()
      a.close() // idempotent: must not release b's reference
      assert.deepEqual(openMapMirrors(store), ['shared'])
      const polling = calls.changes
      await until(() => calls.changes >= polling + 3, 1000, 'b keeps polling')
      await store.maps.set('shared', 'k2', 'v')
      await until(() => b.has('k2'), 1000, 'b still follows the feed')

      b.close()
      assert.deepEqual(openMapMirrors(store), [])
      await sleep(30) // let a poll that was in flight finish
      const stopped = calls.changes
      await sleep(150) // 15 intervals
      assert.equal(calls.changes, stopped, 'a closed mirror still polls')
      await assert.rejects(b.refresh(), (err: unknown) => isStoreError(err))

      const again = acquireMapMirror(store, 'shared', { logger: silent, intervalMs: 10 })
      await again.ready()
      assert.equal(again.has('k2'), true)
      again.close()
    } finally {
      a.close()
      b.close()
      other.close()
      await store.close()
    }
  })

  test('a trimmed change log gives reset: the mirror re-snapshots and converges', async () => {
    const { store, calls } = counted(createMemoryStore({ mapLogLength: 5 }))
    const { logger, lines } = capture()
    for (let i = 0; i < 8; i++) await store.maps.set('m', `old${i}`, 'v')
    const mirror = acquireMapMirror(store, 'm', { logger, intervalMs: 60_000, batch: 3 })
    try {
      await mirror.ready()
      for (let i = 0; i < 30; i++) {
        if (i % 4 === 3) await store.maps.delete('m', `old${i % 8}`)
        else await store.maps.set('m', `k${i % 6}`, String(i))
      }
      await mirror.refresh()
      assert.equal(calls.snapshot, 2)
      assert.deepEqual(copyOf(mirror), await stateOf(store, 'm'))
      assert.equal(lines.filter((l) => /feed reset/.test(l.msg)).length, 1)
      // Small batches: 4 writes after the new snapshot come in two calls, then an empty one.
      const before = calls.changes
      for (let i = 0; i < 4; i++) await store.maps.set('m', `n${i}`, 'v')
      await mirror.refresh()
      assert.deepEqual(copyOf(mirror), await stateOf(store, 'm'))
      assert.equal(calls.changes - before, 3)
    } finally {
      mirror.close()
      await store.close()
    }
  })

  test('a failing onChange listener is logged and does not stop the mirror', async () => {
    const store = createMemoryStore()
    const { logger, lines } = capture()
    const mirror = acquireMapMirror(store, 'm', {
      logger,
      intervalMs: 60_000,
      onChange: () => {
        throw new Error('listener bug')
      },
    })
    try {
      await mirror.ready()
      await store.maps.set('m', 'k', 'v')
      await mirror.refresh()
      assert.equal(mirror.has('k'), true)
      assert.ok(lines.some((l) => l.level === 50 && /onChange listener failed/.test(l.msg)))
    } finally {
      mirror.close()
      await store.close()
    }
  })

  test('a closed store: the last copy keeps serving, one warning, refresh rejects with StoreError', async () => {
    const store = createMemoryStore()
    const { logger, lines } = capture()
    await store.maps.set('m', 'k', 'v')
    const mirror = acquireMapMirror(store, 'm', { logger, intervalMs: 10 })
    try {
      await mirror.ready()
      await store.close()
      await assert.rejects(mirror.refresh(), (err: unknown) => isStoreError(err))
      await sleep(100) // ~10 failed polls
      assert.deepEqual(mirror.get('k'), { value: 'v' })
      assert.equal(lines.filter((l) => l.level === 40).length, 1, 'one warning per outage')
    } finally {
      mirror.close()
    }
  })

  test('invalid arguments throw RangeError', () => {
    const store = createMemoryStore()
    assert.throws(() => acquireMapMirror(store, 'Bad Name', { logger: silent }), RangeError)
    assert.throws(() => acquireMapMirror(store, 'm', { logger: silent, intervalMs: 0 }), RangeError)
    assert.throws(() => acquireMapMirror(store, 'm', { logger: silent, batch: 1.5 }), RangeError)
    assert.deepEqual(openMapMirrors(store), [])
    void store.close()
  })

  test('an open mirror does not keep the process alive (unref’d timers)', async () => {
    const dir = fileURLToPath(new URL('.', import.meta.url))
    const script = `
      import { createMemoryStore } from ${JSON.stringify(`${dir}memory/memory-store.js`)}
      import { acquireMapMirror } from ${JSON.stringify(`${dir}mirror.js`)}
      import { pino } from 'pino'
      const store = createMemoryStore()
      await store.maps.set('m', 'k', 'v')
      const mirror = acquireMapMirror(store, 'm', { logger: pino({ level: 'silent' }), intervalMs: 10 })
      await mirror.ready()
      console.log(mirror.get('k').value)
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('../../../', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString()
    })
    const code = await Promise.race([
      new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c))),
      sleep(5000).then(() => 'timeout' as const),
    ])
    if (code === 'timeout') child.kill('SIGKILL')
    assert.equal(code, 0, `the child did not exit by itself: ${out}`)
    assert.equal(out.trim(), 'v')
  })
})

describe('map mirror (Redis)', () => {
  let server: RedisServer
  before(async () => {
    server = await RedisServer.start()
  })
  after(async () => {
    await server?.stop()
  })

  async function readyStore(options: RedisStoreOptions = {}) {
    const store = createRedisStore({ port: server.port, logger: silent, ...options })
    await store.whenReady(5000)
    return store
  }

  test('a write through one store reaches a mirror on another within intervalMs + one round trip', async (t) => {
    const INTERVAL = 100
    const writer = await readyStore({ keyPrefix: 'mirror-prop:' })
    const reader = await readyStore({ keyPrefix: 'mirror-prop:' })
    const mirror = acquireMapMirror(reader, 'api-keys', { logger: silent, intervalMs: INTERVAL })
    try {
      await mirror.ready()
      const latencies: number[] = []
      for (let i = 0; i < 20; i++) {
        await writer.maps.set('api-keys', `key${i}`, `record${i}`)
        latencies.push(
          await until(
            () => mirror.get(`key${i}`)?.value === `record${i}`,
            INTERVAL + 1900,
            `key${i} reached the mirror`,
          ),
        )
        if (i % 5 === 4) {
          await writer.maps.delete('api-keys', `key${i - 1}`)
          await until(() => !mirror.has(`key${i - 1}`), INTERVAL + 1900, 'the delete reached the mirror')
        }
      }
      const worst = Math.max(...latencies)
      t.diagnostic(
        `propagation over ${latencies.length} writes (interval ${INTERVAL} ms): ` +
          `median ${latencies.sort((a, b) => a - b)[10]?.toFixed(0)} ms, worst ${worst.toFixed(0)} ms`,
      )
      // A bound with room for a loaded 2-core CI machine: what it catches is a mirror that does not
      // poll on its interval (seconds late), not a few scheduler hiccups.
      assert.ok(worst <= INTERVAL + 900, `worst ${worst.toFixed(0)} ms`)
      assert.deepEqual(copyOf(mirror), await stateOf(writer, 'api-keys'))
    } finally {
      mirror.close()
      await writer.close()
      await reader.close()
    }
  })

  test('reset paths converge: the stream trimmed past the mirror, then FLUSHALL', async () => {
    const writer = await readyStore({ keyPrefix: 'mirror-reset:', mapLogLength: 10 })
    const reader = await readyStore({ keyPrefix: 'mirror-reset:' })
    const { logger, lines } = capture()
    const mirror = acquireMapMirror(reader, 'm', { logger, intervalMs: 60_000 })
    try {
      await writer.maps.set('m', 'first', 'v')
      await mirror.ready()
      for (let i = 0; i < 400; i++) {
        if (i % 10 === 9) await writer.maps.delete('m', `k${i % 13}`)
        else await writer.maps.set('m', `k${i % 13}`, String(i))
      }
      await mirror.refresh()
      assert.deepEqual(copyOf(mirror), await stateOf(writer, 'm'))
      assert.equal(lines.filter((l) => /feed reset/.test(l.msg)).length, 1)

      await writer.client.flushall()
      await writer.maps.set('m', 'after-flush', 'v')
      await mirror.refresh()
      assert.deepEqual(copyOf(mirror), [['after-flush', { value: 'v' }]])
      assert.equal(lines.filter((l) => /feed reset/.test(l.msg)).length, 2)
    } finally {
      mirror.close()
      await writer.close()
      await reader.close()
    }
  })

  test('Redis killed: the mirror keeps serving its copy (one warning); restarted empty: it converges (one recovery line)', async (t) => {
    const writer = await readyStore({ keyPrefix: 'mirror-outage:' })
    const reader = await readyStore({ keyPrefix: 'mirror-outage:' })
    const { logger, lines } = capture()
    const mirror = acquireMapMirror(reader, 'm', { logger, intervalMs: 50 })
    try {
      await writer.maps.set('m', 'before', 'v')
      await mirror.ready()
      assert.equal(mirror.has('before'), true)
      await server.kill()
      await assert.rejects(mirror.refresh(), (err: unknown) => isStoreError(err))
      await sleep(500) // ~10 failed polls
      assert.deepEqual(mirror.get('before'), { value: 'v' }, 'the last copy keeps serving')
      assert.equal(lines.filter((l) => l.level === 40).length, 1, 'one warning per outage')
      const syncedAt = mirror.lastSyncAt

      await server.launch()
      const t0 = performance.now()
      await until(
        () => reader.client.status === 'ready' && writer.client.status === 'ready',
        5000,
        'reconnect',
      )
      await writer.maps.set('m', 'after', 'v')
      await until(() => mirror.has('after') && !mirror.has('before'), 3000, 'the mirror converged').catch(
        (err: unknown) => {
          console.log(lines)
          throw err
        },
      )
      t.diagnostic(`converged ${(performance.now() - t0).toFixed(0)} ms after the restart`)
      assert.deepEqual(copyOf(mirror), [['after', { value: 'v' }]])
      assert.ok(mirror.lastSyncAt > syncedAt)
      assert.equal(lines.filter((l) => /store answers again/.test(l.msg)).length, 1)
      assert.equal(lines.filter((l) => l.level === 40).length, 1)
    } finally {
      mirror.close()
      await writer.close()
      await reader.close()
    }
  })

  test('Redis down at start: ready() rejects with StoreError; the mirror syncs by itself once Redis is up', async () => {
    await server.kill()
    const store = createRedisStore({ port: server.port, logger: silent, keyPrefix: 'mirror-late:' })
    const mirror = acquireMapMirror(store, 'm', { logger: silent, intervalMs: 50 })
    try {
      await assert.rejects(mirror.ready(), (err: unknown) => isStoreError(err))
      assert.equal(mirror.lastSyncAt, 0)
      assert.equal(mirror.size, 0)
      await server.launch()
      await until(() => mirror.lastSyncAt > 0, 5000, 'first snapshot after Redis came up')
      await mirror.ready()
      await store.maps.set('m', 'k', 'v')
      await until(() => mirror.has('k'), 1000, 'the write reached the mirror')
    } finally {
      mirror.close()
      await store.close()
    }
  })
})
