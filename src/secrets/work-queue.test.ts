import assert from 'node:assert/strict'
import { test } from 'node:test'
import { WorkQueue } from './work-queue.js'

/** Sizes by job number: a few large files and many small ones, in walk order. */
const sizes = [5, 900, 3, 700, 1, 2, 800, 4, 6, 1, 600, 2, 3, 7, 1, 500, 2, 2, 9, 1]
const total = sizes.reduce((a, b) => a + b, 0)
const q = () => {
  const w = new WorkQueue((i) => sizes[i] as number)
  for (let i = 0; i < sizes.length; i++) w.add(i)
  return w
}

test('during the walk: the largest jobs first, batches bounded by bytes (one job at least)', () => {
  const w = q()
  assert.equal(w.bytes, total)
  assert.deepEqual(w.take(1, 1000, 10), [1]) // 900; 900 + 800 > 1000
  assert.deepEqual(w.take(2, 1000, 10), [6]) // 800
  assert.deepEqual(w.take(1, 10, 10), [3]) // 700 alone, over the target
  assert.deepEqual(w.take(1, 1100, 2), [10, 15]) // 600 + 500, two files at most
  assert.equal(w.bytes, total - 900 - 800 - 700 - 600 - 500)
})

test('sealed: one run of equal bytes per worker; each takes its own, then steals the far end', () => {
  const w = q()
  w.seal([1, 2])
  // Worker 1's run: the largest files until half the bytes (900 + 800 + 700 of 3549), worker
  // 2's: the rest.
  assert.deepEqual(w.take(1, 5000, 100), [1, 6, 3])
  // Worker 2 takes its run largest first...
  assert.deepEqual(w.take(2, 1000, 100), [10])
  // ...and worker 1, out of work, steals from worker 2's small end: the smallest files.
  const stolen = w.take(1, 3, 100)
  assert.ok(
    stolen.every((i) => (sizes[i] as number) <= 2),
    `stolen ${stolen}`,
  )
  assert.ok(stolen.length > 0)
})

test('every job is handed out exactly once, whatever the owners and the order of asking', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const w = q()
    const seen: number[] = []
    let x = seed
    const rnd = () => {
      x = (x * 1103515245 + 12345) % 2 ** 31
      return x / 2 ** 31
    }
    // Some taken during the walk, the rest after sealing, by 3 workers, one of which dies.
    seen.push(...w.take(1, 800, 3))
    w.seal([1, 2, 3])
    let given = false
    for (let guard = 0; guard < 1000 && w.size > 0; guard++) {
      const owner = 1 + Math.floor(rnd() * 3)
      const got = w.take(owner, 1 + Math.floor(rnd() * 900), 1 + Math.floor(rnd() * 5))
      assert.ok(got.length > 0, 'a batch while jobs are left')
      if (owner === 3 && !given) {
        // Worker 3 dies with this batch: it is given back and its run released.
        given = true
        for (const j of got) w.add(j)
        w.release(3)
        continue
      }
      seen.push(...got)
    }
    assert.equal(w.size, 0)
    assert.equal(w.bytes, 0)
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      sizes.map((_, i) => i),
    )
  }
})

test('a job given back after sealing goes before any run', () => {
  const w = q()
  w.seal([1, 2])
  const first = w.take(2, 1, 1)
  w.add(first[0] as number)
  assert.deepEqual(w.take(1, 1, 1), first)
})
