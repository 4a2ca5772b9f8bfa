import assert from 'node:assert/strict'
import { test } from 'node:test'
import { crc32 as zlibCrc32 } from 'node:zlib'
import {
  BASE62,
  CHECKSUM_LENGTH,
  checksum,
  crc32,
  generateKey,
  ID_LENGTH,
  isKeyId,
  KEY_LENGTH,
  KEY_PREFIX,
  parseKey,
  RANDOM_LENGTH,
} from './format.js'

test('10,000 generated keys all parse, are unique, and have unique-looking ids', () => {
  const keys = new Set<string>()
  const ids = new Set<string>()
  const re = /^pcl_[0-9A-Za-z]{36}$/
  for (let i = 0; i < 10_000; i++) {
    const { key, id } = generateKey()
    assert.match(key, re)
    assert.equal(key.length, KEY_LENGTH)
    const p = parseKey(key)
    assert.equal(p.ok, true, `generated key ${i} must parse`)
    assert.equal(p.id, id)
    assert.equal(id, key.slice(KEY_PREFIX.length, KEY_PREFIX.length + ID_LENGTH))
    assert.ok(isKeyId(id))
    keys.add(key)
    ids.add(id)
  }
  assert.equal(keys.size, 10_000)
  // 62^8 ids: a collision among 10,000 has probability ~2e-7.
  assert.equal(ids.size, 10_000)
})

test('≥ 178 bits of randomness and a roughly uniform alphabet', () => {
  assert.ok(RANDOM_LENGTH * Math.log2(62) >= 178)
  const counts = new Map<string, number>()
  for (let i = 0; i < 2000; i++) {
    const random = generateKey().key.slice(KEY_PREFIX.length, KEY_PREFIX.length + RANDOM_LENGTH)
    for (const c of random) counts.set(c, (counts.get(c) ?? 0) + 1)
  }
  assert.equal(counts.size, 62, 'every base62 character occurs')
  const expected = (2000 * RANDOM_LENGTH) / 62 // ≈ 968
  for (const [c, n] of counts) assert.ok(n > expected * 0.8 && n < expected * 1.2, `${c}: ${n}`)
})

test('the checksum is the standard CRC-32 in 6 base62 characters', () => {
  assert.equal(crc32('123456789'), 0xcbf43926) // the CRC-32 check value
  for (let i = 0; i < 200; i++) {
    const random = generateKey().key.slice(4, 34)
    assert.equal(crc32(random), zlibCrc32(random))
    const c = checksum(random)
    assert.equal(c.length, CHECKSUM_LENGTH)
    let n = 0
    for (const ch of c) n = n * 62 + BASE62.indexOf(ch)
    assert.equal(n, crc32(random))
  }
})

test('any one-character change breaks the key', () => {
  const { key } = generateKey()
  let tried = 0
  for (let i = KEY_PREFIX.length; i < key.length; i++) {
    for (const c of ['0', 'a', 'Z', 'q']) {
      if (key[i] === c) continue
      const bad = key.slice(0, i) + c + key.slice(i + 1)
      const p = parseKey(bad)
      assert.equal(p.ok, false, `change at ${i} must be caught`)
      assert.equal(p.reason, 'checksum')
      tried++
    }
  }
  assert.ok(tried > 100)
  // Swapping two different adjacent characters of the random part is caught too.
  const r = key.slice(4, 34)
  for (let i = 0; i < r.length - 1; i++) {
    if (r[i] === r[i + 1]) continue
    const swapped = `${KEY_PREFIX}${r.slice(0, i)}${r[i + 1]}${r[i]}${r.slice(i + 2)}${key.slice(34)}`
    assert.equal(parseKey(swapped).reason, 'checksum')
  }
})

test('hostile strings are refused with a reason and without echoing the input', () => {
  const { key } = generateKey()
  const cases: [unknown, string][] = [
    ['', 'empty'],
    [undefined, 'empty'],
    [null, 'empty'],
    [42, 'empty'],
    ['pcl_', 'length'],
    ['pcl', 'length'],
    [`${key}x`, 'length'],
    [key.slice(0, -1), 'length'],
    ['x'.repeat(1_000_000), 'length'],
    [`PCL_${key.slice(4)}`, 'prefix'],
    [`pcl-${key.slice(4)}`, 'prefix'],
    [`ghp_${key.slice(4)}`, 'prefix'],
    [`${key.slice(0, 10)}é${key.slice(11)}`, 'charset'],
    [`${key.slice(0, 10)}😀${key.slice(12)}`, 'charset'],
    [`${key.slice(0, 10)}\u0000${key.slice(11)}`, 'charset'],
    [`${key.slice(0, 10)} ${key.slice(11)}`, 'charset'],
    [`${key.slice(0, 10)}-${key.slice(11)}`, 'charset'],
    [`${key.slice(0, 10)}\n${key.slice(11)}`, 'charset'],
    [`pcl_${'0'.repeat(36)}`, 'checksum'],
  ]
  for (const [input, reason] of cases) {
    const p = parseKey(input)
    assert.equal(p.ok, false)
    assert.equal(p.reason, reason, `${JSON.stringify(String(input).slice(0, 50))}`)
    assert.equal(JSON.stringify(p).includes(key.slice(4, 34)), false)
  }
  // A huge string costs nothing: the length is checked first.
  const huge = 'p'.repeat(5_000_000)
  const t = process.hrtime.bigint()
  for (let i = 0; i < 1000; i++) parseKey(huge)
  assert.ok(Number(process.hrtime.bigint() - t) / 1e6 < 50)
})

test('key ids', () => {
  assert.ok(isKeyId('AbCd0123'))
  for (const bad of ['', 'AbCd012', 'AbCd01234', 'AbCd-123', '../../../', 'AbCd012é']) {
    assert.equal(isKeyId(bad), false, bad)
  }
})
