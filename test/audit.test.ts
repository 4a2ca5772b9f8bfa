/**
 * The audit log in the real `portcullis serve` process: a crash (SIGKILL under load) and restart
 * with `fsync: always`, after which the chain verifies and every request answered before the kill
 * has its record; the security events of authentication, lockout and reload; and no credential in
 * any audit file or log.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateKey } from '../src/keys/format.js'
import { spawnGateway, tempDir } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const ROOT = new URL('../../', import.meta.url).pathname

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/portcullis.js'), ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

interface Rec {
  type: string
  seq: number
  requestId?: string
  status?: number
  code?: string
  principal?: string
  reason?: string
  decision?: string
  data?: Record<string, unknown>
}

function auditRecords(dir: string): Rec[] {
  const d = join(dir, 'audit')
  return readdirSync(d)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .flatMap((f) =>
      readFileSync(join(d, f), 'utf8')
        .split('\n')
        .filter((l) => l.endsWith('}'))
        .map((l) => JSON.parse(l) as Rec),
    )
}

/** Every file in `dir` (recursively one level: the audit directory) as one string. */
function allFiles(dir: string): string {
  let text = ''
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    if (f.isDirectory()) text += allFiles(join(dir, f.name))
    else text += readFileSync(join(dir, f.name), 'utf8')
  }
  return text
}

/** Secrets the tests use: none may appear in an audit file, the access log or the gateway log. */
const secrets: string[] = []

function setup(): { dir: string; apiKey: string } {
  const dir = tempDir('pc-audit-it-')
  const kg = cli(['audit', 'keygen', '--keyring', join(dir, 'audit-keys.json')])
  assert.equal(kg.code, 0, kg.stderr)
  const ring = JSON.parse(readFileSync(join(dir, 'audit-keys.json'), 'utf8')) as {
    keys: Record<string, string>
  }
  secrets.push(...Object.values(ring.keys))
  const kc = cli(['keys', 'create', '--store', join(dir, 'keys.json'), '--owner', 'svc-crash'])
  assert.equal(kc.code, 0, kc.stderr)
  const apiKey = kc.stdout.trim()
  secrets.push(apiKey, apiKey.slice(12)) // the key, and its secret part alone
  return { dir, apiKey }
}

const gatewayConfig = (upUrl: string, fsync: string, extra = '') => `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { main: { targets: [ { url: "${upUrl}" } ] } }
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: main
    policies:
      api-key-auth: { store: keys.json }
${extra}
accessLog: { destination: access.log }
reload: { watch: false }
audit:
  enabled: true
  keyring: { file: audit-keys.json }
  file: { fsync: ${fsync}, maxBytes: 65536 }
  events: { authSuccess: true }
`

interface Answered {
  id: string
  status: number
}

/**
 * Bounded load: `workers` keep-alive connections, each sending requests of four kinds in turn (a
 * valid key, a wrong key, no key, no route) until `stop()` or an error (the gateway died).
 */
function load(url: string, phase: string, apiKey: string, badKey: string, workers = 8) {
  const answered: Answered[] = []
  let errors = 0
  let stopped = false
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers })
  const u = new URL(url)
  const one = (id: string, kind: number) =>
    new Promise<void>((resolve, reject) => {
      const headers: Record<string, string> = { 'x-request-id': id }
      if (kind === 0) headers['x-api-key'] = apiKey
      if (kind === 1) headers['x-api-key'] = badKey
      const req = http.request(
        { host: u.hostname, port: u.port, path: kind === 3 ? '/nope' : `/api/items/${id}`, headers, agent },
        (res) => {
          res.resume()
          res.on('end', () => {
            answered.push({ id, status: res.statusCode ?? 0 })
            resolve()
          })
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end()
    })
  const done = Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; !stopped; i++) {
        try {
          await one(`${phase}-w${w}-${String(i).padStart(6, '0')}`, (i + w) % 4)
        } catch {
          errors++
          return
        }
      }
    }),
  )
  return {
    answered,
    errors: () => errors,
    async stop() {
      stopped = true
      await done
      agent.destroy()
    },
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('audit log in the gateway', () => {
  let up: TestUpstream
  const stderrs: string[] = []
  const dirs: string[] = []
  before(async () => {
    up = await startUpstream('audited')
  })
  after(async () => {
    await up?.close()
  })

  test('SIGKILL under load with fsync: always, restart, more load: the chain verifies and every answered request has its record', async () => {
    const { dir, apiKey } = setup()
    dirs.push(dir)
    const badKey = generateKey().key // well-formed, unknown
    secrets.push(badKey)
    const yaml = gatewayConfig(up.url, 'always')
    const gw1 = await spawnGateway(yaml, dir)
    const l1 = load(gw1.url, 'run1', apiKey, badKey)
    // At least 1.5 s and 100 answered requests (a loaded machine answers slowly), at most 30 s.
    const started = Date.now()
    await sleep(1500)
    while (l1.answered.length < 100 && Date.now() - started < 30_000) await sleep(25)
    // Killed while the load is running: requests are in flight.
    await gw1.stop('SIGKILL')
    await l1.stop()
    stderrs.push(gw1.stderr())
    const gw2 = await spawnGateway(yaml, dir)
    const l2 = load(gw2.url, 'run2', apiKey, badKey)
    await sleep(800)
    await l2.stop()
    assert.equal(await gw2.stop(), 0)
    stderrs.push(gw2.stderr())

    const before = l1.answered
    console.log(
      `crash test: ${before.length} answered before SIGKILL (${l1.errors()} cut), ${l2.answered.length} after the restart`,
    )
    assert.ok(before.length >= 100, `only ${before.length} requests answered before the kill`)
    assert.ok(l1.errors() > 0, 'the kill landed while requests were in flight')
    const statuses = new Set(before.map((a) => a.status))
    assert.deepEqual([...statuses].sort(), [200, 401, 404])

    const v = cli(['audit', 'verify', '--keyring', join(dir, 'audit-keys.json'), join(dir, 'audit')])
    console.log(v.stdout.trim())
    assert.equal(v.code, 0, v.stdout + v.stderr)
    assert.match(v.stdout, /^OK: .* in \d+ files/) // rotated at 64 KiB: several
    assert.match(v.stdout, /restart after the chain was left open/)

    const recs = auditRecords(dir)
    const byId = new Map<string, Rec>()
    for (const r of recs) if (r.requestId !== undefined && r.type !== 'auth.failure') byId.set(r.requestId, r)
    const missing = [...before, ...l2.answered].filter((a) => !byId.has(a.id))
    assert.deepEqual(missing, [], `${missing.length} answered requests without a record`)
    for (const a of [...before, ...l2.answered]) {
      const r = byId.get(a.id) as Rec
      assert.equal(r.status, a.status, a.id)
      if (a.status === 200) {
        assert.equal(r.type, 'auth.success')
        assert.equal(r.principal, 'svc-crash')
      } else {
        assert.equal(r.type, 'deny')
        assert.equal(r.code, a.status === 404 ? 'GW_ERR_ROUTE_NOT_FOUND' : r.code)
      }
    }
    // The wrong key's refusals carry the reason and the key's public id, never the key.
    const failures = recs.filter((r) => r.type === 'auth.failure')
    assert.ok(failures.length > 0)
    assert.ok(failures.every((r) => r.reason === 'unknown' && r.data?.keyId === badKey.slice(4, 12)))
  })

  test('authentication failures, lockouts and config reloads are audit events; success is off by default', async () => {
    const { dir, apiKey } = setup()
    dirs.push(dir)
    const garbage = 'pcl_thisIsNotAValidKeyButLooksLikeOne012' // well-formed but a bad checksum
    secrets.push(garbage)
    const lockout = 'policies:\n  brute-force-lockout: { maxFailures: 3, window: 1m, lockout: 30s, by: [ip] }'
    const yaml = gatewayConfig(up.url, 'interval', lockout).replace('events: { authSuccess: true }', '')
    const gw = await spawnGateway(yaml, dir)
    try {
      const get = (key: string | undefined, from: string) =>
        new Promise<number>((resolve, reject) => {
          const u = new URL(gw.url)
          http
            .get(
              {
                host: u.hostname,
                port: u.port,
                path: '/api/x',
                localAddress: from,
                agent: false,
                headers: key ? { 'x-api-key': key } : {},
              },
              (res) => {
                res.resume()
                res.on('end', () => resolve(res.statusCode ?? 0))
              },
            )
            .on('error', reject)
        })
      assert.equal(await get(apiKey, '127.0.0.1'), 200)
      assert.equal(await get(garbage, '127.0.0.2'), 401)
      assert.equal(await get(garbage, '127.0.0.2'), 401)
      assert.equal(await get(garbage, '127.0.0.2'), 401)
      // The third failure locks the IP out (in the log phase, through the store).
      let status = 0
      for (const deadline = Date.now() + 3000; Date.now() < deadline; await sleep(20)) {
        status = await get(apiKey, '127.0.0.2')
        if (status === 429) break
      }
      assert.equal(status, 429)
      gw.child.kill('SIGHUP')
      for (
        const deadline = Date.now() + 3000;
        Date.now() < deadline && !/config reloaded/.test(gw.stderr());
      ) {
        await sleep(20)
      }
      assert.match(gw.stderr(), /config reloaded/)
    } finally {
      assert.equal(await gw.stop(), 0)
      stderrs.push(gw.stderr())
    }
    const recs = auditRecords(dir)
    const types = recs.map((r) => r.type)
    assert.equal(types.includes('auth.success'), false, 'auth.success is off by default')
    const failures = recs.filter((r) => r.type === 'auth.failure')
    assert.equal(failures.length, 3)
    assert.ok(failures.every((r) => r.reason === 'checksum' && r.data?.method === 'api-key'))
    const lock = recs.find((r) => r.type === 'lockout')
    assert.deepEqual(
      lock?.data && { subject: lock.data.subject, level: lock.data.level, seconds: lock.data.seconds },
      {
        subject: 'ip:127.0.0.2',
        level: 1,
        seconds: 30,
      },
    )
    assert.ok(recs.some((r) => r.type === 'deny' && r.code === 'GW_ERR_LOCKED_OUT' && r.status === 429))
    const reload = recs.find((r) => r.type === 'config.reload')
    assert.equal(reload?.data?.outcome, 'applied')
    assert.equal(reload?.data?.trigger, 'signal')
    assert.match(String(reload?.data?.configSha256), /^[0-9a-f]{64}$/)
    assert.deepEqual(types.slice(0, 2), ['audit.start', 'gateway.start'])
    assert.deepEqual(types.slice(-2), ['gateway.stop', 'audit.checkpoint'])
    const v = cli([
      'audit',
      'verify',
      '--keyring',
      join(dir, 'audit-keys.json'),
      '--require-closed',
      join(dir, 'audit'),
    ])
    assert.equal(v.code, 0, v.stdout + v.stderr)
  })

  test('no key, token or keyring secret in any audit file, access log or gateway log', () => {
    assert.ok(secrets.length >= 6)
    assert.equal(dirs.length, 2)
    const haystacks = [
      ...dirs.map((d) => allFiles(join(d, 'audit')) + readFileSync(join(d, 'access.log'), 'utf8')),
      ...stderrs,
    ]
    for (const s of secrets) {
      for (const h of haystacks)
        assert.equal(h.includes(s), false, `a secret (${s.slice(0, 6)}…) was written`)
    }
  })
})
