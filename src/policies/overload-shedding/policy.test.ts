import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import type { GatewayError } from '../../gateway/errors.js'
import type { RequestContext } from '../../gateway/pipeline/context.js'
import type { PolicyInstance } from '../../gateway/pipeline/policy.js'
import { testContext, testDeps } from '../testing/context.js'
import { overloadShedding } from './policy.js'
import { OverloadSheddingConfig } from './schema.js'

const build = (cfg: object) =>
  overloadShedding.create(Value.Default(OverloadSheddingConfig, cfg) as never, testDeps())

function run(p: PolicyInstance, ctx: RequestContext = testContext()): GatewayError | undefined {
  try {
    p.onRequest?.(ctx)
    return undefined
  } catch (err) {
    return err as GatewayError
  }
}

const done = (p: PolicyInstance, ctx: RequestContext) =>
  p.onLog?.({ ctx, status: 200, durationMs: 1, decision: 'allowed', errorCode: undefined })

test('synchronous: no promise on the hot path', () => {
  const p = build({ maxInFlight: 10 })
  const ctx = testContext()
  assert.equal(p.onRequest?.(ctx), undefined)
  done(p, ctx)
})

test('total in flight: 503 with Retry-After at the threshold, served again after one finishes', () => {
  const p = build({ maxInFlight: 2, retryAfterSec: 3 })
  const a = testContext()
  const b = testContext()
  assert.equal(run(p, a), undefined)
  assert.equal(run(p, b), undefined)
  const err = run(p)
  assert.equal(err?.code, 'GW_ERR_OVERLOADED')
  assert.equal(err?.status, 503)
  assert.deepEqual(err?.headers, { 'retry-after': '3' })
  done(p, a)
  done(p, a) // a second log call for the same request changes nothing
  const c = testContext()
  assert.equal(run(p, c), undefined)
  assert.equal(run(p)?.code, 'GW_ERR_OVERLOADED')
  done(p, b)
  done(p, c)
})

test('event-loop delay: 503 while the loop lags, served again after', async () => {
  const p = build({ maxEventLoopDelayMs: 50 })
  try {
    assert.equal(run(p), undefined)
    await new Promise((r) => setTimeout(r, 100)) // the monitor's first samples
    // Block the event loop for 300 ms, then let the 500 ms sampler see it (real time must pass).
    const until = Date.now() + 300
    while (Date.now() < until) {
      // busy
    }
    let shed = false
    const deadline = Date.now() + 2000
    while (!shed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
      shed = run(p)?.code === 'GW_ERR_OVERLOADED'
    }
    assert.ok(shed, 'a lagging loop sheds')
    let served = false
    const deadline2 = Date.now() + 3000
    while (!served && Date.now() < deadline2) {
      await new Promise((r) => setTimeout(r, 100))
      served = run(p) === undefined
    }
    assert.ok(served, 'served again once the loop is idle')
  } finally {
    await p.close?.()
  }
})
