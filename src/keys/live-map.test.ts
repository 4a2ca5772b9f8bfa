/**
 * The store-backed key set (what a gateway checks keys against with `source: store`) and the
 * records admin (what `portcullis keys --config` does), on a real in-memory store with a fake
 * clock: the same MapStore and mirror code a gateway runs, without Redis.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import pino from 'pino'
import { createMemoryStore } from '../stores/memory/memory-store.js'
import { RedisServer } from '../stores/redis/redis-server.js'
import { createRedisStore } from '../stores/redis/redis-store.js'
import type { Store } from '../stores/types.js'
import { fileKeyAdmin, MapKeyAdmin } from './admin.js'
import { acquireMapKeySet, MapKeySet } from './live-map.js'
import { decodeRecord, encodeRecord, KEYS_MAP, LAST_USED_MAP, tombstoneKey } from './map-records.js'
import { readStore } from './store.js'

function fakeClock(start = 1_700_000_000_000) {
  let t = start
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms
    },
  }
}

const logLines: string[] = []
const logger = pino({ level: 'debug' }, { write: (s: string) => logLines.push(s) })
const toClose: (() => Promise<void>)[] = []
after(async () => {
  for (const c of toClose.reverse()) await c()
})

/**
 * A memory store, an admin on it, and `open()` for the gateway-side key set: open it after the
 * writes a test needs in its first copy (or refresh() it after later writes).
 */
function setup(opts: { lastUsedFlushMs?: number } = {}) {
  const clock = fakeClock()
  const store = createMemoryStore({ now: clock.now })
  const admin = new MapKeyAdmin(store, 'the test map')
  let keys: MapKeySet | undefined
  const open = () => {
    keys = new MapKeySet(store, logger, { lastUsedFlushMs: opts.lastUsedFlushMs ?? 0, now: clock.now })
    return keys
  }
  toClose.push(async () => {
    await keys?.close()
    await store.close()
  })
  return { clock, store, admin, open }
}

const MAX_STALE = 300_000

describe('MapKeySet: the gateway side', () => {
  test('unavailable until the first copy arrives; then keys verify from the local copy', async () => {
    const { clock, admin, open } = setup()
    const made = await admin.create({ owner: 'svc', scopes: ['read'] }, clock.now())
    const keys = open()
    assert.equal(keys.available(clock.now(), MAX_STALE), false, 'fail closed before the first copy')
    await keys.ready()
    assert.equal(keys.available(clock.now(), MAX_STALE), true)
    const r = keys.verify(made.record.id, made.key, clock.now())
    assert.equal(r.ok, true)
    assert.equal(r.ok && r.key.owner, 'svc')
    assert.deepEqual(r.ok && r.key.scopes, ['read'])
  })

  test('unknown, mismatch, revoked (record or tombstone alone) and expired (fake clock)', async () => {
    const { clock, admin, open, store } = setup()
    const a = await admin.create({ owner: 'a', scopes: [] }, clock.now())
    const b = await admin.create({ owner: 'b', scopes: [] }, clock.now())
    const c = await admin.create(
      { owner: 'c', scopes: [], expiresAt: new Date(clock.now() + 60_000).toISOString() },
      clock.now(),
    )
    const keys = open()
    await keys.ready()
    const other = await new MapKeyAdmin(createMemoryStore({}), 'x').create({ owner: 'o', scopes: [] }, 0)
    assert.deepEqual(keys.verify(other.record.id, other.key, clock.now()), { ok: false, reason: 'unknown' })
    assert.deepEqual(keys.verify(a.record.id, b.key, clock.now()), { ok: false, reason: 'mismatch' })
    // Revoked through the admin: tombstone and record.
    await admin.revoke(a.record.id, clock.now())
    await keys.refresh()
    assert.deepEqual(keys.verify(a.record.id, a.key, clock.now()), { ok: false, reason: 'revoked' })
    // The race a tombstone exists for: a writer that read the record before the revocation
    // writes it back (active) after it. The key stays revoked.
    const stale = decodeRecord(b.record.id, encodeRecord(b.record))
    await admin.revoke(b.record.id, clock.now())
    await store.maps.set(KEYS_MAP, b.record.id, encodeRecord({ ...stale, rotatedTo: 'ZZZZZZZZ' }))
    await keys.refresh()
    assert.deepEqual(keys.verify(b.record.id, b.key, clock.now()), { ok: false, reason: 'revoked' })
    assert.equal((await admin.list()).find((x) => x.id === b.record.id)?.status, 'revoked', 'list agrees')
    // Expiry on the policy's clock.
    assert.equal(keys.verify(c.record.id, c.key, clock.now()).ok, true)
    clock.advance(60_000)
    assert.deepEqual(keys.verify(c.record.id, c.key, clock.now()), { ok: false, reason: 'expired' })
  })

  test('stale: past maxStale without a successful sync it is unavailable; a sync makes it available again', async () => {
    const { clock, open, store } = setup()
    const keys = open()
    await keys.ready()
    const synced = keys.lastSyncAt
    assert.equal(synced, clock.now(), 'lastSyncAt is on the policy clock')
    clock.advance(MAX_STALE)
    assert.equal(keys.available(clock.now(), MAX_STALE), true, 'exactly maxStale old: still available')
    clock.advance(1)
    assert.equal(keys.available(clock.now(), MAX_STALE), false)
    await keys.refresh()
    assert.equal(keys.available(clock.now(), MAX_STALE), true)
    // A backend that stops answering (closed here): the copy keeps serving until it is too old.
    await store.close()
    await keys.refresh().catch(() => undefined)
    clock.advance(MAX_STALE / 2)
    assert.equal(keys.available(clock.now(), MAX_STALE), true, 'the last copy serves meanwhile')
    clock.advance(MAX_STALE / 2 + 1)
    await keys.refresh().catch(() => undefined)
    assert.equal(keys.available(clock.now(), MAX_STALE), false, 'fail closed once it is too old')
  })

  test('an invalid record in the map is refused like an unknown id, and logged once', async () => {
    const { clock, admin, open, store } = setup()
    const a = await admin.create({ owner: 'a', scopes: [] }, clock.now())
    const bad = { ...a.record, owner: 'has space' }
    await store.maps.set(KEYS_MAP, a.record.id, JSON.stringify(bad))
    await store.maps.set(KEYS_MAP, 'AAAAAAAA', '{not json')
    const keys = open()
    await keys.ready()
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(keys.verify(a.record.id, a.key, clock.now()), { ok: false, reason: 'unknown' })
    }
    const logged = logLines.filter(
      (l) => l.includes('invalid api key record refused') && l.includes(a.record.id),
    )
    assert.equal(logged.length, 1)
    assert.equal(logged[0]?.includes('has space'), false, 'the content is not logged')
    // Fixed in the store: accepted again.
    await store.maps.set(KEYS_MAP, a.record.id, encodeRecord(a.record))
    await keys.refresh()
    assert.equal(keys.verify(a.record.id, a.key, clock.now()).ok, true)
  })

  test('last-used times: batched in memory, one write per key per flush, never per request', async () => {
    const { clock, admin, open, store } = setup({ lastUsedFlushMs: 3_600_000 })
    const a = await admin.create({ owner: 'a', scopes: [] }, clock.now())
    const keys = open()
    await keys.ready()
    for (let i = 0; i < 1000; i++) {
      assert.equal(keys.verify(a.record.id, a.key, clock.now()).ok, true)
      keys.touch(a.record.id, clock.now())
      clock.advance(1)
    }
    assert.equal(await store.maps.get(LAST_USED_MAP, a.record.id), undefined, 'nothing written per request')
    await keys.flushUsage()
    assert.equal((await store.maps.get(LAST_USED_MAP, a.record.id))?.value, String(clock.now() - 1))
    const listed = (await admin.list()).find((x) => x.id === a.record.id)
    assert.equal(listed?.lastUsedAt, new Date(clock.now() - 1).toISOString())
    // A failed flush keeps the time for the next one and never throws.
    keys.touch(a.record.id, clock.now())
    await store.close()
    await keys.flushUsage()
    assert.ok(logLines.some((l) => l.includes('cannot write api key last-used times')))
  })

  test('shared per store: routes and config generations acquire one set; the last release closes it', async () => {
    const clock = fakeClock()
    const store: Store = createMemoryStore({ now: clock.now })
    toClose.push(() => store.close())
    const one = acquireMapKeySet(store, logger, { lastUsedFlushMs: 0, now: clock.now })
    const two = acquireMapKeySet(store, logger, { lastUsedFlushMs: 0, now: clock.now })
    assert.equal(one.keys, two.keys)
    await one.release()
    await one.release() // idempotent
    assert.equal(two.keys.refs, 1)
    await two.release()
    const three = acquireMapKeySet(store, logger, { lastUsedFlushMs: 0, now: clock.now })
    assert.notEqual(three.keys, one.keys, 'a new one after the last release')
    await three.release()
  })
})

describe('MapKeyAdmin: what `portcullis keys --config` does', () => {
  test('create, list (sorted, last-used folded in), rotate and revoke: the same records as a file', async () => {
    const { clock, admin, store } = setup()
    const made = await admin.create({ owner: 'svc', scopes: ['a', 'b'], name: 'job' }, clock.now())
    assert.equal(made.key.slice(4, 12), made.record.id)
    const stored = await store.maps.get(KEYS_MAP, made.record.id)
    assert.ok(stored && !stored.value.includes(made.key.slice(12)), 'hash only, never the key')
    clock.advance(1000)
    const rot = await admin.rotate(made.record.id, { overlapMs: 3_600_000 }, clock.now())
    assert.equal(rot.oldUntil, new Date(clock.now() + 3_600_000).toISOString())
    const listed = await admin.list()
    assert.deepEqual(
      listed.map((k) => [k.id, k.rotatedTo, k.rotatedFrom]),
      [
        [made.record.id, rot.record.id, undefined],
        [rot.record.id, undefined, made.record.id],
      ],
    )
    assert.deepEqual(await admin.revoke(made.record.id, clock.now()), { owner: 'svc', already: false })
    assert.deepEqual(await admin.revoke(made.record.id, clock.now()), { owner: 'svc', already: true })
    assert.ok(await store.maps.get(KEYS_MAP, tombstoneKey(made.record.id)))
    await assert.rejects(admin.rotate(made.record.id, { overlapMs: 0 }, clock.now()), /is revoked/)
    await assert.rejects(admin.revoke('ZZZZ9999', clock.now()), /no key with id ZZZZ9999 in the test map/)
    // A tombstone without a revoked record (a crash between the two writes): rotate refuses, and
    // revoke completes the record.
    const c = await admin.create({ owner: 'c', scopes: [] }, clock.now())
    await store.maps.set(KEYS_MAP, tombstoneKey(c.record.id), new Date(clock.now()).toISOString())
    await assert.rejects(admin.rotate(c.record.id, { overlapMs: 0 }, clock.now()), /is revoked/)
    assert.equal((await admin.list()).find((x) => x.id === c.record.id)?.status, 'revoked')
    assert.deepEqual(await admin.revoke(c.record.id, clock.now()), { owner: 'c', already: true })
    assert.equal(
      decodeRecord(c.record.id, (await store.maps.get(KEYS_MAP, c.record.id))?.value ?? '').status,
      'revoked',
    )
  })

  test('import: idempotent, revocations carried over, a different hash refuses everything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-akmap-'))
    toClose.push(async () => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'keys.json')
    const fa = fileKeyAdmin(file)
    const k1 = await fa.create({ owner: 'one', scopes: [] }, Date.now())
    const k2 = await fa.create({ owner: 'two', scopes: [] }, Date.now())
    const { admin, open, clock } = setup()
    const first = await admin.importRecords(readStore(file).keys, clock.now())
    assert.deepEqual(first, { added: [k1.record.id, k2.record.id], present: [], revoked: [] })
    const again = await admin.importRecords(readStore(file).keys, clock.now())
    assert.deepEqual(again, { added: [], present: [k1.record.id, k2.record.id], revoked: [] })
    await fa.revoke(k2.record.id, Date.now())
    const third = await admin.importRecords(readStore(file).keys, clock.now())
    assert.deepEqual(third, { added: [], present: [k1.record.id], revoked: [k2.record.id] })
    const keys = open()
    await keys.ready()
    assert.equal(keys.verify(k1.record.id, k1.key, clock.now()).ok, true)
    assert.deepEqual(keys.verify(k2.record.id, k2.key, clock.now()), { ok: false, reason: 'revoked' })
    // Another key under an existing id: refused, and nothing else written.
    const k3 = await fa.create({ owner: 'three', scopes: [] }, Date.now())
    const records = readStore(file).keys.map((r) =>
      r.id === k1.record.id ? { ...r, hash: `${r.hash[0] === 'A' ? 'B' : 'A'}${r.hash.slice(1)}` } : r,
    )
    await assert.rejects(
      admin.importRecords(records, clock.now()),
      new RegExp(
        `refusing to import: the id ${k1.record.id} is already in the test map with a different hash`,
      ),
    )
    assert.equal(
      (await admin.list()).some((r) => r.id === k3.record.id),
      false,
      'nothing imported',
    )
  })
})

/** Polls `cond` every 20 ms until it holds; fails after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<number> {
  const t0 = performance.now()
  while (!cond()) {
    if (performance.now() - t0 > ms) assert.fail(`${what}: not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return performance.now() - t0
}

describe('MapKeySet on Redis: outages (a real redis-server; fake clock for staleness)', () => {
  test('Redis down at start: unavailable meanwhile (ready() rejected), keys work once it answers', async () => {
    const redis = await RedisServer.start()
    toClose.push(() => redis.stop())
    await redis.kill()
    const clock = fakeClock()
    const store = createRedisStore({
      port: redis.port,
      logger,
      connectTimeoutMs: 200,
      reconnectMaxDelayMs: 100,
    })
    const keys = new MapKeySet(store, logger, { lastUsedFlushMs: 0, now: clock.now })
    toClose.push(async () => {
      await keys.close()
      await store.close()
    })
    await assert.rejects(keys.ready())
    assert.equal(keys.available(clock.now(), MAX_STALE), false)
    await redis.launch()
    const admin = new MapKeyAdmin(store, 'redis')
    await store.whenReady(5000)
    const made = await admin.create({ owner: 'late', scopes: [] }, clock.now())
    await until(
      () => keys.verify(made.record.id, made.key, clock.now()).ok,
      5000,
      'the key after Redis came up',
    )
    assert.equal(keys.available(clock.now(), MAX_STALE), true, 'available although ready() had rejected')
  })

  test('Redis down while running: the last copy keeps serving (a revocation cannot arrive), then 503 past maxStale', async () => {
    const redis = await RedisServer.start()
    toClose.push(() => redis.stop())
    const clock = fakeClock()
    const store = createRedisStore({ port: redis.port, logger, reconnectMaxDelayMs: 100 })
    await store.whenReady(5000)
    const admin = new MapKeyAdmin(store, 'redis')
    const made = await admin.create({ owner: 'o', scopes: [] }, clock.now())
    const keys = new MapKeySet(store, logger, { lastUsedFlushMs: 0, now: clock.now })
    toClose.push(async () => {
      await keys.close()
      await store.close()
    })
    await keys.ready()
    await redis.kill()
    await assert.rejects(keys.refresh())
    const lastSync = keys.lastSyncAt
    clock.advance(MAX_STALE - (clock.now() - lastSync))
    assert.equal(keys.available(clock.now(), MAX_STALE), true, 'the last copy serves up to maxStale')
    assert.equal(keys.verify(made.record.id, made.key, clock.now()).ok, true)
    clock.advance(1)
    assert.equal(keys.available(clock.now(), MAX_STALE), false, 'then fail closed')
    // Back (empty: the test server keeps no data): the copy follows, the key is gone.
    await redis.launch()
    await until(() => keys.available(clock.now(), MAX_STALE), 5000, 'available after the restart')
    await until(() => !keys.verify(made.record.id, made.key, clock.now()).ok, 2000, 'the copy follows Redis')
  })
})
