/**
 * Duplicate headers (issue 23, item 2): what the upstream receives is what the policies
 * evaluated. Every header Node keeps only the first of (what policies read in `req.headers`), in
 * both orders, on a route without policies and on one whose policies read headers: refused
 * (Cookie, Content-Type, Authorization, Proxy-Authorization) or forwarded once, with the value
 * the policies saw.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'
import { rawRequest } from './helpers/raw-http.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const REFUSED = ['cookie', 'content-type', 'authorization', 'proxy-authorization']
const FIRST_ONLY = [
  'age',
  'etag',
  'expires',
  'from',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]

let up: TestUpstream
let gw: GatewayProcess
before(async () => {
  up = await startUpstream()
  gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes:
  - { name: plain, match: { pathPrefix: /plain }, upstream: up, stripPrefix: true }
  - name: policed
    match: { pathPrefix: /policed }
    upstream: up
    stripPrefix: true
    policies:
      rate-limit: { limits: [ { rate: 100000, per: second, key: [ { header: user-agent }, { header: referer } ] } ] }
accessLog: { enabled: false }
`)
})
after(async () => {
  await gw?.stop()
  await up?.close()
})

describe('duplicate headers', () => {
  test('each singleton, both orders, with and without policies: refused or forwarded once as seen', async () => {
    const port = Number(new URL(gw.url).port)
    const mismatches: string[] = []
    for (const prefix of ['/plain', '/policed']) {
      for (const name of [...REFUSED, ...FIRST_ONLY]) {
        for (const [a, b] of [
          ['first-value', 'second-value'],
          ['second-value', 'first-value'],
        ]) {
          const r = await rawRequest(
            port,
            `GET ${prefix}/echo HTTP/1.1\r\nHost: x\r\n${name}: ${a}\r\n${name}: ${b}\r\nConnection: close\r\n\r\n`,
            { timeoutMs: 10_000 },
          )
          const label = `${prefix} ${name}: ${a}, ${b}`
          if (REFUSED.includes(name)) {
            if (r.status !== 400 || r.code !== 'GW_ERR_BAD_HEADER')
              mismatches.push(`${label}: ${r.status} ${r.code}`)
            continue
          }
          if (r.status !== 200) {
            mismatches.push(`${label}: ${r.status}`)
            continue
          }
          const raw = (JSON.parse(r.body) as { rawHeaders: string[] }).rawHeaders
          const values = raw.filter((_, i) => i % 2 === 1 && (raw[i - 1] as string).toLowerCase() === name)
          // Node kept `a` for the policies: the upstream gets exactly that
          if (values.length !== 1 || values[0] !== a)
            mismatches.push(`${label}: upstream saw ${JSON.stringify(values)}`)
        }
      }
    }
    assert.deepEqual(mismatches, [])
  })
})
