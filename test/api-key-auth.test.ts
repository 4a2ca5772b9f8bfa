/**
 * api-key-auth through the real `portcullis serve` process, with keys made, rotated and revoked by
 * the real `portcullis keys` CLI, and a real upstream on 127.0.0.1.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'
import { get, type Res } from './helpers/http.js'

const ROOT = new URL('../../', import.meta.url).pathname
const KEY_RE = /pcl_[0-9A-Za-z]{36}/g

const request = get

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Every key the CLI printed in this file, to grep the gateway's logs for. */
const printed: string[] = []

function keys(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'keys', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  })
  printed.push(...(r.stdout.match(KEY_RE) ?? []))
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

function newKey(store: string, args: string[] = []): { key: string; id: string } {
  const r = keys(['create', '--store', store, '--owner', 'svc-test', ...args])
  assert.equal(r.code, 0, r.stderr)
  const key = r.stdout.trim()
  return { key, id: key.slice(4, 12) }
}

/** Waits until `path` with `key` answers `status` on `gw`; resolves the time it took. */
async function untilStatus(gw: GatewayProcess, path: string, key: string, status: number, ms = 3000) {
  const start = performance.now()
  for (;;) {
    const r = await request(gw.url, path, { 'x-api-key': key })
    if (r.status === status) return performance.now() - start
    if (performance.now() - start > ms) assert.fail(`${path} still answers ${r.status}, not ${status}`)
    await sleep(5)
  }
}

const config = (upUrl: string, store: string) => `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams:
  main: { targets: [ { url: "${upUrl}" } ] }
routes:
  - { name: open, match: { pathPrefix: /open }, upstream: main, stripPrefix: true }
  - name: api
    match: { pathPrefix: /api }
    upstream: main
    stripPrefix: true
    policies: { api-key-auth: { store: "${store}", lastUsedFlush: 1s } }
  - name: scoped
    match: { pathPrefix: /scoped }
    upstream: main
    stripPrefix: true
    policies: { api-key-auth: { store: "${store}", requiredScopes: [orders:write], lastUsedFlush: 1s } }
  - name: keep
    match: { pathPrefix: /keep }
    upstream: main
    stripPrefix: true
    policies:
      api-key-auth: { store: "${store}", header: X-Client-Key, stripHeader: false, realm: billing, lastUsedFlush: 1s }
  - name: query
    match: { pathPrefix: /query }
    upstream: main
    stripPrefix: true
    policies: { api-key-auth: { store: "${store}", queryParam: api_key, lastUsedFlush: 1s } }
accessLog: { destination: access.log }
reload: { watch: false }
log: { level: debug }
`

describe('api-key-auth', () => {
  let up: TestUpstream
  let gw: GatewayProcess
  let gw2: GatewayProcess
  let store: string
  let good: { key: string; id: string }
  let scoped: { key: string; id: string }
  let revoked: { key: string; id: string }
  let expired: { key: string; id: string }

  before(async () => {
    up = await startUpstream('main')
    const storeDir = tempDir('pc-akstore-')
    store = join(storeDir, 'keys.json')
    good = newKey(store, ['--scopes', 'orders:read'])
    scoped = newKey(store, ['--scopes', 'orders:read,orders:write'])
    revoked = newKey(store)
    expired = newKey(store, ['--expires', '1s'])
    assert.equal(keys(['revoke', '--store', store, revoked.id]).code, 0)
    gw = await spawnGateway(config(up.url, store))
    gw2 = await spawnGateway(config(up.url, store))
  })
  after(async () => {
    await gw?.stop()
    await gw2?.stop()
    await up?.close()
  })

  test('a valid key → 200; the upstream never sees the key header (unless stripHeader: false)', async () => {
    const r = await request(gw.url, '/api/echo', { 'x-api-key': good.key })
    assert.equal(r.status, 200)
    const seen = JSON.parse(r.body) as { headers: Record<string, string> }
    assert.equal(seen.headers['x-api-key'], undefined)
    assert.equal(JSON.stringify(seen).includes(good.key), false)
    const kept = await request(gw.url, '/keep/echo', { 'X-Client-Key': good.key })
    assert.equal(kept.status, 200)
    assert.equal(
      (JSON.parse(kept.body) as { headers: Record<string, string> }).headers['x-client-key'],
      good.key,
    )
    assert.equal((await request(gw.url, '/open/x')).status, 200, 'routes without the policy are untouched')
  })

  test('no key → 401 GW_ERR_AUTH_MISSING with an ApiKey challenge', async () => {
    const r = await request(gw.url, '/api/echo')
    assert.equal(r.status, 401)
    assert.equal(r.headers['www-authenticate'], 'ApiKey realm="portcullis"')
    assert.equal(r.headers['content-type'], 'application/problem+json')
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'GW_ERR_AUTH_MISSING')
    const keep = await request(gw.url, '/keep/echo', { 'x-api-key': good.key })
    assert.equal(keep.status, 401, 'the route reads its own header only')
    assert.equal(keep.headers['www-authenticate'], 'ApiKey realm="billing"')
  })

  test('unknown, wrong, revoked, expired and malformed keys get the same 401, byte for byte', async () => {
    await untilStatus(gw, '/api/x', expired.key, 401) // created with --expires 1s
    const other = newKey(join(tempDir('pc-akother-'), 'other.json')) // valid format, another store
    const flip = (k: string) => `${k.slice(0, 30)}${k[30] === 'a' ? 'b' : 'a'}${k.slice(31)}`
    const candidates: [string, string][] = [
      ['unknown', other.key],
      ['checksum', flip(good.key)],
      ['revoked', revoked.key],
      ['expired', expired.key],
      ['garbage', 'hunter2'],
      ['prefix only', 'pcl_'],
      ['oversized', `pcl_${'a'.repeat(4000)}`],
    ]
    const norm = (r: Res) => {
      const { date: _d, 'x-request-id': rid, ...headers } = r.headers
      const body = JSON.parse(r.body) as Record<string, unknown>
      assert.equal(body.instance, `urn:portcullis:request:${rid}`)
      delete body.instance
      return { status: r.status, headers, body }
    }
    const results: [string, ReturnType<typeof norm>][] = []
    for (const [what, key] of candidates) {
      results.push([what, norm(await request(gw.url, '/api/echo', { 'x-api-key': key }))])
    }
    const [, first] = results[0] as [string, ReturnType<typeof norm>]
    assert.equal(first.status, 401)
    assert.equal(first.body.code, 'GW_ERR_AUTH_INVALID')
    assert.equal(first.headers['www-authenticate'], 'ApiKey realm="portcullis"')
    for (const [what, r] of results) assert.deepEqual(r, first, `${what} answers like the others`)
  })

  test('a key without a required scope → 403; with it → 200', async () => {
    const r = await request(gw.url, '/scoped/x', { 'x-api-key': good.key })
    assert.equal(r.status, 403)
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'GW_ERR_FORBIDDEN')
    assert.equal((await request(gw.url, '/scoped/x', { 'x-api-key': scoped.key })).status, 200)
  })

  test('queryParam: accepted, removed before the upstream, and warned about at start', async () => {
    const ok = await request(gw.url, `/query/x?a=1&api_key=${good.key}&b=2`)
    assert.equal(ok.status, 200)
    assert.equal(
      (JSON.parse(ok.body) as { path: string }).path,
      '/x?a=1&b=2',
      'the upstream never sees the key',
    )
    assert.equal((await request(gw.url, `/query/x?api_key=${good.key}&api_key=${good.key}`)).status, 401)
    assert.match(gw.stderr(), /api-key-auth accepts keys in the query string/)
  })

  test('rotation with a 1 s overlap: both keys work, then only the new one', async () => {
    const old = newKey(store, ['--scopes', 'orders:read'])
    await untilStatus(gw, '/api/x', old.key, 200)
    const r = keys(['rotate', '--store', store, old.id, '--overlap', '1s'])
    const rotatedAt = Date.now()
    assert.equal(r.code, 0, r.stderr)
    const fresh = r.stdout.trim()
    await untilStatus(gw, '/api/x', fresh, 200, 1000)
    const elapsed = Date.now() - rotatedAt
    assert.ok(elapsed < 900, `checked inside the overlap (${elapsed} ms)`)
    assert.equal(
      (await request(gw.url, '/api/x', { 'x-api-key': old.key })).status,
      200,
      'old key in overlap',
    )
    await sleep(1100 - (Date.now() - rotatedAt))
    assert.equal((await request(gw.url, '/api/x', { 'x-api-key': old.key })).status, 401, 'old key after it')
    assert.equal((await request(gw.url, '/api/x', { 'x-api-key': fresh })).status, 200)
    assert.equal((await request(gw2.url, '/api/x', { 'x-api-key': old.key })).status, 401)
  })

  test('revocation with `portcullis keys revoke`: two gateways sharing the store refuse the key within 1 s', async () => {
    const k = newKey(store)
    await untilStatus(gw, '/api/x', k.key, 200)
    await untilStatus(gw2, '/api/x', k.key, 200)
    const cliStart = performance.now()
    const r = keys(['revoke', '--store', store, k.id])
    const cliMs = performance.now() - cliStart
    assert.equal(r.code, 0, r.stderr)
    const [a, b] = await Promise.all([
      untilStatus(gw, '/api/x', k.key, 401, 5000),
      untilStatus(gw2, '/api/x', k.key, 401, 5000),
    ])
    console.log(
      `revocation: gateway 1 refused the key ${a.toFixed(1)} ms and gateway 2 ${b.toFixed(1)} ms after \`keys revoke\` returned (the command itself ran ${cliMs.toFixed(0)} ms)`,
    )
    assert.ok(a < 1000 && b < 1000, `both within 1 s (${Math.round(a)} / ${Math.round(b)} ms)`)
  })

  test('a broken store file is refused: the old keys stay in effect, then a fixed file applies', async () => {
    const before = readFileSync(store, 'utf8')
    writeFileSync(store, '{"version":1,"hash":"sha256-salted","keys":[{"id":"broken"}]}')
    for (let i = 0; i < 200 && !gw.stderr().includes('reload refused'); i++) await sleep(10)
    assert.match(gw.stderr(), /api key store reload refused; the previous keys stay in effect/)
    assert.equal((await request(gw.url, '/api/x', { 'x-api-key': good.key })).status, 200)
    writeFileSync(store, before)
    const k = newKey(store)
    await untilStatus(gw, '/api/x', k.key, 200)
  })

  test('last-used times reach `keys list` through the sidecar', async () => {
    await request(gw.url, '/api/x', { 'x-api-key': good.key })
    let listed: { id: string; lastUsedAt?: string }[] = []
    for (let i = 0; i < 60; i++) {
      listed = JSON.parse(keys(['list', '--store', store, '--format', 'json']).stdout) as typeof listed
      if (listed.find((x) => x.id === good.id)?.lastUsedAt) break
      await sleep(100)
    }
    const t = Date.parse(listed.find((x) => x.id === good.id)?.lastUsedAt ?? '')
    assert.ok(Date.now() - t < 10_000, 'recent last-used time')
  })

  test('no key in the gateway log or the access log (key ids only)', async () => {
    await gw.stop()
    await gw2.stop()
    const logs = [
      gw.stderr(),
      gw2.stderr(),
      readFileSync(join(gw.dir, 'access.log'), 'utf8'),
      readFileSync(join(gw2.dir, 'access.log'), 'utf8'),
    ]
    assert.ok(printed.length >= 8)
    for (const text of logs) {
      assert.ok(text.length > 0)
      for (const k of printed) {
        assert.equal(text.includes(k.slice(12, 34)), false, "a key's secret part leaked into a log")
      }
      assert.equal(text.match(KEY_RE), null)
    }
    assert.match(
      await gw.waitForLog(new RegExp(`"keyId":"${revoked.id}","reason":"revoked"`)),
      new RegExp(`"keyId":"${revoked.id}","reason":"revoked"`),
    )
    for (const f of [store, `${store}.last-used.json`]) {
      const text = readFileSync(f, 'utf8')
      for (const k of printed) assert.equal(text.includes(k.slice(12, 34)), false, `${f} holds a key`)
    }
  })
})

describe('api-key-auth start-up', () => {
  test('a missing store file is a config error: the gateway does not start', async () => {
    const dir = tempDir()
    await assert.rejects(
      spawnGateway(config('http://127.0.0.1:1', join(dir, 'missing.json')), dir),
      /routes\[1\]\.policies\.api-key-auth\.store: cannot read the key store .*missing\.json: ENOENT/,
    )
  })
})
