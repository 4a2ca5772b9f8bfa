/**
 * API keys shared through Redis: one real redis-server, a real upstream, TWO real `portcullis serve`
 * processes with the same config (`api-key-auth: { source: store }`, `stores.backend: redis`), and
 * keys made, rotated and revoked with the real `portcullis keys --config` CLI in child processes.
 * Measures how long a revocation takes to reach both gateways.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Redis } from 'ioredis'
import { RedisServer } from '../src/stores/redis/redis-server.js'
import { get } from './helpers/http.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const ROOT = new URL('../../', import.meta.url).pathname
const KEY_RE = /pcl_[0-9A-Za-z]{36}/g
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Every key the CLI printed in this file, to look for in Redis and in the logs. */
const printed: string[] = []

interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  /** When the process exited (performance.now()). */
  exitedAt: number
  startedAt: number
}

/** `portcullis keys …` as a child process (asynchronous: the gateways' polling keeps running). */
function keys(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now()
    const c = spawn(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'keys', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, ...env },
    })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    c.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const timer = setTimeout(() => c.kill('SIGKILL'), 30_000)
    c.on('error', reject)
    c.on('close', (code) => {
      clearTimeout(timer)
      printed.push(...(stdout.match(KEY_RE) ?? []))
      resolve({ code, stdout, stderr, exitedAt: performance.now(), startedAt })
    })
  })
}

/** Waits until `path` with `key` answers `status` on `gw` (polling every 20 ms); the time it took. */
async function untilStatus(gw: GatewayProcess, key: string, status: number, ms = 5000, path = '/api/x') {
  const start = performance.now()
  for (;;) {
    const r = await get(gw.url, path, { 'x-api-key': key })
    if (r.status === status) return performance.now() - start
    if (performance.now() - start > ms) assert.fail(`${path} still answers ${r.status}, not ${status}`)
    await sleep(20)
  }
}

const gatewayConfig = (upUrl: string, redisPort: number) => `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
stores:
  backend: redis
  redis: { url: "redis://127.0.0.1:${redisPort}", keyPrefix: "akt:" }
upstreams:
  main: { targets: [ { url: "${upUrl}" } ] }
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: main
    stripPrefix: true
    policies: { api-key-auth: { source: store, lastUsedFlush: 1s } }
  - name: scoped
    match: { pathPrefix: /scoped }
    upstream: main
    stripPrefix: true
    policies: { api-key-auth: { source: store, requiredScopes: [orders:write] } }
accessLog: { destination: access.log }
reload: { watch: false }
log: { level: debug }
`

describe('api keys shared through Redis: two gateways, the real CLI', () => {
  let redis: RedisServer
  let up: TestUpstream
  let gw1: GatewayProcess
  let gw2: GatewayProcess
  /** The config both gateways run; the CLI is pointed at it too. */
  let config: string

  const newKey = async (args: string[] = []) => {
    const r = await keys(['create', '--config', config, '--owner', 'svc-redis', ...args])
    assert.equal(r.code, 0, r.stderr)
    const key = r.stdout.trim()
    assert.match(key, /^pcl_[0-9A-Za-z]{36}$/)
    return { key, id: key.slice(4, 12) }
  }

  before(async () => {
    redis = await RedisServer.start()
    up = await startUpstream('main')
    const yaml = gatewayConfig(up.url, redis.port)
    gw1 = await spawnGateway(yaml)
    gw2 = await spawnGateway(yaml)
    config = gw1.configFile
  })
  after(async () => {
    await gw1?.stop()
    await gw2?.stop()
    await up?.close()
    await redis?.stop()
  })

  test('a key made with `keys create --config` is accepted by both gateways; scopes apply', async () => {
    const k = await newKey(['--scopes', 'orders:read'])
    await untilStatus(gw1, k.key, 200)
    await untilStatus(gw2, k.key, 200)
    const r = await get(gw1.url, '/api/echo', { 'x-api-key': k.key })
    assert.equal(
      (JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-api-key'],
      undefined,
      'the upstream never sees the key',
    )
    assert.equal((await get(gw2.url, '/scoped/x', { 'x-api-key': k.key })).status, 403)
    const missing = await get(gw1.url, '/api/x')
    assert.equal(missing.status, 401)
    assert.equal(missing.headers['www-authenticate'], 'ApiKey realm="portcullis"')
  })

  test('revocation with `keys revoke --config`: BOTH gateways refuse the key within 1 s', async (t) => {
    const k = await newKey()
    await untilStatus(gw1, k.key, 200)
    await untilStatus(gw2, k.key, 200)
    const r = await keys(['revoke', '--config', config, k.id])
    assert.equal(r.code, 0, r.stderr)
    assert.match(
      r.stdout,
      new RegExp(`^revoked key ${k.id} \\(owner svc-redis\\); gateways using the map api-keys`),
    )
    const [a, b] = await Promise.all([untilStatus(gw1, k.key, 401, 5000), untilStatus(gw2, k.key, 401, 5000)])
    // untilStatus started when the command exited: measure from there, and from its start.
    const both = Math.max(a, b)
    const sinceStart = r.exitedAt - r.startedAt + both
    t.diagnostic(
      `revocation reached gateway 1 after ${a.toFixed(0)} ms and gateway 2 after ${b.toFixed(0)} ms ` +
        `(both: ${both.toFixed(0)} ms after \`keys revoke\` exited; ${sinceStart.toFixed(0)} ms after it started, ` +
        `the command itself ran ${(r.exitedAt - r.startedAt).toFixed(0)} ms)`,
    )
    assert.ok(both <= 1000, `both gateways refuse the key within 1000 ms (took ${both.toFixed(0)} ms)`)
    const body = JSON.parse((await get(gw2.url, '/api/x', { 'x-api-key': k.key })).body) as { code: string }
    assert.equal(body.code, 'GW_ERR_AUTH_INVALID')
    const again = await keys(['revoke', '--config', config, k.id])
    assert.equal(again.code, 0)
    assert.match(again.stdout, /was already revoked/)
  })

  test('rotation with a 2 s overlap on the shared store: both keys work on both gateways, then only the new one', async () => {
    const old = await newKey()
    await untilStatus(gw1, old.key, 200)
    await untilStatus(gw2, old.key, 200)
    const before = Date.now()
    const r = await keys(['rotate', '--config', config, old.id, '--overlap', '2s'])
    assert.equal(r.code, 0, r.stderr)
    const m = new RegExp(`rotated key ${old.id}: it stays valid until (\\S+)`).exec(r.stderr)
    assert.ok(m, r.stderr)
    // The overlap runs from the rotation the CLI made (its own clock), not from when its process
    // exited: on a loaded machine that can be a second later.
    const validUntil = Date.parse(m[1] as string)
    assert.ok(validUntil - before >= 1900 && validUntil - before <= 2000 + (Date.now() - before), m[1])
    const rotatedAt = validUntil - 2000
    const fresh = r.stdout.trim()
    await untilStatus(gw1, fresh, 200, 1500)
    await untilStatus(gw2, fresh, 200, 1500)
    if (Date.now() - rotatedAt < 1800) {
      for (const gw of [gw1, gw2]) {
        assert.equal(
          (await get(gw.url, '/api/x', { 'x-api-key': old.key })).status,
          200,
          'old key in overlap',
        )
      }
    }
    await untilStatus(gw1, old.key, 401, 4000)
    await untilStatus(gw2, old.key, 401, 4000)
    assert.ok(Date.now() - rotatedAt >= 1900, 'the old key was accepted for its overlap')
    assert.equal((await get(gw1.url, '/api/x', { 'x-api-key': fresh })).status, 200)
    assert.equal((await get(gw2.url, '/api/x', { 'x-api-key': fresh })).status, 200)
    const listed = JSON.parse((await keys(['list', '--config', config, '--format', 'json'])).stdout) as {
      id: string
      status: string
      rotatedTo?: string
      rotatedFrom?: string
    }[]
    assert.equal(listed.find((x) => x.id === old.id)?.status, 'expired')
    assert.equal(listed.find((x) => x.id === old.id)?.rotatedTo, fresh.slice(4, 12))
    assert.equal(listed.find((x) => x.id === fresh.slice(4, 12))?.rotatedFrom, old.id)
  })

  test('expiry: a key made with --expires 2s is refused by both gateways once it has passed', async () => {
    const k = await newKey(['--expires', '2s'])
    const made = Date.now()
    await untilStatus(gw1, k.key, 200, 1500)
    await untilStatus(gw1, k.key, 401, 4000)
    await untilStatus(gw2, k.key, 401, 1000)
    assert.ok(Date.now() - made >= 1900)
  })

  test('concurrent rotate and revoke of one key: the revocation always stands', async () => {
    for (let i = 0; i < 4; i++) {
      const k = await newKey()
      const [rot, rev] = await Promise.all([
        keys(['rotate', '--config', config, k.id, '--overlap', '1h']),
        keys(['revoke', '--config', config, k.id]),
      ])
      assert.equal(rev.code, 0, rev.stderr)
      assert.ok(rot.code === 0 || /is revoked/.test(rot.stderr), rot.stderr)
      const listed = JSON.parse((await keys(['list', '--config', config, '--format', 'json'])).stdout) as {
        id: string
        status: string
      }[]
      assert.equal(listed.find((x) => x.id === k.id)?.status, 'revoked', `round ${i}`)
      await untilStatus(gw1, k.key, 401, 2000)
      await untilStatus(gw2, k.key, 401, 2000)
    }
  })

  test('keys import copies a key store file into Redis: idempotent, refuses a different hash', async () => {
    const dir = tempDir('pc-akimport-')
    const file = join(dir, 'keys.json')
    const made = await keys(['create', '--store', file, '--owner', 'svc-file'])
    assert.equal(made.code, 0, made.stderr)
    const fileKey = made.stdout.trim()
    const first = await keys(['import', '--store', file, '--config', config])
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /^imported 1 key record from .* \(0 already there\)\n$/)
    await untilStatus(gw1, fileKey, 200)
    await untilStatus(gw2, fileKey, 200)
    const second = await keys(['import', '--store', file, '--config', config, '--format', 'json'])
    assert.equal(second.code, 0, second.stderr)
    assert.deepEqual(JSON.parse(second.stdout), { added: [], present: [fileKey.slice(4, 12)], revoked: [] })
    // A record with the same id but another hash (another key): refused, nothing written.
    const data = JSON.parse(readFileSync(file, 'utf8')) as { keys: { hash: string }[] }
    const rec = data.keys[0] as { hash: string }
    rec.hash = `${rec.hash[0] === 'A' ? 'B' : 'A'}${rec.hash.slice(1)}`
    writeFileSync(file, JSON.stringify(data))
    const clash = await keys(['import', '--store', file, '--config', config])
    assert.equal(clash.code, 2)
    assert.match(clash.stderr, /refusing to import: the id \w{8} is already in .* with a different hash/)
    assert.equal(
      (await get(gw1.url, '/api/x', { 'x-api-key': fileKey })).status,
      200,
      'the record is unchanged',
    )
  })

  test('last-used times reach `keys list --config` (batched by the gateways)', async () => {
    const k = await newKey()
    await untilStatus(gw1, k.key, 200)
    let seen: string | undefined
    for (let i = 0; i < 40 && seen === undefined; i++) {
      const listed = JSON.parse((await keys(['list', '--config', config, '--format', 'json'])).stdout) as {
        id: string
        lastUsedAt?: string
      }[]
      seen = listed.find((x) => x.id === k.id)?.lastUsedAt
      if (seen === undefined) await sleep(150)
    }
    assert.ok(seen !== undefined && Date.now() - Date.parse(seen) < 15_000, 'a recent last-used time')
    const text = await keys(['list', '--config', config])
    assert.match(text.stdout, new RegExp(`${k.id}\\s+svc-redis\\s+-\\s+-\\s+active`))
  })

  test('no plaintext key anywhere in Redis (SCAN + TYPE-aware reads + DUMP) or in the gateway logs', async () => {
    assert.ok(printed.length >= 10, `keys printed: ${printed.length}`)
    const client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true })
    await client.connect()
    try {
      const names: string[] = []
      let cursor = '0'
      do {
        const [next, batch] = await client.scan(cursor, 'COUNT', 1000)
        cursor = next
        names.push(...batch)
      } while (cursor !== '0')
      assert.ok(
        names.some((n) => n.startsWith('pc:akt:')),
        `the map is in Redis: ${names.join(' ')}`,
      )
      let text = ''
      let bytes = Buffer.alloc(0)
      for (const name of names) {
        const type = await client.type(name)
        text += `${name} ${type}\n`
        if (type === 'string') text += `${await client.get(name)}\n`
        else if (type === 'hash') text += `${JSON.stringify(await client.hgetall(name))}\n`
        else if (type === 'zset') text += `${(await client.zrange(name, 0, -1, 'WITHSCORES')).join('\n')}\n`
        else if (type === 'set') text += `${(await client.smembers(name)).join('\n')}\n`
        else if (type === 'list') text += `${(await client.lrange(name, 0, -1)).join('\n')}\n`
        else if (type === 'stream') text += `${JSON.stringify(await client.xrange(name, '-', '+'))}\n`
        const dump = await client.dumpBuffer(name)
        if (dump) bytes = Buffer.concat([bytes, dump])
      }
      const ids = printed.map((k) => k.slice(4, 12))
      assert.ok(
        ids.some((id) => text.includes(id)),
        'the records (by id) were read back',
      )
      for (const k of printed) {
        assert.equal(text.includes(k.slice(12, 34)), false, "a key's secret part is in Redis")
        assert.equal(bytes.includes(k.slice(12, 34)), false, "a key's secret part is in a DUMP")
      }
      assert.equal(text.match(KEY_RE), null)
    } finally {
      client.disconnect()
    }
    const logs = [gw1.stderr(), gw2.stderr(), readFileSync(join(gw1.dir, 'access.log'), 'utf8')]
    for (const text of logs) {
      assert.ok(text.length > 0)
      for (const k of printed) assert.equal(text.includes(k.slice(12, 34)), false, 'a key in a log')
    }
    assert.match(await gw1.waitForLog(/"reason":"revoked"/), /"reason":"revoked"/)
  })
})

describe('portcullis keys --config: errors', () => {
  let redis: RedisServer
  let dir: string
  const write = (name: string, yaml: string) => {
    const f = join(dir, name)
    writeFileSync(f, yaml)
    return f
  }
  const base = `listeners: [ { name: p, host: 127.0.0.1, port: 0 } ]
upstreams: { main: { targets: [ { url: "http://127.0.0.1:1" } ] } }
`
  const storesOnly = (redisYaml: string) => `
listeners: [ { name: p, host: 127.0.0.1, port: 0 } ]
upstreams: { main: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes: [ { name: r, match: { pathPrefix: / }, upstream: main } ]
stores:
  backend: redis
  redis: ${redisYaml}
`

  before(async () => {
    redis = await RedisServer.start({ args: ['--requirepass', 'right-horse-battery'] })
    dir = tempDir('pc-akcli-')
  })
  after(async () => {
    await redis?.stop()
  })

  test('unreachable Redis: exit 2, a clear message naming host and port, never the password', async () => {
    const cfg = write(
      'down.yaml',
      storesOnly('{ url: "redis://user:Sup3rSecretPw@127.0.0.1:1", connectTimeout: 200ms }'),
    )
    const r = await keys(['list', '--config', cfg])
    assert.equal(r.code, 2, r.stderr)
    assert.match(
      r.stderr,
      /^portcullis: cannot reach Redis redis:\/\/127\.0\.0\.1:1 \(stores: of .*down\.yaml\): .*ECONNREFUSED/,
    )
    assert.equal(r.stderr.includes('Sup3rSecretPw'), false)
    assert.equal(r.stdout, '')
  })

  test('wrong password (from an env: reference): exit 2, the password is not printed', async () => {
    const cfg = write(
      'auth.yaml',
      storesOnly(`{ port: ${redis.port}, password: "\${env:PC_TEST_REDIS_PW}" }`),
    )
    const r = await keys(['create', '--config', cfg, '--owner', 'x'], { PC_TEST_REDIS_PW: 'Wr0ngButSecret' })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /cannot reach Redis 127\.0\.0\.1:\d+ .*(WRONGPASS|NOAUTH|invalid)/)
    assert.equal(r.stderr.includes('Wr0ngButSecret'), false)
    assert.equal(r.stdout.match(KEY_RE), null, 'no key printed when nothing was stored')
    const ok = await keys(['list', '--config', cfg], { PC_TEST_REDIS_PW: 'right-horse-battery' })
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /^no keys in the map api-keys on Redis 127\.0\.0\.1:\d+/)
  })

  test('config problems are reported as file:line:col (exit 2): an unset env var, memory backend, source: store on memory', async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a config ${env:} reference, not a template
    const unset = write('unset.yaml', storesOnly('{ password: "${env:PC_TEST_UNSET_VAR}" }'))
    const a = await keys(['list', '--config', unset])
    assert.equal(a.code, 2)
    assert.match(
      a.stderr,
      /unset\.yaml:\d+:\d+ stores\.redis\.password: environment variable PC_TEST_UNSET_VAR is not set/,
    )
    const memory = write(
      'memory.yaml',
      `${base}routes: [ { name: r, match: { pathPrefix: / }, upstream: main } ]\n`,
    )
    const b = await keys(['list', '--config', memory])
    assert.equal(b.code, 2)
    assert.match(b.stderr, /stores\.backend is memory; keys --config needs stores\.backend: redis/)
    const onMemory = write(
      'on-memory.yaml',
      `${base}routes:
  - name: r
    match: { pathPrefix: / }
    upstream: main
    policies:
      api-key-auth: { source: store }
`,
    )
    const c = await keys(['list', '--config', onMemory])
    assert.equal(c.code, 2)
    assert.match(
      c.stderr,
      /on-memory\.yaml:8:\d+ routes\[0\]\.policies\.api-key-auth\.source: source: store needs stores\.backend: redis, found memory/,
    )
    const missing = await keys(['list', '--config', join(dir, 'nope.yaml')])
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /nope\.yaml: cannot read the file: ENOENT/)
  })

  test('usage: --store and --config together, neither, import without one of them → exit 2', async () => {
    const cfg = write('any.yaml', storesOnly(`{ port: ${redis.port} }`))
    for (const args of [
      ['list', '--store', join(dir, 'k.json'), '--config', cfg],
      ['list'],
      ['import', '--config', cfg],
      ['import', '--store', join(dir, 'k.json')],
      ['revoke', '--config', cfg],
    ]) {
      const r = await keys(args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /usage|exactly one/)
    }
  })
})
