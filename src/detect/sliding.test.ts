import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SLOTS, SlidingCount, SlidingSet } from './sliding.js'

test('SlidingCount: every event of the last window counts, at most a tenth of a window more, whatever the alignment', () => {
  const windowMs = 60_000
  let seed = 42
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  }
  for (let trial = 0; trial < 300; trial++) {
    const c = new SlidingCount(windowMs / SLOTS)
    const start = 1_700_000_000_000 + Math.floor(rand() * windowMs * 3)
    const times: number[] = []
    let t = start
    for (let i = 0; i < 200; i++) {
      t += Math.floor(rand() * 2000)
      times.push(t)
      const n = c.add(t)
      const exact = times.filter((x) => x > t - windowMs).length
      const loose = times.filter((x) => x > t - windowMs - windowMs / SLOTS).length
      assert.ok(n >= exact, `trial ${trial}: counted ${n} < ${exact} events within the window`)
      assert.ok(n <= loose, `trial ${trial}: counted ${n} > ${loose} events within 1.1 windows`)
    }
  }
})

test('SlidingCount: a long pause clears it; a clock step back counts in the newest bucket', () => {
  const c = new SlidingCount(1000)
  for (let i = 0; i < 5; i++) c.add(10_000)
  assert.equal(c.count(10_500), 5)
  assert.equal(c.count(10_000 + 12_000), 0)
  assert.equal(c.add(30_000), 1)
  assert.equal(c.add(29_000), 2, 'an event from the past is not lost')
})

test('SlidingSet: distinct values last seen within the window, at most cap kept', () => {
  const s = new SlidingSet(1000, 3)
  assert.equal(s.add('a', 0), 1)
  assert.equal(s.add('a', 100), 1, 'a repeat is one value')
  assert.equal(s.add('b', 200), 2)
  assert.equal(s.add('c', 300), 3)
  assert.equal(s.add('d', 400), 3, 'capped')
  assert.equal(s.size(1150), 3, 'a was dropped (cap); b, c, d remain')
  assert.equal(s.size(1250), 2, 'b (200) expired')
  assert.equal(s.add('a', 1260), 3)
  assert.equal(s.size(5000), 0)
  // a burst straddling any boundary is whole
  const b = new SlidingSet(10_000, 100)
  let n = 0
  for (let i = 0; i < 30; i++) n = b.add(`v${i}`, 9_990 + i)
  assert.equal(n, 30)
})
