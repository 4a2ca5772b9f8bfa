/**
 * The scanner against the demo API (examples/demo, docs/demo.md): directly, the BOLA, BFLA,
 * data-exposure, mass-assignment and business-flow flaws are found, with default settings in
 * under 60 s; through a real gateway with the demo config, the flaws its policies close today
 * are no longer found (and the test prints which ones remain open).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type DemoApi, demoCredentials, demoOpenApiPath, startDemoApi } from '../examples/demo/api.js'
import { runScan } from '../src/scanner/engine.js'
import { parseAuthConfig } from '../src/scanner/identities.js'
import type { Finding, ScanReport } from '../src/scanner/types.js'
import { demoConfigYaml } from './helpers/demo-config.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

const _ROOT = new URL('../../', import.meta.url).pathname

export function demoAuthYaml(): string {
  const id = (name: keyof typeof demoCredentials, role: string) => `  ${name}:
    roles: [${role}]
    login:
      path: /api/v2/login
      json: { username: ${name}, password: ${demoCredentials[name]} }
      tokenPointer: /token
`
  return `identities:\n${id('alice', 'user')}${id('bob', 'user')}${id('admin', 'admin')}`
}

/** The demo flaws of docs/demo.md that the object/function/flow checks must find. */
const DEMO_FLAWS: { check: string; method: string; path: string; why: string }[] = [
  { check: 'bola', method: 'GET', path: '/api/v2/accounts/{id}', why: 'API1 accounts by id' },
  { check: 'bola', method: 'GET', path: '/api/v2/accounts', why: 'API1 accounts ?ids=' },
  { check: 'bola', method: 'GET', path: '/api/v2/orders/{id}', why: 'API1 read an order' },
  { check: 'bola', method: 'PUT', path: '/api/v2/orders/{id}', why: 'API1 rewrite an order' },
  { check: 'bola', method: 'DELETE', path: '/api/v2/orders/{id}', why: 'API1 delete an order' },
  { check: 'bola', method: 'GET', path: '/api/v2/users/{id}', why: 'API1 any user record' },
  { check: 'excessive-data-exposure', method: 'GET', path: '/api/v2/users/{id}', why: 'API3 passwordHash' },
  { check: 'excessive-data-exposure', method: 'GET', path: '/api/v2/users/me', why: 'API3 passwordHash' },
  { check: 'mass-assignment', method: 'PATCH', path: '/api/v2/users/me', why: 'API3 role/isAdmin' },
  { check: 'bfla', method: 'POST', path: '/api/v2/admin/users/{id}/role', why: 'API5 admin function' },
  { check: 'business-flow-limits', method: 'POST', path: '/api/v2/orders', why: 'API6 orders' },
]
const CHECKS = ['bola', 'bfla', 'excessive-data-exposure', 'business-flow-limits', 'mass-assignment']

const found = (r: ScanReport, flaw: (typeof DEMO_FLAWS)[number]): Finding | undefined =>
  r.findings.find(
    (f) => f.checkId === flaw.check && f.operation?.method === flaw.method && f.operation.path === flaw.path,
  )

describe('scanner against the demo API', () => {
  let api: DemoApi
  before(async () => {
    api = await startDemoApi()
  })
  after(async () => api?.close())

  it('finds the demo flaws of docs/demo.md with default settings, in under 60 s', async () => {
    const t0 = performance.now()
    // Default settings: rate 20/s, concurrency 4, safe mode, every check.
    const report = await runScan({
      spec: demoOpenApiPath(),
      target: api.url,
      auth: parseAuthConfig(demoAuthYaml()),
    })
    const seconds = (performance.now() - t0) / 1000
    console.log(
      `demo scan (default settings): ${seconds.toFixed(1)} s, ${report.stats.requests} requests, ${report.findings.length} findings, ${report.checks.length} checks, skipped: ${report.skipped.map((s) => s.checkId).join(', ') || 'none'}`,
    )
    const missing = DEMO_FLAWS.filter((f) => !found(report, f)).map((f) => `${f.check} ${f.method} ${f.path}`)
    assert.deepEqual(missing, [])
    assert.equal(report.safe, true)
    assert.ok(seconds < 60, `took ${seconds.toFixed(1)} s`)
    // Safe mode left the seed data alone: alice's order 1 and bob's order 2 still exist.
    const login = await fetch(`${api.url}/api/v2/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: demoCredentials.admin }),
    })
    const { token } = (await login.json()) as { token: string }
    for (const id of [1, 2, 3]) {
      const r = await fetch(`${api.url}/api/v2/orders/${id}`, {
        headers: { authorization: `Bearer ${token}` },
      })
      assert.equal(r.status, 200, `seed order ${id}`)
    }
    const alice = (await (
      await fetch(`${api.url}/api/v2/users/1`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as {
      role: string
    }
    assert.equal(alice.role, 'user', 'the BFLA and mass-assignment probes left alice a user')
  })
})

describe('scanner through the gateway with the demo config', () => {
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

  it('no longer finds what the demo config closes (all of them) and prints what is still open', async () => {
    const report = await runScan({
      spec: demoOpenApiPath(),
      target: gw.url,
      auth: parseAuthConfig(demoAuthYaml()),
      checks: CHECKS,
      rate: 50,
    })
    const open = DEMO_FLAWS.filter((f) => found(report, f)).map((f) => `${f.check} ${f.method} ${f.path}`)
    const closed = DEMO_FLAWS.filter((f) => !found(report, f)).map((f) => `${f.check} ${f.method} ${f.path}`)
    console.log(
      `through the gateway: closed ${closed.length}/${DEMO_FLAWS.length} [${closed.join('; ')}]; still open: [${open.join('; ')}]`,
    )
    // The demo config closes every flaw these checks look for: BOLA (object-ownership), data
    // exposure and mass assignment (property-filter, openapi-validation), BFLA (authorize), the
    // order flow (rate-limit quota).
    assert.deepEqual(open, [], 'a flaw the demo config closes is still found')
    assert.equal(closed.length, DEMO_FLAWS.length)
    // The scan really went through: identities logged in and objects were seeded.
    assert.ok(report.stats.requests > 30)
    assert.deepEqual(
      report.skipped.filter((s) => s.checkId === 'bola'),
      [],
    )
  })
})
