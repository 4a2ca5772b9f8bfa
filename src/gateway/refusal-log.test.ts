import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { RefusalLog } from './refusal-log.js'

function capture() {
  const lines: Record<string, unknown>[] = []
  const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) })
  return { logger, lines }
}

test('refusal lines are sampled per kind, the rest summed up once the interval ends', () => {
  let now = 0
  const { logger, lines } = capture()
  const log = new RefusalLog(logger, { perInterval: 3, intervalMs: 60_000, now: () => now })
  for (let i = 0; i < 10_000; i++)
    log.info('openapi-validation:GW_ERR_VALIDATION:r', { i }, 'request refused')
  for (let i = 0; i < 2; i++) log.info('authorize:rules:r', { i }, 'request denied')
  assert.equal(lines.length, 5) // 3 of the first kind, 2 of the second
  now = 60_000
  log.info('authorize:rules:r', { i: 2 }, 'request denied') // a new interval: the summary first
  const summary = lines.find((l) => l.suppressed !== undefined)
  assert.ok(summary, JSON.stringify(lines))
  assert.equal(summary.suppressed, 9997)
  assert.equal(summary.kind, 'openapi-validation:GW_ERR_VALIDATION:r')
  assert.match(String(summary.msg), /request refused: 9997 more in the last 60 s/)
  assert.equal(lines.length, 7)
})

test('keys are bounded: past 1000 kinds in an interval they share one counter', () => {
  const { logger, lines } = capture()
  const log = new RefusalLog(logger, { perInterval: 0, intervalMs: 60_000, now: () => 0 })
  for (let i = 0; i < 5000; i++) log.info(`k${i}`, {}, 'refused')
  assert.equal(lines.length, 0)
  log.flush(60_000)
  assert.equal(lines.length, 1001)
  assert.equal(lines.find((l) => l.kind === '(other kinds)')?.suppressed, 4000)
})
