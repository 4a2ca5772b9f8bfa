import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TtlLru } from './ttl-lru.js'

function clock(t = 1_000) {
  const c = { t, now: () => c.t }
  return c
}

test('ttl-lru: get returns live values, drops expired ones, never stores an entry already past', () => {
  const c = clock()
  const m = new TtlLru<number>(10, c.now)
  m.set('a', 1, c.t + 100)
  m.set('b', 2, c.t) // already past: not stored
  assert.equal(m.get('a'), 1)
  assert.equal(m.get('b'), undefined)
  c.t += 100
  assert.equal(m.get('a'), undefined, 'expired at its deadline')
  assert.equal(m.size, 0, 'an expired entry met by get is removed')
  m.set('c', 3, 2_000)
  assert.equal(m.get('c', 1_999), 3, 'an explicit now is honoured')
  assert.equal(m.get('c', 2_000), undefined)
})

test('ttl-lru: never holds more than maxEntries; the least recently written go first', () => {
  const c = clock()
  const m = new TtlLru<number>(100, c.now)
  for (let i = 0; i < 1000; i++) m.set(`k${i}`, i, c.t + 1_000)
  assert.equal(m.size, 100)
  assert.equal(m.get('k899'), undefined)
  assert.equal(m.get('k900'), 900)
  assert.equal(m.get('k999'), 999)
  assert.equal(new TtlLru<number>(0, c.now).get('x'), undefined)
  const zero = new TtlLru<number>(0, c.now)
  zero.set('x', 1, c.t + 1)
  assert.equal(zero.size, 0)
})

test('ttl-lru: an entry that keeps being hit survives any number of other writes', () => {
  const c = clock()
  const m = new TtlLru<number>(100, c.now)
  m.set('hot', 1, c.t + 1_000_000)
  for (let i = 0; i < 10_000; i++) {
    m.set(`cold${i}`, i, c.t + 1_000_000)
    assert.equal(m.get('hot'), 1, `evicted after ${i} other writes`)
    assert.ok(m.size <= 100)
  }
})

test('ttl-lru: an entry hit once is not evicted before half the capacity of other writes', () => {
  const c = clock()
  const m = new TtlLru<number>(100, c.now)
  for (let i = 0; i < 100; i++) m.set(`k${i}`, i, c.t + 1_000)
  assert.equal(m.get('k0'), 0) // the oldest, now moved: it is at least 50 writes from eviction
  for (let i = 0; i < 50; i++) m.set(`n${i}`, i, c.t + 1_000)
  assert.equal(m.get('k0'), 0)
  assert.equal(m.get('k1'), undefined, 'the oldest entry never hit went first')
})

test('ttl-lru: sweep removes expired entries only; delete and clear', () => {
  const c = clock()
  const m = new TtlLru<number>(10, c.now)
  m.set('a', 1, c.t + 10)
  m.set('b', 2, c.t + 20)
  m.set('c', 3, c.t + 30)
  c.t += 20
  assert.equal(m.sweep(), 2)
  assert.equal(m.size, 1)
  m.delete('c')
  assert.equal(m.size, 0)
  m.set('d', 4, c.t + 1)
  m.clear()
  assert.equal(m.get('d'), undefined)
})
