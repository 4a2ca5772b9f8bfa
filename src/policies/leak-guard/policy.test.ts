import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { Registry } from 'prom-client'
import { memoryAudit } from '../../audit/event.js'
import type { GatewayError } from '../../gateway/errors.js'
import type { ResponseHead } from '../../gateway/pipeline/context.js'
import { BUILTIN_DETECTORS } from '../../secrets/detectors/index.js'
import { scannerFor } from '../../secrets/mask.js'
import { Fakes } from '../../secrets/testing/fakes.js'
import type { Detector, ScanStats } from '../../secrets/types.js'
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

/** Every occurrence (case-insensitive, overlaps included) of the detectors' keywords in `text`. */
function keywordOccurrences(text: string, detectors: readonly Detector[]): number {
  const lower = text.toLowerCase()
  let n = 0
  for (const k of new Set(detectors.flatMap((d) => d.keywords.map((x) => x.toLowerCase()))))
    for (let i = lower.indexOf(k); i !== -1; i = lower.indexOf(k, i + 1)) n++
  return n
}

/** Runs the policy on `body` and returns the work of its scan (the shared scanner, observed). */
async function scanWork(body: string, ct = 'application/json'): Promise<ScanStats> {
  const detectors = BUILTIN_DETECTORS.filter((d) => (d.specificity ?? 2) > 0) // the default set
  const scanner = scannerFor(detectors)
  const real = scanner.scan
  let seen: ScanStats | undefined
  scanner.scan = (input, opts) => {
    const r = real.call(scanner, input, opts)
    seen = r.stats
    return r
  }
  try {
    const { run } = setup({})
    const r = await run(body, ct)
    assert.equal(r.out, body)
  } finally {
    scanner.scan = real
  }
  assert.ok(seen !== undefined, 'the policy scanned with the shared scanner of its detector set')
  return seen
}

test('work: a clean 20 KB JSON body costs one pass of the keyword automaton, no detector runs', async () => {
  const body = JSON.stringify({
    orders: Array.from({ length: 80 }, (_, i) => ({
      id: `b3c1f0e2-6a4d-4c1e-9a57-${String(i).padStart(12, '0')}`,
      status: i % 3 === 0 ? 'shipped' : 'pending',
      amount: { value: 4299 + i, currency: 'EUR' },
      customer: { id: `cus_${i}Q2xY9kL`, email: `user${i}@example.com`, note: 'leave at the door' },
      items: [{ sku: `SKU-${1000 + i}`, qty: 2, title: 'Stainless steel water bottle, 750 ml' }],
      createdAt: '2024-05-01T12:34:56Z',
    })),
  })
  assert.ok(body.length > 20_000)
  // Ground truth, without the engine: no keyword of any detector occurs in it.
  const detectors = BUILTIN_DETECTORS.filter((d) => (d.specificity ?? 2) > 0)
  assert.equal(keywordOccurrences(body, detectors), 0)
  const w = await scanWork(body)
  assert.equal(w.bytesScanned, body.length, 'each byte examined once by the keyword pass, nothing rescanned')
  assert.equal(w.keywordHits, 0)
  assert.equal(w.gateUnits, 0)
  assert.equal(w.regexRuns, 0, 'no detector pattern runs')
  assert.equal(w.decodes, 0)
})

test('work: keyword occurrences without a secret run at most one bounded pattern each', async () => {
  // A text body with URLs, hosts and basic-auth words, none a credential.
  const lines = Array.from(
    { length: 120 },
    (_, i) =>
      `${i} GET https://shop.example.com/orders/${i} host=api.example.com basic plan, credit note ${i}`,
  )
  const body = lines.join('\n')
  const detectors = BUILTIN_DETECTORS.filter((d) => (d.specificity ?? 2) > 0)
  const hits = keywordOccurrences(body, detectors)
  assert.ok(hits >= 4 * 120, `keywords occur (${hits})`)
  const w = await scanWork(body, 'text/plain')
  assert.equal(w.keywordHits, hits, 'every occurrence reported once')
  const runsPerHit = Math.max(...detectors.map((d) => d.keywords.length)) // a keyword is shared by few detectors
  assert.ok(w.regexRuns <= hits * runsPerHit, `${w.regexRuns} pattern runs for ${hits} hits`)
  const window = Math.max(...detectors.map((d) => (d.before ?? 0) + (d.after ?? 256)))
  assert.ok(w.regexUnits <= w.regexRuns * window, 'each run sees its bounded window only')
  assert.equal(w.bytesScanned, body.length, 'nothing decoded and rescanned')
})
