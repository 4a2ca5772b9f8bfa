// Small numeric helpers for the bench: median, seeded shuffle, summary rows and the printed table.
import type { ProxyKind } from './scenarios.js'

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Fisher-Yates shuffle into a new array. */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const a = [...items]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = a[i]!
    a[i] = a[j]!
    a[j] = t
  }
  return a
}

export interface RunRecord {
  scenario: string
  proxy: ProxyKind
  round: number
  attempt: number
  loadgen: string
  started_at: string
  duration_s: number
  requests: number
  rps: number
  p50_ms: number
  p99_ms: number
  non2xx: number
  socket_errors: number
  /** CPU of the proxy process tree (for direct: the upstream) per completed request */
  cpu_us_per_req: number
  /** CPU of the upstream per completed request, for reference */
  upstream_cpu_us_per_req: number
  other_core_pct: number
  steal_pct: number
  noisy: boolean
  /** true for a noisy attempt that was thrown away and repeated */
  discarded: boolean
  noise_reason?: string
  /**
   * Set on a plain-route run of Portcullis made next to a policy scenario's run in the same round
   * (order shuffled), as that scenario's reference: its ratio is taken against it, not against
   * the plain scenario's median of runs made many minutes earlier.
   */
  reference_for?: string
}

export interface SummaryRow {
  scenario: string
  proxy: ProxyKind
  rps: number
  p50_ms: number
  p99_ms: number
  cpu_us_per_req: number
}

const round = (v: number, digits: number) => Number(v.toFixed(digits))

/**
 * Medians over the kept (non-discarded) runs, per scenario and proxy, in first-seen order. Reference
 * runs ({@link RunRecord.reference_for}) are left out: they belong to their scenario's ratio.
 */
export function summarize(runs: RunRecord[], order: readonly ProxyKind[]): SummaryRow[] {
  const kept = runs.filter((r) => !r.discarded && r.reference_for === undefined)
  const scenarios = [...new Set(kept.map((r) => r.scenario))]
  const rows: SummaryRow[] = []
  for (const scenario of scenarios) {
    for (const proxy of order) {
      const rs = kept.filter((r) => r.scenario === scenario && r.proxy === proxy)
      if (rs.length === 0) continue
      rows.push({
        scenario,
        proxy,
        rps: round(median(rs.map((r) => r.rps)), 0),
        p50_ms: round(median(rs.map((r) => r.p50_ms)), 3),
        p99_ms: round(median(rs.map((r) => r.p99_ms)), 3),
        cpu_us_per_req: round(median(rs.map((r) => r.cpu_us_per_req)), 2),
      })
    }
  }
  return rows
}

/** A policy scenario's CPU ratio to the plain route, from the runs paired round by round. */
export interface PairedRatio {
  scenario: string
  /** one ratio per round with both runs kept: scenario cpu us/req ÷ its reference's */
  rounds: number[]
  median: number
  /** median cpu us/req of the reference runs */
  reference_cpu_us_per_req: number
}

/**
 * The paired ratios of `scenario`: in each round, its Portcullis run divided by the plain-route
 * reference run made next to it. Undefined when no round has both.
 */
export function pairedRatio(runs: RunRecord[], scenario: string): PairedRatio | undefined {
  const kept = runs.filter((r) => !r.discarded && r.proxy === 'portcullis')
  const rounds: number[] = []
  const refs: number[] = []
  for (const run of kept) {
    if (run.scenario !== scenario || run.reference_for !== undefined) continue
    const ref = kept.find((r) => r.reference_for === scenario && r.round === run.round)
    if (!ref || !(ref.cpu_us_per_req > 0)) continue
    rounds.push(run.cpu_us_per_req / ref.cpu_us_per_req)
    refs.push(ref.cpu_us_per_req)
  }
  if (rounds.length === 0) return undefined
  return {
    scenario,
    rounds: rounds.map((r) => round(r, 3)),
    median: round(median(rounds), 3),
    reference_cpu_us_per_req: round(median(refs), 2),
  }
}

function pad(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
}

/** The per-scenario table: medians plus CPU ratios to nginx and fastify when those ran. */
export function formatTable(scenario: string, rows: SummaryRow[], runs: RunRecord[]): string {
  const mine = rows.filter((r) => r.scenario === scenario)
  const nginx = mine.find((r) => r.proxy === 'nginx')
  const fastify = mine.find((r) => r.proxy === 'fastify')
  const ratio = (r: SummaryRow, ref: SummaryRow | undefined) =>
    ref && r.proxy !== 'direct' && ref.cpu_us_per_req > 0
      ? (r.cpu_us_per_req / ref.cpu_us_per_req).toFixed(2)
      : '-'
  const head = ['proxy', 'rps', 'p50 ms', 'p99 ms', 'cpu us/req', 'x nginx', 'x fastify', 'runs', 'noisy']
  const body = mine.map((r) => {
    const rs = runs.filter(
      (x) => x.scenario === scenario && x.proxy === r.proxy && !x.discarded && x.reference_for === undefined,
    )
    return [
      r.proxy,
      String(r.rps),
      r.p50_ms.toFixed(2),
      r.p99_ms.toFixed(2),
      r.cpu_us_per_req.toFixed(1),
      ratio(r, nginx),
      ratio(r, fastify),
      String(rs.length),
      String(rs.filter((x) => x.noisy).length),
    ]
  })
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  return [pad(head, widths), ...body.map((b) => pad(b, widths))].join('\n')
}

/** Portcullis's CPU per request divided by a peer's doing the same work, round by round. */
export interface PeerRatio {
  scenario: string
  peer: ProxyKind
  rounds: number[]
  median: number
  peer_cpu_us_per_req: number
}

/**
 * The ratio of Portcullis's run of `scenario` to `peer`'s run of the same scenario in the same
 * round (both in the round's shuffled order), one per round with both kept; undefined when none.
 */
export function pairedPeerRatio(runs: RunRecord[], scenario: string, peer: ProxyKind): PeerRatio | undefined {
  const kept = runs.filter((r) => !r.discarded && r.scenario === scenario && r.reference_for === undefined)
  const rounds: number[] = []
  const peers: number[] = []
  for (const run of kept) {
    if (run.proxy !== 'portcullis') continue
    const p = kept.find((r) => r.proxy === peer && r.round === run.round)
    if (!p || !(p.cpu_us_per_req > 0)) continue
    rounds.push(run.cpu_us_per_req / p.cpu_us_per_req)
    peers.push(p.cpu_us_per_req)
  }
  if (rounds.length === 0) return undefined
  return {
    scenario,
    peer,
    rounds: rounds.map((r) => round(r, 3)),
    median: round(median(rounds), 3),
    peer_cpu_us_per_req: round(median(peers), 2),
  }
}

/** One constant-rate run of the latency phase (bench/open-loop.ts). */
export interface LatencyRecord {
  scenario: string
  proxy: ProxyKind
  round: number
  attempt: number
  rate: number
  scheduled: number
  completed: number
  non2xx: number
  errors: number
  p50_ms: number
  p90_ms: number
  p99_ms: number
  p999_ms: number
  max_ms: number
  send_lag_p99_ms: number
  other_core_pct: number
  steal_pct: number
  noisy: boolean
  discarded: boolean
  noise_reason?: string
}

export interface AddedLatency {
  scenario: string
  proxy: ProxyKind
  /** medians over the rounds of the proxy's percentile minus `direct`'s in the same round, ms */
  p50_ms: number
  p99_ms: number
  p999_ms: number
  /** the proxy's own medians, ms */
  abs_p50_ms: number
  abs_p99_ms: number
  abs_p999_ms: number
  rounds: number
}

/** Added latency over `direct` per scenario and proxy, paired round by round. */
export function addedLatency(records: LatencyRecord[]): AddedLatency[] {
  const kept = records.filter((r) => !r.discarded)
  const out: AddedLatency[] = []
  const keys = [...new Set(kept.map((r) => `${r.scenario}\u0000${r.proxy}`))]
  for (const key of keys) {
    const [scenario, proxy] = key.split('\u0000') as [string, ProxyKind]
    if (proxy === 'direct') continue
    const mine = kept.filter((r) => r.scenario === scenario && r.proxy === proxy)
    const d50: number[] = []
    const d99: number[] = []
    const d999: number[] = []
    for (const r of mine) {
      const d = kept.find((x) => x.scenario === scenario && x.proxy === 'direct' && x.round === r.round)
      if (!d) continue
      d50.push(r.p50_ms - d.p50_ms)
      d99.push(r.p99_ms - d.p99_ms)
      d999.push(r.p999_ms - d.p999_ms)
    }
    out.push({
      scenario,
      proxy,
      p50_ms: round(median(d50), 3),
      p99_ms: round(median(d99), 3),
      p999_ms: round(median(d999), 3),
      abs_p50_ms: round(median(mine.map((r) => r.p50_ms)), 3),
      abs_p99_ms: round(median(mine.map((r) => r.p99_ms)), 3),
      abs_p999_ms: round(median(mine.map((r) => r.p999_ms)), 3),
      rounds: d99.length,
    })
  }
  return out
}
