import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { throttledWarning, VerdictCache } from './verdict-cache.js'

test('VerdictCache: accepted and refused tokens expire apart; single flight; nothing kept once closed', async () => {
  let t = 1_000_000
  const c = new VerdictCache<string, number>({
    maxEntries: 2,
    maxTtlMs: 1000,
    maxNegativeEntries: 2,
    negativeTtlMs: 100,
    now: () => t,
  })
  c.accept('a', 'alice', t + 1000)
  c.refuse('x')
  assert.equal(c.get('a'), 'alice')
  assert.equal(c.isRefused('x'), true)
  t += 101
  assert.equal(c.isRefused('x'), false, 'a refusal lasts negativeTtlMs')
  assert.equal(c.get('a'), 'alice')
  t += 900
  assert.equal(c.get('a'), undefined, 'an acceptance lasts until its expiry')
  // Bounded: a third accepted token evicts the least recently used.
  c.accept('a', '1', t + 1000)
  c.accept('b', '2', t + 1000)
  c.accept('c', '3', t + 1000)
  assert.equal(c.get('a'), undefined)
  assert.equal(c.get('c'), '3')
  // One call per key while in flight; a new one after it settles.
  let calls = 0
  let release: (v: number) => void = () => undefined
  const start = () => {
    calls++
    return new Promise<number>((r) => {
      release = r
    })
  }
  const p1 = c.once('k', start)
  const p2 = c.once('k', start)
  assert.equal(p1, p2)
  release(7)
  assert.equal(await p2, 7)
  await c.once('k', () => Promise.resolve(8))
  assert.equal(calls, 1)
  c.close()
  c.accept('z', 'late', t + 1000)
  c.refuse('y')
  assert.equal(c.get('z'), undefined, 'a late answer after close is not kept')
  assert.equal(c.isRefused('y'), false)
})

test('throttledWarning: at most one line per interval, the suppressed ones counted in the next', () => {
  let t = 0
  const lines: { suppressedSinceLast: number; reason: string }[] = []
  const logger = pino(
    { level: 'warn' },
    {
      write(s: string) {
        lines.push(JSON.parse(s))
      },
    },
  )
  const warn = throttledWarning(logger, () => t, 1000, 'calls fail')
  warn({ reason: 'a' })
  warn({ reason: 'b' })
  warn({ reason: 'c' })
  t += 1000
  warn({ reason: 'd' })
  assert.deepEqual(
    lines.map((l) => [l.reason, l.suppressedSinceLast]),
    [
      ['a', 0],
      ['d', 2],
    ],
  )
})
