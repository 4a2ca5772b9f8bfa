import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { Registry } from 'prom-client'
import { memoryAudit } from '../../audit/event.js'
import type { GatewayError } from '../../gateway/errors.js'
import type { ResponseHead } from '../../gateway/pipeline/context.js'
import { Fakes } from '../../secrets/testing/fakes.js'
import { testContext, testDeps } from '../testing/context.js'
import { pointersAt } from './json-pointer.js'
import { leakGuard } from './policy.js'
import { LeakGuardConfig } from './schema.js'

const fakes = new Fakes(5)
const pem = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
  type: 'pkcs1',
  format: 'pem',
}) as string
const awsSecret = `${fakes.chars('b', 38)}Zq`

function setup(cfg: object) {
  const registry = new Registry()
  const audit = memoryAudit()
  const p = leakGuard.create(
    Value.Default(LeakGuardConfig, cfg) as never,
    testDeps({ metrics: registry, audit }),
  )
  const head = (ct = 'application/json'): ResponseHead => ({
    status: 200,
    headers: { 'content-type': ct },
    local: false,
  })
  const run = async (body: string, ct?: string) => {
    try {
      return {
        out: (await p.onResponseBody?.(testContext(), head(ct), Buffer.from(body)))?.toString(),
        code: undefined,
      }
    } catch (err) {
      return { out: undefined, code: (err as GatewayError).code }
    }
  }
  return { run, events: audit.events, registry }
}

test('block: a private key in a response is refused with GW_ERR_RESPONSE_LEAK and audited', async () => {
  const { run, events, registry } = setup({})
  const r = await run(JSON.stringify({ id: 1, deploy: { key: pem } }))
  assert.equal(r.code, 'GW_ERR_RESPONSE_LEAK')
  assert.equal(events.length, 1)
  const e = events[0]
  assert.equal(e?.type, 'leak.detected')
  assert.deepEqual(((e as { data: unknown }).data as { findings: unknown[] }).findings, [
    { detector: 'private-key-rsa', pointer: '/deploy/key' },
  ])
  assert.ok(!JSON.stringify(events).includes('MII'), 'no key material in the audit event')
  const m = await registry.getSingleMetric('portcullis_leaks_detected_total')?.get()
  assert.deepEqual(
    m?.values.map((v) => [v.labels.detector, v.labels.action, v.value]),
    [['private-key-rsa', 'block', 1]],
  )
})

test('mask: an AWS secret inside JSON is replaced in place; the JSON stays valid', async () => {
  const { run, events } = setup({ mode: 'mask' })
  const body = JSON.stringify({
    items: [{ name: 'ci', config: { aws_secret_access_key: awsSecret, region: 'eu-west-1' } }],
  })
  const r = await run(body)
  assert.equal(r.code, undefined)
  assert.ok(!r.out?.includes(awsSecret))
  const parsed = JSON.parse(r.out as string) as {
    items: { config: { aws_secret_access_key: string; region: string } }[]
  }
  assert.equal(parsed.items[0]?.config.aws_secret_access_key, '***')
  assert.equal(parsed.items[0]?.config.region, 'eu-west-1')
  assert.deepEqual(((events[0] as { data: unknown }).data as { findings: unknown[] }).findings, [
    { detector: 'aws-secret-access-key', pointer: '/items/0/config/aws_secret_access_key' },
  ])
})

test('monitor passes the body unchanged; clean bodies and non-text types pass without an event', async () => {
  const tok = fakes.crcToken('ghp_')
  const m = setup({ mode: 'monitor' })
  assert.equal((await m.run(`token ${tok}`, 'text/plain')).out, `token ${tok}`)
  assert.equal(m.events.length, 1)
  assert.equal(
    ((m.events[0] as { data: unknown }).data as { findings: { offset: number }[] }).findings[0]?.offset,
    6,
  )
  const b = setup({})
  assert.equal((await b.run('{"ok":true,"password":"not-scanned-generic-1"}')).code, undefined)
  assert.equal((await b.run(`x ${tok}`, 'image/png')).code, undefined)
  assert.equal(b.events.length, 0)
})

test('oversize and encoded bodies are refused by default (fail closed), passed when configured', async () => {
  const big = 'x'.repeat(2048)
  assert.equal((await setup({ maxScanBytes: 1024 }).run(big)).code, 'GW_ERR_RESPONSE_LEAK')
  assert.equal((await setup({ maxScanBytes: 1024, onOversize: 'pass' }).run(big)).out, big)
  const { p } = (() => {
    const audit = memoryAudit()
    return { p: leakGuard.create(Value.Default(LeakGuardConfig, {}) as never, testDeps({ audit })) }
  })()
  await assert.rejects(
    Promise.resolve().then(() =>
      p.onResponseBody?.(
        testContext(),
        {
          status: 200,
          headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
          local: false,
        },
        Buffer.from('x'),
      ),
    ),
    (e: GatewayError) => e.code === 'GW_ERR_RESPONSE_LEAK',
  )
})

test('config: an unknown detector id in exclude is a ConfigError', () => {
  assert.throws(
    () => leakGuard.create(Value.Default(LeakGuardConfig, { exclude: ['nope'] }) as never, testDeps()),
    (e: Error) => e.name === 'ConfigError',
  )
})

test('JSON pointers of offsets', () => {
  const t = '{"a":{"b~c/d":["x","yy",{"k":"v"}]},"n":12}'
  const offs = [t.indexOf('yy'), t.indexOf('"v"') + 1, t.indexOf('12'), t.indexOf('"a"')]
  assert.deepEqual(
    pointersAt(
      t,
      offs.slice().sort((a, b) => a - b),
    ),
    ['/a', '/a/b~0c~1d/1', '/a/b~0c~1d/2/k', '/n'].map((p, i) => (i === 0 ? undefined : p)),
  )
})
