import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  addedLatency,
  formatTable,
  type LatencyRecord,
  pairedPeerRatio,
  pairedRatio,
  type RunRecord,
  summarize,
} from './stats.js'

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

test('pairedPeerRatio pairs Portcullis with the peer of the same round; references and discarded runs left out', () => {
  const runs = [
    run('fs', 1, 60),
    run('fs', 1, 200, { proxy: 'fastify-stack' }),
    run('plain', 1, 30, { reference_for: 'fs' }),
    run('fs', 2, 90),
    run('fs', 2, 150, { proxy: 'fastify-stack' }),
    run('fs', 3, 10, { discarded: true }),
    run('fs', 3, 100, { proxy: 'fastify-stack' }),
    run('fs', 4, 80), // no peer run in round 4: no ratio
  ]
  const r = pairedPeerRatio(runs, 'fs', 'fastify-stack')
  assert.ok(r)
  assert.deepEqual(r.rounds, [0.3, 0.6])
  assert.equal(r.median, 0.45)
  assert.equal(r.peer_cpu_us_per_req, 175)
  assert.equal(pairedPeerRatio(runs, 'fs', 'nginx'), undefined)
})

function lat(
  proxy: LatencyRecord['proxy'],
  round: number,
  p50: number,
  p99: number,
  extra: Partial<LatencyRecord> = {},
): LatencyRecord {
  return {
    scenario: 'plain',
    proxy,
    round,
    attempt: 1,
    rate: 1000,
    scheduled: 10_000,
    completed: 10_000,
    non2xx: 0,
    errors: 0,
    p50_ms: p50,
    p90_ms: p99,
    p99_ms: p99,
    p999_ms: p99 * 2,
    max_ms: p99 * 3,
    send_lag_p99_ms: 0.1,
    other_core_pct: 0,
    steal_pct: 0,
    noisy: false,
    discarded: false,
    ...extra,
  }
}

test('addedLatency subtracts direct of the same round, median over rounds; direct itself not listed', () => {
  const added = addedLatency([
    lat('direct', 1, 0.2, 0.5),
    lat('portcullis', 1, 0.5, 1.0),
    lat('direct', 2, 0.4, 0.9),
    lat('portcullis', 2, 0.6, 1.9),
    lat('portcullis', 3, 9, 99, { discarded: true }),
    lat('direct', 3, 0.1, 0.1),
  ])
  assert.equal(added.length, 1)
  const a = added[0]
  assert.ok(a)
  assert.equal(a.proxy, 'portcullis')
  assert.equal(a.rounds, 2)
  assert.equal(a.p50_ms, 0.25) // median of 0.3 and 0.2
  assert.equal(a.p99_ms, 0.75) // median of 0.5 and 1.0
  assert.equal(a.abs_p99_ms, 1.45)
})
