/**
 * The core in-process (Gateway.inject): routing answers, a denial, forwarding to a real upstream
 * on 127.0.0.1, and the query corpus through every policy that reads a query parameter.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { loadConfigText } from '../config/load.js'
import { createMemoryStore } from '../stores/memory/memory-store.js'
import { Gateway } from './gateway.js'
import { GatewayMetrics } from './metrics.js'
import { parseParams } from './query.js'
import { QUERY_CORPUS } from './query.test.js'

const HERE = new URL('.', import.meta.url).pathname
const SPEC = join(HERE, '../../../src/gateway/testdata/query-spec.yaml')

let upstream: Server
let seen: string[] = []
let gw: Gateway
const store = createMemoryStore({})

before(async () => {
  upstream = createServer((req, res) => {
    const q = req.url?.includes('?') ? (req.url.slice(req.url.indexOf('?') + 1) ?? '') : ''
    seen.push(q)
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ query: q }))
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  const port = (upstream.address() as AddressInfo).port
  const yaml = `listeners: [{ name: public }]
upstreams: { api: { targets: [{ url: "http://127.0.0.1:${port}" }] } }
proxy: { maxQueryParams: 1000 }
routes:
  - name: plain
    upstream: api
    match: { pathPrefix: /plain, methods: [GET] }
  - name: rate-limit
    upstream: api
    match: { pathPrefix: /rl }
    policies:
      rate-limit: { limits: [{ rate: 1000000, per: second, key: [{ query: id }], onMissingKey: skip }] }
  - name: authorize
    upstream: api
    match: { pathPrefix: /az }
    policies:
      authorize:
        default: deny
        rules:
          - { match: { pathPrefix: /az }, anonymous: true, conditions: [{ query: id, matches: "^[\\\\s\\\\S]*$" }] }
  - name: openapi
    upstream: api
    match: { pathPrefix: /oa }
    policies:
      openapi-validation: { spec: "${SPEC}", unknownQueryParams: strip }
`
  const loaded = loadConfigText(yaml, join(HERE, 'inline.yaml'))
  assert.deepEqual(loaded.errors, [])
  gw = new Gateway(loaded.config as NonNullable<typeof loaded.config>, {
    logger: pino({ level: 'silent' }),
    accessLog: undefined,
    metrics: new GatewayMetrics(),
    baseDir: HERE,
    store,
  })
})

after(async () => {
  await gw?.close(true)
  await store.close()
  await new Promise((r) => upstream.close(r))
})

describe('Gateway.inject', () => {
  test('routing: forwarded, 404 without a route, 405 with Allow, 400 for a hostile path', async () => {
    const ok = await gw.inject({ url: '/plain/x?a=1' })
    assert.equal(ok.status, 200)
    assert.deepEqual(ok.json(), { query: 'a=1' })
    assert.match(String(ok.headers['x-request-id']), /^[A-Za-z0-9._:-]{8,}$/)
    const none = await gw.inject({ url: '/nowhere' })
    assert.equal(none.status, 404)
    assert.equal(none.json<{ code: string }>().code, 'GW_ERR_ROUTE_NOT_FOUND')
    assert.equal(none.headers['content-type'], 'application/problem+json')
    const method = await gw.inject({ method: 'POST', url: '/plain/x' })
    assert.equal(method.status, 405)
    assert.equal(method.headers.allow, 'GET')
    const path = await gw.inject({ url: '/plain/a%2fb' })
    assert.equal(path.status, 400)
  })

  test('the query corpus: every policy reading `id` refuses exactly what the parser refuses', async () => {
    const routes = ['/rl', '/az', '/oa']
    const disagreements: string[] = []
    for (const c of QUERY_CORPUS) {
      let refused: boolean
      try {
        parseParams(c.q).single('id')
        refused = false
      } catch {
        refused = true
      }
      for (const r of routes) {
        seen = []
        const res = await gw.inject({ url: c.q === '' ? r : `${r}?${c.q}` })
        const label = `${r}?${c.q.length > 40 ? `${c.q.slice(0, 40)}…` : c.q}`
        // 414: a target over proxy.maxUrlLength is refused before any policy
        const gwRefused = res.status === 400 || res.status === 414
        if (gwRefused !== refused) disagreements.push(`${label}: ${res.status}, parser refused: ${refused}`)
        // the query reaches the upstream as sent (raw non-ASCII arrives percent-encoded)
        const ascii = !/[^\x20-\x7e]/.test(c.q)
        if (res.status === 200 && r !== '/oa' && ascii && seen[0] !== c.q)
          disagreements.push(`${label}: upstream saw ${seen[0]}`)
        // what the upstream sees of `id` is what the policies saw
        if (res.status === 200 && seen[0] !== undefined) {
          const up = parseParams(seen[0]).get('id')
          if (up !== parseParams(c.q).get('id')) disagreements.push(`${label}: upstream id ${up}`)
        }
      }
    }
    assert.deepEqual(disagreements, [])
  })
})
