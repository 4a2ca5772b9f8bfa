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

  it('an operation that never answers in time gives no finding; the gift card is never redeemed', () => {
    for (const report of [r.vuln, r.secure]) {
      assert.deepEqual(
        report.findings.filter((f) => f.operation?.path === '/v2/recommendations').map((f) => f.title),
        [],
      )
      const onTimeout = report.findings.filter(
        (f) =>
          f.checkId !== 'redos' && f.evidence.some((e) => e.exchanges.some((x) => x.error !== undefined)),
      )
      assert.deepEqual(
        onTimeout.map((f) => f.title),
        [],
      )
      assert.ok(report.stats.errors > 0, 'the slow operation did time out')
    }
    assert.ok((r.counters.vuln.slow ?? 0) > 0, 'the slow operation was called')
    assert.equal(r.counters.vuln.redeems, 0, 'safe mode redeemed a gift card (vulnerable twin)')
    assert.equal(r.counters.secure.redeems, 0, 'safe mode redeemed a gift card (secure twin)')
    assert.ok(r.vuln.blocked?.some((b) => b.operation === 'POST /v2/gift-cards/redeem'))
  })

  it('a safe scan leaves the data of both twins as it was', () => {
    assert.equal(stateDiff(...r.state.vuln), '', 'vulnerable twin changed')
    assert.equal(stateDiff(...r.state.secure), '', 'secure twin changed')
  })
})
