/**
 * The access log's fields an operator looks for first (principal, user agent, host, bytes in,
 * upstream time, ISO time, trace id), their selection in the config, and still no secret in any
 * field: a key in the path, the user agent, the host or the principal is masked; the API key,
 * the Authorization and Cookie headers and the query never appear.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { fileKeyAdmin } from '../src/keys/admin.js'
import {
  type RecordingUpstream,
  startRecordingUpstream,
  startTestGateway,
  type TestGateway,
} from './helpers/servers.js'

let up: RecordingUpstream
const gateways: TestGateway[] = []
let apiKey = ''
// A Stripe live secret key's shape, which the built-in detectors mask (written in pieces so that
// no scanner mistakes this file for a leak).
const LIVE_KEY = ['sk', 'live', '51H8sKdJ2eZvKYlo2C9hXqRtYzA0bC1dE2fG3hI4'].join('_')

function config(upUrl: string, extra = ''): string {
  return `listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${upUrl}" } ] } }
routes:
  - name: keyed
    match: { pathPrefix: /keyed }
    upstream: up
    policies: { api-key-auth: { store: keys.json } }
  - { name: open, match: { pathPrefix: /open }, upstream: up }
reload: { watch: false }
log: { level: silent }
accessLog:
  destination: access.log
${extra}
`
}

async function start(extra = ''): Promise<TestGateway> {
  const gw = await startTestGateway(up.url, {
    configYaml: config(up.url, extra).replace(/ {2}- name: keyed\n.*\n.*\n.*\n/, ''),
    logger: pino({ level: 'silent' }),
  })
  gateways.push(gw)
  return gw
}

async function lines(gw: TestGateway, n: number): Promise<Record<string, unknown>[]> {
  const file = join(gw.configFile, '..', 'access.log')
  const deadline = Date.now() + 10000
  for (;;) {
    gw.running.gateway.flushLogs()
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      // not written yet
    }
    const got = text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    if (got.length >= n || Date.now() > deadline) return got
    await new Promise((r) => setTimeout(r, 50))
  }
}

function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text))
    let data = ''
    s.setEncoding('utf8')
    s.on('data', (d: string) => {
      data += d
    })
    s.on('end', () => resolve(data))
    s.on('error', reject)
    s.setTimeout(10000, () => s.destroy(new Error('timeout')))
  })
}

before(async () => {
  up = await startRecordingUpstream()
})

after(async () => {
  for (const g of gateways) await g.close()
  await up.close()
})

describe('access log', () => {
  test('every field, with a principal, a trace id from the client, bytes, times; no secret', async () => {
    // The key store lives beside the config (a relative path in it), made before the start.
    const gw = await startTestGateway(up.url, {
      configYaml: config(up.url),
      logger: pino({ level: 'silent' }),
      beforeStart: async (dir) => {
        const admin = fileKeyAdmin(join(dir, 'keys.json'))
        apiKey = (await admin.create({ owner: 'svc-billing', scopes: [] }, Date.now())).key
        await admin.close()
      },
    })
    gateways.push(gw)
    assert.ok(apiKey, 'a key was made')
    const port = Number(new URL(gw.url).port)
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736'
    const body = '{"a":1}'
    const request =
      `POST /keyed/items/${LIVE_KEY}?token=${LIVE_KEY}&page=2 HTTP/1.1\r\nHost: api.example.test\r\n` +
      `X-API-Key: ${apiKey}\r\nAuthorization: Basic c2VjcmV0OnNlY3JldA==\r\nCookie: session=s3cr3t-cookie\r\n` +
      `User-Agent: curl/8.5 (${LIVE_KEY})\r\ntraceparent: 00-${trace}-00f067aa0ba902b7-01\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
    const answer = await raw(port, request)
    assert.match(answer, /^HTTP\/1\.1 200 /)
    const [line] = await lines(gw, 1)
    assert.ok(line)
    assert.equal(line.principal, 'svc-billing')
    assert.equal(line.traceId, trace)
    assert.equal(line.host, 'api.example.test')
    assert.equal(line.method, 'POST')
    assert.equal(
      line.path,
      '/keyed/items/sk_live_***',
      'a key in the path is masked; the query is never written',
    )
    assert.equal(line.status, 200)
    assert.equal(line.bytesIn, Buffer.byteLength(request))
    assert.equal(line.bytesOut, Buffer.byteLength(answer))
    assert.equal(typeof line.upstreamMs, 'number')
    assert.ok((line.upstreamMs as number) >= 0 && (line.upstreamMs as number) <= (line.durationMs as number))
    assert.match(String(line.timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.ok(
      Math.abs(Date.parse(String(line.timestamp)) - Number(line.time)) < 1,
      'the same instant as time',
    )
    assert.equal(line.userAgent, 'curl/8.5 (sk_live_***)', 'the key in the user agent is masked')
    const text = JSON.stringify(line)
    for (const secret of [
      LIVE_KEY,
      apiKey,
      apiKey.slice(12),
      'c2VjcmV0OnNlY3JldA==',
      's3cr3t-cookie',
      'page=2',
    ])
      assert.ok(!text.includes(secret), `no ${secret.slice(0, 8)}… in the line`)
  })

  test('a denied request: no principal, no upstream time; a client-sent bad traceparent is not a trace id', async () => {
    const gw = gateways[0] as TestGateway
    const before = (await lines(gw, 1)).length
    const r = await fetch(`${gw.url}/keyed/x`, {
      headers: { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01', 'user-agent': 'x' },
    })
    assert.equal(r.status, 401)
    const all = await lines(gw, before + 1)
    const line = all[all.length - 1] as Record<string, unknown>
    assert.equal(line.status, 401)
    assert.equal(line.decision, 'denied')
    assert.equal(line.principal, undefined)
    assert.equal(line.upstreamMs, undefined)
    assert.equal(line.traceId, undefined, 'an all-zero trace id is invalid (W3C)')
  })

  test('accessLog.fields selects the fields, in their fixed order', async () => {
    const gw = await start('  fields: [status, path, userAgent]')
    await fetch(`${gw.url}/open/x?q=1`, { headers: { 'user-agent': 'probe/1' } })
    const [line] = await lines(gw, 1)
    assert.deepEqual(Object.keys(line ?? {}), ['level', 'time', 'msg', 'path', 'status', 'userAgent'])
    assert.deepEqual(line, {
      level: 30,
      time: line?.time,
      msg: 'request',
      path: '/open/x',
      status: 200,
      userAgent: 'probe/1',
    })
  })
})
