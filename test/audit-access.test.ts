/**
 * The audit log's operator side against the real `portcullis serve`: an encrypted chain, a key
 * rotation with `keys rotate-audit` while the gateway runs, the admin API's audit status and
 * effective config (no secret in either), `audit verify`, `audit report` (by principal and by
 * object) and `audit decrypt` on what the gateway wrote, and tampered ciphertext named by verify
 * and report. No secret the test used appears in any file or log.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { generateKey } from '../src/keys/format.js'
import { spawnGateway, tempDir } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const ROOT = new URL('../../', import.meta.url).pathname

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const t0 = Date.now()
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/portcullis.js'), ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  })
  if (process.env.TIMING) console.log(`${args.slice(0, 2).join(' ')}: ${Date.now() - t0} ms`)
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

function allFiles(dir: string): string {
  let text = ''
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    if (f.isDirectory()) text += allFiles(join(dir, f.name))
    else text += readFileSync(join(dir, f.name), 'utf8')
  }
  return text
}

const ADMIN_TOKEN = `adm-${'9f3c'.repeat(10)}`
const REDIS_PASSWORD = 'redis-pw-0b7e41d2'
const WEBHOOK_SECRET = 'whsec-5d0c9e7a1b2f4e6d'

let up: TestUpstream
before(async () => {
  up = await startUpstream('audited')
})
after(async () => {
  await up?.close()
})

async function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { headers })
  return { status: r.status, body: await r.text() }
}

test('encrypted audit, key rotation while running, admin status and config, verify, report, decrypt, tamper', async () => {
  const dir = tempDir('pc-audit-access-')
  const secrets: string[] = [ADMIN_TOKEN, REDIS_PASSWORD, WEBHOOK_SECRET]
  writeFileSync(join(dir, 'admin-token.txt'), `${ADMIN_TOKEN}\n`, { mode: 0o600 })
  writeFileSync(join(dir, 'redis-url.txt'), `redis://app:${REDIS_PASSWORD}@127.0.0.1:6390/0\n`, {
    mode: 0o600,
  })
  const kg = cli(['audit', 'keygen', '--keyring', join(dir, 'audit-keys.json')])
  assert.equal(kg.code, 0, kg.stderr)
  const keys: Record<string, string> = {}
  for (const owner of ['svc-alice', 'svc-bob']) {
    const kc = cli(['keys', 'create', '--store', join(dir, 'keys.json'), '--owner', owner])
    assert.equal(kc.code, 0, kc.stderr)
    keys[owner] = kc.stdout.trim()
    secrets.push(keys[owner] as string, (keys[owner] as string).slice(12))
  }
  const badKey = generateKey().key
  secrets.push(badKey)
  const yaml = `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0, token: "\${file:admin-token.txt}" }
stores: { backend: memory, redis: { url: "\${file:redis-url.txt}" } }
upstreams: { main: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: main
    policies:
      api-key-auth: { store: keys.json }
detect:
  enabled: true
  alerts: { webhook: { url: "http://127.0.0.1:9/hook", secret: "${WEBHOOK_SECRET}" } }
accessLog: { destination: access.log }
reload: { watch: false }
audit:
  enabled: true
  keyring: { file: audit-keys.json }
  encryption: { keyring: { file: audit-enc-keys.json } }
  events: { authSuccess: true }
`
  writeFileSync(join(dir, 'portcullis.yaml'), yaml)
  // keys rotate-audit creates the encryption keyring (0600) when it is missing.
  const r1 = cli(['keys', 'rotate-audit', '--config', join(dir, 'portcullis.yaml')])
  assert.equal(r1.code, 0, r1.stderr)
  assert.equal(r1.stdout.trim(), 'e1')
  assert.equal(statSync(join(dir, 'audit-enc-keys.json')).mode & 0o777, 0o600)

  const gw = await spawnGateway(yaml, dir)
  const call = (path: string, key?: string) =>
    get(`${gw.url}${path}`, key ? { 'x-api-key': key } : {}).then((r) => r.status)
  try {
    assert.equal(await call('/api/orders/42', keys['svc-alice']), 200)
    assert.equal(await call('/api/orders/43', keys['svc-alice']), 200)
    assert.equal(await call('/api/orders/42', keys['svc-bob']), 200)
    assert.equal(await call('/api/orders/42', badKey), 401)

    // A new encryption key while the gateway runs: it starts a new file with it within a second.
    const r2 = cli(['keys', 'rotate-audit', '--config', join(dir, 'portcullis.yaml')])
    assert.equal(r2.code, 0, r2.stderr)
    assert.equal(r2.stdout.trim(), 'e2')
    const auditDir = join(dir, 'audit')
    const deadline = Date.now() + 10_000
    while (readdirSync(auditDir).filter((f) => f.endsWith('.jsonl.enc')).length < 2) {
      assert.ok(Date.now() < deadline, 'no new file after the key rotation within 10 s')
      await new Promise((r) => setTimeout(r, 50))
    }
    assert.equal(await call('/api/users/7/orders/42', keys['svc-bob']), 200)
    assert.equal(await call('/api/orders/44', keys['svc-alice']), 200)

    // Admin: the audit status, with the current file checked.
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
    assert.equal((await get(`${gw.adminUrl}/v1/audit/status`)).status, 401)
    const st = await get(`${gw.adminUrl}/v1/audit/status?verify=1`, auth)
    assert.equal(st.status, 200, st.body)
    const status = JSON.parse(st.body) as {
      enabled: boolean
      sink: string
      currentFile: string
      encryption: { kid: string }
      lastSeq: number
      queueDepth: number
      lastError: unknown
      verify: { status: string; records: number; file: string }
    }
    assert.equal(status.enabled, true)
    assert.equal(status.sink, 'file')
    assert.match(status.currentFile, /-000002\.jsonl\.enc$/)
    assert.deepEqual(status.encryption, { kid: 'e2' })
    assert.ok(status.lastSeq >= 8, String(status.lastSeq))
    assert.equal(status.lastError, null)
    assert.equal(status.verify.status, 'ok', st.body)
    assert.ok(status.verify.records >= 2, st.body)
    assert.equal((await get(`${gw.adminUrl}/v1/audit/status?verify=yes`, auth)).status, 400)

    // Admin: the effective config, every secret redacted.
    const cf = await get(`${gw.adminUrl}/v1/config`, auth)
    assert.equal(cf.status, 200)
    for (const s of secrets) assert.ok(!cf.body.includes(s), 'a secret in GET /v1/config')
    const eff = JSON.parse(cf.body) as {
      config: {
        admin: { token: string }
        stores: { redis: { url: string } }
        detect: { alerts: { webhook: { secret: string; url: string } } }
        audit: { keyring: { file: string } }
        routes: { name: string }[]
      }
      redacted: string[]
    }
    assert.equal(eff.config.admin.token, '[redacted]')
    assert.equal(eff.config.stores.redis.url, '[redacted]')
    assert.equal(eff.config.detect.alerts.webhook.secret, '[redacted]')
    assert.equal(eff.config.detect.alerts.webhook.url, 'http://127.0.0.1:9/hook')
    assert.equal(eff.config.audit.keyring.file, 'audit-keys.json')
    assert.equal(eff.config.routes[0]?.name, 'api')
    assert.ok(eff.redacted.includes('admin.token'))
    secrets.push(...(cf.body.match(/"[A-Za-z0-9+/]{43}="/g) ?? []))
  } finally {
    assert.equal(await gw.stop(), 0)
  }
  for (const ring of ['audit-keys.json', 'audit-enc-keys.json']) {
    secrets.push(
      ...Object.values((JSON.parse(readFileSync(join(dir, ring), 'utf8')) as { keys: object }).keys),
    )
  }
  const config = join(dir, 'portcullis.yaml')
  // The same chain by flags (faster than loading the config in each command).
  const flags = [
    '--keyring',
    join(dir, 'audit-keys.json'),
    '--encryption-keyring',
    join(dir, 'audit-enc-keys.json'),
  ]

  // verify, from the config (keyrings and directory).
  const v = cli(['audit', 'verify', '--config', config])
  assert.equal(v.code, 0, v.stdout + v.stderr)
  assert.match(v.stdout, /^OK: \d+ records .* in 2 files/)

  // report: by principal, by object (path ids), json.
  const byAlice = cli(['audit', 'report', '--config', config, '--principal', 'svc-alice', '--format', 'json'])
  assert.equal(byAlice.code, 0, byAlice.stderr)
  const ra = JSON.parse(byAlice.stdout) as {
    entries: { principal: string; path: string; decision: string; status: number; method: string }[]
    count: number
    chain: { ok: boolean }
  }
  assert.equal(ra.chain.ok, true)
  assert.deepEqual(
    ra.entries.map((e) => e.path),
    ['/api/orders/42', '/api/orders/43', '/api/orders/44'],
  )
  assert.ok(
    ra.entries.every((e) => e.principal === 'svc-alice' && e.decision === 'allow' && e.status === 200),
  )
  const byOrder = cli(['audit', 'report', ...flags, '--dir', join(dir, 'audit'), '--object', 'order:42'])
  assert.equal(byOrder.code, 0, byOrder.stderr)
  const lines = byOrder.stdout.split('\n').filter((l) => l.includes('/orders/42'))
  // alice, bob, the unknown key (its auth.failure and its deny 401), bob's nested path
  assert.equal(lines.length, 5, byOrder.stdout)
  assert.ok(lines.some((l) => l.includes('svc-alice')) && lines.some((l) => l.includes('svc-bob')))
  assert.ok(
    lines.some((l) => / deny 401 /.test(l)),
    byOrder.stdout,
  )
  assert.match(byOrder.stdout, /chain verified/)
  const future = cli([
    'audit',
    'report',
    ...flags,
    '--dir',
    join(dir, 'audit'),
    '--principal',
    'svc-alice',
    '--since',
    '2999-01-01',
  ])
  assert.match(future.stdout, /^0 entries$/m)

  // decrypt: plain copies of both files.
  const out = join(dir, 'plain')
  const d = cli(['audit', 'decrypt', '--config', config, '--out', out, join(dir, 'audit')])
  assert.equal(d.code, 0, d.stderr)
  const plain = readdirSync(out)
  assert.equal(plain.length, 2)
  assert.ok(plain.every((f) => f.endsWith('.jsonl')))
  assert.match(readFileSync(join(out, plain[0] as string), 'utf8'), /"principal":"svc-alice"/)

  // No secret in any file the gateway or the commands wrote, nor in the gateway's log.
  // (The secret files themselves, and the config, are the test's input.)
  const written =
    allFiles(join(dir, 'audit')) + allFiles(out) + readFileSync(join(dir, 'access.log'), 'utf8') + gw.stderr()
  for (const s of secrets)
    assert.ok(!written.includes(s), `a secret in a written file or log (${s.length} chars)`)
  assert.ok(written.includes('svc-alice'), 'the grep ran over the decrypted records')

  // Tamper with one frame's ciphertext: verify names it and exits 1; report says the chain is broken.
  const encFile = join(
    dir,
    'audit',
    readdirSync(join(dir, 'audit'))
      .filter((f) => f.endsWith('.enc'))
      .sort()[0] as string,
  )
  const fl = readFileSync(encFile, 'utf8').split('\n')
  fl[3] = `${(fl[3] as string).slice(0, 30)}${(fl[3] as string)[30] === 'x' ? 'y' : 'x'}${(fl[3] as string).slice(31)}`
  writeFileSync(encFile, fl.join('\n'))
  const bad = cli(['audit', 'verify', ...flags, join(dir, 'audit')])
  assert.equal(bad.code, 1, bad.stdout)
  assert.match(bad.stdout, /FAILED: altered: .*-000001\.jsonl\.enc line 4: frame 3 does not decrypt/)
  const rb = cli(['audit', 'report', ...flags, '--dir', join(dir, 'audit'), '--principal', 'svc-alice'])
  assert.equal(rb.code, 1)
  assert.match(rb.stdout, /CHAIN BROKEN: altered/)
  const db = cli(['audit', 'decrypt', '--encryption-keyring', join(dir, 'audit-enc-keys.json'), encFile])
  assert.equal(db.code, 1)
  assert.match(db.stderr, /line 4: frame 3 does not decrypt/)
})

test('SIGKILL under load with encryption and fsync: always, restart: the chain verifies and every answered request has its record', async () => {
  const dir = tempDir('pc-audit-enc-crash-')
  assert.equal(cli(['audit', 'keygen', '--keyring', join(dir, 'audit-keys.json')]).code, 0)
  const kc = cli(['keys', 'create', '--store', join(dir, 'keys.json'), '--owner', 'svc-crash'])
  assert.equal(kc.code, 0, kc.stderr)
  const apiKey = kc.stdout.trim()
  const b64 = () => randomBytes(32).toString('base64')
  writeFileSync(join(dir, 'enc.json'), JSON.stringify({ active: 'e1', keys: { e1: b64() } }), { mode: 0o600 })
  const yaml = `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { main: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: main
    policies:
      api-key-auth: { store: keys.json }
accessLog: { enabled: false }
reload: { watch: false }
audit:
  enabled: true
  keyring: { file: audit-keys.json }
  encryption: { keyring: { file: enc.json } }
  file: { fsync: always, maxBytes: 32768 }
  events: { authSuccess: true }
`
  const answered: { id: string; status: number }[] = []
  // Runs for at least `ms` and until `minAnswered` requests of the phase were answered (a loaded
  // machine answers slowly), at most 30 s; then stops (and kills, for the crash phase).
  const run = async (url: string, phase: string, ms: number, kill?: () => void, minAnswered = 0) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 6 })
    let stop = false
    let cut = 0
    const started = Date.now()
    const timer = setInterval(() => {
      const elapsed = Date.now() - started
      const done = answered.filter((a) => a.id.startsWith(`${phase}-`)).length
      if ((elapsed >= ms && done >= minAnswered) || elapsed >= 30_000) {
        clearInterval(timer)
        stop = true
        kill?.()
      }
    }, 25)
    await Promise.all(
      Array.from({ length: 6 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const id = `${phase}-w${w}-${i}`
          const status = await new Promise<number>((resolve) => {
            const req = http.get(
              `${url}/api/items/${i}`,
              { agent, headers: { 'x-request-id': id, ...(i % 3 === 0 ? {} : { 'x-api-key': apiKey }) } },
              (res) => {
                res.resume()
                res.on('end', () => resolve(res.statusCode ?? 0))
                res.on('error', () => resolve(0))
              },
            )
            req.on('error', () => resolve(0))
          })
          if (status === 0) {
            cut++
            if (kill) return
          } else answered.push({ id, status })
        }
      }),
    )
    clearInterval(timer)
    agent.destroy()
    return cut
  }
  const gw1 = await spawnGateway(yaml, dir)
  const cut = await run(gw1.url, 'one', 1500, () => gw1.child.kill('SIGKILL'), 60)
  await gw1.stop()
  const gw2 = await spawnGateway(yaml, dir)
  await run(gw2.url, 'two', 500)
  assert.equal(await gw2.stop(), 0)
  console.log(`encrypted crash test: ${answered.length} answered, ${cut} cut by the kill`)
  assert.ok(answered.length >= 50, `only ${answered.length} answered`)

  const flags = ['--keyring', join(dir, 'audit-keys.json'), '--encryption-keyring', join(dir, 'enc.json')]
  const v = cli(['audit', 'verify', ...flags, join(dir, 'audit')])
  assert.equal(v.code, 0, v.stdout + v.stderr)
  assert.match(v.stdout, /restart after the chain was left open/)
  const out = join(dir, 'plain')
  const d = cli([
    'audit',
    'decrypt',
    '--encryption-keyring',
    join(dir, 'enc.json'),
    '--out',
    out,
    join(dir, 'audit'),
  ])
  assert.equal(d.code, 0, d.stderr)
  const ids = new Set<string>()
  for (const f of readdirSync(out)) {
    for (const l of readFileSync(join(out, f), 'utf8').split('\n')) {
      const m = /"requestId":"([^"]+)"/.exec(l)
      if (m && !l.includes('"type":"auth.failure"')) ids.add(m[1] as string)
    }
  }
  const missing = answered.filter((a) => !ids.has(a.id))
  assert.deepEqual(missing, [], `${missing.length} answered requests without a record`)
  const raw = allFiles(join(dir, 'audit'))
  assert.ok(!raw.includes(apiKey) && !raw.includes('svc-crash'), 'encrypted files hold no plaintext')
})
