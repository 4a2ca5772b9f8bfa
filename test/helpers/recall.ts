/**
 * Measures the scanner on one fixture API (test/scanner-fixtures/): scans the vulnerable twin and
 * the secure twin in safe mode, matches findings against the ground truth, and diffs each twin's
 * data before and after its scan. Used by test/scanner-recall-*.test.ts.
 */
import { runScan, type ScanOptions } from '../../src/scanner/engine.js'
import { parseAuthConfig } from '../../src/scanner/identities.js'
import { type Finding, SEVERITY_RANK, type ScanReport } from '../../src/scanner/types.js'
import { type FixtureHandle, type FixtureName, startFixture } from '../scanner-fixtures/host.js'
import type { Flaw } from '../scanner-fixtures/truth.js'

/** Checks whose findings must name the flaw's operation exactly (no evidence-URL matching). */
const BY_OPERATION = new Set([
  'bola',
  'bfla',
  'mass-assignment',
  'business-flow-limits',
  'excessive-data-exposure',
])

function templateRe(path: string): RegExp {
  const parts = path.split(/\{[^}]+\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${parts.join('[^/]+')}$`)
}

/** Whether a finding proves a ground-truth flaw. */
export function matchesFlaw(f: Finding, flaw: Flaw): boolean {
  if (f.checkId !== flaw.check) return false
  if (flaw.title) {
    const t = flaw.title.toLowerCase()
    if (!f.title.toLowerCase().includes(t) && !f.summary.toLowerCase().includes(t)) return false
  }
  if (flaw.path === '*') return true
  if (f.operation?.path === flaw.path && f.operation.method === flaw.method) return true
  if (BY_OPERATION.has(flaw.check)) return false
  const re = templateRe(flaw.path)
  return f.evidence.some((e) =>
    e.exchanges.some((x) => {
      try {
        return x.request.method === flaw.method && re.test(new URL(x.request.url).pathname)
      } catch {
        return false
      }
    }),
  )
}

/** What differs between two JSON states (entries of each top-level list added or removed), for messages. */
export function stateDiff(before: string, after: string): string {
  const a = JSON.parse(before) as Record<string, unknown>
  const b = JSON.parse(after) as Record<string, unknown>
  const out: string[] = []
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = Array.isArray(a[k]) ? (a[k] as unknown[]).map((v) => JSON.stringify(v)) : [JSON.stringify(a[k])]
    const y = Array.isArray(b[k]) ? (b[k] as unknown[]).map((v) => JSON.stringify(v)) : [JSON.stringify(b[k])]
    for (const v of x) if (!y.includes(v)) out.push(`${k}: - ${v}`)
    for (const v of y) if (!x.includes(v)) out.push(`${k}: + ${v}`)
  }
  return out.join('\n')
}

export interface RecallResult {
  name: FixtureName
  vuln: ScanReport
  secure: ScanReport
  /** Flaws a safe scan (with the opt-ins given) can prove. */
  testable: Flaw[]
  found: Flaw[]
  missed: Flaw[]
  /** Findings of the vulnerable twin that match no flaw. */
  extra: Finding[]
  /** Findings of the secure twin at medium or above. */
  twinSerious: Finding[]
  /** JSON of each twin's data before and after its scan. */
  state: { vuln: [string, string]; secure: [string, string] }
  counters: { vuln: Record<string, number>; secure: Record<string, number> }
  line: string
}

export async function measureRecall(
  name: FixtureName,
  truth: readonly Flaw[],
  options: Partial<ScanOptions> & { specFromUrl?: boolean; optIn?: boolean } = {},
): Promise<RecallResult> {
  const scanOne = async (
    api: FixtureHandle,
  ): Promise<[ScanReport, [string, string], Record<string, number>]> => {
    const before = JSON.stringify(await api.state())
    const { specFromUrl, optIn: _o, ...rest } = options
    const report = await runScan({
      spec: specFromUrl && api.specUrl ? api.specUrl : api.specPath,
      target: api.url,
      auth: parseAuthConfig(api.authYaml, `${name}-auth.yaml`, {}),
      rate: 200,
      concurrency: 4,
      ...rest,
    })
    const after = JSON.stringify(await api.state())
    return [report, [before, after], await api.counters()]
  }
  const vulnApi = await startFixture(name, { secure: false })
  const secureApi = await startFixture(name, { secure: true })
  try {
    const [[vuln, vState, vCount], [secure, sState, sCount]] = await Promise.all([
      scanOne(vulnApi),
      scanOne(secureApi),
    ])
    const testable = truth.filter((f) => f.mode === 'safe' || (f.mode === 'opt-in' && options.optIn === true))
    const found = testable.filter((flaw) => vuln.findings.some((f) => matchesFlaw(f, flaw)))
    const missed = testable.filter((f) => !found.includes(f))
    const extra = vuln.findings.filter((f) => !truth.some((flaw) => matchesFlaw(f, flaw)))
    const twinSerious = secure.findings.filter((f) => SEVERITY_RANK[f.severity] >= SEVERITY_RANK.medium)
    const pct = testable.length === 0 ? 100 : Math.round((found.length / testable.length) * 100)
    const line =
      `recall on ${name}: ${found.length}/${testable.length} = ${pct}%` +
      (missed.length ? ` (missed: ${missed.map((f) => f.id).join(', ')})` : '') +
      `; vulnerable twin: ${vuln.findings.length} findings, ${extra.length} beyond the ground truth` +
      (extra.length ? ` [${extra.map((f) => `${f.checkId} ${f.severity} ${f.title}`).join('; ')}]` : '') +
      `, ${vuln.stats.requests} requests, ${vuln.durationMs} ms; secure twin: ${secure.findings.length} findings, ` +
      `${twinSerious.length} at medium or above` +
      (twinSerious.length
        ? ` [${twinSerious.map((f) => `${f.checkId} ${f.severity} ${f.operation?.method ?? ''} ${f.operation?.path ?? ''} ${f.title}`).join('; ')}]`
        : '') +
      `, ${secure.stats.requests} requests`
    return {
      name,
      vuln,
      secure,
      testable,
      found,
      missed,
      extra,
      twinSerious,
      state: { vuln: vState, secure: sState },
      counters: { vuln: vCount, secure: sCount },
      line,
    }
  } finally {
    await vulnApi.close()
    await secureApi.close()
  }
}
