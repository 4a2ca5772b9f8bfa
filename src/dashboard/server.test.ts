import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import { pino } from 'pino'
import { createAdminApi } from '../admin/api.js'
import type { LogEntry } from '../gateway/pipeline/policy.js'
import { createMemoryStore } from '../stores/memory/memory-store.js'
import { CSP, createDashboard, isDashboardPath } from './server.js'
import { maskIp, Telemetry } from './telemetry.js'

const TOKEN = 'dashboard-unit-admin-token-0123456789abcdef'
let server: Server
let origin: string
let t = 1_800_000_000_000
const telemetry = new Telemetry(() => t)
const store = createMemoryStore()

before(async () => {
  const logger = pino({ level: 'silent' })
  const api = createAdminApi({
    config: { enabled: true, host: '127.0.0.1', port: 0, token: TOKEN } as never,
    store,
    logger,
    telemetry,
  })
  const dashboard = createDashboard({ api, token: TOKEN, logger, telemetry, now: () => t })
  server = createServer((req, res) => {
    if (isDashboardPath((req.url ?? '').split('?')[0] as string)) dashboard.handle(req, res)
    else res.writeHead(404).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
after(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
  await store.close()
})

async function signIn(): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${origin}/ui/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: TOKEN }),
  })
  assert.equal(res.status, 200)
  const set = res.headers.get('set-cookie') ?? ''
  assert.match(set, /^pcl_ui=[A-Za-z0-9_-]{43}; Path=\/ui; HttpOnly; SameSite=Strict; Max-Age=28800$/)
  return { cookie: set.split(';')[0] as string, csrf: ((await res.json()) as { csrf: string }).csrf }
}

test('the page and assets: strict CSP, no inline script, ETags', async () => {
  const page = await fetch(`${origin}/ui`)
  assert.equal(page.status, 200)
  assert.equal(page.headers.get('content-security-policy'), CSP)
  assert.match(CSP, /script-src 'self';/)
  assert.doesNotMatch(CSP, /unsafe-inline|unsafe-eval/)
  const html = await page.text()
  assert.doesNotMatch(html, /<script>|<script[^>]*>[^<]|\son[a-z]+=|\sstyle=|<style/i, 'no inline code')
  const js = await fetch(`${origin}/ui/assets/app.js`)
  const etag = js.headers.get('etag') as string
  assert.ok(etag && (await js.text()).length > 1000)
  assert.equal(
    (await fetch(`${origin}/ui/assets/app.js`, { headers: { 'if-none-match': etag } })).status,
    304,
  )
  assert.equal((await fetch(`${origin}/ui/assets/app.js`, { method: 'POST' })).status, 405)
  assert.equal((await fetch(`${origin}/ui/nope`)).status, 401, 'anything else needs a session')
})

test('sign-in: wrong, malformed, cross-site and repeated attempts are refused', async () => {
  const post = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${origin}/ui/login`, { method: 'POST', headers, body }).then((r) => r.status)
  assert.equal(await post(JSON.stringify({ token: 'x'.repeat(40) })), 401)
  assert.equal(await post(JSON.stringify({ token: 42 })), 401)
  assert.equal(await post('not json'), 400)
  assert.equal(await post(`{"token":"${'a'.repeat(10_000)}"}`), 400, 'body over 4 KiB')
  assert.equal(await post(JSON.stringify({ token: TOKEN }), { 'content-type': 'text/plain' }), 415)
  assert.equal(
    await post(JSON.stringify({ token: TOKEN }), {
      'content-type': 'application/json',
      origin: 'http://evil.example',
    }),
    403,
  )
  assert.equal(
    await post(JSON.stringify({ token: TOKEN }), {
      'content-type': 'application/json',
      'sec-fetch-site': 'cross-site',
    }),
    403,
  )
  // 10 failures a minute per address, then 429 even for the right token.
  for (let i = 0; i < 10; i++) await post(JSON.stringify({ token: `wrong-${i}-${'y'.repeat(40)}` }))
  assert.equal(await post(JSON.stringify({ token: TOKEN })), 429)
  t += 61_000
  assert.equal(await post(JSON.stringify({ token: TOKEN })), 200)
})

test('sessions: cookie-only reads, CSRF-checked writes, garbage cookies, expiry, sign-out', async () => {
  const { cookie, csrf } = await signIn()
  const get = (path: string, c = cookie) => fetch(`${origin}${path}`, { headers: { cookie: c } })
  assert.equal((await get('/ui/session')).status, 200)
  assert.equal((await get('/ui/api/v1/traffic?window=10s')).status, 200)
  for (const bad of [
    'pcl_ui=',
    'pcl_ui=../../etc',
    `pcl_ui=${'A'.repeat(43)}`,
    'x'.repeat(8000),
    'pcl_ui=a; pcl_ui=b',
    '',
  ]) {
    assert.equal((await get('/ui/session', bad)).status, 401, bad.slice(0, 20))
  }
  const ban = (headers: Record<string, string>) =>
    fetch(`${origin}/ui/api/v1/bans`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ cidr: '198.51.100.0/24', duration: '1m' }),
    })
  assert.equal((await ban({})).status, 403, 'no CSRF token')
  assert.equal((await ban({ 'x-csrf-token': `${csrf}x` })).status, 403, 'a wrong one')
  assert.equal(
    (await ban({ 'x-csrf-token': csrf, origin: 'http://127.0.0.1:1' })).status,
    403,
    'another origin',
  )
  assert.equal(
    (await ban({ 'x-csrf-token': csrf, 'sec-fetch-site': 'same-site' })).status,
    403,
    'same-site is not same-origin',
  )
  const ok = await ban({ 'x-csrf-token': csrf, origin })
  assert.equal(ok.status, 201)
  assert.equal(((await ok.json()) as { by: string }).by, 'dashboard session')
  // The admin API's bearer token does not open the page, and the page's cookie does not open /v1.
  assert.equal(
    (await fetch(`${origin}/ui/session`, { headers: { authorization: `Bearer ${TOKEN}` } })).status,
    401,
  )
  // Idle for more than an hour: signed out.
  t += 3_601_000
  assert.equal((await get('/ui/session')).status, 401)
  const again = await signIn()
  const out = await fetch(`${origin}/ui/logout`, {
    method: 'POST',
    headers: { cookie: again.cookie, 'x-csrf-token': again.csrf },
  })
  assert.equal(out.status, 200)
  assert.equal((await get('/ui/session', again.cookie)).status, 401)
})

test('live feed (SSE): redacted request summaries while someone watches', async () => {
  const { cookie } = await signIn()
  const ac = new AbortController()
  const res = await fetch(`${origin}/ui/api/live`, { headers: { cookie }, signal: ac.signal })
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  await reader.read() // ": connected"
  const entry = {
    ctx: {
      method: 'GET',
      path: '/users/42/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301',
      query: 'token=secret-value&page=2',
      routeName: 'api',
      clientIp: '203.0.113.77',
      principal: { id: 'alice@example.com' },
      state: {},
    },
    status: 200,
    durationMs: 3.21,
    decision: 'allowed',
    errorCode: undefined,
  } as unknown as LogEntry
  telemetry.observe(entry)
  let text = ''
  while (!text.includes('\n\n') || !text.includes('data:'))
    text += new TextDecoder().decode((await reader.read()).value)
  ac.abort()
  const ev = JSON.parse(
    text.slice(text.indexOf('data: ') + 6, text.indexOf('\n\n', text.indexOf('data: '))),
  ) as Record<string, unknown>
  assert.equal(ev.path, '/users/{id}/orders/{uuid}')
  assert.deepEqual(ev.query, ['token', 'page'])
  assert.equal(ev.client, '203.0.113.x')
  assert.match(String(ev.principal), /^[0-9a-f]{10}$/)
  assert.ok(!text.includes('secret-value') && !text.includes('alice@example.com') && !text.includes('.77'))
})

test('telemetry: per-second series and space-saving top keys stay bounded', () => {
  let now = 1_900_000_000_000
  const tel = new Telemetry(() => now)
  const mk = (key: string, denied: boolean): LogEntry =>
    ({
      ctx: {
        method: 'GET',
        path: '/x',
        query: '',
        routeName: 'r',
        clientIp: '::1',
        state: {
          'rate-limit': {
            applied: [{ limit: { name: 'per-ip' }, key, decision: { allowed: !denied, remaining: 3 } }],
          },
        },
      },
      status: denied ? 429 : 200,
      durationMs: 1,
      decision: denied ? 'denied' : 'allowed',
      errorCode: denied ? 'GW_ERR_RATE_LIMITED' : undefined,
    }) as unknown as LogEntry
  for (let i = 0; i < 100; i++) tel.observe(mk('ip=10.0.0.1', i % 10 === 0))
  now += 1000
  for (let i = 0; i < 5000; i++) tel.observe(mk(`ip=10.1.${i >> 8}.${i & 255}`, false))
  const s = tel.series(3)
  assert.equal(s.length, 3)
  assert.equal(s[1]?.requests, 100)
  assert.equal(s[1]?.denied, 10)
  assert.deepEqual(s[1]?.codes, { GW_ERR_RATE_LIMITED: 10 })
  assert.equal(s[2]?.requests, 5000)
  const top = tel.topKeys(5)
  assert.equal(top[0]?.key, 'ip=10.0.0.1', 'the heavy hitter survives 5,000 one-off keys')
  assert.equal(top[0]?.denied, 10)
  assert.ok(tel.topKeys(1000).length <= 200)
  assert.equal(maskIp('2001:db8:1:2::9'), '2001:db8:1:…')
})
