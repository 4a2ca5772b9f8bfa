import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import pino from 'pino'
import { GatewayError } from '../../gateway/errors.js'
import type { PolicyInstance } from '../../gateway/pipeline/policy.js'
import { loadConfigText } from '../../config/load.js'
import { MapKeyAdmin } from '../../keys/admin.js'
import { generateKey } from '../../keys/format.js'
import { acquireMapKeySet } from '../../keys/live-map.js'
import { emptyStore, hashFields, type KeyRecord, writeStore } from '../../keys/store.js'
import { createMemoryStore } from '../../stores/memory/memory-store.js'
import { testContext, testDeps } from '../testing/context.js'
import { apiKeyAuth } from './policy.js'
import { ApiKeyAuthConfig } from './schema.js'

let dir: string
let store: string
const keys: Record<string, string> = {}
const logLines: string[] = []
const logger = pino({ level: 'debug' }, { write: (s: string) => logLines.push(s) })
const deps = testDeps({ logger })
const built: PolicyInstance[] = []

function add(name: string, over: Partial<KeyRecord> = {}): KeyRecord {
  const g = generateKey()
  keys[name] = g.key
  return {
    id: g.id,
    owner: `owner-${name}`,
    scopes: ['read'],
    createdAt: new Date().toISOString(),
    status: 'active',
    ...hashFields(g.key),
    ...over,
  }
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-akpol-'))
  store = join(dir, 'keys.json')
  writeStore(store, {
    ...emptyStore(),
    keys: [
      add('good', { scopes: ['read', 'write'] }),
      add('revoked', { status: 'revoked', revokedAt: new Date().toISOString() }),
      add('expired', { expiresAt: new Date(Date.now() - 1000).toISOString() }),
    ],
  })
  keys.unknown = generateKey().key
})
after(async () => {
  for (const p of built) await p.close?.()
  rmSync(dir, { recursive: true, force: true })
})

function build(cfg: object): PolicyInstance {
  const p = apiKeyAuth.create(Value.Default(ApiKeyAuthConfig, { store, ...cfg }) as never, deps)
  built.push(p)
  return p
}

function run(p: PolicyInstance, ctx: ReturnType<typeof testContext>): GatewayError | undefined {
  try {
    p.onRequest?.(ctx)
    return undefined
  } catch (err) {
    assert.ok(err instanceof GatewayError)
    return err
  }
}

test('a valid key sets the principal and the state', () => {
  const p = build({})
  const ctx = testContext({ headers: { 'x-api-key': keys.good as string } })
  assert.equal(run(p, ctx), undefined)
  assert.deepEqual(ctx.principal, {
    id: 'owner-good',
    type: 'api-key',
    scopes: ['read', 'write'],
    roles: [],
    claims: { keyId: (keys.good as string).slice(4, 12) },
    authMethod: 'api-key',
  })
  assert.deepEqual(ctx.state['api-key-auth'], {
    keyId: (keys.good as string).slice(4, 12),
    owner: 'owner-good',
    scopes: ['read', 'write'],
  })
})

test('missing → AUTH_MISSING; every kind of wrong key → the very same AUTH_INVALID', () => {
  const p = build({})
  const missing = run(p, testContext())
  assert.equal(missing?.code, 'GW_ERR_AUTH_MISSING')
  assert.equal(missing?.headers?.['www-authenticate'], 'ApiKey realm="portcullis"')
  assert.equal(run(p, testContext({ headers: { 'x-api-key': '' } }))?.code, 'GW_ERR_AUTH_MISSING')
  const good = keys.good as string
  const wrong = [
    keys.unknown,
    keys.revoked,
    keys.expired,
    `${good.slice(0, 20)}${good[20] === 'a' ? 'b' : 'a'}${good.slice(21)}`, // checksum
    'pcl_',
    'x'.repeat(100_000),
    `${good}, ${good}`, // a repeated header, joined by Node
    '🔑',
  ] as string[]
  const errors = wrong.map((k) => run(p, testContext({ headers: { 'x-api-key': k } })))
  for (const e of errors) {
    assert.equal(e?.code, 'GW_ERR_AUTH_INVALID')
    assert.equal(e, errors[0], 'one error object: identical status, body and headers')
  }
  assert.equal(errors[0]?.headers?.['www-authenticate'], 'ApiKey realm="portcullis"')
  assert.equal(errors[0]?.detail, undefined)
  assert.equal(errors[0]?.cause, undefined)
})

test('required scopes → 403 when one is missing', () => {
  const p = build({ requiredScopes: ['read', 'write'] })
  assert.equal(run(p, testContext({ headers: { 'x-api-key': keys.good as string } })), undefined)
  const strict = build({ requiredScopes: ['admin'] })
  assert.equal(
    run(strict, testContext({ headers: { 'x-api-key': keys.good as string } }))?.code,
    'GW_ERR_FORBIDDEN',
  )
})

test('custom header, realm; query parameter with duplicates and both places refused', () => {
  const p = build({ header: 'X-Client-Key', realm: 'billing api', queryParam: 'api_key' })
  const good = keys.good as string
  assert.equal(run(p, testContext({ headers: { 'x-client-key': good } })), undefined)
  assert.equal(run(p, testContext({ query: `a=1&api_key=${good}&b=2` })), undefined)
  assert.equal(run(p, testContext({ query: `api_key=${encodeURIComponent(good)}` })), undefined)
  const invalid = (ctx: ReturnType<typeof testContext>) => run(p, ctx)?.code
  assert.equal(invalid(testContext({ query: `api_key=${good}&api_key=${good}` })), 'GW_ERR_AUTH_INVALID')
  assert.equal(
    invalid(testContext({ query: `api_key=${good}`, headers: { 'x-client-key': good } })),
    'GW_ERR_AUTH_INVALID',
  )
  assert.equal(invalid(testContext({ query: 'api_key=%E0%A4%A' })), 'GW_ERR_AUTH_INVALID')
  assert.equal(invalid(testContext({ query: 'xapi_key=1&api_keyx=2' })), 'GW_ERR_AUTH_MISSING')
  const e = run(p, testContext())
  assert.equal(e?.headers?.['www-authenticate'], 'ApiKey realm="billing api"')
  assert.ok(logLines.some((l) => l.includes('accepts keys in the query string')))
})

test('the authentication hooks: authenticate, challenge, stripRequestHeaders', () => {
  const p = build({ header: 'X-Key', realm: 'r' })
  assert.equal(apiKeyAuth.authenticates, true)
  assert.equal(p.challenge, 'ApiKey realm="r"')
  assert.deepEqual(p.stripRequestHeaders, ['x-key'])
  assert.equal(build({ stripHeader: false }).stripRequestHeaders, undefined)
  assert.equal(p.authenticate?.(testContext()), undefined, 'no key: no principal, no error')
  const ctx = testContext({ headers: { 'x-key': keys.good as string } })
  const who = p.authenticate?.(ctx) as { id: string; type: string }
  assert.equal(who.id, 'owner-good')
  assert.equal(who.type, 'api-key')
  assert.equal(ctx.principal, undefined, 'authenticate returns the principal, the caller sets it')
  assert.throws(
    () => p.authenticate?.(testContext({ headers: { 'x-key': keys.revoked as string } })),
    (e: GatewayError) => e.code === 'GW_ERR_AUTH_INVALID',
  )
})

test('a principal set by an earlier authentication policy is kept', () => {
  const p = build({})
  const ctx = testContext({ headers: { 'x-api-key': keys.good as string } })
  ctx.principal = { id: 'user-1', type: 'user', scopes: [], roles: [], claims: {}, authMethod: 'jwt' }
  assert.equal(run(p, ctx), undefined)
  assert.equal(ctx.principal?.id, 'user-1')
  assert.equal((ctx.state['api-key-auth'] as { owner: string }).owner, 'owner-good')
})

test('no key value in the policy log, key ids only', () => {
  for (const k of Object.values(keys)) {
    for (const l of logLines) assert.equal(l.includes(k.slice(12)), false)
  }
  assert.ok(logLines.some((l) => l.includes(`"keyId":"${(keys.revoked as string).slice(4, 12)}"`)))
})

test('a relative store path is relative to the config file directory', () => {
  const p = apiKeyAuth.create(
    Value.Default(ApiKeyAuthConfig, { store: 'keys.json' }) as never,
    testDeps({ logger, baseDir: dir }),
  )
  built.push(p)
  assert.equal(run(p, testContext({ headers: { 'x-api-key': keys.good as string } })), undefined)
  assert.throws(
    () =>
      apiKeyAuth.create(
        Value.Default(ApiKeyAuthConfig, { store: 'nope.json' }) as never,
        testDeps({ logger }),
      ),
    (e: Error) =>
      e.name === 'ConfigError' &&
      /api-key-auth on route test: cannot read the key store .*nope\.json: ENOENT/.test(e.message),
  )
})

test('the config schema: sane defaults, bad values refused', () => {
  const d = Value.Default(ApiKeyAuthConfig, { store: 'k.json' })
  assert.deepEqual(d, {
    source: 'file',
    store: 'k.json',
    maxStaleSeconds: 300,
    header: 'x-api-key',
    requiredScopes: [],
    realm: 'portcullis',
    stripHeader: true,
    lastUsedFlushSeconds: 60,
  })
  for (const bad of [
    { header: 'x api key' },
    { realm: 'a"b' },
    { requiredScopes: ['a,b'] },
    { source: 'redis' },
    { maxStaleSeconds: 0 },
    { store: '' },
  ]) {
    assert.equal(
      Value.Check(ApiKeyAuthConfig, Value.Default(ApiKeyAuthConfig, { store: 'k', ...bad })),
      false,
      JSON.stringify(bad),
    )
  }
})

test('create(): store is required with source: file and refused with source: store', () => {
  const configError = (re: RegExp) => (e: Error) => e.name === 'ConfigError' && re.test(e.message)
  assert.throws(
    () => apiKeyAuth.create(Value.Default(ApiKeyAuthConfig, {}) as never, testDeps({ logger })),
    configError(/api-key-auth on route test: store \(the key store file\) is required with source: file/),
  )
  assert.throws(
    () =>
      apiKeyAuth.create(
        Value.Default(ApiKeyAuthConfig, { source: 'store', store: 'k.json' }) as never,
        testDeps({ logger }),
      ),
    configError(/store \(a key store file\) is not used with source: store/),
  )
})

const configText = (stores: string, apiKeyAuth: string) => `
listeners: [ { name: p, host: 127.0.0.1, port: 0 } ]
upstreams: { main: { targets: [ { url: "http://127.0.0.1:1" } ] } }
${stores}
policies:
  api-key-auth: ${apiKeyAuth}
routes:
  - name: r
    match: { pathPrefix: / }
    upstream: main
`

test('the config loader: source and store go together; source: store needs stores.backend: redis', () => {
  const problems = (text: string) =>
    loadConfigText(text, '/etc/portcullis/p.yaml').errors.map(
      (e) => `${e.line}:${e.column} ${e.path}: ${e.message}`,
    )
  const redis = 'stores: { backend: redis }'
  assert.deepEqual(problems(configText(redis, '{ source: store }')), [])
  assert.deepEqual(problems(configText('', '{ store: keys.json }')), [])
  assert.deepEqual(problems(configText('', '{ enabled: false }')), [], 'a disabled entry needs nothing')
  assert.deepEqual(problems(configText('', '{ source: store }')), [
    '6:27 policies.api-key-auth.source: source: store needs stores.backend: redis, found memory (portcullis keys cannot write to a memory store inside a gateway process)',
  ])
  assert.deepEqual(problems(configText(redis, '{ source: store, store: keys.json }')), [
    '6:41 policies.api-key-auth.store: not used with source: store (the key records are in the stores: backend); remove it',
  ])
  assert.deepEqual(problems(configText('', '{ header: x-key }')), [
    '6:17 policies.api-key-auth: missing required field "store" (the key store file, with source: file)',
  ])
  const onRoute = `${configText(redis, '{ enabled: false }')}    policies: { api-key-auth: { source: file } }\n`
  assert.deepEqual(problems(onRoute), [
    '11:31 routes[0].policies.api-key-auth: missing required field "store" (the key store file, with source: file)',
  ])
})

describe('source: store (the replicated map of the state store)', () => {
  const clock = { t: 1_700_000_000_000 }
  const now = () => clock.t
  const mem = createMemoryStore({ now })
  const admin = new MapKeyAdmin(mem, 'the test map')
  const storeDeps = testDeps({ logger, store: mem, now })
  const make = (cfg: object = {}) => {
    const p = apiKeyAuth.create(
      Value.Default(ApiKeyAuthConfig, { source: 'store', ...cfg }) as never,
      storeDeps,
    )
    built.push(p)
    return p
  }
  after(() => mem.close())

  test('503 until the first copy arrives, then the key works; no key is still 401', async () => {
    const k = await admin.create({ owner: 'map-owner', scopes: ['read'] }, now())
    const p = make({ requiredScopes: ['read'] })
    const ctx = () => testContext({ headers: { 'x-api-key': k.key } })
    const early = run(p, ctx())
    assert.equal(early?.code, 'GW_ERR_STATE_UNAVAILABLE')
    assert.equal(early?.status, 503)
    assert.equal(early?.headers?.['retry-after'], '1')
    assert.equal(run(p, testContext())?.code, 'GW_ERR_AUTH_MISSING', 'no key: no need for the records')
    assert.equal(run(p, testContext({ headers: { 'x-api-key': 'pcl_x' } }))?.code, 'GW_ERR_AUTH_INVALID')
    const shared = acquireMapKeySet(mem, logger, { lastUsedFlushMs: 60_000, now })
    await shared.keys.ready()
    await shared.release()
    const c = ctx()
    assert.equal(run(p, c), undefined)
    assert.equal(c.principal?.id, 'map-owner')
    assert.ok(logLines.some((l) => l.includes('api key records available again')))
  })

  test('revoked through the admin → the same 401 as any wrong key once the copy has it', async () => {
    const k = await admin.create({ owner: 'o', scopes: [] }, now())
    const p = make()
    const mirror = acquireMapKeySet(mem, logger, { lastUsedFlushMs: 60_000, now })
    await mirror.keys.refresh()
    assert.equal(run(p, testContext({ headers: { 'x-api-key': k.key } })), undefined)
    await admin.revoke(k.record.id, now())
    await mirror.keys.refresh()
    assert.equal(run(p, testContext({ headers: { 'x-api-key': k.key } }))?.code, 'GW_ERR_AUTH_INVALID')
    await mirror.release()
  })

  test('maxStaleSeconds: a copy older than that fails closed with 503 (fake clock)', async () => {
    const k = await admin.create({ owner: 'o', scopes: [] }, now())
    const p = make({ maxStaleSeconds: 10 })
    const mirror = acquireMapKeySet(mem, logger, { lastUsedFlushMs: 60_000, now })
    await mirror.keys.refresh()
    assert.equal(run(p, testContext({ headers: { 'x-api-key': k.key } })), undefined)
    clock.t += 10_001
    assert.equal(run(p, testContext({ headers: { 'x-api-key': k.key } }))?.code, 'GW_ERR_STATE_UNAVAILABLE')
    await mirror.keys.refresh()
    assert.equal(run(p, testContext({ headers: { 'x-api-key': k.key } })), undefined)
    await mirror.release()
  })
})
