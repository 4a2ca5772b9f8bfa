/**
 * The scanner's fixture APIs (test/scanner-fixtures/) are what their ground truth says: a few
 * flaws of each vulnerable twin reproduced by hand with plain HTTP, and closed in the secure twin.
 * (The scanner's recall on them is measured in test/scanner-recall-*.test.ts.)
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { BAZAAR_PASSWORDS } from './scanner-fixtures/bazaar.js'
import { type FixtureHandle, startFixture } from './scanner-fixtures/host.js'
import { LEDGER_KEYS } from './scanner-fixtures/ledger.js'
import { SHELF_PASSWORDS } from './scanner-fixtures/shelf.js'

async function call(
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; json?: unknown; form?: Record<string, string> } = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) }
  let body: string | undefined
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(opts.json)
  } else if (opts.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(opts.form).toString()
  }
  const res = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) })
  const text = await res.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, headers: res.headers }
}

describe('scanner fixture: shelf', () => {
  let vuln: FixtureHandle
  let secure: FixtureHandle
  before(async () => {
    vuln = await startFixture('shelf', { secure: false })
    secure = await startFixture('shelf', { secure: true })
  })
  after(async () => {
    await vuln?.close()
    await secure?.close()
  })
  const token = async (api: FixtureHandle, user: 'alice' | 'bob') => {
    const r = await call(api.url, 'POST', '/oauth/token', {
      form: { grant_type: 'password', username: user, password: SHELF_PASSWORDS[user] },
    })
    assert.equal(r.status, 200)
    return { authorization: `Bearer ${(r.body as { access_token: string }).access_token}` }
  }

  it('BOLA by username, user enumeration, Location creates; closed in the secure twin', async () => {
    for (const api of [vuln, secure]) {
      const bob = await token(api, 'bob')
      const r = await call(api.url, 'GET', '/users/v1/alice', { headers: bob })
      assert.equal(r.status, api.secure ? 403 : 200)
      const created = await call(api.url, 'POST', '/books/v1', { headers: bob, json: { title: 't' } })
      assert.equal(created.status, 201)
      assert.match(created.headers.get('location') ?? '', /^\/books\/v1\/\d+$/)
      const unknown = await call(api.url, 'POST', '/oauth/token', {
        form: { grant_type: 'password', username: 'nobody-here', password: 'x' },
      })
      const wrong = await call(api.url, 'POST', '/oauth/token', {
        form: { grant_type: 'password', username: 'alice', password: 'x' },
      })
      assert.equal(JSON.stringify(unknown.body) === JSON.stringify(wrong.body), api.secure)
    }
  })

  it('the register email regex backtracks catastrophically only in the vulnerable twin', async () => {
    const timed = async (api: FixtureHandle, n: number) => {
      const t = performance.now()
      const r = await call(api.url, 'POST', '/users/v1/register', {
        json: { username: 'redos_probe', password: 'long-enough-1', email: `${'a'.repeat(n)}!` },
      })
      assert.equal(r.status, 400)
      return performance.now() - t
    }
    const short = await timed(vuln, 8)
    const long = await timed(vuln, 27)
    assert.ok(long > short * 5, `vulnerable: ${short.toFixed(0)} ms vs ${long.toFixed(0)} ms`)
    assert.ok((await timed(secure, 27)) < 500)
  })
})

describe('scanner fixture: ledger', () => {
  let vuln: FixtureHandle
  let secure: FixtureHandle
  before(async () => {
    vuln = await startFixture('ledger', { secure: false })
    secure = await startFixture('ledger', { secure: true })
  })
  after(async () => {
    await vuln?.close()
    await secure?.close()
  })

  it('unmarked support functions answer customers only in the vulnerable twin; state is in-process', async () => {
    for (const api of [vuln, secure]) {
      const alice = { 'x-api-key': LEDGER_KEYS.alice }
      const audit = await call(api.url, 'GET', '/api/audit-events', { headers: alice })
      assert.equal(audit.status, api.secure ? 403 : 200)
      const mine = (await call(api.url, 'GET', '/api/accounts', { headers: alice })).body as {
        data: { id: string }[]
      }
      const id = mine.data[0]?.id as string
      const bob = await call(api.url, 'GET', `/api/accounts/${id}`, {
        headers: { 'x-api-key': LEDGER_KEYS.bob },
      })
      assert.equal(bob.status, api.secure ? 404 : 200)
      const state = (await api.state()) as { accounts: unknown[] }
      assert.equal(state.accounts.length, 2)
    }
  })

  it('answers 429 with Retry-After beyond 15 requests per second', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 60 }, () =>
        call(vuln.url, 'GET', '/api/me', { headers: { 'x-api-key': LEDGER_KEYS.bob } }).then((r) => r.status),
      ),
    )
    assert.ok(statuses.includes(429))
    assert.ok(((await vuln.counters()).throttled ?? 0) > 0)
  })
})

describe('scanner fixture: bazaar', () => {
  let vuln: FixtureHandle
  let secure: FixtureHandle
  before(async () => {
    vuln = await startFixture('bazaar', { secure: false })
    secure = await startFixture('bazaar', { secure: true })
  })
  after(async () => {
    await vuln?.close()
    await secure?.close()
  })

  it('form login, nested BOLA, coupon reuse; closed in the secure twin', async () => {
    for (const api of [vuln, secure]) {
      const login = await call(api.url, 'POST', '/auth/login', {
        form: { email: 'bob@bazaar.test', password: BAZAAR_PASSWORDS.bob },
      })
      assert.equal(login.status, 200)
      const bob = { 'x-session': (login.body as { session: { token: string } }).session.token }
      const r = await call(api.url, 'GET', '/v2/users/u-1001/addresses', { headers: bob })
      assert.equal(r.status, api.secure ? 403 : 200)
      const statuses: number[] = []
      for (let i = 0; i < 2; i++) {
        await call(api.url, 'POST', '/v2/cart/items', { headers: bob, json: { sku: 'SKU-TEA', qty: 1 } })
        statuses.push(
          (await call(api.url, 'POST', '/v2/cart/coupon', { headers: bob, json: { code: 'WELCOME10' } }))
            .status,
        )
        await call(api.url, 'POST', '/v2/checkout', { headers: bob })
      }
      assert.deepEqual(statuses, api.secure ? [200, 409] : [200, 200])
    }
  })
})
