/**
 * Token revocations shared through Redis: two real gateway processes on one redis-server and one
 * token issuer. A revocation posted to gateway A's admin API is refused by A at once and by B
 * within a second (measured: B is polled every 20 ms, and the time is printed); deleting it lets
 * the token in again on both. Then Redis goes away: a route with `maxStaleSeconds: 1` fails closed
 * (503) once the shared list is stale, one with `failOpen` keeps accepting; Redis comes back (empty)
 * and the strict route recovers.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, type TestContext, test } from 'node:test'
import { stringify } from 'yaml'
import { RedisServer } from '../src/stores/redis/redis-server.js'
import { request } from './helpers/http.js'
import { JwksIssuer, TEST_AUDIENCE } from './helpers/jwks-issuer.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const ADMIN_TOKEN = `adm-${randomBytes(24).toString('base64url')}`
const POLL_MS = 20
const DEADLINE_MS = 5000
const BUDGET_MS = 1000

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `fn` every POLL_MS until it is true; the ms it took, or a failure after `deadlineMs`. */
async function until(what: string, fn: () => Promise<boolean>, deadlineMs = DEADLINE_MS): Promise<number> {
  const start = performance.now()
  for (;;) {
    if (await fn()) return performance.now() - start
    if (performance.now() - start > deadlineMs) assert.fail(`${what}: not within ${deadlineMs} ms`)
    await sleep(POLL_MS)
  }
}

describe('revocations shared through Redis', () => {
  let redis: RedisServer
  let issuer: JwksIssuer
  let up: TestUpstream
  let a: GatewayProcess
  let b: GatewayProcess

  const status = async (gw: GatewayProcess, path: string, token: string) =>
    (await request(gw.url, { path, headers: { authorization: `Bearer ${token}` } })).status
  const adminCall = (gw: GatewayProcess, method: string, path: string, body?: unknown) =>
    request(gw.adminUrl as string, {
      method,
      path,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    })

  before(async () => {
    redis = await RedisServer.start()
    issuer = await JwksIssuer.start(['RS256'])
    up = await startUpstream('api')
    const jwt = (revocation: Record<string, unknown>) => ({
      algorithms: ['RS256'],
      issuer: issuer.issuer,
      audience: TEST_AUDIENCE,
      jwksUrl: issuer.jwksUrl,
      revocation,
    })
    const route = (name: string, revocation: Record<string, unknown>) => ({
      name,
      match: { pathPrefix: `/${name}` },
      upstream: 'main',
      stripPrefix: true,
      policies: { 'jwt-auth': jwt(revocation) },
    })
    const yaml = stringify({
      listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${file:} is config syntax
      admin: { host: '127.0.0.1', port: 0, token: '${file:admin-token.txt}' },
      stores: {
        backend: 'redis',
        redis: { url: `redis://127.0.0.1:${redis.port}`, commandTimeout: '200ms', connectTimeout: '200ms' },
      },
      upstreams: { main: { targets: [{ url: up.url }] } },
      routes: [
        route('api', {}),
        route('strict', { maxStale: '1s' }),
        route('lenient', { maxStale: '1s', failOpen: true }),
      ],
      reload: { watch: false },
    })
    const start = () => {
      const dir = tempDir('pc-revshared-')
      writeFileSync(join(dir, 'admin-token.txt'), ADMIN_TOKEN)
      return spawnGateway(yaml, dir, { captureStdout: true })
    }
    ;[a, b] = await Promise.all([start(), start()])
  })

  after(async () => {
    await a?.stop()
    await b?.stop()
    await up?.close()
    await issuer?.close()
    await redis?.stop()
  })

  /** Revokes `token` on A (by `body`), measures until B refuses it, then deletes it again. */
  async function roundTrip(t: TestContext, label: string, token: string, body: unknown): Promise<void> {
    // Both gateways accept it first (and have it in their verified-token cache).
    await until(`${label}: A accepts`, async () => (await status(a, '/api/x', token)) === 200)
    await until(`${label}: B accepts`, async () => (await status(b, '/api/x', token)) === 200)

    const posted = await adminCall(a, 'POST', '/v1/revocations', body)
    assert.equal(posted.status, 201, posted.body)
    const t0 = performance.now()
    assert.equal(await status(a, '/api/x', token), 401, 'gateway A applies its own write at once')
    await until(`${label}: B refuses`, async () => (await status(b, '/api/x', token)) === 401)
    const ms = performance.now() - t0
    t.diagnostic(`${label}: gateway B refused the token ${ms.toFixed(0)} ms after A's admin API answered 201`)
    assert.ok(ms <= BUDGET_MS, `${label}: B took ${ms.toFixed(0)} ms (budget ${BUDGET_MS} ms)`)

    const removed = await adminCall(a, 'DELETE', posted.headers.location as string)
    assert.equal(removed.status, 204)
    const t1 = performance.now()
    assert.equal(await status(a, '/api/x', token), 200, 'gateway A applies the delete at once')
    await until(`${label}: B accepts again`, async () => (await status(b, '/api/x', token)) === 200)
    t.diagnostic(
      `${label}: gateway B accepted it again ${(performance.now() - t1).toFixed(0)} ms after the delete`,
    )
  }

  test('by jti: refused on B within a second, accepted again after DELETE', async (t) => {
    const jti = `jti-${randomBytes(8).toString('hex')}`
    const token = await issuer.mint({ claims: { jti } })
    await roundTrip(t, 'jti', token, { jti, reason: 'test' })
  })

  test('by token (stored as its SHA-256): same', async (t) => {
    const token = await issuer.mint()
    await roundTrip(t, 'token hash', token, { token })
    const hash = createHash('sha256').update(token).digest('hex')
    // Posted to B this time, by hash: A refuses it.
    const posted = await adminCall(b, 'POST', '/v1/revocations', { tokenSha256: hash })
    assert.equal(posted.status, 201)
    await until('A refuses a hash posted to B', async () => (await status(a, '/api/x', token)) === 401)
    assert.equal((await adminCall(a, 'DELETE', `/v1/revocations/sha256:${hash}`)).status, 204)
  })

  test('the list is the same on both gateways', async () => {
    assert.equal((await adminCall(a, 'POST', '/v1/revocations', { jti: 'listed-on-a' })).status, 201)
    assert.equal((await adminCall(b, 'POST', '/v1/revocations', { jti: 'listed-on-b' })).status, 201)
    const ids = async (gw: GatewayProcess) =>
      (
        JSON.parse((await adminCall(gw, 'GET', '/v1/revocations')).body) as { items: { id: string }[] }
      ).items.map((x) => x.id)
    const fromA = await ids(a)
    assert.ok(fromA.includes('jti:listed-on-a') && fromA.includes('jti:listed-on-b'), fromA.join(','))
    assert.deepEqual(await ids(b), fromA)
  })

  test('Redis down: maxStaleSeconds fails closed (503), failOpen accepts; recovery', async (t) => {
    const token = await issuer.mint()
    for (const p of ['/strict/x', '/lenient/x']) {
      await until(`${p} accepts`, async () => (await status(a, p, token)) === 200)
    }
    await redis.kill()
    const down = performance.now()
    await until(
      'strict route fails closed',
      async () => (await status(a, '/strict/x', token)) === 503,
      10_000,
    )
    t.diagnostic(
      `strict route answered 503 ${(performance.now() - down).toFixed(0)} ms after Redis was killed`,
    )
    const r = await request(a.url, { path: '/strict/x', headers: { authorization: `Bearer ${token}` } })
    assert.equal(JSON.parse(r.body).code, 'GW_ERR_STATE_UNAVAILABLE')
    assert.equal(await status(a, '/lenient/x', token), 200)
    // The admin API says the store is unreachable rather than pretending.
    const write = await adminCall(a, 'POST', '/v1/revocations', { jti: 'while-down' })
    assert.equal(write.status, 503, write.body)
    assert.match(a.stderr(), /shared revocation list is stale/)

    await redis.launch()
    await until('strict route recovers', async () => (await status(a, '/strict/x', token)) === 200, 10_000)
  })

  test('no admin token or bearer token in the output of either gateway', async () => {
    const token = await issuer.mint()
    assert.equal((await adminCall(a, 'POST', '/v1/revocations', { token })).status, 201)
    for (const gw of [a, b]) {
      const out = gw.stdout() + gw.stderr()
      assert.ok(!out.includes(ADMIN_TOKEN), 'admin token in the output')
      assert.ok(!out.includes(token), 'bearer token in the output')
    }
  })
})
