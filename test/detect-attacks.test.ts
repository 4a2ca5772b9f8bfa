/**
 * The scripted attack suite (issue 25), against the real `portcullis serve` on 127.0.0.1 in front
 * of a small application (test/helpers/detect-attacks.ts), with a config written from the docs:
 * brute-force-lockout on the login route (per IP, per account from one address, and per account
 * with a second factor instead of a lock), object-ownership on orders, jwt-auth, the audit log
 * with a witness anchor, and the detectors with bans.
 *
 * First normal traffic — users who mistype a password once, browse a few pages, and a user who
 * reads her own 30 orders and 30 documents in id order — must raise no alert and no ban. Then each
 * attack, from its own client IP, must raise its alert:
 *   1. brute force through the lockout (10 × 401, then 429s): brute-force, and a ban;
 *   2. the lockout does not lock the real user out: her right password from another address, with
 *      her second factor, logs in;
 *   3. user-name variants (` dave`, `\tdave`, `DAVE`, fullwidth) from 30 addresses: one account;
 *   4. a shuffled walk over 200 other users' orders padded with two of the caller's own per probe:
 *      enumeration;
 *   5. (see 'normal traffic');
 *   6. 36 failed logins within ~2 s across the end of a subject's first window (a second gateway
 *      with a 4 s window): brute-force;
 *   7. credential stuffing (12 user names twice each, and 15 once each): credential-stuffing on
 *      its own, beside brute force;
 *   and the older attacks: a sequential walk over refused ids, a flood, scraping.
 * At the end, every failed login has its audit record (without the password) and the chain
 * verifies against its anchor.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { accountHash, normalizeIdentity } from '../src/detect/identity.js'
import {
  Admin,
  type AttackApp,
  closeAgents,
  type Res,
  send,
  startAttackApp,
  USERS,
} from './helpers/detect-attacks.js'
import { JwksIssuer, TEST_AUDIENCE } from './helpers/jwks-issuer.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'

const ROOT = new URL('../../', import.meta.url).pathname
const ADMIN_TOKEN = 'attack-suite-admin-token-0123456789abcdef'
const KEY = randomBytes(32).toString('base64')

const acct = (name: string) => `account:${accountHash(normalizeIdentity(name) as string)}`

function gatewayConfig(app: string, issuer: JwksIssuer) {
  const jwt = {
    algorithms: ['RS256'],
    issuer: issuer.issuer,
    audience: TEST_AUDIENCE,
    jwksUrl: issuer.jwksUrl,
  }
  return {
    listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
    admin: { enabled: true, host: '127.0.0.1', port: 0, token: ADMIN_TOKEN },
    upstreams: { app: { targets: [{ url: app }] } },
    accessLog: { enabled: false },
    audit: {
      enabled: true,
      keyring: { file: 'audit-keys.json' },
      file: { dir: 'audit' },
      anchor: { witness: { dir: 'witness' } },
    },
    routes: [
      {
        name: 'login',
        match: { pathPrefix: '/login', methods: ['POST'] },
        upstream: 'app',
        policies: {
          'brute-force-lockout': {
            maxFailures: 10,
            window: '5m',
            lockout: '1m',
            by: ['ip', 'ip-credential', 'credential'],
            accountAction: 'step-up',
            credential: { jsonField: 'username', formField: 'username' },
          },
        },
      },
      {
        name: 'orders',
        match: { pathPrefix: '/api/orders' },
        upstream: 'app',
        policies: {
          'jwt-auth': jwt,
          'object-ownership': {
            objects: [
              {
                type: 'order',
                binding: { in: 'claims.orders' },
                access: [{ match: { path: '/api/orders/{id}' }, ids: ['path.id'] }],
              },
            ],
          },
        },
      },
      { name: 'api', match: { pathPrefix: '/api' }, upstream: 'app', policies: { 'jwt-auth': jwt } },
      { name: 'public', match: { pathPrefix: '/' }, upstream: 'app' },
    ],
    detect: {
      bruteForce: { action: 'ban', ban: '10m' },
      enumeration: { action: 'ban', ban: '10m' },
    },
  }
}

describe('scripted attacks on a real gateway (issue 25)', () => {
  let app: AttackApp
  let issuer: JwksIssuer
  let gw: GatewayProcess
  let admin: Admin
  let dir: string
  const tokens: Record<string, string> = {}
  /** Request ids of every failed login answer the clients saw (401, 403, 429 on /login). */
  const failedLogins: string[] = []
  const passwordsSent = new Set<string>()

  const login = async (
    from: string,
    username: string,
    password: string,
    extra: Record<string, string> = {},
  ) => {
    passwordsSent.add(password)
    const r = await send(gw.url, { from, path: '/login', json: { username, password, ...extra } })
    if (r.status !== 200) failedLogins.push(String(r.headers['x-request-id']))
    return r
  }
  const get = (from: string, path: string, who?: string): Promise<Res> =>
    send(gw.url, { from, path, ...(who ? { headers: { authorization: `Bearer ${tokens[who]}` } } : {}) })

  before(async () => {
    app = await startAttackApp()
    issuer = await JwksIssuer.start()
    const ids = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => String(from + i))
    const claims: Record<string, string[]> = {
      alice: ids(101, 130),
      bob: ids(201, 205),
      mallory: ['901', '902'],
      walker: [],
      scraper: [],
    }
    for (const [sub, orders] of Object.entries(claims))
      tokens[sub] = await issuer.mint({ claims: { sub, orders }, expiresInSec: 3600 })
    dir = tempDir('pc-attacks-')
    writeFileSync(join(dir, 'audit-keys.json'), JSON.stringify({ active: 'k1', keys: { k1: KEY } }), {
      mode: 0o600,
    })
    gw = await spawnGateway(stringify(gatewayConfig(app.url, issuer)), dir)
    admin = new Admin(gw.adminUrl as string, ADMIN_TOKEN)
  })

  after(async () => {
    closeAgents()
    await gw?.stop()
    await issuer?.down()
    app?.close()
  })

  test('normal traffic, with a user reading her own 30 orders and 30 documents in id order: no alert, no ban (item 5)', async () => {
    // Five users: one mistyped password each, then the right one, then a little browsing.
    const users = ['alice', 'bob', 'carol', 'dave', 'u7']
    await Promise.all(
      users.map(async (name, i) => {
        const from = `127.0.1.${10 + i}`
        assert.equal((await login(from, name, 'oops-typo')).status, 401)
        const pw = USERS[name]?.password ?? 'user-shared-pass'
        assert.equal((await login(from, ` ${name.toUpperCase()}`, pw)).status, 200, name)
        for (let p = 1; p <= 3; p++)
          assert.equal((await get(from, `/api/items?page=${p}`, 'alice')).status, 200)
        for (let k = 0; k < 20; k++) assert.equal((await get(from, '/')).status, 200)
      }),
    )
    // Alice reads her orders 101..130 in id order (the gateway checks they are hers), twice …
    for (let round = 0; round < 2; round++)
      for (let id = 101; id <= 130; id++)
        assert.equal((await get('127.0.1.10', `/api/orders/${id}`, 'alice')).status, 200)
    // … and her documents 101..130 in order, on a route without ownership checks.
    for (let id = 101; id <= 130; id++)
      assert.equal((await get('127.0.1.10', `/api/docs/${id}`, 'alice')).status, 200)
    // Bob reads his five orders, and once tries an order id that is not his (a typo).
    for (let id = 201; id <= 205; id++)
      assert.equal((await get('127.0.1.11', `/api/orders/${id}`, 'bob')).status, 200)
    assert.equal((await get('127.0.1.11', '/api/orders/250', 'bob')).status, 404)
    // The log phase runs after the answers: give it a moment, then nothing may be there.
    await new Promise((r) => setTimeout(r, 500))
    assert.deepEqual(await admin.alerts(), [])
    assert.deepEqual(await admin.bans(), [])
  })

  test('1. brute force through the lockout: the locked-out attempts still count; alert and ban', async () => {
    const from = '127.0.2.1'
    const statuses: number[] = []
    for (let i = 0; i < 30; i++) statuses.push((await login(from, 'carol', `guess-${i}`)).status)
    assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401), statuses.join(','))
    assert.ok(
      statuses.slice(10).every((s) => s === 429 || s === 403),
      statuses.join(','),
    )
    const alert = await admin.waitForAlert('brute-force', `ip:${from}`)
    assert.ok(alert, 'a brute-force alert for the attacking IP')
    assert.equal(alert.action, 'ban')
    assert.ok((await admin.bans()).some((b) => b.id === `ip:${from}` && b.by === 'detector:brute-force'))
    assert.ok(await admin.waitForAlert('brute-force', acct('carol')), 'and for the account')
    const after = await login(from, 'carol', 'guess-31')
    assert.equal(after.status, 403, 'banned')
  })

  test('2. the lockout does not lock the real user out: from another address, with her second factor, she logs in', async () => {
    const from = '127.0.2.2'
    const stepUps = app.stepUps
    const noOtp = await login(from, 'carol', USERS.carol?.password as string)
    assert.equal(noOtp.status, 401, 'the application asks for the second factor')
    assert.match(noOtp.body, /second factor required/)
    assert.ok(app.stepUps > stepUps, 'the gateway told the application')
    const ok = await send(gw.url, {
      from,
      path: '/login',
      json: { username: 'carol', password: USERS.carol?.password, otp: USERS.carol?.otp },
    })
    assert.equal(ok.status, 200)
    // A client cannot ask for (or clear) the step-up itself: the header is the gateway's.
    const forged = await send(gw.url, {
      from: '127.0.2.3',
      path: '/login',
      json: { username: 'bob', password: USERS.bob?.password },
      headers: { 'x-portcullis-step-up': 'required' },
    })
    assert.equal(forged.status, 200)
  })

  test('3. user-name variants from 30 addresses are one account: locked (step-up) and alerted', async () => {
    const variants = ['dave ', '\tdave', 'DAVE', ' Dave\n', '\uff44\uff41\uff56\uff45', 'dAvE\u3000']
    for (let i = 0; i < 30; i++) {
      const r = await login(`127.0.3.${i + 1}`, variants[i % variants.length] as string, `try-${i}`)
      assert.equal(r.status, 401)
    }
    assert.ok(await admin.waitForAlert('brute-force', acct('dave')), 'brute force on the one account')
    // Past 10 failures the account needs the second factor, from any address.
    const stepUps = app.stepUps
    assert.equal((await login('127.0.3.200', 'dave', USERS.dave?.password as string)).status, 401)
    assert.equal(app.stepUps, stepUps + 1)
  })

  test('4. a shuffled walk over 200 other users’ orders, padded with the caller’s own: enumeration, and a ban', async () => {
    const from = '127.0.4.1'
    const ids = Array.from({ length: 200 }, (_, i) => 300 + i * 3)
    for (let i = ids.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1))
      ;[ids[i], ids[j]] = [ids[j] as number, ids[i] as number]
    }
    const statuses = new Map<number, number>()
    for (const id of ids) {
      for (const path of [`/api/orders/${id}`, '/api/orders/901', '/api/orders/902']) {
        const r = await get(from, path, 'mallory')
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
      }
    }
    assert.ok((statuses.get(404) ?? 0) >= 25, JSON.stringify([...statuses]))
    const alert = await admin.waitForAlert('enumeration', 'principal:mallory')
    assert.ok(alert)
    assert.equal(alert.action, 'ban')
    assert.ok((statuses.get(403) ?? 0) > 0, 'refused once banned')
  })

  test('7. credential stuffing raises its own alert beside brute force; alone when below the brute-force threshold', async () => {
    // 12 user names, two passwords each, from one client: the IP is locked after 10 failures, the
    // locked-out attempts still name their accounts.
    const a = '127.0.7.1'
    for (let i = 0; i < 12; i++)
      for (const pw of ['Summer2024!', 'Winter2024!']) await login(a, `u${100 + i}`, pw)
    assert.ok(await admin.waitForAlert('credential-stuffing', `ip:${a}`))
    assert.ok(await admin.waitForAlert('brute-force', `ip:${a}`))
    // 15 user names once each: stuffing alone (15 failures are below the brute-force 20).
    const b = '127.0.7.2'
    for (let i = 0; i < 15; i++) await login(b, `u${150 + i}`, 'Spring2024!')
    assert.ok(await admin.waitForAlert('credential-stuffing', `ip:${b}`))
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(
      (await admin.alerts()).filter((x) => x.subject === `ip:${b}` && x.detector === 'brute-force').length,
      0,
    )
  })

  test('older attacks: a walk over refused ids, a flood, scraping, an anonymous walk', async () => {
    for (let id = 1; id <= 30; id++) await get('127.0.8.1', `/api/orders/${id}`, 'walker')
    assert.ok(await admin.waitForAlert('enumeration', 'principal:walker'))
    for (let p = 1; p <= 110; p++) await get('127.0.8.2', `/api/items?page=${p}`, 'scraper')
    assert.ok(await admin.waitForAlert('scraping', 'principal:scraper'))
    for (let i = 0; i < 1100; i += 50)
      await Promise.all(Array.from({ length: 50 }, () => get('127.0.8.3', '/')))
    assert.ok(await admin.waitForAlert('flood', 'ip:127.0.8.3'))
    for (let id = 1001; id <= 1030; id++) await get('127.0.8.4', `/items/x/${id}`)
    // Anonymous, answered 200 by the application (owner unknown): an alert only past 100 in a row.
    assert.equal((await admin.alerts()).filter((x) => x.subject === 'ip:127.0.8.4').length, 0)
  })

  test('no normal user was alerted or banned; every failed login has its audit record, without the password; the chain verifies against its anchor', async () => {
    // Gateway-made authentication failures too: bad tokens.
    for (let i = 0; i < 3; i++) {
      const r = await send(gw.url, {
        from: '127.0.9.1',
        path: '/api/docs/1',
        headers: { authorization: `Bearer x.${i}.y` },
      })
      assert.equal(r.status, 401)
      failedLogins.push(String(r.headers['x-request-id']))
    }
    const normal = [
      'principal:alice',
      'principal:bob',
      'ip:127.0.1.10',
      'ip:127.0.1.11',
      acct('alice'),
      acct('bob'),
    ]
    const alerts = await admin.alerts()
    for (const s of normal) assert.equal(alerts.filter((a) => a.subject === s).length, 0, s)
    assert.equal((await admin.bans()).filter((b) => normal.includes(b.id)).length, 0)
    assert.equal(await gw.stop(), 0)
    const auditDir = join(dir, 'audit')
    const text = readdirSync(auditDir)
      .filter((f) => f.endsWith('.jsonl'))
      .map((f) => readFileSync(join(auditDir, f), 'utf8'))
      .join('')
    const records = text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map(
        (l) =>
          JSON.parse(l) as {
            type: string
            requestId?: string
            path?: string
            data?: { source?: string; account?: string }
          },
      )
    const byRequest = new Map<string, string[]>()
    for (const r of records)
      if (r.requestId) byRequest.set(r.requestId, [...(byRequest.get(r.requestId) ?? []), r.type])
    const missing = failedLogins.filter((id) => !byRequest.has(id))
    assert.deepEqual(
      missing,
      [],
      `${missing.length} of ${failedLogins.length} failed logins without a record`,
    )
    // Upstream-answered failures are auth.failure records from the upstream, with the account hash.
    const upstream = records.filter(
      (r) => r.type === 'auth.failure' && r.data?.source === 'upstream' && r.path === '/login',
    )
    assert.equal(upstream.length, app.logins.get(401), 'one per 401 the application answered')
    assert.ok(upstream.every((r) => typeof r.data?.account === 'string'))
    for (const pw of passwordsSent)
      assert.equal(text.includes(pw), false, `a password in the audit log: ${pw}`)
    for (const pw of passwordsSent)
      assert.equal(gw.stderr().includes(pw), false, `a password in the gateway log: ${pw}`)
    const v = spawnSync(
      process.execPath,
      [join(ROOT, 'bin/portcullis.js'), 'audit', 'verify', '--config', join(dir, 'portcullis.yaml')],
      { encoding: 'utf8', timeout: 60_000 },
    )
    assert.equal(v.status, 0, v.stdout + v.stderr)
    assert.match(v.stdout, /anchor: seq \d+ \(witness .*\): the chain reaches it/)
  })
})

describe('window edges (issue 25, item 6)', () => {
  test('36 failed logins within ~2 s across the end of the first failure’s window: brute-force alert', async () => {
    const app = await startAttackApp()
    const cfg = {
      listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
      admin: { enabled: true, host: '127.0.0.1', port: 0, token: ADMIN_TOKEN },
      upstreams: { app: { targets: [{ url: app.url }] } },
      accessLog: { enabled: false },
      routes: [{ name: 'all', match: { pathPrefix: '/' }, upstream: 'app' }],
      detect: { bruteForce: { failures: 20, window: '4s' }, credentialStuffing: { enabled: false } },
    }
    const gw = await spawnGateway(stringify(cfg))
    try {
      const admin = new Admin(gw.adminUrl as string, ADMIN_TOKEN)
      const from = '127.0.6.1'
      const fail = () => send(gw.url, { from, path: '/login', json: { username: 'erin', password: 'nope' } })
      // One failure opens the window; 18 just before its end, 18 just after.
      const t0 = Date.now()
      assert.equal((await fail()).status, 401)
      await new Promise((r) => setTimeout(r, 3300 - (Date.now() - t0)))
      const first = await Promise.all(Array.from({ length: 18 }, fail))
      const firstDone = Date.now() - t0
      await new Promise((r) => setTimeout(r, Math.max(0, 4100 - (Date.now() - t0))))
      const second = await Promise.all(Array.from({ length: 18 }, fail))
      const span = Date.now() - t0 - 3300
      assert.ok([...first, ...second].every((r) => r.status === 401))
      console.log(`window edge: first half done at ${firstDone} ms, 36 failures within ${span} ms`)
      const alert = await admin.waitForAlert('brute-force', `ip:${from}`)
      assert.ok(alert, `no alert for 36 failures within ${span} ms`)
    } finally {
      closeAgents()
      await gw.stop()
      app.close()
    }
  })
})
