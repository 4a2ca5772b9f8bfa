/**
 * Two gateways on one Redis keep one inventory: counts add up, distinct principals merge, a
 * segment collapsed on one applies on the other, and the inventory survives a restart of both.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { pino } from 'pino'
import { type DemoApi, demoOpenApiPath, startDemoApi } from '../examples/demo/api.js'
import { type RunningGateway, startGateway } from '../src/gateway/serve.js'
import type { InventoryOperation, InventoryView } from '../src/inventory/view.js'
import { RedisServer } from '../src/stores/redis/redis-server.js'
import { inventoryCommand } from '../src/cli/commands/inventory/inventory.js'
import { readFileSync } from 'node:fs'
import { tempDir } from './helpers/process.js'

const TOKEN = 'inventory-redis-admin-token-0123456789abcdef'
let redis: RedisServer
let api: DemoApi
let dir: string

before(async () => {
  redis = await RedisServer.start()
  api = await startDemoApi()
  dir = tempDir('pc-inv-redis-')
  writeFileSync(
    join(dir, 'portcullis.yaml'),
    `
listeners: [{ name: public, host: 127.0.0.1, port: 0 }]
admin: { host: 127.0.0.1, port: 0, token: "\${env:PCL_ADMIN_TOKEN}" }
upstreams: { demo: { targets: [{ url: ${api.url} }] } }
routes: [{ name: all, match: { pathPrefix: / }, upstream: demo }]
accessLog: { enabled: false }
stores: { backend: redis, redis: { port: ${redis.port}, keyPrefix: "inv:", commandTimeout: 2s } }
inventory:
  flushInterval: 200ms
  maxSegmentValues: 10
  specs: [{ file: ${demoOpenApiPath()} }]
`,
  )
})
after(async () => {
  await api?.close()
  await redis?.stop()
})

const start = () =>
  startGateway(join(dir, 'portcullis.yaml'), {
    logger: pino({ level: 'silent' }),
    env: { ...process.env, PCL_ADMIN_TOKEN: TOKEN },
  })

/** The inventory, or undefined while the store cannot answer (503: a gateway still connecting). */
async function view(gw: RunningGateway): Promise<InventoryView | undefined> {
  const res = await fetch(`${gw.admin?.url}/v1/inventory`, { headers: { authorization: `Bearer ${TOKEN}` } })
  if (res.status === 503) return undefined
  assert.equal(res.status, 200)
  return (await res.json()) as InventoryView
}

async function until(
  gw: RunningGateway,
  ok: (v: InventoryView) => boolean,
  what: string,
): Promise<InventoryView> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const v = await view(gw)
    if (v !== undefined && ok(v)) return v
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}: ${JSON.stringify(v?.operations.map((o) => [o.id, o.requests]))}`,
      )
    await new Promise((r) => setTimeout(r, 100))
  }
}

const opOf = (v: InventoryView, id: string): InventoryOperation | undefined =>
  v.operations.find((o) => o.id === id)

async function get(gw: RunningGateway, path: string, token?: string): Promise<void> {
  const res = await fetch(`${gw.listeners[0]?.url}${path}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  })
  await res.arrayBuffer()
}

test('two gateways on one Redis produce one merged inventory, which survives their restart', async () => {
  const a = await start()
  const b = await start()
  try {
    // 30 requests on A, 20 on B, to the same operation, by 5 different callers.
    for (let i = 0; i < 30; i++) await get(a, `/api/v1/users/${1 + (i % 3)}`, `caller-${i % 5}`)
    for (let i = 0; i < 20; i++) await get(b, `/api/v1/users/${1 + (i % 3)}`, `caller-${i % 5}`)
    await get(b, '/healthz')
    // A learns too many literal values under /things: the segment collapses; B saw two of them.
    for (let i = 0; i < 12; i++) await get(a, `/things/${String.fromCharCode(97 + i)}-item`)
    await get(b, '/things/zz-item')
    await get(b, '/things/yy-item')
    const id = 'GET /api/v1/users/{id}'
    const fromA = await until(
      a,
      (v) => opOf(v, id)?.requests === 50 && opOf(v, 'GET /things/{param}')?.requests === 14,
      'the merge on A',
    )
    const fromB = await until(
      b,
      (v) => opOf(v, id)?.requests === 50 && opOf(v, 'GET /things/{param}')?.requests === 14,
      'the merge on B',
    )
    for (const v of [fromA, fromB]) {
      assert.equal(v.store, 'redis')
      const o = opOf(v, id) as InventoryOperation
      assert.deepEqual(o.statuses, { '200': 50 })
      assert.equal(o.authenticatedShare, 1)
      assert.ok(o.flags.includes('shadow') && o.flags.includes('zombie'))
      assert.ok(o.dataClasses.some((d) => d.class === 'email'))
      assert.ok(
        !v.operations.some((x) => /^GET \/things\/[a-z]/.test(x.id)),
        'no literal /things operation left',
      )
      assert.equal(opOf(v, 'GET /healthz')?.requests, 1)
    }
    assert.equal(opOf(fromA, id)?.firstSeen, opOf(fromB, id)?.firstSeen)
  } finally {
    await a.close()
    await b.close()
  }
  // Both gone; a new gateway reads the same inventory from Redis.
  const c = await start()
  try {
    const v = await until(
      c,
      (x) => opOf(x, 'GET /api/v1/users/{id}')?.requests === 50,
      'the inventory after a restart',
    )
    assert.equal(opOf(v, 'GET /things/{param}')?.requests, 14)
    await get(c, '/api/v1/users/1', 'caller-9')
    await until(c, (x) => opOf(x, 'GET /api/v1/users/{id}')?.requests === 51, 'counting on after the restart')
    // The CLI reads the same shared inventory straight from the store.
    process.env.PCL_ADMIN_TOKEN = TOKEN
    const out = join(dir, 'inventory.json')
    assert.equal(
      await inventoryCommand(['--config', join(dir, 'portcullis.yaml'), '--format', 'json', '--output', out]),
      0,
    )
    const fromStore = JSON.parse(readFileSync(out, 'utf8')) as InventoryView
    assert.equal(opOf(fromStore, 'GET /api/v1/users/{id}')?.requests, 51)
  } finally {
    await c.close()
  }
})
