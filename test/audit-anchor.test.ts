/**
 * Anchoring the audit chain outside its files (issue 25, item 9), with the real `portcullis serve`
 * and the real CLI: one gateway anchoring to a witness directory, and two gateways anchoring to
 * the Redis they share. For each: the last file deleted, the last run's files deleted, the last
 * lines cut, and the log replaced by a genuine older copy of itself are each reported `truncated`
 * by `audit verify` (exit 1) and flagged by `audit report` (CHAIN TRUNCATED, exit 1) — where,
 * without the anchor, the shortened chain still verifies; and a gateway restarted on a cut log
 * does not continue it silently: it logs AUDIT CHAIN TRUNCATED, raises an alert, and records the
 * gap, which verify then reports.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { RedisServer } from '../src/stores/redis/redis-server.js'
import { Admin, closeAgents, send } from './helpers/detect-attacks.js'
import { spawnGateway, tempDir } from './helpers/process.js'

const ROOT = new URL('../../', import.meta.url).pathname
const ADMIN_TOKEN = 'anchor-test-admin-token-0123456789abcdef'
const KEY = randomBytes(32).toString('base64')

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function audit(args: string[]): Run {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'audit', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

function config(o: { instance: string; anchor: object; stores?: object }) {
  return stringify({
    listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
    admin: { enabled: true, host: '127.0.0.1', port: 0, token: ADMIN_TOKEN },
    upstreams: { app: { targets: [{ url: 'http://127.0.0.1:9' }] } },
    accessLog: { enabled: false },
    // Only /api has a route: /orders/N is refused by the gateway (404), a `deny` record each.
    routes: [{ name: 'api', match: { pathPrefix: '/api' }, upstream: 'app' }],
    audit: {
      enabled: true,
      instanceId: o.instance,
      keyring: { file: 'audit-keys.json' },
      file: { dir: 'audit', maxBytes: 4000 },
      anchor: { interval: '200ms', ...o.anchor },
    },
    ...(o.stores ? { stores: o.stores } : {}),
  })
}

/** A gateway directory: config and keyring (one key for every gateway of the test). */
function gatewayDir(yaml: string): string {
  const dir = tempDir('pc-anchor-gw-')
  writeFileSync(join(dir, 'audit-keys.json'), JSON.stringify({ active: 'k1', keys: { k1: KEY } }), {
    mode: 0o600,
  })
  writeFileSync(join(dir, 'portcullis.yaml'), yaml)
  return dir
}

/**
 * One run: start, `n` refused requests for /orders/<first..> from `from`, a clean stop. (Agents
 * are closed by the caller: two runs may go on at once.)
 */
async function run(
  dir: string,
  first: number,
  n: number,
  redisUp = false,
  from = '127.0.0.1',
): Promise<void> {
  const gw = await spawnGateway(readFileSync(join(dir, 'portcullis.yaml'), 'utf8'), dir)
  try {
    if (redisUp) await gw.waitForLog(/redis store connected/, 10_000)
    for (let i = first; i < first + n; i++) {
      const r = await send(gw.url, { from, path: `/orders/${i}`, headers: { connection: 'close' } })
      assert.equal(r.status, 404)
    }
  } finally {
    assert.equal(await gw.stop(), 0)
  }
}

const chainFiles = (auditDir: string) =>
  readdirSync(auditDir)
    .filter((f) => /\.jsonl$/.test(f))
    .sort()
const fileLines = (f: string) => readFileSync(f, 'utf8').split('\n').slice(0, -1)

/** The index of the first file of the last run (the file whose first record is an audit.start after seq 0). */
function lastRunStart(auditDir: string): number {
  const files = chainFiles(auditDir)
  let at = 0
  files.forEach((f, i) => {
    const first = fileLines(join(auditDir, f))[0] ?? ''
    if (first.includes('"type":"audit.start"')) at = i
  })
  return at
}

/** Removes the chain's last `n` lines (from the end of its newest files; a file left empty is deleted). */
function cutLines(auditDir: string, n: number): void {
  let left = n
  for (const name of chainFiles(auditDir).reverse()) {
    if (left === 0) break
    const f = join(auditDir, name)
    const l = fileLines(f)
    const keep = Math.max(0, l.length - left)
    left -= l.length - keep
    if (keep === 0) rmSync(f)
    else writeFileSync(f, `${l.slice(0, keep).join('\n')}\n`)
  }
}

/** The four cuts, each on a fresh copy of `auditDir`; `prefix` is a genuine copy taken after the first run. */
function cuts(auditDir: string, prefix: string): [string, string][] {
  const copy = () => {
    const d = join(tempDir('pc-anchor-cut-'), 'audit')
    cpSync(auditDir, d, { recursive: true })
    for (const f of readdirSync(d)) if (f.endsWith('.lock')) rmSync(join(d, f))
    return d
  }
  const lastFile = copy()
  rmSync(join(lastFile, chainFiles(lastFile).at(-1) as string))
  const lastRun = copy()
  for (const f of chainFiles(lastRun).slice(lastRunStart(lastRun))) rmSync(join(lastRun, f))
  const lastLines = copy()
  cutLines(lastLines, 5)
  return [
    ['the last file deleted', lastFile],
    ['the last run deleted', lastRun],
    ['the last 5 lines cut', lastLines],
    ['the log replaced by a genuine older copy', prefix],
  ]
}

function assertTruncated(what: string, verify: Run, report: Run): void {
  assert.equal(verify.code, 1, `${what}: verify ${verify.stdout}${verify.stderr}`)
  assert.match(verify.stdout, /^FAILED: truncated: /, what)
  assert.equal(report.code, 1, `${what}: report ${report.stdout}${report.stderr}`)
  assert.match(report.stdout, /CHAIN TRUNCATED: /, what)
}

describe('audit anchors: one gateway, a witness directory', () => {
  let dir: string
  let prefix: string
  const keys = () => ['--keyring', join(dir, 'audit-keys.json'), '--instance', 'gw-one']
  const anchors = () => ['--anchor-dir', join(dir, 'witness')]

  before(async () => {
    dir = gatewayDir(config({ instance: 'gw-one', anchor: { witness: { dir: 'witness' } } }))
    await run(dir, 1, 20)
    prefix = join(tempDir('pc-anchor-prefix-'), 'audit')
    cpSync(join(dir, 'audit'), prefix, { recursive: true })
    await run(dir, 21, 20)
    closeAgents()
    assert.ok(chainFiles(join(dir, 'audit')).length >= 4)
  })

  test('the intact chain reaches its anchor: verify and report exit 0', () => {
    const v = audit(['verify', '--config', join(dir, 'portcullis.yaml')])
    assert.equal(v.code, 0, v.stdout + v.stderr)
    assert.match(v.stdout, /^OK: .* closed\nanchor: seq \d+ \(witness .*\): the chain reaches it/)
    const r = audit(['report', '--config', join(dir, 'portcullis.yaml'), '--object', 'order:30'])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /GET \/orders\/30 .*deny 404/)
    assert.match(r.stdout, /chain verified: .*reaching its anchor/)
  })

  test('the last file, the last run, the last lines, a genuine older copy: truncated by verify and report', () => {
    for (const [what, d] of cuts(join(dir, 'audit'), prefix)) {
      assertTruncated(
        what,
        audit(['verify', ...keys(), ...anchors(), d]),
        audit(['report', ...keys(), ...anchors(), '--dir', d, '--object', 'order:5']),
      )
      if (what.includes('run') || what.includes('older copy')) {
        // Without the anchor these are closed chains that verify, --require-closed or not.
        const plain = audit(['verify', ...keys(), '--require-closed', d])
        assert.equal(plain.code, 0, `${what}: ${plain.stdout}`)
      }
    }
  })

  test('a restart on a cut log records the gap and alerts; verify and report then say truncated', async () => {
    const auditDir = join(dir, 'audit')
    for (const f of chainFiles(auditDir).slice(lastRunStart(auditDir))) rmSync(join(auditDir, f))
    const gw = await spawnGateway(readFileSync(join(dir, 'portcullis.yaml'), 'utf8'), dir)
    try {
      const log = await gw.waitForLog(/AUDIT CHAIN TRUNCATED/)
      assert.match(log, /records were removed/)
      const admin = new Admin(gw.adminUrl as string, ADMIN_TOKEN)
      const alert = await admin.waitForAlert('audit-truncation', 'audit:gw-one')
      assert.ok(alert, 'an alert')
      assert.match(alert.summary, /truncated/)
      assert.equal((await send(gw.url, { path: '/orders/99' })).status, 404)
    } finally {
      closeAgents()
      await gw.stop()
    }
    const start = chainFiles(auditDir)
      .map((f) => fileLines(join(auditDir, f))[0] ?? '')
      .map((l) => JSON.parse(l) as { type: string; data?: { truncated?: { anchoredSeq: number } } })
      .find((r) => r.type === 'audit.start' && r.data?.truncated !== undefined)
    assert.ok(start, 'the new run begins with an audit.start recording the cut')
    const v = audit(['verify', '--config', join(dir, 'portcullis.yaml')])
    assert.equal(v.code, 1, v.stdout)
    assert.match(v.stdout, /^FAILED: truncated: .*were removed.*the restart at .* recorded the cut/)
    const r = audit(['report', '--config', join(dir, 'portcullis.yaml'), '--object', 'order:99'])
    assert.equal(r.code, 1)
    assert.match(r.stdout, /GET \/orders\/99/, 'records after the recorded cut are still read')
    assert.match(r.stdout, /CHAIN TRUNCATED/)
  })
})

describe('audit anchors: two gateways sharing Redis', () => {
  let redis: RedisServer
  const dirs: Record<string, string> = {}
  const prefixes: Record<string, string> = {}

  before(async () => {
    redis = await RedisServer.start()
    const stores = { backend: 'redis', redis: { url: `redis://127.0.0.1:${redis.port}` } }
    for (const name of ['gw-red-a', 'gw-red-b'])
      dirs[name] = gatewayDir(config({ instance: name, anchor: { redis: true }, stores }))
    // Both gateways run at once, each with its own chain; both anchor to the one Redis.
    await Promise.all(Object.values(dirs).map((d, i) => run(d, 1 + i * 100, 15, true, `127.0.5.${i + 1}`)))
    for (const [name, d] of Object.entries(dirs)) {
      prefixes[name] = join(tempDir('pc-anchor-prefix-'), 'audit')
      cpSync(join(d, 'audit'), prefixes[name] as string, { recursive: true })
    }
    await Promise.all(Object.values(dirs).map((d, i) => run(d, 50 + i * 100, 15, true, `127.0.5.${i + 1}`)))
    closeAgents()
  })

  after(async () => {
    await redis?.kill()
  })

  test('each chain reaches its own anchor in Redis (--config, and --anchor-redis)', () => {
    for (const [name, d] of Object.entries(dirs)) {
      const v = audit(['verify', '--config', join(d, 'portcullis.yaml')])
      assert.equal(v.code, 0, v.stdout + v.stderr)
      assert.match(v.stdout, /anchor: seq \d+ \(redis, .*\): the chain reaches it/)
      const flags = audit([
        'verify',
        '--keyring',
        join(d, 'audit-keys.json'),
        '--anchor-redis',
        `redis://127.0.0.1:${redis.port}`,
        join(d, 'audit'),
      ])
      assert.equal(flags.code, 0, `${name}: ${flags.stdout}${flags.stderr}`)
    }
  })

  test('every cut of either chain is truncated by verify and report', () => {
    for (const [name, d] of Object.entries(dirs)) {
      const keys = ['--keyring', join(d, 'audit-keys.json'), '--instance', name]
      const anchors = ['--anchor-redis', `redis://127.0.0.1:${redis.port}`]
      for (const [what, cut] of cuts(join(d, 'audit'), prefixes[name] as string)) {
        assertTruncated(
          `${name}: ${what}`,
          audit(['verify', ...keys, ...anchors, cut]),
          audit(['report', ...keys, ...anchors, '--dir', cut, '--object', 'order:1']),
        )
      }
    }
  })

  test('a gateway restarted on a cut log records the gap and alerts; the other is untouched', async () => {
    const d = dirs['gw-red-a'] as string
    const auditDir = join(d, 'audit')
    cutLines(auditDir, 4)
    const gw = await spawnGateway(readFileSync(join(d, 'portcullis.yaml'), 'utf8'), d)
    try {
      await gw.waitForLog(/AUDIT CHAIN TRUNCATED/, 15_000)
      const admin = new Admin(gw.adminUrl as string, ADMIN_TOKEN)
      assert.ok(await admin.waitForAlert('audit-truncation', 'audit:gw-red-a'))
    } finally {
      closeAgents()
      await gw.stop()
    }
    const v = audit(['verify', '--config', join(d, 'portcullis.yaml')])
    assert.equal(v.code, 1, v.stdout)
    assert.match(v.stdout, /^FAILED: truncated: .*recorded the cut/)
    const other = audit(['verify', '--config', join(dirs['gw-red-b'] as string, 'portcullis.yaml')])
    assert.equal(other.code, 0, other.stdout + other.stderr)
  })
})
