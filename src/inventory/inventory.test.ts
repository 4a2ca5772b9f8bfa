import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pino } from 'pino'
import type { LogEntry } from '../gateway/pipeline/policy.js'
import type { RequestContext } from '../gateway/pipeline/context.js'
import { createMemoryStore } from '../stores/memory/memory-store.js'
import type { InventoryConfig } from './config.js'
import { Inventory } from './inventory.js'
import { toOpenApi } from './openapi-export.js'
import { SpecIndex } from './spec-index.js'

const CONFIG: InventoryConfig = {
  enabled: true,
  sampleRate: 0.01,
  warmupSamples: 20,
  maxSampleBytes: 4096,
  maxOperations: 50,
  maxSegmentValues: 10,
  maxFieldsPerOperation: 150,
  unusedAfterDays: 30,
  retentionDays: 90,
  flushIntervalMs: 2000,
}

function make(config: Partial<InventoryConfig> = {}, spec = new SpecIndex([])) {
  let t = 1_800_000_000_000
  const inv = new Inventory({
    config: { ...CONFIG, ...config },
    store: createMemoryStore(),
    spec,
    logger: pino({ level: 'silent' }),
    now: () => t,
  })
  return { inv, advance: (ms: number) => (t += ms) }
}

function ctx(method: string, path: string, extra: Partial<RequestContext> = {}): RequestContext {
  return {
    method,
    path,
    query: '',
    req: { headers: {} },
    principal: undefined,
    state: {},
    body: undefined,
    ...extra,
  } as unknown as RequestContext
}

function entry(c: RequestContext, status = 200): LogEntry {
  return {
    ctx: c,
    status,
    durationMs: 2,
    decision: status >= 400 ? 'denied' : 'allowed',
    errorCode: undefined,
  }
}

test('sampling is bounded: the warm-up, then one request in 1/sampleRate', async () => {
  const { inv } = make()
  for (let i = 0; i < 10_000; i++) inv.observe(entry(ctx('GET', `/orders/${i}`)))
  const v = await inv.view()
  const o = v.operations.find((x) => x.id === 'GET /orders/{id}')
  assert.equal(o?.requests, 10_000)
  const samples = o?.samples.req ?? 0
  // 20 warm-up samples, then every 100th of the remaining 9,980.
  assert.ok(samples >= 20 + 99 && samples <= 20 + 100, `samples ${samples}`)
})

test('operations and fields stay within their bounds; overflow counts the rest', async () => {
  const { inv } = make({ sampleRate: 1 })
  // 200 distinct top-level literal segments: the root collapses after 10.
  for (let i = 0; i < 200; i++)
    inv.observe(
      entry(ctx('GET', `/${String.fromCharCode(97 + (i % 26))}${'x'.repeat(1 + Math.floor(i / 26))}/list`)),
    )
  // 500 methods (free-form tokens): bounded too.
  for (let i = 0; i < 500; i++) inv.observe(entry(ctx(`M${i}`, '/thing')))
  const v = await inv.view()
  assert.ok(inv.size <= 50 + 500, `${inv.size}`)
  const observed = v.operations.filter((o) => o.requests > 0)
  assert.ok(observed.length <= 50 + 500)
  assert.equal(
    observed.reduce((a, o) => a + o.requests, 0),
    700,
    'every request is counted somewhere',
  )
  assert.ok(
    v.operations.some((o) => o.path === '(overflow)'),
    'an overflow entry',
  )
  // A body with 1,000 fields: at most maxFieldsPerOperation field records.
  const wide: Record<string, number> = {}
  for (let i = 0; i < 1000; i++) wide[`f${i}`] = i
  const { inv: inv2 } = make({ sampleRate: 1, maxSampleBytes: 1_000_000 })
  const c = ctx('POST', '/wide', {
    req: { headers: { 'content-type': 'application/json' } } as never,
    body: Buffer.from(JSON.stringify(wide)),
  })
  inv2.observe(entry(c))
  const w = (await inv2.view()).operations.find((o) => o.id === 'POST /wide')
  assert.ok((w?.fields.length ?? 0) <= 150, `${w?.fields.length}`)
})

test('a response tee copies at most maxSampleBytes; a truncated JSON body is scanned as text', async () => {
  const { inv } = make({ maxSampleBytes: 256 })
  const c = ctx('GET', '/users/7')
  const tee = inv.responseTee(c, 200, { 'content-type': 'application/json' })
  assert.ok(tee, 'warm-up: sampled')
  const body = Buffer.from(JSON.stringify({ email: 'alice@example.com', pad: 'x'.repeat(10_000) }))
  tee.push(body.subarray(0, 100))
  tee.push(body.subarray(100))
  assert.equal(tee.size, 256)
  assert.equal(tee.truncated, true)
  inv.observe(entry(c))
  const o = (await inv.view()).operations.find((x) => x.id === 'GET /users/{id}')
  assert.deepEqual(
    o?.dataClasses.map((d) => [d.class, d.in]),
    [['email', ['response']]],
  )
  // Encoded bodies are not copied.
  assert.equal(inv.responseTee(ctx('GET', '/users/8'), 200, { 'content-encoding': 'gzip' }), undefined)
})

test('hostile requests do not break the inventory', async () => {
  const { inv } = make({ sampleRate: 1 })
  const nasty = [
    '/a/\u0000/b',
    `/${'x'.repeat(100_000)}`,
    `/${Array.from({ length: 200 }, () => 'seg').join('/')}`,
    '/__proto__/constructor',
    '/{id}/{id}',
    '/%7B%7D',
  ]
  for (const p of nasty) {
    inv.observe(
      entry(
        ctx('GET', p, {
          query: '__proto__=1&constructor=x&a=%ZZ&=&&',
          req: { headers: { cookie: 'a=b; =; ;', authorization: 'Bearer', 'x-user': '\u0000' } } as never,
          body: Buffer.from('{"__proto__": {"polluted": 1}, "a": [[[[[[1]]]]]]}'),
        }),
      ),
    )
  }
  inv.observe(entry(ctx('GET', '')))
  const v = await inv.view()
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
  assert.equal(
    v.operations.reduce((a, o) => a + o.requests, 0),
    nasty.length,
  )
  for (const o of v.operations) assert.ok(o.path.split('/').length <= 18, o.path.slice(0, 80))
  // The export stays a valid document shape (paths that cannot be templates are left out).
  const doc = toOpenApi(v) as { paths: Record<string, unknown> }
  for (const p of Object.keys(doc.paths)) assert.ok(p.startsWith('/'))
})

test('unused operations of the spec after unusedAfterDays; flags and reasons', async () => {
  const spec = new SpecIndex([
    { file: new URL('../../../examples/demo/openapi.yaml', import.meta.url).pathname, prefix: '' },
  ])
  assert.equal(spec.size, 14)
  const { inv, advance } = make({ unusedAfterDays: 1 }, spec)
  inv.observe(entry(ctx('GET', '/healthz')))
  let v = await inv.view()
  assert.ok(!v.operations.some((o) => o.flags.includes('unused')), 'not before a day of observing')
  advance(2 * 86_400_000)
  inv.observe(entry(ctx('GET', '/healthz')))
  v = await inv.view()
  const unused = v.operations.filter((o) => o.flags.includes('unused')).map((o) => o.id)
  assert.equal(unused.length, 13)
  assert.ok(!unused.includes('GET /healthz'))
  assert.match(v.operations.find((o) => o.id === 'GET /api/v2/orders')?.reasons.unused ?? '', /never called/)
})
