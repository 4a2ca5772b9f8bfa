/**
 * Learned object ownership in Redis, through real `portcullis serve` processes in front of the
 * demo API: an order created through gateway A is enforced by gateway B (sharing the Redis), and
 * it survives a restart of the gateways. `unknown: deny`, so the owner's 200 after the restart
 * proves the ownership was found, not guessed.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { type DemoApi, demoCredentials, startDemoApi } from '../examples/demo/api.js'
import { RedisServer } from '../src/stores/redis/redis-server.js'
import { JwksIssuer, TEST_AUDIENCE } from './helpers/jwks-issuer.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

async function call(url: string, method: string, headers: Record<string, string>, body?: unknown) {
  const init: RequestInit = { method, headers: { ...headers } }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] = 'application/json'
  }
  const r = await fetch(url, init)
  const text = await r.text()
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {}
  return { status: r.status, body: parsed as Record<string, unknown> | undefined }
}

describe('object-ownership: learned ownership shared through Redis', () => {
  let redis: RedisServer
  let issuer: JwksIssuer
  let api: DemoApi
  let yaml: string
  const gws: GatewayProcess[] = []
  const session: Record<string, string> = {}
  const jwt: Record<string, string> = {}

  before(async () => {
    redis = await RedisServer.start()
    issuer = await JwksIssuer.start(['RS256'])
    api = await startDemoApi({ host: '127.0.0.1', port: 0 })
    for (const [user, sub] of [
      ['alice', '1'],
      ['bob', '2'],
    ] as const) {
      const r = await call(
        `${api.url}/api/v2/login`,
        'POST',
        {},
        { username: user, password: demoCredentials[user] },
      )
      session[user] = (r.body as { token: string }).token
      jwt[user] = await issuer.mint({ claims: { sub } })
    }
    yaml = stringify({
      listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
      admin: { enabled: false },
      reload: { watch: false },
      stores: { backend: 'redis', redis: { url: `redis://127.0.0.1:${redis.port}` } },
      upstreams: { demo: { targets: [{ url: api.url }] } },
      routes: [
        {
          name: 'demo-api',
          match: { pathPrefix: '/api/v2' },
          upstream: 'demo',
          policies: {
            'jwt-auth': {
              algorithms: ['RS256'],
              issuer: issuer.issuer,
              audience: TEST_AUDIENCE,
              jwksUrl: issuer.jwksUrl,
              token: { header: 'x-gateway-token', scheme: '', forward: false },
            },
            'object-ownership': {
              objects: [
                {
                  type: 'order',
                  unknown: 'deny',
                  access: [{ match: { path: '/api/v2/orders/{id}' }, ids: ['path.id'] }],
                  learn: [{ match: { methods: ['POST'], path: '/api/v2/orders' }, id: 'header.location' }],
                },
              ],
            },
          },
        },
      ],
    })
    gws.push(await spawnGateway(yaml), await spawnGateway(yaml))
  })

  after(async () => {
    for (const g of gws) await g.stop()
    await api?.close()
    await issuer?.close()
    await redis?.stop()
  })

  const as = (who: 'alice' | 'bob') => ({
    'x-gateway-token': jwt[who] as string,
    authorization: `Bearer ${session[who]}`,
  })

  let orderPath = ''

  test('an order created through gateway A is enforced by gateway B', async () => {
    const [a, b] = gws as [GatewayProcess, GatewayProcess]
    const created = await call(`${a.url}/api/v2/orders`, 'POST', as('alice'), {
      item: 'keyboard',
      quantity: 1,
    })
    assert.equal(created.status, 201)
    orderPath = `/api/v2/orders/${(created.body as { id: number }).id}`
    const bobOnB = await call(`${b.url}${orderPath}`, 'GET', as('bob'))
    assert.equal(bobOnB.status, 404)
    assert.equal(bobOnB.body?.code, 'GW_ERR_OBJECT_NOT_FOUND')
    assert.equal((await call(`${b.url}${orderPath}`, 'GET', as('alice'))).status, 200)
    // and the other way round: an order created through B is enforced by A
    const other = await call(`${b.url}/api/v2/orders`, 'POST', as('bob'), { item: 'monitor', quantity: 1 })
    assert.equal(other.status, 201)
    const bobPath = `/api/v2/orders/${(other.body as { id: number }).id}`
    assert.equal((await call(`${a.url}${bobPath}`, 'DELETE', as('alice'))).status, 404)
    assert.equal((await call(`${a.url}${bobPath}`, 'GET', as('bob'))).status, 200)
  })

  test('learned ownership survives a restart of every gateway', async () => {
    assert.ok(orderPath !== '')
    for (const g of gws.splice(0)) await g.stop()
    const c = await spawnGateway(yaml)
    gws.push(c)
    assert.equal((await call(`${c.url}${orderPath}`, 'GET', as('alice'))).status, 200)
    const bob = await call(`${c.url}${orderPath}`, 'PUT', as('bob'), { item: 'x', quantity: 1 })
    assert.equal(bob.status, 404)
    // a never-seen order stays denied (unknown: deny), so the 200 above came from Redis
    assert.equal((await call(`${c.url}/api/v2/orders/1`, 'GET', as('alice'))).status, 404)
  })
})
