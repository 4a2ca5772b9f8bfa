/**
 * `portcullis lint --gateway`: the demo config closes every flaw of the demo spec but SSRF; a copy
 * of it with one protection removed at a time reports exactly the gap that protection closed.
 */
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { parseDocument } from 'yaml'
import { lintFile } from '../src/linter/engine.js'
import { checkGateway, GatewayConfigError, type GatewayReport } from '../src/linter/gateway.js'

const DEMO_CONFIG = 'examples/demo/portcullis.yaml'
const DEMO_SPEC = 'examples/demo/openapi.yaml'

function gapsOf(report: GatewayReport | undefined): string[] {
  return (report?.gaps ?? []).map((g) => `${g.id} ${g.operation}`).sort()
}

/** A copy of the demo config and spec in a temporary directory, edited by `edit` (yaml Document). */
function variant(edit: (doc: ReturnType<typeof parseDocument>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-lint-gw-'))
  copyFileSync(DEMO_SPEC, join(dir, 'openapi.yaml'))
  const doc = parseDocument(readFileSync(DEMO_CONFIG, 'utf8'))
  edit(doc)
  writeFileSync(join(dir, 'portcullis.yaml'), doc.toString())
  return dir
}

function lintVariant(dir: string): GatewayReport | undefined {
  return lintFile(join(dir, 'openapi.yaml'), {
    gateway: { file: join(dir, 'portcullis.yaml'), check: checkGateway },
  }).gateway
}

function routeIndex(doc: ReturnType<typeof parseDocument>, name: string): number {
  const routes = doc.toJS().routes as { name: string }[]
  const i = routes.findIndex((r) => r.name === name)
  assert.ok(i >= 0, name)
  return i
}

test('the demo config: no gap (it closes every flaw, the SSRF with ssrf-guard); without ssrf-guard the SSRF gap', () => {
  const report = lintFile(DEMO_SPEC, { gateway: { file: DEMO_CONFIG, check: checkGateway } }).gateway
  assert.deepEqual(gapsOf(report), [])
  const avatar = report?.operations.find((o) => o.operation === 'POST /api/v2/users/me/avatar')
  assert.equal(avatar?.route, 'demo-api')
  const open = lintVariant(variant((d) => d.deleteIn(['policies', 'ssrf-guard'])))
  assert.deepEqual(gapsOf(open), ['ssrf-unguarded POST /api/v2/users/me/avatar'])
  const gap = open?.operations.find((o) => o.operation === 'POST /api/v2/users/me/avatar')
  assert.match(gap?.gaps[0]?.fix ?? '', /ssrf-guard/)
  const login = report?.operations.find((o) => o.operation === 'POST /api/v2/login')
  assert.equal(login?.route, 'demo-login')
  assert.ok(login?.policies.includes('rate-limit'))
  assert.ok(!login?.policies.includes('userinfo-auth'), 'disabled on the login route')
  assert.equal(report?.operations.length, 14)
})

test('policies removed one by one: each gap is named, at the operations it protected', () => {
  const cases: { remove: string; edit: (d: ReturnType<typeof parseDocument>) => void; expect: string[] }[] = [
    {
      remove: 'userinfo-auth (authentication)',
      edit: (d) => d.deleteIn(['policies', 'userinfo-auth']),
      expect: [
        'no-authentication DELETE /api/v2/orders/{id}',
        'no-authentication GET /api/v2/accounts',
        'no-authentication GET /api/v2/accounts/{id}',
        'no-authentication GET /api/v2/orders',
        'no-authentication GET /api/v2/orders/{id}',
        'no-authentication GET /api/v2/users/me',
        'no-authentication GET /api/v2/users/{id}',
        'no-authentication PATCH /api/v2/users/me',
        'no-authentication POST /api/v2/admin/users/{id}/role',
        'no-authentication POST /api/v2/orders',
        'no-authentication POST /api/v2/users/me/avatar',
        'no-authentication PUT /api/v2/orders/{id}',
      ],
    },
    {
      remove: 'authorize',
      edit: (d) => d.deleteIn(['policies', 'authorize']),
      expect: ['admin-without-authorize POST /api/v2/admin/users/{id}/role'],
    },
    {
      remove: 'object-ownership',
      edit: (d) => d.deleteIn(['policies', 'object-ownership']),
      expect: [
        'object-without-ownership DELETE /api/v2/orders/{id}',
        'object-without-ownership GET /api/v2/accounts',
        'object-without-ownership GET /api/v2/accounts/{id}',
        'object-without-ownership GET /api/v2/orders/{id}',
        'object-without-ownership GET /api/v2/users/{id}',
        'object-without-ownership PUT /api/v2/orders/{id}',
      ],
    },
    {
      remove: "object-ownership's account rules",
      edit: (d) => d.deleteIn(['policies', 'object-ownership', 'objects', 1]),
      expect: [
        'object-without-ownership GET /api/v2/accounts',
        'object-without-ownership GET /api/v2/accounts/{id}',
      ],
    },
    {
      // The lockout limits failed logins too: the gap opens when both are gone.
      remove: 'rate-limit and brute-force-lockout on the login route',
      edit: (d) => {
        d.deleteIn(['routes', routeIndex(d, 'demo-login'), 'policies', 'rate-limit'])
        d.deleteIn(['routes', routeIndex(d, 'demo-login'), 'policies', 'brute-force-lockout'])
      },
      expect: ['auth-flow-without-limit POST /api/v2/login'],
    },
    {
      remove: 'rate-limit on the orders route',
      edit: (d) => d.deleteIn(['routes', routeIndex(d, 'demo-orders'), 'policies', 'rate-limit']),
      expect: ['business-flow-without-limit POST /api/v2/orders'],
    },
    {
      remove: 'openapi-validation block mode',
      edit: (d) => d.setIn(['policies', 'openapi-validation', 'mode'], 'monitor'),
      expect: [
        'validation-monitor-only DELETE /api/v2/orders/{id}',
        'validation-monitor-only GET /api/v2/accounts',
        'validation-monitor-only GET /api/v2/accounts/{id}',
        'validation-monitor-only GET /api/v2/orders',
        'validation-monitor-only GET /api/v2/orders/{id}',
        'validation-monitor-only GET /api/v2/users/me',
        'validation-monitor-only GET /api/v2/users/{id}',
        'validation-monitor-only GET /healthz',
        'validation-monitor-only PATCH /api/v2/users/me',
        'validation-monitor-only POST /api/v2/admin/users/{id}/role',
        'validation-monitor-only POST /api/v2/login',
        'validation-monitor-only POST /api/v2/orders',
        'validation-monitor-only POST /api/v2/users/me/avatar',
        'validation-monitor-only PUT /api/v2/orders/{id}',
      ],
    },
    {
      remove: 'response validation (responses: strip)',
      edit: (d) => d.deleteIn(['policies', 'openapi-validation', 'responses']),
      expect: [
        'responses-unvalidated GET /api/v2/accounts',
        'responses-unvalidated GET /api/v2/accounts/{id}',
        'responses-unvalidated GET /api/v2/orders',
        'responses-unvalidated GET /api/v2/orders/{id}',
        'responses-unvalidated GET /api/v2/users/me',
        'responses-unvalidated GET /api/v2/users/{id}',
        'responses-unvalidated GET /healthz',
        'responses-unvalidated PATCH /api/v2/users/me',
        'responses-unvalidated POST /api/v2/admin/users/{id}/role',
        'responses-unvalidated POST /api/v2/login',
        'responses-unvalidated POST /api/v2/orders',
        'responses-unvalidated POST /api/v2/users/me/avatar',
        'responses-unvalidated PUT /api/v2/orders/{id}',
      ],
    },
    {
      // Request validation in block mode refuses undeclared and readOnly properties too: removing
      // property-filter alone opens no write; removing both does.
      remove: 'property-filter and openapi-validation',
      edit: (d) => {
        d.deleteIn(['policies', 'property-filter'])
        d.deleteIn(['policies', 'openapi-validation'])
      },
      expect: [
        'write-unvalidated PATCH /api/v2/users/me',
        'write-unvalidated POST /api/v2/admin/users/{id}/role',
        'write-unvalidated POST /api/v2/login',
        'write-unvalidated POST /api/v2/orders',
        'write-unvalidated POST /api/v2/users/me/avatar',
        'write-unvalidated PUT /api/v2/orders/{id}',
      ],
    },
  ]
  const ssrf = 'ssrf-unguarded POST /api/v2/users/me/avatar'
  for (const c of cases) {
    const got = gapsOf(lintVariant(variant(c.edit))).filter((g) => g !== ssrf)
    const expected = [...c.expect]
    if (c.remove === 'property-filter and openapi-validation') {
      // Without openapi-validation the responses are unchecked too.
      const unvalidated = got.filter((g) => g.startsWith('responses-unvalidated'))
      assert.equal(unvalidated.length, 13, c.remove)
      expected.push(...unvalidated)
    }
    assert.deepEqual(got, expected.sort(), `removing ${c.remove}`)
    console.log(
      `lint --gateway, demo config without ${c.remove}: ${new Set(got.map((g) => g.split(' ')[0])).size} gap kind(s) named, ${got.length} operation gap(s)`,
    )
  }
  // property-filter alone: request validation (block) still refuses mass assignment, and the
  // responses are still stripped to the contract: no gap opens.
  assert.deepEqual(gapsOf(lintVariant(variant((d) => d.deleteIn(['policies', 'property-filter'])))), [])
})

test('a gateway config that does not load is a config error listing its problems', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-lint-gw-bad-'))
  writeFileSync(join(dir, 'portcullis.yaml'), 'routes: 7\nnope: true\n')
  assert.throws(
    () => lintFile(DEMO_SPEC, { gateway: { file: join(dir, 'portcullis.yaml'), check: checkGateway } }),
    (err: unknown) => err instanceof GatewayConfigError && err.problems.length >= 1,
  )
})
