/**
 * The scanner's recall on the "shelf" fixture API (test/scanner-fixtures/shelf.ts), written in another
 * style than the scanner's own fixture: every HTTP-testable flaw of its ground truth
 * (shelf.truth.ts) found (at least 90%), nothing at medium or above on its secure twin, and a safe
 * scan leaves each twin's data as it was (objects the scanner created are gone again).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { measureRecall, type RecallResult, stateDiff } from './helpers/recall.js'
import { SHELF_TRUTH } from './scanner-fixtures/shelf.truth.js'

const OPTIONS = { specFromUrl: true, optIn: true, chain: true }

describe('scanner recall on the shelf fixture', () => {
  let r: RecallResult
  it('finds at least 90% of the ground truth; the secure twin gives nothing at medium or above', async () => {
    r = await measureRecall('shelf', SHELF_TRUTH, OPTIONS)
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

  it('the spec URL it was given is not an undocumented endpoint; throwaway accounts were used and removed', () => {
    for (const report of [r.vuln, r.secure])
      assert.ok(
        !report.findings.some((f) => f.checkId === 'shadow-endpoints' && /openapi\.yaml/.test(f.title)),
      )
    const burst = r.vuln.findings.find((f) => f.title === 'No rate limit on login')
    assert.match(burst?.summary ?? '', /throwaway account/)
  })

  it('a safe scan leaves the data of both twins as it was', () => {
    assert.equal(stateDiff(...r.state.vuln), '', 'vulnerable twin changed')
    assert.equal(stateDiff(...r.state.secure), '', 'secure twin changed')
  })
})
