/**
 * Recall of the linter on the two specs whose flaws are documented (docs/demo.md,
 * docs/scanner-fixture.md), against the ground truth written before the rules
 * (test/fixtures/lint/ground-truth.ts), and silence on a clean spec.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { lintFile } from '../src/linter/engine.js'
import type { LintReport } from '../src/linter/types.js'
import {
  DEMO_GROUND_TRUTH,
  type ExpectedFinding,
  SCANNER_FIXTURE_GROUND_TRUTH,
} from './fixtures/lint/ground-truth.js'
import { VULN_API_SPEC } from './fixtures/vuln-api.js'

function found(report: LintReport, e: ExpectedFinding): boolean {
  return report.findings.some(
    (f) =>
      f.rule === e.rule &&
      f.locations.some(
        (l) => l.operation === e.operation && (e.pointer === undefined || l.pointer.includes(e.pointer)),
      ),
  )
}

function recall(name: string, report: LintReport, truth: typeof DEMO_GROUND_TRUTH): ExpectedFinding[] {
  const missed = truth.visible.filter((e) => !found(report, e))
  const hit = truth.visible.length - missed.length
  console.log(
    `lint recall on ${name}: ${hit}/${truth.visible.length} documented design flaws visible in the spec` +
      ` (${truth.notInSpec.length} documented flaws live only in the running API)` +
      `${missed.length ? `; missed: ${missed.map((m) => m.flaw).join(', ')}` : ''}`,
  )
  const byRule = new Map<string, number>()
  for (const f of report.findings) byRule.set(`${f.severity} ${f.rule}`, f.locations.length)
  console.log(
    `  ${name}: score ${report.score}, ${report.findings.length} findings: ${[...byRule].map(([k, n]) => `${k}×${n}`).join(', ')}`,
  )
  return missed
}

test('demo spec: every documented design flaw visible in the contract is reported', () => {
  const report = lintFile('examples/demo/openapi.yaml')
  const missed = recall('the demo spec', report, DEMO_GROUND_TRUTH)
  assert.deepEqual(
    missed.map((m) => m.flaw),
    [],
  )
  // The admin operation declares its role: no admin-shares-user-access finding.
  assert.ok(!report.findings.some((f) => f.rule === 'admin-shares-user-access'))
  // Every location has a line in the YAML file.
  for (const f of report.findings)
    for (const l of f.locations) assert.ok((l.line ?? 0) > 0, `${f.rule} ${l.pointer}`)
})

test('scanner fixture spec: every documented design flaw visible in the contract is reported', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-lint-gt-'))
  const file = join(dir, 'openapi.json')
  writeFileSync(file, JSON.stringify(VULN_API_SPEC, null, 2))
  const report = lintFile(file)
  const missed = recall('the scanner fixture spec', report, SCANNER_FIXTURE_GROUND_TRUTH)
  assert.deepEqual(
    missed.map((m) => m.flaw),
    [],
  )
  // Its login answer says when the token expires: no token-without-expiry.
  assert.ok(!report.findings.some((f) => f.rule === 'token-without-expiry'))
  for (const f of report.findings)
    for (const l of f.locations) assert.ok((l.line ?? 0) > 0, `${f.rule} ${l.pointer}`)
})

test('a clean spec made for the test: zero findings above info', () => {
  const report = lintFile('test/fixtures/lint/clean.yaml')
  const above = report.findings.filter((f) => f.severity !== 'info')
  assert.deepEqual(
    above.map((f) => `${f.rule}: ${f.message} @ ${f.locations.map((l) => l.pointer).join(', ')}`),
    [],
  )
  assert.equal(report.score, 100)
})
