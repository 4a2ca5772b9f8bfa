/**
 * The programmatic entry (`import { createGateway } from 'portcullis'`): a config object and a
 * config file, in-process requests, listening on port 0, reload, refusal of invalid configs, and
 * a handler mounted on a server of the caller's.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { checkConfig, ConfigError, createGateway, type GatewayConfigInput } from './index.js'

let upstream: Server
let upstreamUrl = ''
const seen: string[] = []
const silent = pino({ level: 'silent' })

before(async () => {
  upstream = createServer((req, res) => {
    seen.push(req.url ?? '')
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ url: req.url }))
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
})
after(() => new Promise<void>((r) => upstream.close(() => r())))

function configObject(prefix = '/api'): GatewayConfigInput {
  return {
    listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
    admin: { enabled: true, host: '127.0.0.1', port: 0 },
    upstreams: { api: { targets: [{ url: upstreamUrl }] } },
    routes: [{ name: 'api', upstream: 'api', match: { pathPrefix: prefix } }],
    accessLog: { enabled: false },
    log: { level: 'silent' },
  }
}

describe('createGateway', () => {
  test('a config object: inject before listening, then real listeners, reload, close', async () => {
    const gw = await createGateway(configObject(), { logger: silent })
    try {
      const r = await gw.inject({ url: '/api/users/1' })
      assert.equal(r.status, 200)
      assert.deepEqual(r.json(), { url: '/api/users/1' })
      assert.equal((await gw.inject({ url: '/other' })).status, 404)
      assert.equal(gw.config.routes[0]?.match.pathPrefix, '/api')
      assert.equal(gw.config.upstreams.api?.connections, 128, 'defaults are filled in')

      const { urls, adminUrl } = await gw.listen()
      assert.equal(urls.length, 1)
      assert.ok(adminUrl)
      assert.deepEqual(await gw.listen(), { urls, adminUrl }, 'listen() twice: the same addresses')
      const res = await fetch(`${urls[0]}/api/x`)
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', 'the default policies run')
      assert.equal((await fetch(`${adminUrl}/readyz`)).status, 200)
      const metrics = await gw.metrics.metrics()
      assert.match(metrics, /portcullis_requests_total\{route="api",status="200",decision="allowed"\} 2/)

      assert.equal(await gw.reload(configObject('/v2')), true)
      assert.equal((await fetch(`${urls[0]}/api/x`)).status, 404, 'the new routes serve')
      assert.equal((await fetch(`${urls[0]}/v2/x`)).status, 200)
      // An invalid object is refused; the running config keeps serving.
      assert.equal(await gw.reload({ ...configObject(), routes: [{ name: 'api', upstream: 'nope' }] }), false)
      assert.equal((await fetch(`${urls[0]}/v2/x`)).status, 200)
    } finally {
      await gw.close()
    }
  })

  test('an invalid config rejects with a ConfigError listing every problem', async () => {
    const bad = { ...configObject(), routes: [{ name: 'Bad Name', upstream: 'missing' }] }
    await assert.rejects(createGateway(bad, { logger: silent }), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.ok(err.problems.length >= 2, err.problems.join('\n'))
      assert.ok(err.problems.some((p) => p.includes('routes[0].name')))
      assert.ok(err.problems.some((p) => p.includes('routes[0].upstream')))
      return true
    })
    assert.deepEqual((await checkConfig(configObject())).errors, [])
    assert.ok((await checkConfig(bad)).errors.length >= 2)
    await assert.rejects(createGateway(42 as unknown as string), TypeError)
  })

  test('a config file: relative paths from its directory, reload re-reads it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-embed-'))
    const file = join(dir, 'portcullis.json')
    try {
      writeFileSync(file, JSON.stringify({ ...configObject(), reload: { watch: false } }))
      const gw = await createGateway(file, { logger: silent })
      try {
        assert.equal((await gw.inject({ url: '/api/a' })).status, 200)
        await assert.rejects(gw.reload(configObject()), TypeError)
        writeFileSync(file, JSON.stringify({ ...configObject('/b'), reload: { watch: false } }))
        assert.equal(await gw.reload(), true)
        assert.equal((await gw.inject({ url: '/b/a' })).status, 200)
        assert.equal((await gw.inject({ url: '/api/a' })).status, 404)
      } finally {
        await gw.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('handle: mounted on a server of the caller', async () => {
    const gw = await createGateway(configObject(), { logger: silent })
    const server = createServer(gw.handle)
    try {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const port = (server.address() as AddressInfo).port
      const r = await fetch(`http://127.0.0.1:${port}/api/mounted?q=1`)
      assert.equal(r.status, 200)
      assert.deepEqual(await r.json(), { url: '/api/mounted?q=1' })
      assert.ok(r.headers.get('x-request-id'))
    } finally {
      await new Promise<void>((r) => server.close(() => r()))
      await gw.close()
    }
  })
})
