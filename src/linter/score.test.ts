import assert from 'node:assert/strict'
import { test } from 'node:test'
import { penalty, score } from './score.js'
import type { SpecLocation } from './types.js'

const at = (n: number): SpecLocation[] =>
  Array.from({ length: n }, (_, i) => ({ file: 'a.yaml', pointer: `/x/${i}` }))

test('score: 100 without findings, weights by severity, locations count logarithmically', () => {
  assert.equal(score([]), 100)
  assert.equal(score([{ severity: 'info', locations: at(50) }]), 100)
  assert.equal(score([{ severity: 'high', locations: at(1) }]), 90)
  assert.equal(score([{ severity: 'critical', locations: at(1) }]), 82)
  assert.equal(penalty({ severity: 'high', locations: at(10) }), 20)
  assert.equal(penalty({ severity: 'high', locations: at(100_000) }), 30)
  assert.equal(penalty({ severity: 'low', locations: at(1) }), 1)
  assert.ok(
    score(Array.from({ length: 40 }, () => ({ severity: 'critical' as const, locations: at(1000) }))) >= 0,
  )
})
