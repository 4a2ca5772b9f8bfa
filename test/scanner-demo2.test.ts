/**
 * SCAN2's checks against the demo API (docs/demo.md): directly, the API2/API4/API7/API8/API9
 * flaws of the demo are found; through a real gateway with the demo config, the ones its policies
 * close today (security-headers, rate-limit on login, jwt-auth on /api/v1 and the debug route)
 * are no longer found, and the test prints what is still open.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type DemoApi, demoOpenApiPath, startDemoApi } from '../examples/demo/api.js'
import { runScan } from '../src/scanner/engine.js'
import { parseAuthConfig } from '../src/scanner/identities.js'
import type { Finding, ScanReport } from '../src/scanner/types.js'
import { demoConfigYaml } from './helpers/demo-config.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'
import { demoAuthYaml, SCAN2_CHECKS } from './helpers/scan2.js'

const _ROOT = new URL('../../', import.meta.url).pathname

/** The demo flaws of docs/demo.md that SCAN2's checks must find, and whether the demo config closes them. */
const FLAWS: { id: string; match: (f: Finding) => boolean; closedByGateway: boolean }[] = [
  {
    id: 'API2/API4 login without rate limit',
    match: (f) => f.checkId === 'resource-limits' && f.title === 'No rate limit on login',
    closedByGateway: true,
  },
  {
    id: 'API7 avatar SSRF',
    match: (f) => f.checkId === 'ssrf' && f.operation?.path === '/api/v2/users/me/avatar',
    closedByGateway: true,
  },
  {
    id: 'API8 Server / X-Powered-By',
    match: (f) => f.checkId === 'tech-disclosure' && /x-powered-by/i.test(f.summary),
    closedByGateway: true,
  },
  {
    id: 'API8 no security headers',
    match: (f) => f.checkId === 'security-headers' && /X-Content-Type-Options/.test(f.summary),
    closedByGateway: true,
  },
  {
    id: 'API8/API9 debug route',
    match: (f) =>
      f.checkId === 'shadow-endpoints' && f.title === 'Undocumented endpoint /api/v2/debug/config',
    closedByGateway: true,
  },
  {
    id: 'API9 /api/v1 still served',
    match: (f) => f.checkId === 'shadow-endpoints' && /\/api\/v1\/users\//.test(f.title),
    closedByGateway: true,
  },
]

const scan = (target: string, rate?: number): Promise<ScanReport> =>
  runScan({
    spec: demoOpenApiPath(),
    target,
    auth: parseAuthConfig(demoAuthYaml()),
    checks: SCAN2_CHECKS,
    ...(rate ? { rate } : {}),
  })

describe('SCAN2 checks against the demo API', () => {
  let api: DemoApi
  before(async () => {
    api = await startDemoApi()
  })
  after(async () => api?.close())

  it('finds the demo’s API2/4/7/8/9 flaws, masks the debug route’s secrets', async () => {
    const report = await scan(api.url, 100)
    const missing = FLAWS.filter((f) => !report.findings.some(f.match)).map((f) => f.id)
    console.log(
      `demo directly (SCAN2 checks): ${report.findings.length} findings, ${report.stats.requests} requests, ${report.durationMs} ms: ` +
        report.findings.map((f) => `${f.checkId} [${f.severity}] ${f.title}`).join('; '),
    )
    assert.deepEqual(missing, [])
    // The debug route's database password and AWS secret key never reach the report.
    const debug = report.findings.find((f) => f.title === 'Undocumented endpoint /api/v2/debug/config')
    const body = debug?.evidence[0]?.exchanges[0]?.response?.body ?? ''
    assert.ok(body.length > 0)
    assert.doesNotMatch(JSON.stringify(report), /wJalrXUtnFEMI\/K7MDENG\/bPxRfiCYEXAMPLEKEY/)
    assert.doesNotMatch(body, /:\/\/[^:@/\s"]+:(?!\*\*\*)[^@/\s"]+@/, 'no URL password')
    // The demo's tokens are opaque: the JWT check says why it did not run.
    assert.match(report.skipped.find((s) => s.checkId === 'jwt-weaknesses')?.reason ?? '', /not a JWT/)
  })
})

describe('SCAN2 checks through the gateway with the demo config', () => {
  let api: DemoApi
  let gw: GatewayProcess
  before(async () => {
    api = await startDemoApi({ host: '127.0.0.1', port: 0 })
    gw = await spawnGateway(demoConfigYaml(api.url))
  })
  after(async () => {
    await gw?.stop()
    await api?.close()
  })

  it('no longer finds what the demo config closes and prints what is still open', async () => {
    const report = await scan(gw.url, 50)
    const open = FLAWS.filter((f) => report.findings.some(f.match))
    const closed = FLAWS.filter((f) => !report.findings.some(f.match))
    console.log(
      `through the gateway (SCAN2 checks): closed ${closed.length}/${FLAWS.length} [${closed.map((f) => f.id).join('; ')}]; ` +
        `still open: [${open.map((f) => f.id).join('; ')}]; all findings: ` +
        report.findings.map((f) => `${f.checkId} [${f.severity}] ${f.title}`).join('; '),
    )
    assert.deepEqual(
      FLAWS.filter((f) => f.closedByGateway && report.findings.some(f.match)).map((f) => f.id),
      [],
      'a flaw the demo config closes is still found',
    )
    assert.ok(report.stats.requests > 30)
  })
})
