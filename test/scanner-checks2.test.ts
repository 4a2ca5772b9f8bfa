/**
 * SCAN2's checks (API2, API4, API7, API8, API9, injection) against the deliberately vulnerable
 * fixture API and its fixed twin (test/fixtures/vuln-api.ts): every ground-truth flaw of these
 * checks is found with proof; the fixed twin gives no finding at medium or above. Prints recall
 * and false positives. Also renders the real report in every format (SARIF schema-checked).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { Ajv } from 'ajv'
import { FORMATS } from '../src/openapi/formats.js'
import { runScan } from '../src/scanner/engine.js'
import { parseAuthConfig } from '../src/scanner/identities.js'
import { REPORT_FORMATS, renderReport } from '../src/scanner/report/index.js'
import type { Finding, ScanReport } from '../src/scanner/types.js'
import { SEVERITY_RANK } from '../src/scanner/types.js'
import { SCAN2_CHECKS } from './helpers/scan2.js'
import {
  GROUND_TRUTH,
  startVulnApi,
  VULN_API_USERS,
  type VulnApi,
  vulnAuthYaml,
} from './fixtures/vuln-api.js'

const ROOT = new URL('../../', import.meta.url).pathname

/** Ground-truth flaw id → the finding that proves it. */
const EXPECTED: Record<string, { check: string; match: (f: Finding) => boolean }> = {
  'auth-missing': {
    check: 'unauthenticated-access',
    match: (f) => f.operation?.path === '/api/v2/reports/summary',
  },
  'jwt-alg-none': { check: 'jwt-weaknesses', match: (f) => /alg "none"/.test(f.title) },
  'jwt-stripped-signature': { check: 'jwt-weaknesses', match: (f) => /signature stripped/.test(f.title) },
  'jwt-expired': { check: 'jwt-weaknesses', match: (f) => /Expired JWT/.test(f.title) },
  'jwt-weak-secret': { check: 'jwt-weaknesses', match: (f) => /weak HMAC secret/.test(f.title) },
  'user-enumeration': { check: 'user-enumeration', match: (f) => f.operation?.path === '/api/v2/login' },
  'token-in-url': { check: 'token-in-url', match: (f) => /access_token/.test(f.summary) },
  'login-no-rate-limit': { check: 'resource-limits', match: (f) => f.title === 'No rate limit on login' },
  'huge-page-size': {
    check: 'resource-limits',
    match: (f) => f.operation?.path === '/api/v2/products' && /100000/.test(f.title),
  },
  'unbounded-string': { check: 'resource-limits', match: (f) => f.operation?.path === '/api/v2/feedback' },
  'ssrf-webhook': { check: 'ssrf', match: (f) => f.operation?.path === '/api/v2/webhooks' },
  'cors-reflect': {
    check: 'cors-misconfig',
    match: (f) => /reflects any Origin with credentials/.test(f.title),
  },
  'security-headers-missing': {
    check: 'security-headers',
    match: (f) => /X-Content-Type-Options/.test(f.summary),
  },
  'stack-trace': { check: 'verbose-errors', match: (f) => /Stack trace/.test(f.title) },
  'x-powered-by': { check: 'tech-disclosure', match: (f) => /x-powered-by: Express/i.test(f.summary) },
  'trace-enabled': { check: 'http-methods', match: (f) => /echoed/.test(f.summary) },
  'undocumented-debug': {
    check: 'shadow-endpoints',
    match: (f) => f.title === 'Undocumented endpoint /debug',
  },
  'old-version-v1': { check: 'shadow-endpoints', match: (f) => /\/api\/v1\/users\//.test(f.title) },
  'deprecated-served': {
    check: 'deprecated-operations',
    match: (f) => f.operation?.path === '/api/v2/legacy/profile',
  },
  'sql-error': {
    check: 'injection-signatures',
    match: (f) => f.operation?.path === '/api/v2/products' && /SQL/.test(f.title) && /search/.test(f.summary),
  },
}

let vuln: VulnApi
let fixed: VulnApi
let vulnReport: ScanReport
let fixedReport: ScanReport

async function scan(api: VulnApi): Promise<ScanReport> {
  return runScan({
    spec: api.specPath,
    target: api.url,
    auth: parseAuthConfig(vulnAuthYaml()),
    checks: SCAN2_CHECKS,
    rate: 200,
    concurrency: 4,
  })
}

before(async () => {
  ;[vuln, fixed] = await Promise.all([startVulnApi({ fixed: false }), startVulnApi({ fixed: true })])
  const t0 = performance.now()
  vulnReport = await scan(vuln)
  const t1 = performance.now()
  fixedReport = await scan(fixed)
  const t2 = performance.now()
  console.log(
    `scan (SCAN2 checks): vulnerable twin ${Math.round(t1 - t0)} ms, ${vulnReport.stats.requests} requests; ` +
      `fixed twin ${Math.round(t2 - t1)} ms, ${fixedReport.stats.requests} requests`,
  )
})

after(async () => {
  await Promise.all([vuln?.close(), fixed?.close()])
})

test('every ground-truth flaw of the SCAN2 checks is found, with proof; recall and false positives printed', () => {
  const mine = GROUND_TRUTH.filter((g) => EXPECTED[g.id] !== undefined)
  const unmapped = GROUND_TRUTH.filter(
    (g) =>
      EXPECTED[g.id] === undefined &&
      (SCAN2_CHECKS.includes(g.check) ||
        !/^(bola|bfla|excessive-data-exposure|mass-assignment|business-flow-limits)$/.test(g.check)),
  )
  assert.deepEqual(
    unmapped.map((g) => g.id),
    [],
    'every ground-truth flaw outside SCAN’s checks is mapped here',
  )
  const used = new Set<Finding>()
  const missed: string[] = []
  for (const g of mine) {
    const e = EXPECTED[g.id] as (typeof EXPECTED)[string]
    const f = vulnReport.findings.find((x) => x.checkId === e.check && e.match(x))
    if (!f) {
      missed.push(g.id)
      continue
    }
    used.add(f)
    assert.ok(
      f.evidence.length > 0 && f.evidence.every((ev) => ev.exchanges.length > 0),
      `${g.id}: proof attached`,
    )
    assert.ok(
      f.evidence.some((ev) => ev.exchanges.some((x) => x.response !== undefined)),
      `${g.id}: a response in the proof`,
    )
  }
  const extra = vulnReport.findings.filter((f) => !used.has(f))
  const fixedAtMedium = fixedReport.findings.filter((f) => SEVERITY_RANK[f.severity] >= SEVERITY_RANK.medium)
  const recall = (mine.length - missed.length) / mine.length
  console.log(
    `recall: ${mine.length - missed.length}/${mine.length} = ${(recall * 100).toFixed(0)}%${missed.length ? ` (missed: ${missed.join(', ')})` : ''}`,
  )
  console.log(
    `vulnerable twin: ${vulnReport.findings.length} findings, ${extra.length} beyond the ground truth: ` +
      (extra.map((f) => `${f.checkId} [${f.severity}] ${f.title}`).join('; ') || 'none'),
  )
  console.log(
    `fixed twin (false positives): ${fixedReport.findings.length} findings, ${fixedAtMedium.length} at medium or above: ` +
      (fixedReport.findings.map((f) => `${f.checkId} [${f.severity}] ${f.title}`).join('; ') || 'none'),
  )
  console.log(
    `skipped (vulnerable): ${JSON.stringify(vulnReport.skipped)}; (fixed): ${JSON.stringify(fixedReport.skipped)}`,
  )
  assert.deepEqual(missed, [])
})

test('the fixed twin gives no finding at medium or above', () => {
  const worst = fixedReport.findings.filter((f) => SEVERITY_RANK[f.severity] >= SEVERITY_RANK.medium)
  assert.deepEqual(
    worst.map((f) => `${f.checkId}: ${f.title}`),
    [],
  )
  assert.deepEqual(
    fixedReport.skipped.filter((s) => s.reason.startsWith('error')),
    [],
    'no check failed with an error',
  )
})

test('no secret reaches the report: passwords, tokens, the /debug body', () => {
  const text = JSON.stringify(vulnReport)
  for (const u of Object.values(VULN_API_USERS)) assert.ok(!text.includes(u.password), 'a password leaked')
  assert.doesNotMatch(text, /hunter2/, 'the database password from /debug is masked')
  assert.doesNotMatch(text, /eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{20,}/, 'no signed JWT in the report')
  const weak = vulnReport.findings.find((f) => /weak HMAC/.test(f.title))
  assert.ok(weak)
  assert.doesNotMatch(weak.summary, /"secret"/, 'the cracked secret is hinted, not printed')
})

test('the real report renders in every format; SARIF is schema-valid', () => {
  for (const format of REPORT_FORMATS) {
    const out = renderReport(vulnReport, format, { color: false })
    assert.ok(out.length > 1000, format)
  }
  const schema = JSON.parse(readFileSync(`${ROOT}test/fixtures/sarif-schema-2.1.0.json`, 'utf8'))
  delete schema.$schema
  schema.$id = schema.id
  delete schema.id
  const validate = new Ajv({ allErrors: true, strict: false, formats: FORMATS }).compile(schema)
  const ok = validate(JSON.parse(renderReport(vulnReport, 'sarif', { color: false })))
  assert.ok(ok, JSON.stringify(validate.errors?.slice(0, 3)))
})
