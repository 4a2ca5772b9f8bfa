import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { pino } from 'pino'
import { type DemoApi, demoOpenApiPath, startDemoApi } from '../../../../examples/demo/api.js'
import { type RunningGateway, startGateway } from '../../../gateway/serve.js'
import { tempDir } from '../../../../test/helpers/process.js'
import { UsageError } from '../../command.js'
import { inventoryCommand } from './inventory.js'

const TOKEN = 'cli-inventory-admin-token-0123456789abcdef'
let api: DemoApi
let gw: RunningGateway
let dir: string

before(async () => {
  api = await startDemoApi()
  dir = tempDir('pc-inv-cli-')
  writeFileSync(
    join(dir, 'portcullis.yaml'),
    `listeners: [{ name: public, host: 127.0.0.1, port: 0 }]
admin: { host: 127.0.0.1, port: 0, token: "\${env:PCL_ADMIN_TOKEN}" }
upstreams: { demo: { targets: [{ url: ${api.url} }] } }
routes: [{ name: all, match: { pathPrefix: / }, upstream: demo }]
accessLog: { enabled: false }
inventory: { specs: [{ file: ${demoOpenApiPath()} }] }
`,
  )
  gw = await startGateway(join(dir, 'portcullis.yaml'), {
    logger: pino({ level: 'silent' }),
    env: { ...process.env, PCL_ADMIN_TOKEN: TOKEN },
  })
  const base = gw.listeners[0]?.url as string
  for (const p of [
    '/healthz',
    '/api/v1/users/1',
    '/api/v1/users/2',
    '/api/v2/debug/config',
    '/no%1b[31mred',
  ]) {
    const r = await fetch(base + p)
    await r.arrayBuffer()
  }
  // The log phase runs after the answers: wait (bounded) for the four that reach a route.
  const deadline = Date.now() + 5000
  for (;;) {
    const res = await fetch(`${gw.admin?.url}/v1/inventory`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    const v = (await res.json()) as { operations: { requests: number }[] }
    if (v.operations.reduce((a, o) => a + o.requests, 0) >= 4 || Date.now() > deadline) break
    await new Promise((r) => setTimeout(r, 20))
  }
})
after(async () => {
  await gw?.close()
  await api?.close()
})

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}`)
  const code = await inventoryCommand([...args, '--output', out])
  let text = ''
  try {
    text = readFileSync(out, 'utf8')
  } catch {
    // no output
  }
  return { code, out: text }
}

test('portcullis inventory: text, json, csv and openapi from a gateway', async () => {
  const admin = ['--admin', gw.admin?.url as string, '--token', TOKEN]
  const text = await run(admin)
  assert.equal(text.code, 0)
  assert.match(text.out, /GET\s+\/api\/v1\/users\/\{id\}\s+2\s/)
  assert.match(text.out, /shadow,zombie/)
  assert.ok(!text.out.includes('no%1b'), 'a target the gateway refused before routing is no operation')
  const json = JSON.parse((await run([...admin, '--format', 'json', '--flag', 'shadow'])).out) as {
    operations: { id: string }[]
  }
  assert.deepEqual(json.operations.map((o) => o.id).sort(), [
    'GET /api/v1/users/{id}',
    'GET /api/v2/debug/config',
  ])
  const csv = (await run([...admin, '--format', 'csv'])).out.trim().split('\n')
  assert.equal(csv[0]?.split(',')[0], 'method')
  assert.ok(csv.some((l) => l.startsWith('GET,/api/v1/users/{id},false,2,')))
  const doc = JSON.parse((await run([...admin, '--format', 'openapi'])).out) as {
    openapi: string
    paths: object
  }
  assert.equal(doc.openapi, '3.1.0')
  assert.ok('/api/v1/users/{id}' in doc.paths)
})

test('portcullis inventory --diff: shadow and unseen operations, exit 1', async () => {
  const r = await run([
    '--admin',
    gw.admin?.url as string,
    '--token',
    TOKEN,
    '--diff',
    demoOpenApiPath(),
    '--format',
    'json',
  ])
  assert.equal(r.code, 1)
  const d = JSON.parse(r.out) as { shadow: string[]; unseen: string[]; matched: string[] }
  assert.ok(d.shadow.includes('GET /api/v1/users/{id}'))
  assert.deepEqual(d.matched, ['GET /healthz'])
  assert.equal(d.unseen.length, 13)
})

test('portcullis inventory: usage errors (2) and an unreachable gateway (3)', async () => {
  await assert.rejects(inventoryCommand([]), UsageError)
  await assert.rejects(inventoryCommand(['--admin', 'http://127.0.0.1:1', '--config', 'x']), UsageError)
  await assert.rejects(
    inventoryCommand(['--admin', 'http://127.0.0.1:1', '--token', 't', '--format', 'xml']),
    UsageError,
  )
  await assert.rejects(
    inventoryCommand(['--admin', gw.admin?.url as string, '--token', 'wrong-token-wrong-token-wrong-token']),
    UsageError,
  )
  assert.equal(await inventoryCommand(['--admin', 'http://127.0.0.1:1', '--token', 't']), 3)
})
