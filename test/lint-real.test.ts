/**
 * The linter on real public API descriptions (test/fixtures/lint/real/README.md: sources and
 * licences): none crashes, no rule fails, and the findings match the committed snapshot
 * (test/fixtures/lint/real/snapshots.json). After a deliberate change, rewrite it with
 * `UPDATE_LINT_SNAPSHOTS=1 npm test -- test/lint-real` and review the diff.
 */
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { test } from 'node:test'
import { lintFile } from '../src/linter/engine.js'

const DIR = 'test/fixtures/lint/real'
const SNAPSHOTS = `${DIR}/snapshots.json`
const SPECS = ['github.json', 'petstore-swagger2.yaml', 'uspto.yaml', 'stapi.yaml', 'readme.yaml']

interface Snapshot {
  specVersion: string
  operations: number
  score: number
  /** rule → [severity, number of locations, first location as pointer] */
  findings: Record<string, [string, number, string]>
}

function snapshotOf(file: string): Snapshot {
  const r = lintFile(`${DIR}/${file}`)
  assert.deepEqual(
    r.warnings.filter((w) => w.startsWith('rule ')),
    [],
    `${file}: a rule failed`,
  )
  for (const f of r.findings)
    for (const l of f.locations) assert.ok((l.line ?? 0) > 0, `${file} ${f.rule} ${l.pointer}`)
  const findings: Snapshot['findings'] = {}
  for (const f of r.findings)
    findings[f.rule] = [f.severity, f.locations.length, f.locations[0]?.pointer ?? '']
  return { specVersion: r.specVersion, operations: r.operations, score: r.score, findings }
}

test('five real public API descriptions, one of them over 5 MB', () => {
  assert.equal(SPECS.length, 5)
  assert.ok(statSync(`${DIR}/github.json`).size >= 5 * 1024 * 1024)
})

test('real specs: findings match the committed snapshot', () => {
  const got: Record<string, Snapshot> = {}
  for (const file of SPECS) {
    const t = performance.now()
    got[file] = snapshotOf(file)
    const s = got[file] as Snapshot
    console.log(
      `lint ${file}: ${s.operations} operations, score ${s.score}, ${Object.keys(s.findings).length} findings, ${Math.round(performance.now() - t)} ms`,
    )
  }
  if (process.env.UPDATE_LINT_SNAPSHOTS === '1') {
    writeFileSync(SNAPSHOTS, `${JSON.stringify(got, null, 2)}\n`)
    return
  }
  const want = JSON.parse(readFileSync(SNAPSHOTS, 'utf8')) as Record<string, Snapshot>
  for (const file of SPECS)
    assert.deepEqual(got[file], want[file], `${file} (UPDATE_LINT_SNAPSHOTS=1 to rewrite)`)
})
