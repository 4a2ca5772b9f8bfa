/**
 * The demo config's rate limits against the demo API, in a real gateway process: login attempts
 * per client IP (brute force) and order creation per session (a business flow).
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'
import { type DemoApi, demoCredentials, startDemoApi } from '../examples/demo/api.js'
import { demoConfigYaml } from './helpers/demo-config.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

const _ROOT = new URL('../../', import.meta.url).pathname

function post(
  url: string,
  path: string,
  body: unknown,
  opts: { from?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(url)
  const text = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method: 'POST',
        path,
        localAddress: opts.from ?? '127.0.0.1', // another loopback address is another client IP
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          ...opts.headers,
        },
      },
      (res) => {
        let out = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          out += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: out }))
      },
    )
    req.on('error', reject)
    req.end(text)
  })
}

describe('the demo config rate-limits login and order creation', () => {
  let api: DemoApi
  let gw: GatewayProcess

  before(async () => {
    api = await startDemoApi({ host: '127.0.0.1', port: 0 })
    gw = await spawnGateway(demoConfigYaml(api.url))
  })

  after(async () => {
    await gw?.stop()
    await api?.close()
  })

  test('login: 5 attempts per minute per IP, then 429 with Retry-After; another IP still logs in', async () => {
    const statuses: number[] = []
    let last: Awaited<ReturnType<typeof post>> | undefined
    for (let i = 0; i < 7; i++) {
      last = await post(
        gw.url,
        '/api/v2/login',
        { username: 'alice', password: `guess-${i}` },
        { from: '127.0.0.11' },
      )
      statuses.push(last.status)
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429])
    assert.equal((JSON.parse(last?.body ?? '{}') as { code: string }).code, 'GW_ERR_RATE_LIMITED')
    assert.ok(Number(last?.headers['retry-after']) >= 1)
    assert.match(
      String(last?.headers['ratelimit-policy']),
      /"login-ip";q=5;w=60, "login-account";q=20;w=3600/,
    )
    const ok = await post(
      gw.url,
      '/api/v2/login',
      { username: 'alice', password: demoCredentials.alice },
      { from: '127.0.0.12' },
    )
    assert.equal(ok.status, 200)
  })

  test('orders: 10 creations per hour per session, then 429 GW_ERR_QUOTA_EXCEEDED', async () => {
    const login = await post(
      gw.url,
      '/api/v2/login',
      { username: 'bob', password: demoCredentials.bob },
      { from: '127.0.0.13' },
    )
    assert.equal(login.status, 200)
    const token = (JSON.parse(login.body) as { token: string }).token
    const auth = { authorization: `Bearer ${token}` }
    const statuses: number[] = []
    for (let i = 0; i < 12; i++) {
      statuses.push(
        (await post(gw.url, '/api/v2/orders', { item: 'widget', quantity: 1 }, { headers: auth })).status,
      )
    }
    assert.deepEqual(statuses, [...Array(10).fill(201), 429, 429])
    const refused = await post(gw.url, '/api/v2/orders', { item: 'widget', quantity: 1 }, { headers: auth })
    assert.equal((JSON.parse(refused.body) as { code: string }).code, 'GW_ERR_QUOTA_EXCEEDED')
  })
})
