/**
 * ssrf-guard end to end (issue 19): the demo API's avatar fetch (OWASP API7) behind the real
 * `portcullis serve` with the demo config. URLs aimed at the canary server on 127.0.0.1 (what an
 * attacker aims at: an internal service) are refused with 400 GW_ERR_SSRF_BLOCKED naming
 * /imageUrl, and the canary never sees a request; with that address exempted in the config
 * (`allowAddresses`, `ports`), the same fetch goes through, so the refusals come from the guard.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { type DemoApi, demoCredentials, startDemoApi } from '../examples/demo/api.js'
import { demoConfigYaml } from './helpers/demo-config.js'
import { request } from './helpers/http.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

describe('ssrf-guard in front of the demo avatar fetch', () => {
  let api: DemoApi
  let canary: Server
  let canaryPort = 0
  let hits = 0
  const gateways: GatewayProcess[] = []

  before(async () => {
    canary = createServer((_req, res) => {
      hits++
      res.writeHead(200, { 'content-type': 'image/png' })
      res.end('png')
    })
    await new Promise<void>((r) => canary.listen(0, '127.0.0.1', r))
    canaryPort = (canary.address() as AddressInfo).port
    api = await startDemoApi({ host: '127.0.0.1', port: 0 })
  })
  after(async () => {
    for (const g of gateways) await g.stop()
    await api?.close()
    await new Promise((r) => canary?.close(r))
  })

  const login = async (gw: GatewayProcess): Promise<string> => {
    const r = await request(gw.url, {
      method: 'POST',
      path: '/api/v2/login',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: demoCredentials.alice }),
    })
    assert.equal(r.status, 200, r.body)
    return (JSON.parse(r.body) as { token: string }).token
  }
  const avatar = (gw: GatewayProcess, token: string, imageUrl: string) =>
    request(gw.url, {
      method: 'POST',
      path: '/api/v2/users/me/avatar',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ imageUrl }),
    })

  it('the demo config refuses internal URLs in every notation, naming the field; nothing is fetched', async () => {
    const gw = await spawnGateway(demoConfigYaml(api.url))
    gateways.push(gw)
    const token = await login(gw)
    const p = canaryPort
    const hostile = [
      `http://127.0.0.1:${p}/x.png`,
      `http://127.1:${p}/x.png`,
      `http://2130706433:${p}/`,
      `http://0x7f.0.0.1:${p}/`,
      `http://[::ffff:127.0.0.1]:${p}/`,
      `http://localhost:${p}/`,
      `http://example.com@127.0.0.1:${p}/`,
      `http://169.254.169.254/latest/meta-data/`,
      `http://10.0.0.1/`,
      `${api.url}/api/v2/debug/config`,
    ]
    for (const url of hostile) {
      const r = await avatar(gw, token, url)
      assert.equal(r.status, 400, `${url}: ${r.body}`)
      const body = JSON.parse(r.body) as { code: string; field: { in: string; name: string } }
      assert.equal(body.code, 'GW_ERR_SSRF_BLOCKED', url)
      assert.deepEqual(body.field, { in: 'body', name: '/imageUrl' })
    }
    assert.equal(hits, 0, 'the demo API fetched nothing')
    await gw.waitForLog(/ssrf-guard: URL refused/)
  })

  it('an address the config exempts is fetched: the refusals above are the guard', async () => {
    const yaml = demoConfigYaml(api.url).replace(
      /( {2}ssrf-guard:\n {4}spec: [^\n]+\n)/,
      `$1    allowAddresses: [127.0.0.1/32]\n    ports: [${canaryPort}]\n`,
    )
    assert.match(yaml, /allowAddresses: \[127\.0\.0\.1\/32\]/)
    const gw = await spawnGateway(yaml)
    gateways.push(gw)
    const token = await login(gw)
    const before = hits
    const ok = await avatar(gw, token, `http://127.0.0.1:${canaryPort}/me.png`)
    assert.equal(ok.status, 200, ok.body)
    assert.equal(hits, before + 1)
    // Other ports of the exempted address, and other internal addresses, stay refused.
    assert.equal((await avatar(gw, token, `http://127.0.0.1:${api.url.split(':')[2]}/`)).status, 400)
    assert.equal((await avatar(gw, token, `http://10.0.0.1:${canaryPort}/`)).status, 400)
    assert.equal(hits, before + 1)
  })
})
