/**
 * The scanner's recall on the "ledger" fixture API (test/scanner-fixtures/ledger.ts), written in another
 * style than the scanner's own fixture: every HTTP-testable flaw of its ground truth
 * (ledger.truth.ts) found (at least 90%), nothing at medium or above on its secure twin, and a safe
 * scan leaves each twin's data as it was (objects the scanner created are gone again).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runScan } from '../src/scanner/engine.js'
import { parseAuthConfig } from '../src/scanner/identities.js'
import { matchesFlaw, measureRecall, type RecallResult, stateDiff } from './helpers/recall.js'
import { startFixture } from './scanner-fixtures/host.js'
import { LEDGER_TRUTH } from './scanner-fixtures/ledger.truth.js'

const OPTIONS = {}

describe('scanner recall on the ledger fixture', () => {
  let r: RecallResult
  it('finds at least 90% of the ground truth; the secure twin gives nothing at medium or above', async () => {
    r = await measureRecall('ledger', LEDGER_TRUTH, OPTIONS)
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

  it('its 429s are waited out; the sandbox reset is never called in safe mode', () => {
    assert.ok((r.counters.vuln.throttled ?? 0) + (r.counters.secure.throttled ?? 0) > 0, 'no 429 was seen')
    assert.ok((r.vuln.stats.retries ?? 0) + (r.secure.stats.retries ?? 0) > 0, 'no 429 was retried')
    assert.equal(r.counters.vuln.resets, 0)
    assert.equal(r.counters.secure.resets, 0)
    assert.ok(r.vuln.blocked?.some((b) => b.operation === 'POST /api/maintenance/reset'))
  })

  it('--unsafe (and only --unsafe) proves the unmarked sandbox reset', async () => {
    const flaw = LEDGER_TRUTH.find((f) => f.id === 'ledger-bfla-reset') as (typeof LEDGER_TRUTH)[number]
    assert.ok(!r.vuln.findings.some((f) => matchesFlaw(f, flaw)))
    const api = await startFixture('ledger', { secure: false })
    try {
      const report = await runScan({
        spec: api.specPath,
        target: api.url,
        auth: parseAuthConfig(api.authYaml, 'ledger-auth.yaml', {}),
        checks: ['bfla'],
        safe: false,
        rate: 200,
      })
      assert.ok(
        report.findings.some((f) => matchesFlaw(f, flaw)),
        report.findings.map((f) => f.summary).join('\n'),
      )
      assert.ok(((await api.counters()).resets ?? 0) > 0)
    } finally {
      await api.close()
    }
  })

  it('a safe scan leaves the data of both twins as it was', () => {
    assert.equal(stateDiff(...r.state.vuln), '', 'vulnerable twin changed')
    assert.equal(stateDiff(...r.state.secure), '', 'secure twin changed')
  })
})
