/**
 * `config check` and `serve` agree: every example config, and the configs of the redesign issue
 * that `config check` used to call valid while `serve` refused them. (Every integration test's
 * config is also checked by test/helpers/process.ts: a gateway that fails to start on a config
 * that `config check` calls valid fails the test that started it.)
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import pino from 'pino'
import { formatProblem } from '../src/config/load.js'
import { loadGatewayConfig } from '../src/config/policy-checks.js'
import { Gateway } from '../src/gateway/gateway.js'
import { GatewayMetrics } from '../src/gateway/metrics.js'
import { createMemoryStore } from '../src/stores/memory/memory-store.js'

const ROOT = new URL('../../', import.meta.url).pathname
/** A real 2048-bit RSA public key, as a JWK (its exponent is replaced in a case below). */
const weakRsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' })
const EXAMPLES = ['examples/config', 'examples/demo'].flatMap((d) =>
  readdirSync(join(ROOT, d))
    .filter((f) => f.endsWith('.yaml') && f !== 'scan-auth.yaml' && f !== 'openapi.yaml')
    .map((f) => join(ROOT, d, f)),
)

/** Builds what `serve` builds from a loaded config (routes, policies, pools), then closes it. */
async function buildRuntime(
  config: NonNullable<Awaited<ReturnType<typeof loadGatewayConfig>>['config']>,
  file: string,
) {
  const store = createMemoryStore({})
  const gw = new Gateway(config, {
    logger: pino({ level: 'silent' }),
    accessLog: undefined,
    metrics: new GatewayMetrics(),
    baseDir: join(file, '..'),
    store,
  })
  await gw.close(true)
  await store.close()
}

describe('config check and serve agree', () => {
  test(`every example config (${EXAMPLES.length}) is valid and builds`, async () => {
    assert.ok(EXAMPLES.length >= 4, EXAMPLES.join(', '))
    for (const file of EXAMPLES) {
      const r = await loadGatewayConfig(file, { env: { PORTCULLIS_ADMIN_TOKEN: 'x'.repeat(40) } })
      assert.deepEqual(r.errors.map(formatProblem), [], file)
      assert.ok(r.config, file)
      await buildRuntime(r.config, file)
    }
  })

  const dir = mkdtempSync(join(tmpdir(), 'pc-agree-'))
  const base = (policies: string) => `listeners:
  - name: public
upstreams:
  api:
    targets:
      - url: http://127.0.0.1:3000
routes:
  - name: api
    upstream: api
    match: { pathPrefix: / }
    policies:
${policies}
`
  const cases: { name: string; policies: string; line: number; message: RegExp }[] = [
    {
      name: 'an authorize rule with match: {}',
      policies: `      authorize:
        rules:
          - match: {}
            roles: [admin]`,
      line: 14,
      message: /routes\[0\]\.policies\.authorize\.rules\[0\]\.match: give at least one key/,
    },
    {
      name: 'an HS256 key shorter than 32 bytes',
      policies: `      jwt-auth:
        algorithms: [HS256]
        issuer: https://issuer.example
        audience: api
        keys:
          - jwk: '{"kty":"oct","k":"${Buffer.from('too-short-secret').toString('base64url')}"}'`,
      line: 17,
      message:
        /keys\[0\]\.jwk: an HMAC secret of 16 bytes is too short for HS256 — use at least 32 random bytes/,
    },
    {
      name: 'an RSA key with public exponent 3',
      policies: `      jwt-auth:
        algorithms: [RS256]
        issuer: https://issuer.example
        audience: api
        keys:
          - jwk: '${JSON.stringify({ ...weakRsa, e: 'Aw' })}'`,
      line: 17,
      message: /keys\[0\]: RSA public exponent 3 \(at least 65537\)/,
    },
  ]
  for (const c of cases) {
    test(`refused by config check with a line, and by serve: ${c.name}`, async () => {
      const file = join(dir, `${c.name.replace(/\W+/g, '-')}.yaml`)
      writeFileSync(file, base(c.policies))
      const r = await loadGatewayConfig(file)
      assert.equal(r.config, undefined)
      const lines = r.errors.map(formatProblem)
      assert.equal(lines.length, 1, lines.join('\n'))
      assert.match(lines[0] as string, c.message)
      assert.equal(r.errors[0]?.line, c.line, lines[0])
      // serve loads through the same function: it refuses with the same problem (no stack trace)
      const { startGateway } = await import('../src/gateway/serve.js')
      await assert.rejects(
        () => startGateway(file, { logger: pino({ level: 'silent' }) }),
        (err: Error) => {
          assert.equal(err.name, 'ConfigError')
          assert.match(err.message, c.message)
          return true
        },
      )
    })
  }
})
