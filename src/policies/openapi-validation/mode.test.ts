import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { Registry } from 'prom-client'
import { type AuditEvent, memoryAudit } from '../../audit/event.js'
import type { GatewayError } from '../../gateway/errors.js'
import { testContext, testDeps } from '../testing/context.js'
import { openApiValidation } from './policy.js'
import { OpenApiValidationConfig } from './schema.js'

const SPEC = `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /items:
    post:
      operationId: createItem
      parameters: [{ name: limit, in: query, schema: { type: integer } }]
      requestBody:
        content:
          application/json:
            schema: { type: object, properties: { name: { type: string } } }
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: { type: object, properties: { id: { type: integer } } }
`
const dir = mkdtempSync(join(tmpdir(), 'pcl-mode-'))
writeFileSync(join(dir, 'api.yaml'), SPEC)

function setup(cfg: object) {
  const registry = new Registry()
  const audit = memoryAudit()
  const p = openApiValidation.create(
    Value.Default(OpenApiValidationConfig, { spec: 'api.yaml', ...cfg }) as never,
    testDeps({ baseDir: dir, metrics: registry, audit }),
  )
  return { p, registry, events: audit.events }
}

async function post(p: ReturnType<typeof setup>['p'], body: string, query = '', path = '/items') {
  const ctx = testContext({
    method: 'POST',
    path,
    query,
    headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
  })
  ctx.readBody = async () => Buffer.from(body)
  try {
    await p.onRequest?.(ctx)
    return { ctx, code: undefined }
  } catch (err) {
    return { ctx, code: (err as GatewayError).code }
  }
}

async function series(registry: Registry): Promise<string[]> {
  const m = await registry.getSingleMetric('portcullis_openapi_violations_total')?.get()
  return (m?.values ?? [])
    .map((v) => `${v.labels.operation} ${v.labels.phase} ${v.labels.mode} ${v.value}`)
    .sort()
}
const summary = (events: AuditEvent[]) =>
  events.map((e) => {
    const d = e.data as { mode: string; phase: string; kinds: { in: string; kind: string }[] }
    return `${e.type} ${e.operation} ${d.phase} ${d.mode} ${e.decision}${e.code ? ` ${e.code}` : ''} ${d.kinds.map((k) => `${k.in}:${k.kind}`).join(',')}`
  })

test('block: the violations metric and the audit event carry mode=block and the code', async () => {
  const { p, registry, events } = setup({})
  assert.equal((await post(p, '{"name":"a"}')).code, undefined)
  assert.equal((await post(p, '{"name":1}')).code, 'GW_ERR_VALIDATION')
  assert.equal((await post(p, '{}', '', '/nope')).code, 'GW_ERR_ROUTE_NOT_IN_SPEC')
  assert.deepEqual(await series(registry), ['(not in spec) route block 1', 'createItem request block 1'])
  assert.deepEqual(summary(events), [
    'openapi.violation createItem request block deny GW_ERR_VALIDATION body:schema',
    'openapi.violation (not in spec) route block deny GW_ERR_ROUTE_NOT_IN_SPEC path:undeclared-route',
  ])
  // ids only: the request members, never the body's values or the property names
  assert.equal(events[0]?.path, '/items')
  assert.ok(!JSON.stringify(events).includes('"name"'))
})

test('monitor and strip: passed requests are counted and audited with their mode', async () => {
  const mon = setup({ mode: 'monitor', undeclaredRoutes: 'monitor' })
  assert.equal((await post(mon.p, '{"name":1}')).code, undefined)
  assert.equal((await post(mon.p, '{}', '', '/shadow')).code, undefined)
  assert.deepEqual(await series(mon.registry), [
    '(not in spec) route monitor 1',
    'createItem request monitor 1',
  ])
  assert.deepEqual(summary(mon.events), [
    'openapi.violation createItem request monitor allow body:schema',
    'openapi.violation (not in spec) route monitor allow path:undeclared-route',
  ])

  const strip = setup({ undeclaredProperties: 'strip', unknownQueryParams: 'strip' })
  const r = await post(strip.p, '{"name":"a","role":"admin"}', 'debug=1')
  assert.equal(r.code, undefined)
  assert.equal(r.ctx.body?.toString(), '{"name":"a"}')
  assert.deepEqual(await series(strip.registry), ['createItem request strip 1'])
  assert.deepEqual(summary(strip.events), [
    'openapi.violation createItem request strip allow query:unknown-query,body:undeclared-property',
  ])
  // a request refused for another reason is recorded as refused, not as repaired
  assert.equal((await post(strip.p, '{"name":1,"role":"admin"}')).code, 'GW_ERR_VALIDATION')
  assert.deepEqual(await series(strip.registry), ['createItem request block 1', 'createItem request strip 1'])

  const qmon = setup({ unknownQueryParams: 'monitor' })
  assert.equal((await post(qmon.p, '{}', 'debug=1')).code, undefined)
  assert.deepEqual(await series(qmon.registry), ['createItem request monitor 1'])
})

test('responses: the response phase is counted and audited by its mode', async () => {
  for (const mode of ['monitor', 'strip', 'block'] as const) {
    const { p, registry, events } = setup({ responses: mode })
    const { ctx } = await post(p, '{}')
    const head = { status: 200, headers: { 'content-type': 'application/json' }, local: false }
    let code: string | undefined
    try {
      await p.onResponseBody?.(ctx, head as never, Buffer.from('{"id":1,"passwordHash":"x"}'))
    } catch (err) {
      code = (err as GatewayError).code
    }
    assert.equal(code, mode === 'block' ? 'GW_ERR_UPSTREAM_RESPONSE_INVALID' : undefined)
    assert.deepEqual(await series(registry), [`createItem response ${mode} 1`])
    assert.equal(summary(events)[0]?.startsWith(`openapi.violation createItem response ${mode}`), true)
  }
})

test('the counter is registered once per registry: a reload re-uses it', async () => {
  const registry = new Registry()
  for (let i = 0; i < 2; i++) {
    const p = openApiValidation.create(
      Value.Default(OpenApiValidationConfig, { spec: 'api.yaml' }) as never,
      testDeps({ baseDir: dir, metrics: registry }),
    )
    const ctx = testContext({ method: 'GET', path: '/nope' })
    assert.throws(() => p.onRequest?.(ctx))
  }
  assert.deepEqual(await series(registry), ['(not in spec) route block 2'])
})
