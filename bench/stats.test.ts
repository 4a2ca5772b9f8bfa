import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatTable, pairedRatio, type RunRecord, summarize } from './stats.js'

function run(scenario: string, round: number, cpu: number, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    scenario,
    proxy: 'portcullis',
    round,
    attempt: 1,
    loadgen: 'wrk',
    started_at: '2026-11-29T00:00:00Z',
    duration_s: 10,
    requests: 1000,
    rps: 100,
    p50_ms: 1,
    p99_ms: 2,
    non2xx: 0,
    socket_errors: 0,
    cpu_us_per_req: cpu,
    upstream_cpu_us_per_req: 10,
    other_core_pct: 0,
    steal_pct: 0,
    noisy: false,
    discarded: false,
    ...extra,
  }
}

test('pairedRatio divides each round by the reference run of the same round; medians; discarded runs ignored', () => {
  const runs = [
    run('plain', 1, 50), // the plain scenario's own runs: not references
    run('plain', 2, 50),
    run('rl', 1, 120),
    run('plain', 1, 100, { reference_for: 'rl' }),
    run('rl', 2, 150),
    run('plain', 2, 100, { reference_for: 'rl' }),
    run('rl', 3, 999, { discarded: true }),
    run('rl', 3, 130),
    run('plain', 3, 200, { reference_for: 'rl' }),
    run('plain', 3, 10, { reference_for: 'other' }),
  ]
  const p = pairedRatio(runs, 'rl')
  assert.ok(p)
  assert.deepEqual(p.rounds, [1.2, 1.5, 0.65])
  assert.equal(p.median, 1.2)
  assert.equal(p.reference_cpu_us_per_req, 100)
  assert.equal(pairedRatio(runs, 'missing'), undefined)
  // a round whose reference is missing counts for nothing
  assert.deepEqual(pairedRatio([run('rl', 1, 120)], 'rl'), undefined)
})

test('summarize and the table leave reference runs out of the plain scenario', () => {
  const runs = [run('plain', 1, 50), run('plain', 2, 70), run('plain', 1, 500, { reference_for: 'rl' })]
  const rows = summarize(runs, ['portcullis'])
  assert.equal(rows.length, 1)
  assert.equal(rows[0]?.cpu_us_per_req, 60)
  const line = formatTable('plain', rows, runs).split('\n')[1] as string
  // proxy, rps, p50, p99, cpu, x nginx, x fastify, runs, noisy
  assert.deepEqual(line.trim().split(/\s+/).slice(-3), ['-', '2', '0'])
})
