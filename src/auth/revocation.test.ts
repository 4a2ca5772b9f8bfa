/**
 * The revocation module with the memory store: entry ids and records (hostile inputs), the shared
 * list through a real mirror of the `revocations` map, file and shared list combined, staleness
 * and the first snapshot (fail closed, or open with failOpen) on a fake clock.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { createMemoryStore } from '../stores/memory/memory-store.js'
import type { Store } from '../stores/types.js'
import {
  decodeRevocationRecord,
  encodeRevocationRecord,
  FIRST_SYNC_WAIT_MS,
  NOT_REVOKED,
  openRevocations,
  parseRevocationId,
  REVOCATION_UNAVAILABLE,
  REVOCATIONS_MAP,
  REVOKED,
  type Revocations,
  SharedRevocations,
} from './revocation.js'
import { tokenHash } from './token.js'

const HASH = tokenHash('a.b.c')

describe('revocation ids', () => {
  test('jti and sha256 ids parse; the hash is lower-cased', () => {
    assert.deepEqual(parseRevocationId('jti:abc'), { kind: 'jti', value: 'abc', id: 'jti:abc' })
    assert.deepEqual(parseRevocationId('jti:a:b/c'), { kind: 'jti', value: 'a:b/c', id: 'jti:a:b/c' })
    assert.deepEqual(parseRevocationId(`sha256:${HASH.toUpperCase()}`), {
      kind: 'sha256',
      value: HASH,
      id: `sha256:${HASH}`,
    })
    assert.equal(parseRevocationId(`jti:${'x'.repeat(1024)}`)?.value.length, 1024)
    assert.equal(parseRevocationId('jti:\u0000')?.value, '\u0000') // any jti a token can carry
  })

  test('anything else is not an id', () => {
    for (const id of [
      '',
      'jti:',
      'jti',
      'JTI:abc',
      ' jti:abc',
      'sha256:',
      `sha256:${HASH.slice(1)}`,
      `sha256:${HASH}0`,
      `sha256:${HASH.slice(1)}g`,
      `sha256: ${HASH}`,
      `jti:${'x'.repeat(1025)}`,
      'jti:a\ud800',
      'jti:\udc00b',
      'sha1:abc',
      '__proto__',
    ]) {
      assert.equal(parseRevocationId(id), undefined, JSON.stringify(id))
    }
  })

  test('records round-trip; unreadable values decode to what can be read', () => {
    const r = { reason: 'stolen', createdAt: 1_700_000_000_000 }
    assert.deepEqual(decodeRevocationRecord(encodeRevocationRecord(r)), r)
    assert.deepEqual(decodeRevocationRecord(encodeRevocationRecord({ createdAt: 5 })), { createdAt: 5 })
    for (const v of ['', 'not json', 'null', '[]', '42', '"x"', '{"createdAt":"yesterday","reason":7}']) {
      assert.deepEqual(decodeRevocationRecord(v), {}, v)
    }
    assert.deepEqual(decodeRevocationRecord('{"__proto__":{"polluted":1},"reason":"r"}'), { reason: 'r' })
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })
})

describe('revocations with the memory store', () => {
  let clock = 1_000_000
  const now = () => clock
  const logLines: string[] = []
  const logger = pino({ level: 'debug' }, { write: (s: string) => logLines.push(s) })
  let dir: string
  const opened: { close(): void }[] = []
  const stores: Store[] = []

  const store = () => {
    const s = createMemoryStore({ now })
    stores.push(s)
    return s
  }
  const open = (s: Store | undefined, settings: Partial<Parameters<typeof openRevocations>[0]> = {}) => {
    const r = openRevocations(
      { shared: true, maxStaleSeconds: 300, failOpen: false, ...settings },
      { store: s, logger, clock: now, where: 'unit' },
    )
    if (r) opened.push(r)
    return r
  }
  /** A second handle on the same mirror: its refresh() brings every handle of the store up to date. */
  const handle = (s: Store) => {
    const h = new SharedRevocations(s, { logger, now })
    opened.push(h)
    return h
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pc-revocation-'))
  })
  after(async () => {
    for (const o of opened) o.close()
    for (const s of stores) await s.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('nothing configured: no checker', () => {
    assert.equal(open(undefined), undefined)
    assert.equal(open(store(), { shared: false }), undefined)
  })

  test('fails closed until the first snapshot, then follows the map', async () => {
    const s = store()
    const rv = open(s) as Revocations
    assert.equal(rv.check('j1', HASH), REVOCATION_UNAVAILABLE)
    const wait = rv.whenReady()
    assert.ok(wait instanceof Promise)
    await wait
    assert.equal(rv.whenReady(), undefined)
    assert.equal(rv.check('j1', HASH), NOT_REVOKED)

    const h = handle(s)
    await s.maps.set(REVOCATIONS_MAP, 'jti:j1', encodeRevocationRecord({ createdAt: clock }), 60_000)
    await h.refresh()
    assert.equal(rv.check('j1', HASH), REVOKED)
    assert.equal(rv.check('j2', HASH), NOT_REVOKED)
    assert.equal(rv.check(undefined, HASH), NOT_REVOKED)

    await s.maps.set(REVOCATIONS_MAP, `sha256:${HASH}`, '{}', 60_000)
    await h.refresh()
    assert.equal(rv.check(undefined, HASH), REVOKED)
    assert.equal(rv.check('other', HASH), REVOKED)

    await s.maps.delete(REVOCATIONS_MAP, 'jti:j1')
    await s.maps.delete(REVOCATIONS_MAP, `sha256:${HASH}`)
    await h.refresh()
    assert.equal(rv.check('j1', HASH), NOT_REVOKED)
  })

  test('an entry stops revoking when it expires', async () => {
    const s = store()
    const rv = open(s) as Revocations
    const h = handle(s)
    await h.ready()
    await s.maps.set(REVOCATIONS_MAP, 'jti:short', '{}', 1000)
    await h.refresh()
    assert.equal(rv.check('short', HASH), REVOKED)
    clock += 1001
    await h.refresh()
    assert.equal(rv.check('short', HASH), NOT_REVOKED)
  })

  test('stale past maxStaleSeconds: unavailable (or not, with failOpen); known entries still revoke', async () => {
    const s = store()
    const strict = open(s, { maxStaleSeconds: 5 }) as Revocations
    const lenient = open(s, { maxStaleSeconds: 5, failOpen: true }) as Revocations
    const h = handle(s)
    await h.ready()
    await s.maps.set(REVOCATIONS_MAP, 'jti:known', '{}', 3_600_000)
    await h.refresh()
    logLines.length = 0
    clock += 5000
    assert.equal(strict.check('j', HASH), NOT_REVOKED, 'exactly maxStaleSeconds is not stale yet')
    clock += 1
    assert.equal(strict.check('j', HASH), REVOCATION_UNAVAILABLE)
    assert.equal(strict.check('j', HASH), REVOCATION_UNAVAILABLE)
    assert.equal(lenient.check('j', HASH), NOT_REVOKED)
    assert.equal(strict.check('known', HASH), REVOKED, 'a known revocation wins over staleness')
    assert.equal(lenient.check('known', HASH), REVOKED)
    const stale = logLines.filter((l) => l.includes('shared revocation list is stale'))
    assert.equal(stale.length, 2, 'one warning per checker, not per request')
    // A sync brings it back.
    await h.refresh()
    assert.equal(strict.check('j', HASH), NOT_REVOKED)
    assert.ok(logLines.some((l) => l.includes('in sync again')))
  })

  test('a store that is down never syncs: unavailable at once, or accepted with failOpen', async () => {
    const s = store()
    await s.close() // every operation rejects from now on
    const strict = open(s) as Revocations
    const lenient = open(s, { failOpen: true }) as Revocations
    const started = Date.now()
    await strict.whenReady() // the failed snapshot settles it
    assert.ok(Date.now() - started < 1500)
    assert.equal(strict.check('j', HASH), REVOCATION_UNAVAILABLE)
    assert.equal(lenient.check('j', HASH), NOT_REVOKED)
  })

  test('a store that hangs: whenReady gives up after FIRST_SYNC_WAIT_MS', async () => {
    const real = store()
    // The memory store, except that a snapshot never answers (as a frozen backend).
    const hanging = Object.assign(Object.create(real) as Store, {
      maps: { ...real.maps, snapshot: () => new Promise<never>(() => {}) },
    })
    const rv = open(hanging) as Revocations
    const started = Date.now()
    await rv.whenReady()
    const waited = Date.now() - started
    assert.ok(waited >= FIRST_SYNC_WAIT_MS - 50 && waited < FIRST_SYNC_WAIT_MS + 1000, `waited ${waited} ms`)
    assert.equal(rv.check('j', HASH), REVOCATION_UNAVAILABLE)
  })

  test('the file and the shared list combined; the file decides even before the first sync', async () => {
    const file = join(dir, 'revoked.txt')
    writeFileSync(file, `jti:from-file\nsha256:${tokenHash('filed')}\n`)
    const s = store()
    const rv = open(s, { file }) as Revocations
    assert.equal(rv.check('from-file', HASH), REVOKED)
    assert.equal(rv.check(undefined, tokenHash('filed')), REVOKED)
    assert.equal(rv.check('other', HASH), REVOCATION_UNAVAILABLE)
    await rv.whenReady()
    assert.equal(rv.check('other', HASH), NOT_REVOKED)
    const fileOnly = open(s, { file, shared: false }) as Revocations
    assert.equal(fileOnly.check('from-file', HASH), REVOKED)
    assert.equal(fileOnly.whenReady(), undefined)
    assert.throws(() => open(s, { file: join(dir, 'missing.txt') }), /ENOENT/)
  })
})
