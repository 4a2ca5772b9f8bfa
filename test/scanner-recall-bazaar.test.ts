/**
 * The scanner's recall on the "bazaar" fixture API (test/scanner-fixtures/bazaar.ts), written in another
 * style than the scanner's own fixture: every HTTP-testable flaw of its ground truth
 * (bazaar.truth.ts) found (at least 90%), nothing at medium or above on its secure twin, and a safe
 * scan leaves each twin's data as it was (objects the scanner created are gone again).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { measureRecall, type RecallResult, stateDiff } from './helpers/recall.js'
import { BAZAAR_TRUTH } from './scanner-fixtures/bazaar.truth.js'

// A short timeout: /v2/recommendations never answers in time, and no finding may come from it.
const OPTIONS = { timeoutMs: 2000 }

describe('scanner recall on the bazaar fixture', () => {
  let r: RecallResult
  it('finds at least 90% of the ground truth; the secure twin gives nothing at medium or above', async () => {
    r = await measureRecall('bazaar', BAZAAR_TRUTH, OPTIONS)
    console.log(r.line)
    const pct = r.found.length / r.testable.length
    assert.ok(
      pct >= 0.9,
      `recall ${r.found.length}/${r.testable.length}; missed: ${r.missed.map((f) => f.id).join(', ')}`,
    )
    assert.deepEqual(
      r.twinSerious.map((f) => `${f.checkId} ${f.operation?.method} ${f.operation?.path}: ${f.summary}`),
      [],
    )
    assert.equal(r.vuln.unreachable, undefined)
    assert.equal(r.secure.unreachable, undefined)
  })

  it('a safe scan leaves the data of both twins as it was', () => {
    assert.equal(stateDiff(...r.state.vuln), '', 'vulnerable twin changed')
    assert.equal(stateDiff(...r.state.secure), '', 'secure twin changed')
  })
})
