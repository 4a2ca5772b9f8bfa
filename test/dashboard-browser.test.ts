/**
 * The dashboard in headless Chromium (playwright-core, /usr/bin/chromium) against a live gateway
 * (the demo API behind the demo config, with detection and the audit log on) under scripted
 * traffic: sign-in, every page shows live data, a ban added in the UI is enforced by the gateway
 * within 1 s (an address, then a network), a forged cross-site POST is refused, and the page never
 * sends a request to another origin. Screenshots of each page go to a temporary directory, or to
 * $PORTCULLIS_SCREENSHOTS (docs/img for the docs: `PORTCULLIS_SCREENSHOTS=docs/img npm test --
 * dist/test/dashboard-browser`).
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { after, before, test } from 'node:test'
import { pino } from 'pino'
import { formatKeyring, newKey, writeKeyringFile } from '../src/audit/keyring.js'
import { type DemoApi, demoCredentials, startDemoApi } from '../examples/demo/api.js'
import { type RunningGateway, startGateway } from '../src/gateway/serve.js'
import { demoConfigYaml } from './helpers/demo-config.js'
import { tempDir } from './helpers/process.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const TOKEN = 'dashboard-test-admin-token-0123456789abcdef'
const ROOT = new URL('../../', import.meta.url).pathname
const SHOTS = process.env.PORTCULLIS_SCREENSHOTS
  ? resolve(ROOT, process.env.PORTCULLIS_SCREENSHOTS)
  : tempDir('pc-shots-')

// The callbacks given to waitForFunction and $$eval run in the page, where `document` is the DOM.
// biome-ignore lint/suspicious/noExplicitAny: the DOM's types are not in this Node project's lib
declare const document: any

type Browser = import('playwright-core').Browser
type Page = import('playwright-core').Page

let api: DemoApi
let gw: RunningGateway
let browser: Browser
let attacker: Server
let stopTraffic = false
let traffic: Promise<void>
let base: string
let adminUrl: string

async function call(method: string, path: string, token?: string, body?: unknown): Promise<number> {
  const headers: Record<string, string> = {}
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  await res.arrayBuffer()
  return res.status
}

before(async () => {
  api = await startDemoApi()
  const dir = tempDir('pc-dash-')
  writeKeyringFile(join(dir, 'audit-keys.json'), formatKeyring('k1', new Map([['k1', newKey()]])))
  let yaml = demoConfigYaml(api.url).replace('destination: stdout', 'enabled: false')
  yaml = yaml.replace(
    /admin:\n {2}host: 127\.0\.0\.1\n {2}port: 0/,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: config syntax
    'admin:\n  host: 127.0.0.1\n  port: 0\n  token: ${env:PCL_ADMIN_TOKEN}',
  )
  yaml += `
audit:
  enabled: true
  keyring: { file: audit-keys.json }
detect:
  bruteForce: { failures: 3 }
`
  writeFileSync(join(dir, 'portcullis.yaml'), yaml)
  gw = await startGateway(join(dir, 'portcullis.yaml'), {
    logger: pino({ level: 'silent' }),
    env: { ...process.env, PCL_ADMIN_TOKEN: TOKEN },
  })
  base = gw.listeners[0]?.url as string
  adminUrl = gw.admin?.url as string
  // Logins first (the login route allows 5 per minute per address), then three wrong passwords: an alert.
  const tokens: string[] = []
  for (const u of ['alice', 'bob'] as const) {
    const res = await fetch(`${base}/api/v2/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: u, password: demoCredentials[u] }),
    })
    tokens.push(((await res.json()) as { token: string }).token)
  }
  for (let i = 0; i < 3; i++)
    await call('POST', '/api/v2/login', undefined, { username: 'alice', password: 'wrong' })
  await call('POST', '/api/v2/orders', tokens[0], { item: 'mouse', quantity: 1 })
  traffic = (async () => {
    for (let i = 0; !stopTraffic && i < 20_000; i++) {
      const t = tokens[i % 2] as string
      await call('GET', '/api/v2/users/me', t).catch(() => 0)
      await call('GET', `/api/v2/accounts/${1 + (i % 2)}`, t).catch(() => 0)
      await call('GET', `/api/v1/users/${1 + (i % 3)}`).catch(() => 0)
      if (i % 5 === 0) await call('GET', '/api/v2/debug/config').catch(() => 0)
      if (i % 7 === 0)
        await call('POST', '/api/v2/orders', t, { item: 'usb-cable', quantity: 1 }).catch(() => 0)
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  // A page on another origin (another port of the same host: same-site, so SameSite cookies go
  // with it) that forges a ban through the dashboard: a form post and a no-cors fetch.
  attacker = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(`<!doctype html><body>
<form id="f" method="POST" action="${adminUrl}/ui/api/v1/bans"><input name="ip" value="192.0.2.66"><input name="duration" value="10m"></form>
<script>
fetch(${JSON.stringify(`${adminUrl}/ui/api/v1/bans`)}, { method: 'POST', mode: 'no-cors', credentials: 'include',
  headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ ip: '192.0.2.67', duration: '10m' }) })
  .finally(() => document.getElementById('f').submit())
</script></body>`)
  })
  await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r))
  const pw = await import('playwright-core')
  browser = await pw.chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  mkdirSync(SHOTS, { recursive: true })
})

after(async () => {
  stopTraffic = true
  await traffic
  await browser?.close()
  await new Promise((r) => attacker?.close(r))
  await gw?.close()
  await api?.close()
})

async function adminGet<T>(path: string): Promise<T> {
  const res = await fetch(adminUrl + path, { headers: { authorization: `Bearer ${TOKEN}` } })
  assert.equal(res.status, 200)
  return (await res.json()) as T
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `dashboard-${name}.png`), fullPage: false })
}

test('the dashboard: sign-in, every page with live data, bans enforced within 1 s, no foreign request', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 } })
  const page = await context.newPage()
  const requests: string[] = []
  const violations: string[] = []
  page.on('request', (r) => requests.push(r.url()))
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) violations.push(m.text())
  })
  page.on('pageerror', (e) => violations.push(String(e)))

  // Sign-in: a wrong token is refused, the right one opens a session in an HttpOnly, Strict cookie.
  await page.goto(`${adminUrl}/ui`)
  await page.waitForSelector('#signin')
  await shot(page, 'signin')
  await page.fill('#token', 'not-the-token-not-the-token-not-the-token')
  await page.click('#signin button[type=submit]')
  await page.waitForFunction(() =>
    document.getElementById('signin-error')?.textContent?.includes('not valid'),
  )
  await page.fill('#token', TOKEN)
  await page.click('#signin button[type=submit]')
  await page.waitForSelector('nav')
  const cookie = (await context.cookies()).find((c) => c.name === 'pcl_ui')
  assert.ok(cookie, 'session cookie')
  assert.equal(cookie.httpOnly, true)
  assert.equal(cookie.sameSite, 'Strict')
  assert.equal(cookie.path, '/ui')
  assert.equal(await page.evaluate(() => document.cookie), '', 'not readable by scripts')

  // Overview: counters and three charts from live traffic.
  await page.waitForFunction(() => {
    const v = document.querySelector('#overview-cards .card:last-child .value')?.textContent ?? '0'
    return Number(v.replace(/,/g, '')) > 0 && document.querySelectorAll('.chart canvas').length >= 3
  })
  await shot(page, 'overview')

  // Live requests over SSE.
  await page.goto(`${adminUrl}/ui#/live`)
  await page.waitForFunction(
    () => (document.getElementById('live-rows')?.childElementCount ?? 0) >= 5,
    undefined,
    { timeout: 15_000 },
  )
  const liveText = await page.textContent('#live-rows')
  assert.match(liveText ?? '', /\/api\/v2\/accounts\/\{id\}/, 'ids masked')
  assert.doesNotMatch(liveText ?? '', new RegExp(demoCredentials.alice), 'no credentials')
  await shot(page, 'live')

  // Alerts: the brute-force alert, acknowledged from the page.
  await page.goto(`${adminUrl}/ui#/alerts`)
  await page.waitForSelector('#alerts-table button.ack')
  await page.click('#alerts-table button.ack')
  await page.waitForFunction(() =>
    document.querySelector('#alerts-table')?.textContent?.includes('dashboard session'),
  )
  const alerts = await adminGet<{ items: { acknowledged?: { by: string } }[] }>('/v1/alerts')
  assert.equal(alerts.items[0]?.acknowledged?.by, 'dashboard session')
  await shot(page, 'alerts')

  // Bans: an address ban added in the page is enforced by the gateway within 1 s; then a network.
  for (const [kind, subject, id] of [
    ['ip', '127.0.0.1', 'ip:127.0.0.1'],
    ['cidr', '127.0.0.0/8', 'cidr:127.0.0.0/8'],
  ] as const) {
    await page.goto(`${adminUrl}/ui#/bans`)
    await page.waitForSelector('#ban-form')
    await page.selectOption('#ban-kind', kind)
    await page.fill('#ban-subject', subject)
    await page.fill('#ban-duration', '2m')
    await page.fill('#ban-reason', 'dashboard test')
    const clicked = performance.now()
    await page.click('#ban-form button[type=submit]')
    let enforcedMs = Number.POSITIVE_INFINITY
    while (performance.now() - clicked < 3000) {
      if ((await call('GET', '/healthz')) === 403) {
        enforcedMs = performance.now() - clicked
        break
      }
      await new Promise((r) => setTimeout(r, 10))
    }
    assert.ok(enforcedMs < 1000, `${kind} ban enforced after ${enforcedMs} ms`)
    t.diagnostic(`${kind} ban enforced ${Math.round(enforcedMs)} ms after the click`)
    await page.waitForSelector('#bans-table button.lift')
    if (kind === 'cidr') await shot(page, 'bans')
    const row = page.locator('#bans-table tr', { hasText: subject })
    await row.locator('button.lift').click()
    const lifted = performance.now()
    while ((await call('GET', '/healthz')) !== 200) {
      assert.ok(performance.now() - lifted < 3000, `${id} lifted`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  // Inventory: sortable, filterable, with data classes and flags; one operation in detail.
  await page.goto(`${adminUrl}/ui#/inventory`)
  await page.waitForFunction(() => (document.querySelectorAll('#inventory-table tbody tr').length ?? 0) >= 5)
  await page.click('#inventory-table th[data-key="requests"]')
  const firstAfterSort = await page.textContent('#inventory-table tbody tr:first-child td:nth-child(3)')
  const allCounts = await page.$$eval('#inventory-table tbody tr td:nth-child(3)', (tds) =>
    tds.map((td) => Number((td.textContent ?? '0').replace(/,/g, ''))),
  )
  assert.equal(
    Number((firstAfterSort ?? '').replace(/,/g, '')),
    Math.max(...allCounts),
    'sorted by requests, most first',
  )
  await shot(page, 'inventory')
  await page.fill('#inv-filter', '/api/v1/')
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#inventory-table tbody tr')]
    return (
      rows.length === 1 &&
      rows[0]?.textContent?.includes('zombie') &&
      rows[0]?.textContent?.includes('shadow')
    )
  })
  await page.fill('#inv-filter', '')
  await page.selectOption('#inv-flag', 'shadow')
  await page.waitForFunction(() =>
    [...document.querySelectorAll('#inventory-table tbody tr')].every((r) =>
      r.textContent?.includes('shadow'),
    ),
  )
  await page.selectOption('#inv-flag', '')
  await page.click('#inventory-table tbody tr:has-text("/api/v2/accounts/{id}")')
  await page.waitForSelector('#classes-table')
  const classes = await page.textContent('#classes-table')
  assert.match(classes ?? '', /IBAN/)
  assert.match(classes ?? '', /GDPR/)
  await shot(page, 'operation')

  // Rate-limit top keys, audit chain status, effective config.
  await page.goto(`${adminUrl}/ui#/ratelimits`)
  await page.waitForSelector('#ratelimit-table')
  assert.match((await page.textContent('#ratelimit-table')) ?? '', /login-ip|orders/)
  await shot(page, 'ratelimits')
  await page.goto(`${adminUrl}/ui#/audit`)
  await page.click('#audit-verify')
  await page.waitForFunction(() => document.querySelector('#audit .badge')?.textContent === 'ok', undefined, {
    timeout: 15_000,
  })
  await shot(page, 'audit')
  await page.goto(`${adminUrl}/ui#/config`)
  await page.waitForSelector('#config-json')
  const cfg = (await page.textContent('#config-json')) ?? ''
  assert.match(cfg, /"listeners"/)
  assert.ok(!cfg.includes(TOKEN), 'the admin token is redacted')
  await shot(page, 'config')

  const foreign = requests.filter((u) => !u.startsWith(`${adminUrl}/`) && !u.startsWith('data:'))
  assert.deepEqual(foreign, [], 'no request to another origin')
  assert.deepEqual(violations, [], 'no CSP violation or page error')
  await context.close()
})

test('a forged cross-site POST (form and no-cors fetch) from another origin is refused', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  // Sign in through the API (same cookie jar), then visit the attacker's page.
  const login = await page.request.post(`${adminUrl}/ui/login`, {
    data: { token: TOKEN },
    headers: { 'content-type': 'application/json' },
  })
  assert.equal(login.status(), 200)
  const answers: number[] = []
  page.on('response', (r) => {
    if (r.url().includes('/ui/api/v1/bans')) answers.push(r.status())
  })
  const { port } = attacker.address() as AddressInfo
  await page.goto(`http://127.0.0.1:${port}/`)
  await page.waitForURL(/\/ui\/api\/v1\/bans/, { timeout: 10_000 })
  assert.ok(answers.includes(403), `refused: ${answers.join()}`)
  const bans = await adminGet<{ items: { id: string }[] }>('/v1/bans')
  assert.ok(!bans.items.some((b) => b.id.startsWith('ip:192.0.2.6')), 'no ban was created')
  // Without a session a change is refused too; with the session cookie but no CSRF token as well.
  const direct = await page.request.post(`${adminUrl}/ui/api/v1/bans`, {
    data: { ip: '192.0.2.68', duration: '1m' },
    headers: { 'content-type': 'application/json' },
  })
  assert.equal(direct.status(), 403)
  await context.close()
})
