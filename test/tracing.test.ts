/**
 * OpenTelemetry tracing against a real OTLP/HTTP receiver on 127.0.0.1 that decodes what it gets
 * (OTLP JSON: resourceSpans → scopeSpans → spans): a request through a three-policy route yields
 * one trace with the request, request-phase (an event per policy), upstream, response-phase and
 * log-phase spans; the upstream sees the same trace id in its `traceparent`, parented on the
 * upstream span; a caller's trace is joined; sampling decides what is traced; a denial is traced
 * without an upstream span; no secret and no query in any attribute.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import {
  type RecordingUpstream,
  startRecordingUpstream,
  startTestGateway,
  type TestGateway,
} from './helpers/servers.js'

interface OtlpValue {
  stringValue?: string
  intValue?: string | number
  doubleValue?: number
  boolValue?: boolean
}
interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes: { key: string; value: OtlpValue }[]
  events: { name: string; timeUnixNano: string; attributes: { key: string; value: OtlpValue }[] }[]
  status?: { code?: number; message?: string }
}

/** A minimal OTLP/HTTP receiver: POST /v1/traces with a JSON body, decoded into spans. */
async function startReceiver(): Promise<{
  url: string
  spans: OtlpSpan[]
  services: Set<string>
  requests: { contentType: string | undefined; auth: string | undefined }[]
  close(): Promise<void>
}> {
  const spans: OtlpSpan[] = []
  const services = new Set<string>()
  const requests: { contentType: string | undefined; auth: string | undefined }[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      requests.push({ contentType: req.headers['content-type'], auth: req.headers['x-otlp-key'] as string })
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end()
        return
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: {
          resource: { attributes: { key: string; value: OtlpValue }[] }
          scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[]
        }[]
      }
      for (const rs of body.resourceSpans) {
        for (const a of rs.resource.attributes)
          if (a.key === 'service.name') services.add(String(a.value.stringValue))
        for (const ss of rs.scopeSpans) spans.push(...ss.spans)
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    services,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

const attr = (attrs: { key: string; value: OtlpValue }[] | undefined, key: string): unknown => {
  const v = attrs?.find((a) => a.key === key)?.value
  if (v === undefined) return undefined
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue))
}

let receiver: Awaited<ReturnType<typeof startReceiver>>
let up: RecordingUpstream
let gw: TestGateway
const SECRET = ['sk', 'live', '51H8sKdJ2eZvKYlo2C9hXqRtYzA0bC1dE2fG3hI4'].join('_')

const config = (
  upUrl: string,
  otlp: string,
  ratio: number,
) => `listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${upUrl}" } ] } }
routes:
  - name: three
    match: { pathPrefix: /three }
    upstream: up
    policies:
      # The route's three policies; the ones on by default are off here, so that the request
      # phase has exactly these three.
      request-size-limit: { enabled: false }
      ban: { enabled: false }
      ban-principal: { enabled: false }
      security-headers: { enabled: false }
      overload-shedding: { maxInFlight: 1000 }
      authorize: { default: deny, rules: [ { match: { pathPrefix: /three }, anonymous: true } ] }
      rate-limit: { limits: [ { rate: 3, per: minute, key: [ { header: x-client } ] } ] }
accessLog: { enabled: false }
reload: { watch: false }
log: { level: silent }
tracing:
  enabled: true
  endpoint: "${otlp}"
  sampleRatio: ${ratio}
  headers: { x-otlp-key: receiver-key }
`

async function spansOf(traceId: string, atLeast: number): Promise<OtlpSpan[]> {
  const deadline = Date.now() + 15000
  for (;;) {
    gw.running.gateway.flushLogs()
    await gw.running.tracing?.flush()
    const got = receiver.spans.filter((s) => s.traceId === traceId)
    if (got.length >= atLeast || Date.now() > deadline) return got
    await new Promise((r) => setTimeout(r, 50))
  }
}

before(async () => {
  receiver = await startReceiver()
  up = await startRecordingUpstream()
  gw = await startTestGateway(up.url, {
    configYaml: config(up.url, receiver.url, 1),
    logger: pino({ level: 'silent' }),
  })
})

after(async () => {
  await gw?.close()
  await up?.close()
  await receiver?.close()
})

describe('tracing (OpenTelemetry, OTLP/HTTP)', () => {
  test('a request through a three-policy route: one trace, its phases, the same trace id upstream', async () => {
    up.clear()
    const r = await fetch(`${gw.url}/three/items/${SECRET}?token=${SECRET}&q=1`, {
      headers: { 'x-client': 'a', 'user-agent': `tester (${SECRET})` },
    })
    assert.equal(r.status, 200)
    const seen = up.requests[0]
    assert.ok(seen)
    const tp = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(seen.headers.traceparent))
    assert.ok(tp, `the upstream got a sampled traceparent: ${seen.headers.traceparent}`)
    const [, traceId, parentId] = tp as unknown as [string, string, string]
    const spans = await spansOf(traceId, 5)
    const byName = new Map(spans.map((s) => [s.name, s]))
    assert.deepEqual(
      spans.map((s) => s.name).sort(),
      ['GET', 'GET three', 'log phase', 'request phase', 'response phase'],
      'one trace: the request, its three phases and the upstream call',
    )
    const root = byName.get('GET three') as OtlpSpan
    assert.equal(root.parentSpanId ?? '', '', 'a new trace: the root has no parent')
    assert.equal(root.kind, 2, 'SERVER')
    const upstream = byName.get('GET') as OtlpSpan
    assert.equal(upstream.kind, 3, 'CLIENT')
    assert.equal(upstream.spanId, parentId, "the upstream's traceparent names the upstream span")
    for (const name of ['request phase', 'response phase', 'log phase', 'GET'])
      assert.equal(byName.get(name)?.parentSpanId, root.spanId, `${name} is a child of the request`)
    const phase = byName.get('request phase') as OtlpSpan
    assert.deepEqual(
      phase.events.map((e) => attr(e.attributes, 'portcullis.policy')),
      // by priority (docs/policies/README.md): overload-shedding, rate-limit 7000, authorize 6500
      ['overload-shedding', 'rate-limit', 'authorize'],
      'one event per policy, in the order they ran',
    )
    for (const e of phase.events) {
      assert.equal(attr(e.attributes, 'portcullis.outcome'), 'pass')
      assert.equal(typeof attr(e.attributes, 'portcullis.duration_ms'), 'number')
    }
    // Times nest: the request phase and the upstream call inside the request.
    const t = (s: OtlpSpan, k: 'startTimeUnixNano' | 'endTimeUnixNano') => BigInt(s[k])
    assert.ok(t(phase, 'startTimeUnixNano') >= t(root, 'startTimeUnixNano'))
    assert.ok(t(upstream, 'startTimeUnixNano') >= t(phase, 'endTimeUnixNano'))
    assert.ok(t(upstream, 'endTimeUnixNano') <= t(root, 'endTimeUnixNano'))
    assert.equal(attr(root.attributes, 'http.response.status_code'), 200)
    assert.equal(attr(root.attributes, 'http.route'), 'three')
    assert.equal(attr(upstream.attributes, 'server.address'), '127.0.0.1')
    // No secret, no query anywhere in what was exported.
    const exported = JSON.stringify(spans)
    assert.ok(!exported.includes(SECRET), 'the key in the path and the user agent is masked')
    assert.ok(!exported.includes('q=1') && !exported.includes('token='), 'no query')
    assert.ok(receiver.services.has('portcullis'))
    assert.ok(
      receiver.requests.every((x) => x.contentType === 'application/json' && x.auth === 'receiver-key'),
    )
  })

  test("a caller's sampled trace is joined; the upstream's parent is the gateway's span", async () => {
    up.clear()
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736'
    const callerSpan = '00f067aa0ba902b7'
    const r = await fetch(`${gw.url}/three/x`, {
      headers: { 'x-client': 'b', traceparent: `00-${callerTrace}-${callerSpan}-01`, tracestate: 'k=v' },
    })
    assert.equal(r.status, 200)
    const seen = up.requests[0]
    assert.ok(seen)
    assert.match(String(seen.headers.traceparent), new RegExp(`^00-${callerTrace}-[0-9a-f]{16}-01$`))
    assert.notEqual(String(seen.headers.traceparent).split('-')[2], callerSpan)
    assert.equal(seen.headers.tracestate, 'k=v', 'tracestate passes unchanged')
    const spans = await spansOf(callerTrace, 5)
    const root = spans.find((s) => s.kind === 2)
    assert.equal(root?.parentSpanId, callerSpan, "the gateway's span is a child of the caller's")
  })

  test('a denial is traced: the policy that refused, its code, no upstream span', async () => {
    up.clear()
    let traceId = ''
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${gw.url}/three/x`, {
        headers: {
          'x-client': 'limited',
          traceparent: `00-${'ab'.repeat(15)}${String(i).padStart(2, '0')}-${'cd'.repeat(8)}-01`,
        },
      })
      if (r.status === 429) traceId = `${'ab'.repeat(15)}${String(i).padStart(2, '0')}`
    }
    assert.ok(traceId, 'the fourth request was refused')
    const spans = await spansOf(traceId, 4)
    assert.ok(!spans.some((s) => s.kind === 3), 'no upstream span')
    const phase = spans.find((s) => s.name === 'request phase')
    const last = phase?.events.at(-1)
    assert.equal(attr(last?.attributes, 'portcullis.policy'), 'rate-limit')
    assert.equal(attr(last?.attributes, 'portcullis.outcome'), 'deny')
    assert.equal(attr(last?.attributes, 'portcullis.error_code'), 'GW_ERR_RATE_LIMITED')
    const root = spans.find((s) => s.kind === 2)
    assert.equal(attr(root?.attributes, 'http.response.status_code'), 429)
    assert.equal(attr(root?.attributes, 'portcullis.error_code'), 'GW_ERR_RATE_LIMITED')
  })

  test('sampling: an unsampled caller is not traced and its traceparent passes unchanged', async () => {
    up.clear()
    const before = receiver.spans.length
    const unsampled = `00-${'12'.repeat(16)}-${'34'.repeat(8)}-00`
    const r = await fetch(`${gw.url}/three/y`, { headers: { 'x-client': 'c', traceparent: unsampled } })
    assert.equal(r.status, 200)
    assert.equal(up.requests[0]?.headers.traceparent, unsampled)
    gw.running.gateway.flushLogs()
    await gw.running.tracing?.flush()
    assert.equal(receiver.spans.filter((s) => s.traceId === '12'.repeat(16)).length, 0)
    assert.ok(receiver.spans.length >= before)
  })
})

describe('tracing: sampleRatio 0 without a caller decision', () => {
  test('nothing is traced, no traceparent is invented', async () => {
    const g = await startTestGateway(up.url, {
      configYaml: config(up.url, receiver.url, 0),
      logger: pino({ level: 'silent' }),
    })
    try {
      up.clear()
      const before = receiver.spans.length
      for (let i = 0; i < 20; i++)
        assert.equal((await fetch(`${g.url}/three/z`, { headers: { 'x-client': `z${i}` } })).status, 200)
      g.running.gateway.flushLogs()
      await g.running.tracing?.flush()
      assert.equal(receiver.spans.length, before)
      assert.ok(up.requests.every((x) => x.headers.traceparent === undefined))
    } finally {
      await g.close()
    }
  })
})
