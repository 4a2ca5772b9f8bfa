import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { type AuditEvent, memoryAudit } from '../../audit/event.js'
import type { GatewayError } from '../../gateway/errors.js'
import type { Principal, RequestContext, ResponseHead } from '../../gateway/pipeline/context.js'
import type { PolicyDeps, PolicyInstance } from '../../gateway/pipeline/policy.js'
import { createMemoryStore } from '../../stores/memory/memory-store.js'
import { StoreError, type Store } from '../../stores/types.js'
import { type TestRequest, testContext, testDeps } from '../testing/context.js'
import { objectOwnership } from './policy.js'
import { ObjectOwnershipConfig } from './schema.js'

function build(cfg: Record<string, unknown>, deps: Partial<PolicyDeps> = {}) {
  const config = Value.Default(ObjectOwnershipConfig, structuredClone(cfg)) as never
  assert.ok(
    Value.Check(ObjectOwnershipConfig, config),
    JSON.stringify([...Value.Errors(ObjectOwnershipConfig, config)].map((e) => `${e.path}: ${e.message}`)),
  )
  const audit = memoryAudit()
  const d = testDeps({ audit, ...deps })
  return { policy: objectOwnership.create(config, d), audit: audit.events, deps: d }
}

const principal = (id: string, extra: Partial<Principal> = {}): Principal => ({
  id,
  type: 'user',
  scopes: [],
  roles: [],
  claims: { sub: id },
  authMethod: 'jwt',
  ...extra,
})

function ctx(r: TestRequest & { principal?: Principal; body?: unknown }): RequestContext {
  const headers = { ...(r.headers ?? {}) }
  let raw: Buffer | undefined
  if (r.body !== undefined) {
    raw = Buffer.isBuffer(r.body)
      ? r.body
      : Buffer.from(typeof r.body === 'string' ? r.body : JSON.stringify(r.body))
    headers['content-length'] = String(raw.length)
    headers['content-type'] = 'application/json'
  }
  const c = testContext({ ...r, headers })
  c.principal = r.principal
  if (raw) {
    const b = raw
    c.readBody = () => {
      if (b.length > c.bodyLimit) return Promise.reject(new Error('too large'))
      c.body = b
      return Promise.resolve(b)
    }
  }
  return c
}

/** Runs the request phase; resolves undefined when allowed, the GatewayError when denied. */
async function run(p: PolicyInstance, c: RequestContext): Promise<GatewayError | undefined> {
  try {
    await p.onRequest?.(c)
    return undefined
  } catch (err) {
    if ((err as Error).name !== 'GatewayError') throw err
    return err as GatewayError
  }
}

async function respond(
  p: PolicyInstance,
  c: RequestContext,
  status: number,
  body: unknown,
  headers: ResponseHead['headers'] = {},
): Promise<{ body: unknown; error: GatewayError | undefined }> {
  const head: ResponseHead = { status, headers, local: false }
  try {
    const out = await (p.onResponseBody as NonNullable<PolicyInstance['onResponseBody']>)(
      c,
      head,
      Buffer.from(body === undefined ? '' : JSON.stringify(body)),
    )
    return { body: out.length === 0 ? undefined : JSON.parse(out.toString('utf8')), error: undefined }
  } catch (err) {
    if ((err as Error).name !== 'GatewayError') throw err
    return { body: undefined, error: err as GatewayError }
  }
}

const alice = principal('1')
const bob = principal('2')
const admin = principal('3', { roles: ['admin'] })

const ORDERS = {
  allowRoles: ['admin'],
  objects: [
    {
      type: 'order',
      idPattern: '^[1-9][0-9]{0,8}$',
      access: [{ match: { methods: ['GET', 'PUT', 'DELETE'], path: '/api/orders/{id}' }, ids: ['path.id'] }],
      learn: [{ match: { methods: ['POST'], path: '/api/orders' }, id: 'header.location' }],
      lists: [{ match: { methods: ['GET'], path: '/api/orders' }, items: '', id: '/id', learn: true }],
    },
  ],
}

describe('object-ownership: learned ownership', () => {
  test('a create teaches the owner (Location); the owner passes, others get 404, admin passes', async () => {
    const { policy, audit } = build(ORDERS)
    const create = ctx({ method: 'POST', path: '/api/orders', principal: alice })
    assert.equal(await run(policy, create), undefined)
    await respond(policy, create, 201, { id: 7 }, { location: '/api/orders/7' })

    assert.equal(await run(policy, ctx({ path: '/api/orders/7', principal: alice })), undefined)
    for (const method of ['GET', 'HEAD', 'PUT', 'DELETE']) {
      const e = await run(policy, ctx({ method, path: '/api/orders/7', principal: bob }))
      assert.equal(e?.code, 'GW_ERR_OBJECT_NOT_FOUND', method)
      assert.equal(e?.status, 404)
    }
    assert.equal(
      await run(policy, ctx({ method: 'DELETE', path: '/api/orders/7', principal: admin })),
      undefined,
    )
    const denies = audit.filter((e) => e.type === 'ownership.deny')
    assert.equal(denies.length, 4)
    assert.deepEqual(denies[0]?.objects, ['order:7'])
    assert.equal(denies[0]?.principal, '2')
    assert.equal(denies[0]?.decision, 'deny')
  })

  test('the id from a body pointer; a non-2xx answer teaches nothing', async () => {
    const cfg = structuredClone(ORDERS)
    ;(cfg.objects[0] as Record<string, unknown>).learn = [
      { match: { methods: ['POST'], path: '/api/orders' }, id: 'body./data/id' },
    ]
    const { policy } = build(cfg)
    const failed = ctx({ method: 'POST', path: '/api/orders', principal: bob })
    await run(policy, failed)
    await respond(policy, failed, 400, { data: { id: 9 } })
    const create = ctx({ method: 'POST', path: '/api/orders', principal: alice })
    await run(policy, create)
    await respond(policy, create, 201, { data: { id: '9' } })
    assert.equal(await run(policy, ctx({ path: '/api/orders/9', principal: alice })), undefined)
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/9', principal: bob })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
  })

  test('unknown objects: deny by default; allow records ownership.unknown', async () => {
    const { policy } = build(ORDERS)
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/5', principal: alice })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    const cfg = structuredClone(ORDERS)
    ;(cfg.objects[0] as Record<string, unknown>).unknown = 'allow'
    const b = build(cfg)
    assert.equal(await run(b.policy, ctx({ path: '/api/orders/5', principal: alice })), undefined)
    const ev = b.audit.find((e) => e.type === 'ownership.unknown') as AuditEvent
    assert.deepEqual(ev.objects, ['order:5'])
    assert.equal(ev.decision, 'allow')
  })

  test('learned ownership expires after ttlSec (fake clock)', async () => {
    let now = 1_000_000
    const clock = () => now
    const store = createMemoryStore({ now: clock })
    const { policy } = build({ ...ORDERS, ttlSec: 3600 }, { store, now: clock })
    const create = ctx({ method: 'POST', path: '/api/orders', principal: alice })
    await run(policy, create)
    await respond(policy, create, 201, {}, { location: 'http://api.example/api/orders/8' })
    now += 3599_000
    assert.equal(await run(policy, ctx({ path: '/api/orders/8', principal: alice })), undefined)
    now += 2000
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/8', principal: alice })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
  })

  test('a list of the caller: learned unless owned by someone else, whose items are filtered', async () => {
    const { policy, audit } = build(ORDERS)
    const a = ctx({ path: '/api/orders', principal: alice })
    const upstream = new Map<string, string | undefined>()
    a.setUpstreamHeader = (n, v) => upstream.set(n, v)
    await run(policy, a)
    assert.equal(upstream.get('accept-encoding'), 'identity') // the answer must be readable
    const ra = await respond(policy, a, 200, [{ id: 1 }, { id: 2 }])
    assert.deepEqual(ra.body, [{ id: 1 }, { id: 2 }])
    // bob's list (a flawed upstream) holds alice's order 2: removed; 3 becomes bob's
    const b = ctx({ path: '/api/orders', principal: bob })
    await run(policy, b)
    const rb = await respond(policy, b, 200, [{ id: 2 }, { id: 3 }])
    assert.deepEqual(rb.body, [{ id: 3 }])
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/2', principal: bob })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    assert.equal(await run(policy, ctx({ path: '/api/orders/3', principal: bob })), undefined)
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/3', principal: alice })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    const f = audit.find((e) => e.type === 'ownership.filter') as AuditEvent
    assert.deepEqual(f.objects, ['order:2'])
    // admin's list is never filtered
    const c = ctx({ path: '/api/orders', principal: admin })
    await run(policy, c)
    assert.deepEqual((await respond(policy, c, 200, [{ id: 2 }, { id: 3 }])).body, [{ id: 2 }, { id: 3 }])
  })

  test('a list with an owner pointer: filter, or block with the deny status', async () => {
    const cfg = {
      objects: [
        {
          type: 'account',
          unknown: 'allow',
          access: [{ match: { path: '/api/accounts/{id}' }, ids: ['path.id'] }],
          lists: [
            {
              match: { methods: ['GET'], path: '/api/accounts' },
              items: '/data',
              id: '/id',
              owner: '/ownerId',
            },
          ],
        },
      ],
    }
    const { policy } = build(cfg)
    const c = ctx({ path: '/api/accounts', principal: alice })
    await run(policy, c)
    const r = await respond(policy, c, 200, {
      data: [
        { id: 1, ownerId: 1 },
        { id: 2, ownerId: 2 },
      ],
      total: 2,
    })
    assert.deepEqual(r.body, { data: [{ id: 1, ownerId: 1 }], total: 2 })
    ;(cfg.objects[0]?.lists[0] as Record<string, unknown>).action = 'block'
    const blocked = build(cfg)
    const c2 = ctx({ path: '/api/accounts', principal: alice })
    await run(blocked.policy, c2)
    const r2 = await respond(blocked.policy, c2, 200, {
      data: [
        { id: 1, ownerId: 1 },
        { id: 2, ownerId: 2 },
      ],
    })
    assert.equal(r2.error?.code, 'GW_ERR_OBJECT_NOT_FOUND')
    // a 2xx answer without the array is refused (it cannot be checked)
    const c3 = ctx({ path: '/api/accounts', principal: alice })
    await run(blocked.policy, c3)
    assert.equal(
      (await respond(blocked.policy, c3, 200, { data: 'x' })).error?.code,
      'GW_ERR_UPSTREAM_BAD_RESPONSE',
    )
  })

  test('idPattern refuses aliases (02, +2, " 2") before any store read', async () => {
    const { policy } = build(ORDERS)
    const create = ctx({ method: 'POST', path: '/api/orders', principal: alice })
    await run(policy, create)
    await respond(policy, create, 201, {}, { location: '/api/orders/2' })
    for (const id of ['02', '+2', ' 2', '2.0', '2%20']) {
      const e = await run(policy, ctx({ path: `/api/orders/${id}`, principal: alice }))
      assert.equal(e?.code, 'GW_ERR_OBJECT_NOT_FOUND', id)
    }
  })

  test('a trailing slash is the same object; a case variant of the path is refused', async () => {
    const { policy } = build(ORDERS)
    const create = ctx({ method: 'POST', path: '/api/orders', principal: alice })
    await run(policy, create)
    await respond(policy, create, 201, {}, { location: '/api/orders/6' })
    assert.equal(await run(policy, ctx({ path: '/api/orders/6/', principal: alice })), undefined)
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/6/', principal: bob })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    for (const path of ['/api/ORDERS/6', '/API/orders/6', '/Api/Orders/6/'])
      assert.equal(
        (await run(policy, ctx({ path, principal: alice })))?.code,
        'GW_ERR_OBJECT_NOT_FOUND',
        path,
      )
    assert.equal(await run(policy, ctx({ path: '/API/orders/6', principal: admin })), undefined)
  })

  test('no principal → 401; other paths pass untouched', async () => {
    const { policy } = build(ORDERS)
    assert.equal((await run(policy, ctx({ path: '/api/orders/1' })))?.code, 'GW_ERR_AUTH_MISSING')
    assert.equal(
      (await run(policy, ctx({ method: 'POST', path: '/api/orders' })))?.code,
      'GW_ERR_AUTH_MISSING',
    )
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/1', principal: principal('x', { type: 'anonymous' }) })))
        ?.code,
      'GW_ERR_AUTH_MISSING',
    )
    assert.equal(await run(policy, ctx({ path: '/api/other/1' })), undefined)
    // a CORS preflight (no credentials) is not an object access
    const binding = build(ACCOUNTS_BOUND).policy
    assert.equal(await run(binding, ctx({ method: 'OPTIONS', path: '/api/users/2' })), undefined)
    assert.equal(
      (await run(binding, ctx({ method: 'PATCH', path: '/api/users/2' })))?.code,
      'GW_ERR_AUTH_MISSING',
    )
    assert.equal(policy.onRequest?.(ctx({ path: '/health' })), undefined) // synchronous when nothing matches
  })

  test('denyStatus 403 → GW_ERR_OBJECT_FORBIDDEN', async () => {
    const { policy } = build({ ...ORDERS, denyStatus: 403 })
    const e = await run(policy, ctx({ path: '/api/orders/1', principal: alice }))
    assert.equal(e?.code, 'GW_ERR_OBJECT_FORBIDDEN')
    assert.equal(e?.status, 403)
  })

  test('store down: 503 GW_ERR_STATE_UNAVAILABLE, or through with failOpen', async () => {
    const real = createMemoryStore({})
    const down: Store = {
      ...real,
      backend: 'memory',
      counters: real.counters,
      sets: real.sets,
      gcra: real.gcra,
      maps: real.maps,
      ping: () => real.ping(),
      close: () => real.close(),
      kv: {
        get: () => Promise.reject(new StoreError('down')),
        set: () => Promise.reject(new StoreError('down')),
        setIfAbsent: () => Promise.reject(new StoreError('down')),
        delete: () => Promise.reject(new StoreError('down')),
      },
    }
    const closed = build(ORDERS, { store: down })
    const e = await run(closed.policy, ctx({ path: '/api/orders/1', principal: alice }))
    assert.equal(e?.code, 'GW_ERR_STATE_UNAVAILABLE')
    assert.equal(e?.status, 503)
    const open = build({ ...ORDERS, failOpen: true }, { store: down })
    assert.equal(await run(open.policy, ctx({ path: '/api/orders/1', principal: alice })), undefined)
  })
})

const ACCOUNTS_BOUND = {
  objects: [
    {
      type: 'user',
      binding: { equals: 'principal.id' },
      access: [{ match: { path: '/api/users/{id}' }, ids: ['path.id'] }],
    },
    {
      type: 'account',
      binding: { in: 'claims.accounts' },
      access: [
        { match: { methods: ['GET'], path: '/api/accounts' }, ids: [{ from: 'query.ids', split: ',' }] },
        { match: { path: '/api/accounts/{id}' }, ids: ['path.id', 'header.x-account-id'] },
        {
          match: { methods: ['POST'], path: '/api/transfers' },
          ids: ['body./from', 'body./payment/accountId', 'body./items/*/accountId', 'body./ids'],
        },
      ],
    },
  ],
}

describe('object-ownership: binding', () => {
  const carol = principal('1', { claims: { sub: '1', accounts: ['1', '4'] } })

  test('path id equals principal.id', async () => {
    const { policy } = build(ACCOUNTS_BOUND)
    assert.equal(await run(policy, ctx({ path: '/api/users/1', principal: carol })), undefined)
    assert.equal(
      (await run(policy, ctx({ path: '/api/users/2', principal: carol })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    // %32 is decoded to 2 by the canonical path and the matcher
    assert.equal(
      (await run(policy, ctx({ path: '/api/users/%32', principal: carol })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
  })

  test('query id lists, repeated and encoded parameters: every id must be in the claim', async () => {
    const { policy } = build(ACCOUNTS_BOUND)
    const q = (query: string) => run(policy, ctx({ path: '/api/accounts', query, principal: carol }))
    assert.equal(await q('ids=1,4'), undefined)
    assert.equal(await q(''), undefined)
    for (const bad of ['ids=1,2', 'ids=2', 'ids=1&ids=2', 'ids=%32', 'ids=1%2C2', 'ids=01'])
      assert.equal((await q(bad))?.code, 'GW_ERR_OBJECT_NOT_FOUND', bad)
  })

  test('a header id is checked too', async () => {
    const { policy } = build(ACCOUNTS_BOUND)
    const r = await run(
      policy,
      ctx({ path: '/api/accounts/1', headers: { 'x-account-id': '2' }, principal: carol }),
    )
    assert.equal(r?.code, 'GW_ERR_OBJECT_NOT_FOUND')
  })

  test('JSON body: top level, nested, arrays with wildcards, arrays of ids', async () => {
    const { policy } = build(ACCOUNTS_BOUND)
    const post = (body: unknown) =>
      run(policy, ctx({ method: 'POST', path: '/api/transfers', body, principal: carol }))
    assert.equal(
      await post({ from: 1, payment: { accountId: '4' }, items: [{ accountId: 1 }], ids: [1, 4] }),
      undefined,
    )
    assert.equal(await post({ amount: 5 }), undefined)
    for (const bad of [
      { from: 2 },
      { from: '2' },
      { payment: { accountId: 2 } },
      { items: [{ accountId: 1 }, { accountId: 2 }] },
      { ids: [1, 2] },
    ])
      assert.equal((await post(bad))?.code, 'GW_ERR_OBJECT_NOT_FOUND', JSON.stringify(bad))
  })

  test('hostile bodies: objects where ids go, nested arrays, bad JSON, duplicate keys, too many ids → 400', async () => {
    const { policy } = build(ACCOUNTS_BOUND)
    const post = (body: unknown) =>
      run(policy, ctx({ method: 'POST', path: '/api/transfers', body, principal: carol }))
    assert.equal((await post({ from: { id: 2 } }))?.code, 'GW_ERR_BAD_REQUEST')
    assert.equal((await post({ ids: [[2]] }))?.code, 'GW_ERR_BAD_REQUEST')
    assert.equal((await post('{"from":1'))?.code, 'GW_ERR_MALFORMED_BODY')
    assert.equal((await post('{"from":1,"from":2}'))?.code, 'GW_ERR_MALFORMED_BODY')
    assert.equal((await post('{"__proto__":{"from":2}}'))?.code, 'GW_ERR_MALFORMED_BODY')
    assert.equal((await post(`[${'['.repeat(5000)}`))?.code, 'GW_ERR_MALFORMED_BODY')
    const many = { items: Array.from({ length: 101 }, (_x, i) => ({ accountId: i })) }
    assert.equal((await post(many))?.code, 'GW_ERR_BAD_REQUEST')
    const q = Array.from({ length: 200 }, (_x, i) => i).join(',')
    assert.equal(
      (await run(policy, ctx({ path: '/api/accounts', query: `ids=${q}`, principal: carol })))?.code,
      'GW_ERR_BAD_REQUEST',
    )
  })
})

describe('object-ownership: lookup', () => {
  let server: Server
  let base: string
  let hits = 0
  let mode: 'owner' | 'slow' | 'big' | 'error' | 'allowed' = 'owner'
  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      hits++
      if (req.method === 'POST') {
        let raw = ''
        req.setEncoding('utf8')
        req.on('data', (d: string) => {
          raw += d
        })
        req.on('end', () => {
          const b = JSON.parse(raw) as { type: string; id: string; principal: string }
          const ok = req.url === '/check' && b.type === 'order' && b.principal === '1' && b.id === '41'
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ result: { allowed: ok } }))
        })
        return
      }
      const m = /^\/owners\/order\/([^/]+)$/.exec(req.url ?? '')
      if (mode === 'slow') return // never answers
      if (mode === 'error') {
        res.writeHead(500).end()
        return
      }
      if (mode === 'big') {
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ pad: 'x'.repeat(5000) }))
        return
      }
      const id = decodeURIComponent(m?.[1] ?? '')
      if (id === '404') {
        res.writeHead(404).end()
        return
      }
      if (mode === 'allowed') {
        res.writeHead(200).end(JSON.stringify({ allowed: req.headers.authorization === 'Bearer alice' }))
        return
      }
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ userId: Number(id) % 2 === 0 ? 2 : 1 }))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(() => new Promise<void>((r) => server.close(() => r())))

  const cfg = (lookup: Record<string, unknown>) => ({
    objects: [
      {
        type: 'order',
        access: [{ match: { path: '/api/orders/{id}' }, ids: ['path.id'] }],
        lookup: {
          url: `${base}/owners/{type}/{id}`,
          owner: '/userId',
          timeoutMs: 2000, // generous: a loaded machine answers a local lookup slowly; the "slow" mode never answers
          maxResponseBytes: 1024,
          ...lookup,
        },
      },
    ],
  })

  test('the owner from the answer; cached; recorded as learned ownership', async () => {
    mode = 'owner'
    hits = 0
    const store = createMemoryStore({})
    const { policy } = build(cfg({}), { store })
    assert.equal(await run(policy, ctx({ path: '/api/orders/11', principal: alice })), undefined)
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/11', principal: bob })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/12', principal: alice })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    assert.equal(hits, 2)
    assert.equal(await store.kv.get('own:default:order:11'), '1')
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/404', principal: alice })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/404', principal: alice })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    assert.equal(hits, 3) // negative answer cached
    // `..` would be a dot segment of the lookup URL: never sent
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/%2E%2E', principal: alice })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    assert.equal(hits, 3)
    await policy.close?.()
  })

  test('allowed answers per principal, forwarded headers', async () => {
    mode = 'allowed'
    const { policy } = build(
      cfg({ owner: undefined, allowed: '/allowed', forwardHeaders: ['authorization'] }),
    )
    const as = (p: Principal, auth: string) =>
      run(policy, ctx({ path: '/api/orders/21', headers: { authorization: auth }, principal: p }))
    assert.equal(await as(alice, 'Bearer alice'), undefined)
    assert.equal((await as(bob, 'Bearer bob'))?.code, 'GW_ERR_OBJECT_NOT_FOUND')
    await policy.close?.()
  })

  test('POST {type, id, principal}; negative answers expire after negativeCacheTtlSec (fake clock)', async () => {
    mode = 'owner'
    let now = 5_000_000
    const { policy } = build(
      cfg({
        url: `${base}/check`,
        method: 'POST',
        owner: undefined,
        allowed: '/result/allowed',
        negativeCacheTtlSec: 30,
      }),
      { now: () => now },
    )
    hits = 0
    assert.equal(await run(policy, ctx({ path: '/api/orders/41', principal: alice })), undefined)
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/41', principal: bob })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    assert.equal(
      (await run(policy, ctx({ path: '/api/orders/41', principal: bob })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    assert.equal((await run(policy, ctx({ path: '/api/orders/41', principal: alice })))?.code, undefined)
    assert.equal(hits, 2) // one per principal: both answers cached
    now += 31_000
    await run(policy, ctx({ path: '/api/orders/41', principal: bob }))
    assert.equal(hits, 3) // bob's negative answer expired
    await run(policy, ctx({ path: '/api/orders/41', principal: alice }))
    assert.equal(hits, 3) // alice's positive one (cacheTtlSec 300) did not
    await policy.close?.()
  })

  test('fail closed: 5xx, timeout, oversized answer → 503 GW_ERR_OWNERSHIP_UNAVAILABLE', async () => {
    for (const m of ['error', 'slow', 'big'] as const) {
      mode = m
      const { policy } = build(cfg({}))
      const started = Date.now()
      const e = await run(policy, ctx({ path: '/api/orders/31', principal: alice }))
      assert.equal(e?.code, 'GW_ERR_OWNERSHIP_UNAVAILABLE', m)
      assert.equal(e?.status, 503)
      assert.ok(Date.now() - started < 3000, m)
      await policy.close?.()
    }
    mode = 'owner'
  })
})

describe('object-ownership: operationIds from a spec', () => {
  test('an operationId stands for its method and path template under basePath', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pcl-own-'))
    writeFileSync(
      join(dir, 'api.yaml'),
      `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /orders/{orderId}:
    parameters: [{ name: orderId, in: path, required: true, schema: { type: string } }]
    get: { operationId: getOrder, responses: { '200': { description: ok } } }
    delete: { operationId: deleteOrder, responses: { '204': { description: ok } } }
  /orders:
    post: { operationId: createOrder, responses: { '201': { description: ok } } }
`,
    )
    const { policy } = build(
      {
        spec: 'api.yaml',
        basePath: '/v1',
        objects: [
          {
            type: 'order',
            access: [{ match: { operationIds: ['getOrder'] }, ids: ['path.orderId'] }],
            learn: [{ match: { operationIds: ['createOrder'] }, id: 'body./id' }],
          },
        ],
      },
      { baseDir: dir },
    )
    const create = ctx({ method: 'POST', path: '/v1/orders', principal: alice })
    await run(policy, create)
    await respond(policy, create, 201, { id: 'ord_A' })
    assert.equal(await run(policy, ctx({ path: '/v1/orders/ord_A', principal: alice })), undefined)
    assert.equal(
      (await run(policy, ctx({ path: '/v1/orders/ord_A', principal: bob })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    assert.equal(
      (await run(policy, ctx({ path: '/v1/orders/ord_a', principal: alice })))?.code,
      'GW_ERR_OBJECT_NOT_FOUND',
    )
    // deleteOrder is not listed: not checked by this rule
    assert.equal(
      await run(policy, ctx({ method: 'DELETE', path: '/v1/orders/ord_A', principal: bob })),
      undefined,
    )
    const bad = Value.Default(
      ObjectOwnershipConfig,
      structuredClone({
        spec: 'api.yaml',
        objects: [{ type: 'order', access: [{ match: { operationIds: ['nope'] }, ids: ['path.orderId'] }] }],
      }),
    ) as never
    assert.throws(() => objectOwnership.create(bad, testDeps({ baseDir: dir })), /no operation "nope"/)
  })
})

describe('object-ownership: config', () => {
  const bad = (cfg: Record<string, unknown>, re: RegExp) => {
    const config = Value.Default(ObjectOwnershipConfig, structuredClone(cfg)) as never
    assert.throws(() => objectOwnership.create(config, testDeps()), re)
  }
  test('errors are reported at startup', () => {
    bad(
      { objects: [{ type: 'order', access: [{ match: { path: '/o/{id}' }, ids: ['path.oid'] }] }] },
      /has no variable \{oid\}/,
    )
    bad(
      {
        objects: [
          { type: 'order', access: [{ match: { path: '/o/{id}' }, ids: ['path.id'] }] },
          { type: 'order', access: [{ match: { path: '/p/{id}' }, ids: ['path.id'] }] },
        ],
      },
      /configured twice/,
    )
    bad(
      {
        objects: [
          { type: 'order', idPattern: '(a)\\1', access: [{ match: { path: '/o/{id}' }, ids: ['path.id'] }] },
        ],
      },
      /idPattern/,
    )
    bad(
      { objects: [{ type: 'order', access: [{ match: { operationIds: ['x'] }, ids: ['path.id'] }] }] },
      /needs `spec`/,
    )
    bad({ objects: [{ type: 'order' }] }, /give access or lists/)
  })
})
