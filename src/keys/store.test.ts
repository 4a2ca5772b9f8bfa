import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import pino from 'pino'
import { checksum, generateKey, parseKey } from './format.js'
import { acquireKeyStore } from './live.js'
import {
  emptyStore,
  hashFields,
  type KeyRecord,
  KeyStoreError,
  keyState,
  MAX_STORE_BYTES,
  matches,
  mergeUsage,
  readStore,
  readUsage,
  type StoreData,
  serializeStore,
  usageFile,
  withStoreLock,
  writeStore,
} from './store.js'
import { KeySet } from './verify.js'

const dirs: string[] = []
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pc-keys-'))
  dirs.push(d)
  return d
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function record(over: Partial<KeyRecord> = {}): { key: string; record: KeyRecord } {
  const g = generateKey()
  return {
    key: g.key,
    record: {
      id: g.id,
      owner: 'svc-test',
      scopes: ['read'],
      createdAt: new Date().toISOString(),
      status: 'active',
      ...hashFields(g.key),
      ...over,
    },
  }
}

function storeWith(...records: KeyRecord[]): StoreData {
  return { ...emptyStore(), keys: records }
}

function errorOf(fn: () => unknown): KeyStoreError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof KeyStoreError, String(err))
    return err
  }
  assert.fail('expected a KeyStoreError')
}

test('round trip: what is written is read back, and only the right key matches', () => {
  const file = join(dir(), 'keys.json')
  const a = record({ name: 'first key', expiresAt: '2099-01-01T00:00:00.000Z' })
  const b = record({ owner: 'alice@example.com', scopes: [] })
  writeStore(file, storeWith(a.record, b.record))
  const back = readStore(file)
  assert.deepEqual(back, storeWith(a.record, b.record))
  assert.equal(matches(back.keys[0] as KeyRecord, a.key), true)
  assert.equal(matches(back.keys[0] as KeyRecord, b.key), false)
  assert.equal(matches(back.keys[1] as KeyRecord, b.key), true)
  assert.equal(readFileSync(file, 'utf8'), serializeStore(back), 'canonical form is stable')
})

test('hash only on disk: neither the key nor its secret part appears in the file', () => {
  const file = join(dir(), 'keys.json')
  const recs = Array.from({ length: 20 }, () => record())
  writeStore(file, storeWith(...recs.map((r) => r.record)))
  const text = readFileSync(file, 'utf8')
  for (const { key } of recs) {
    assert.equal(text.includes(key), false)
    assert.equal(text.includes(key.slice(4, 34)), false, 'the random part')
    assert.equal(text.includes(key.slice(12, 34)), false, 'the secret part after the id')
    assert.equal(text.includes(Buffer.from(key).toString('base64')), false)
    assert.equal(text.includes(Buffer.from(key).toString('hex')), false)
  }
  // Two records of the same key get different salts and hashes.
  const k = generateKey().key
  const h1 = hashFields(k)
  const h2 = hashFields(k)
  assert.notEqual(h1.salt, h2.salt)
  assert.notEqual(h1.hash, h2.hash)
})

test('files are written with mode 0600, whatever the umask, and replace rather than edit', () => {
  const d = dir()
  const file = join(d, 'keys.json')
  const old = process.umask(0)
  try {
    writeStore(file, storeWith(record().record))
    assert.equal(statSync(file).mode & 0o777, 0o600)
    const ino = statSync(file).ino
    writeStore(file, storeWith(record().record))
    assert.equal(statSync(file).mode & 0o777, 0o600)
    assert.notEqual(statSync(file).ino, ino, 'a new inode: written by rename')
    mergeUsage(file, new Map([['AbCd0123', Date.now()]]))
    assert.equal(statSync(usageFile(file)).mode & 0o777, 0o600)
  } finally {
    process.umask(old)
  }
  assert.deepEqual(readdirSync(d).sort(), ['keys.json', 'keys.json.last-used.json'], 'no temp files left')
})

test('atomic write: a concurrent reader never sees a partial file', async () => {
  const d = dir()
  const file = join(d, 'keys.json')
  const small = storeWith(record().record)
  const big = storeWith(...Array.from({ length: 400 }, () => record().record)) // ~120 KB
  writeStore(file, small)
  const reader = spawn(
    process.execPath,
    [
      '-e',
      `const fs = require('node:fs'); let ok = 0, bad = 0; const end = Date.now() + 1500;
       while (Date.now() < end) { try { JSON.parse(fs.readFileSync(process.argv[1], 'utf8')); ok++ } catch (e) { bad++ } }
       process.stdout.write(JSON.stringify({ ok, bad }))`,
      file,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let out = ''
  reader.stdout.on('data', (c: Buffer) => {
    out += c.toString()
  })
  const done = new Promise((r) => reader.once('exit', r))
  let writes = 0
  const end = Date.now() + 1200
  while (Date.now() < end) {
    writeStore(file, writes % 2 ? big : small)
    writes++
    await new Promise((r) => setImmediate(r))
  }
  await done
  const { ok, bad } = JSON.parse(out) as { ok: number; bad: number }
  assert.ok(writes > 20, `writes: ${writes}`)
  assert.ok(ok > 20, `reads: ${ok}`)
  assert.equal(bad, 0, 'every read parsed')
  assert.deepEqual(
    readdirSync(d).filter((n) => n !== 'keys.json'),
    [],
    'no temp files left',
  )
})

test('a failed write leaves the old file and no temp file', () => {
  const d = dir()
  const file = join(d, 'keys.json')
  mkdirSync(file) // the target is a directory: rename fails
  const e = errorOf(() => writeStore(file, storeWith(record().record)))
  assert.match(e.message, /cannot write/)
  assert.deepEqual(readdirSync(d), ['keys.json'])
  const e2 = errorOf(() => writeStore(join(d, 'missing-dir', 'keys.json'), emptyStore()))
  assert.equal(e2.code, 'ENOENT')
})

test('bounded: a store over the size limit is refused before it is parsed', () => {
  const file = join(dir(), 'keys.json')
  writeFileSync(file, Buffer.alloc(MAX_STORE_BYTES + 1, 0x20))
  const e = errorOf(() => readStore(file))
  assert.match(e.message, /over the limit of 16777216/)
  assert.equal(e.code, 'E2BIG')
  const huge = storeWith(...new Array<KeyRecord>(100_000).fill(record().record)) // ~25 MB serialized
  const e2 = errorOf(() => writeStore(file, huge))
  assert.match(e2.message, /over the limit/)
})

test('invalid stores are refused with a message that shows no hash, salt or value', () => {
  const d = dir()
  const file = join(d, 'keys.json')
  const good = record()
  const cases: [string, RegExp][] = [
    ['{', /not valid JSON/],
    ['[]', /invalid at/],
    [
      JSON.stringify({ version: 2, hash: 'sha256-salted', keys: [] }),
      /version 2; this portcullis reads version 1/,
    ],
    [JSON.stringify({ version: 1, hash: 'sha1', keys: [] }), /invalid at \/hash/],
    [JSON.stringify(storeWith({ ...good.record, extra: 1 } as KeyRecord)), /invalid at/],
    [JSON.stringify(storeWith({ ...good.record, hash: 'short' })), /invalid at \/keys\/0\/hash/],
    [JSON.stringify(storeWith({ ...good.record, owner: 'has space' })), /\/keys\/0\/owner/],
    [
      JSON.stringify(storeWith({ ...good.record, status: 'paused' } as unknown as KeyRecord)),
      /\/keys\/0\/status/,
    ],
    [JSON.stringify(storeWith({ ...good.record, createdAt: '2024-13-45T99:99:99Z' })), /not a date/],
    [JSON.stringify(storeWith(good.record, good.record)), /has the id .{8} twice/],
  ]
  for (const [text, re] of cases) {
    writeFileSync(file, text)
    const e = errorOf(() => readStore(file))
    assert.match(e.message, re)
    assert.equal(e.message.includes(good.record.hash), false)
    assert.equal(e.message.includes(good.record.salt), false)
  }
  const missing = errorOf(() => readStore(join(d, 'nope.json')))
  assert.equal(missing.code, 'ENOENT')
  assert.deepEqual(readStore(join(d, 'nope.json'), { missingOk: true }), emptyStore())
})

test('KeySet.verify: ok, unknown, mismatch, revoked, expired', () => {
  const now = Date.now()
  const ok = record({ scopes: ['a', 'b'] })
  const revoked = record({ status: 'revoked', revokedAt: new Date(now).toISOString() })
  const expired = record({ expiresAt: new Date(now - 1).toISOString() })
  const future = record({ expiresAt: new Date(now + 60_000).toISOString() })
  const set = new KeySet(storeWith(ok.record, revoked.record, expired.record, future.record))
  assert.equal(set.size, 4)
  const v = (key: string) => {
    const p = parseKey(key)
    assert.ok(p.ok)
    return set.verify(p.id, p.key, now)
  }
  const r = v(ok.key)
  assert.ok(r.ok)
  assert.equal(r.key.owner, 'svc-test')
  assert.deepEqual(r.key.scopes, ['a', 'b'])
  assert.equal(v(future.key).ok, true)
  assert.deepEqual(v(generateKey().key), { ok: false, reason: 'unknown' })
  assert.deepEqual(v(revoked.key), { ok: false, reason: 'revoked' })
  assert.deepEqual(v(expired.key), { ok: false, reason: 'expired' })
  // Same id, different secret (a valid checksum): found by id, refused by the hash.
  const random = `${ok.key.slice(4, 12)}${generateKey().key.slice(12, 34)}`
  assert.deepEqual(v(`pcl_${random}${checksum(random)}`), { ok: false, reason: 'mismatch' })
  assert.equal(keyState(expired.record, now), 'expired')
  assert.equal(keyState(revoked.record, now), 'revoked')
  assert.equal(keyState(ok.record, now), 'active')
})

test('store lock: writers are serialized, a stale lock is broken, a held one times out', async () => {
  const file = join(dir(), 'keys.json')
  const order: string[] = []
  await Promise.all(
    ['a', 'b', 'c'].map((n) =>
      withStoreLock(file, () => {
        order.push(`${n}-in`)
        // A synchronous critical section: nothing else can enter before it returns.
        order.push(`${n}-out`)
      }),
    ),
  )
  for (let i = 0; i < order.length; i += 2) assert.equal(order[i]?.slice(0, 1), order[i + 1]?.slice(0, 1))
  writeFileSync(`${file}.lock`, '999999\n')
  const old = (Date.now() - 60_000) / 1000
  utimesSync(`${file}.lock`, old, old)
  assert.equal(await withStoreLock(file, () => 'broke the stale lock'), 'broke the stale lock')
  writeFileSync(`${file}.lock`, '999999\n')
  await assert.rejects(
    withStoreLock(file, () => 'never', { timeoutMs: 200 }),
    (e: KeyStoreError) => e.code === 'ELOCKED' && /locked by another process/.test(e.message),
  )
  rmSync(`${file}.lock`)
})

test('usage sidecar: merged, later time wins, garbage ignored', () => {
  const file = join(dir(), 'keys.json')
  assert.equal(readUsage(file).size, 0)
  mergeUsage(
    file,
    new Map([
      ['AbCd0123', 1000],
      ['XyZ98765', 5000],
    ]),
  )
  mergeUsage(
    file,
    new Map([
      ['AbCd0123', 3000],
      ['XyZ98765', 2000],
    ]),
  )
  assert.deepEqual(
    [...readUsage(file)],
    [
      ['AbCd0123', 3000],
      ['XyZ98765', 5000],
    ],
  )
  writeFileSync(usageFile(file), '{"version":1,"lastUsed":{"../../x":"nope"}}')
  assert.equal(readUsage(file).size, 0)
})

function captureLogger() {
  const lines: Record<string, unknown>[] = []
  const logger = pino(
    { level: 'debug' },
    {
      write(s: string) {
        lines.push(JSON.parse(s) as Record<string, unknown>)
      },
    },
  )
  return { logger, lines }
}

async function until(cond: () => boolean, ms = 3000): Promise<number> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > ms) assert.fail('timed out')
    await new Promise((r) => setTimeout(r, 5))
  }
  return Date.now() - start
}

test('live store: hot reload on change, a broken file keeps the old keys, shared and ref-counted', async () => {
  const file = join(dir(), 'keys.json')
  const a = record()
  const b = record()
  writeStore(file, storeWith(a.record))
  const { logger, lines } = captureLogger()
  const h1 = acquireKeyStore(file, logger, { lastUsedFlushMs: 0 })
  const h2 = acquireKeyStore(file, logger, { lastUsedFlushMs: 0 })
  assert.equal(h1.store, h2.store, 'one store per file')
  const verify = (k: string) => {
    const p = parseKey(k)
    assert.ok(p.ok)
    return h1.store.keys.verify(p.id, p.key, Date.now()).ok
  }
  assert.equal(verify(a.key), true)
  assert.equal(verify(b.key), false)

  writeStore(file, storeWith(a.record, b.record))
  const ms = await until(() => verify(b.key))
  assert.ok(ms < 1000, `reloaded in ${ms} ms`)

  writeFileSync(`${file}.tmp`, '{ broken')
  writeFileSync(file, '{ broken')
  await until(() =>
    lines.some((l) => l.msg === 'api key store reload refused; the previous keys stay in effect'),
  )
  assert.equal(verify(a.key), true, 'old keys kept')
  assert.equal(verify(b.key), true)

  writeStore(file, storeWith({ ...a.record, status: 'revoked' }))
  await until(() => !verify(a.key))
  assert.equal(verify(b.key), false)

  h1.release()
  h1.release() // idempotent
  const h3 = acquireKeyStore(file, logger, { lastUsedFlushMs: 0 })
  assert.equal(h3.store, h2.store, 'still open while one user is left')
  h2.release()
  h3.release()
  const h4 = acquireKeyStore(file, logger, { lastUsedFlushMs: 0 })
  assert.notEqual(h4.store, h2.store, 'closed after the last user, reopened fresh')
  h4.release()
  rmSync(`${file}.tmp`)
})

test('live store: the first load fails loudly on a missing, broken or oversized file', () => {
  const d = dir()
  const { logger } = captureLogger()
  assert.throws(() => acquireKeyStore(join(d, 'none.json'), logger, { lastUsedFlushMs: 0 }), /ENOENT/)
  writeFileSync(join(d, 'bad.json'), 'nope')
  assert.throws(() => acquireKeyStore(join(d, 'bad.json'), logger, { lastUsedFlushMs: 0 }), /not valid JSON/)
})

test('live store: last-used times go to the sidecar on the timer, never to the store file', async () => {
  const file = join(dir(), 'keys.json')
  const a = record()
  writeStore(file, storeWith(a.record))
  const before = readFileSync(file, 'utf8')
  const { logger } = captureLogger()
  const h = acquireKeyStore(file, logger, { lastUsedFlushMs: 100 })
  const t = Date.now()
  for (let i = 0; i < 1000; i++) h.store.touch(a.record.id, t)
  assert.equal(readUsage(file).size, 0, 'not written per request')
  await until(() => readUsage(file).get(a.record.id) === t)
  h.store.touch(a.record.id, t + 5)
  h.release() // flushes
  assert.equal(readUsage(file).get(a.record.id), t + 5)
  assert.equal(readFileSync(file, 'utf8'), before, 'the store file is never written by the gateway')
  assert.equal(readFileSync(usageFile(file), 'utf8').includes(a.key), false)
})
