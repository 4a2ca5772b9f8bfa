/**
 * Config problems of the network-edge features (issue 19) are found by the loader that
 * `portcullis config check`, `serve` and every reload share, with their path and line: ip-filter,
 * cors and ssrf-guard through their dry build, the egress section through its own check.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadGatewayConfig } from '../src/config/policy-checks.js'
import { tempDir } from './helpers/process.js'

test('bad ranges, origins, patterns and egress files are config errors with their path and line', async () => {
  const dir = tempDir('pc-edge-config-')
  const file = join(dir, 'portcullis.yaml')
  writeFileSync(
    file,
    `listeners: [ { name: p, host: 127.0.0.1, port: 0 } ]
upstreams: { u: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - name: r
    upstream: u
    policies:
      ip-filter: { allow: [10.0.0.0/8, 10.0.0.0/33] }
      cors: { origins: ["*"], credentials: true, originPatterns: ["https://.*"] }
      ssrf-guard: { denyAddresses: ["127.1"] }
egress:
  enabled: true
  clients: [not-a-range]
  allow:
    - { host: api.example.com, ca: missing-ca.pem }
    - { host: api2.example.com, openapi: { spec: missing.yaml } }
`,
  )
  const r = await loadGatewayConfig(file)
  assert.equal(r.config, undefined)
  const got = r.errors.map((e) => `${e.path}@${e.line}: ${e.message}`)
  const expect = [
    /^routes\[0\]\.policies\.ip-filter\.allow\[1\]@7: expected an IP address or CIDR range/,
    /^routes\[0\]\.policies\.cors\.origins@8: "\*" cannot be combined with credentials/,
    /^routes\[0\]\.policies\.cors\.originPatterns\[0\]@8: matches "https:\/\/portcullis-probe\.invalid"/,
    /^routes\[0\]\.policies\.ssrf-guard\.denyAddresses\[0\]@9: .*"127\.1"/,
    /^egress\.clients\[0\]@12: .*"not-a-range"/,
    /^egress\.allow\[0\]\.ca@14: cannot read missing-ca\.pem: ENOENT/,
    /^egress\.allow\[1\]\.tls@15: openapi validation needs to see the answers/,
  ]
  for (const re of expect)
    assert.ok(
      got.some((g) => re.test(g)),
      `${re} in:\n${got.join('\n')}`,
    )
  assert.ok(
    got.some((g) => g.startsWith('egress.allow[1].openapi.spec@')),
    got.join('\n'),
  )
})
