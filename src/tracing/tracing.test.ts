/**
 * The spans a sampled request makes, built as finished records (span-record.ts) and handed to
 * OpenTelemetry's own span processor: their ids, times, parents and statuses,
 * and their masking (test/tracing.test.ts runs the whole path, OTLP export included, against a
 * receiver over HTTP).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { millisToHrTime } from '@opentelemetry/core'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { hrTime, newSpanId, newTraceId, SpanRecord } from './span-record.js'
import { RequestTrace, type TracedRequest } from './tracing.js'

const SECRET = ['sk', 'live', '51H8sKdJ2eZvKYlo2C9hXqRtYzA0bC1dE2fG3hI4'].join('_')

function parts(): { exporter: InMemorySpanExporter; sdk: ConstructorParameters<typeof RequestTrace>[0] } {
  const exporter = new InMemorySpanExporter()
  return {
    exporter,
    sdk: {
      processor: new SimpleSpanProcessor(exporter),
      resource: resourceFromAttributes({ 'service.name': 'unit' }),
      scope: { name: 'portcullis' },
    },
  }
}

function request(over: Partial<TracedRequest> = {}): TracedRequest {
  return {
    method: 'GET',
    startTime: performance.now(),
    req: { headers: { 'user-agent': `curl (${SECRET})` }, url: `/orders/${SECRET}?q=1` },
    clientIp: '127.0.0.1',
    id: 'req-1',
    path: `/orders/${SECRET}`,
    host: 'api.example.test',
    routeName: 'orders',
    errorCode: undefined,
    principal: undefined,
    upstreamMs: 1.5,
    trace: undefined,
    traceId: undefined,
    ...over,
  }
}

describe('span records', () => {
  test('hrTime is the epoch time the SDK computes from the same instant, to the microsecond', () => {
    for (const t of [
      0,
      0.0004,
      1.2345678,
      999.9999999,
      123456.789,
      performance.now(),
      86_400_000 * 40 + 0.5,
    ]) {
      const ours = hrTime(t)
      const sdk = millisToHrTime(performance.timeOrigin + t)
      assert.ok(ours[1] >= 0 && ours[1] < 1e9 && Number.isInteger(ours[1]), `nanoseconds in range: ${ours}`)
      const diffNs = (ours[0] - sdk[0]) * 1e9 + (ours[1] - sdk[1])
      assert.ok(Math.abs(diffNs) <= 1000, `${t} ms: ${ours} vs ${sdk}`)
    }
  })

  test('ids: lower-case hex of the W3C lengths, never all zero, not repeated', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 3000; i++) {
      const t = newTraceId()
      const s = newSpanId()
      assert.match(t, /^[0-9a-f]{32}$/)
      assert.match(s, /^[0-9a-f]{16}$/)
      assert.notEqual(t, '0'.repeat(32))
      assert.ok(!seen.has(t) && !seen.has(s))
      seen.add(t).add(s)
    }
  })

  test('duration: end − start, carried across a second', () => {
    const { sdk } = parts()
    const ctx = { traceId: newTraceId(), spanId: newSpanId(), traceFlags: 1 }
    const r = new SpanRecord(sdk, ctx, undefined, 'x', 0, [10, 900_000_000], [12, 100_000_000], {})
    assert.deepEqual(r.duration, [1, 200_000_000])
    assert.equal(r.spanContext(), ctx)
  })
})

describe('RequestTrace', () => {
  test('a request retried on a second target: one trace, every phase, two CLIENT spans', () => {
    const { exporter, sdk } = parts()
    const remote = { traceId: newTraceId(), spanId: newSpanId(), traceFlags: 1, isRemote: true }
    const root = { traceId: remote.traceId, spanId: newSpanId(), traceFlags: 1, isRemote: false }
    const ctx = request()
    const t = new RequestTrace(sdk, root, remote)
    t.requestStart = performance.now()
    t.hook('rate-limit', t.requestStart, t.requestStart + 0.01)
    t.hook('authorize', t.requestStart + 0.01, t.requestStart + 0.02)
    t.requestEnd = t.requestStart + 0.02
    const tp1 = t.startUpstream('GET', 'http://10.0.0.1:8080', `/orders/${SECRET}?q=1`, 1)
    const tp2 = t.startUpstream('GET', 'http://user:hunter2secret@10.0.0.2', `/orders/${SECRET}?q=1`, 2)
    t.responseStart = performance.now()
    t.responseEnd = t.responseStart + 0.005
    t.finish(ctx, 200, 'allow', performance.now() - ctx.startTime, performance.now(), { in: 0, out: 10 })

    const spans = exporter.getFinishedSpans()
    const names = spans.map((s) => s.name).sort()
    assert.deepEqual(names, ['GET', 'GET', 'GET orders', 'log phase', 'request phase', 'response phase'])
    const server = spans.find((s) => s.kind === 1) as ReadableSpan
    assert.equal(server.spanContext().spanId, root.spanId)
    assert.equal(server.parentSpanContext?.spanId, remote.spanId, "the request's span is the caller's child")
    for (const s of spans) {
      assert.equal(s.spanContext().traceId, remote.traceId, `${s.name}: the caller's trace`)
      if (s !== server)
        assert.equal(s.parentSpanContext?.spanId, root.spanId, `${s.name}: a child of the request`)
    }
    const clients = spans.filter((s) => s.kind === 2)
    assert.equal(clients.length, 2)
    const [first, second] = clients as [ReadableSpan, ReadableSpan]
    assert.equal(tp1, `00-${remote.traceId}-${first.spanContext().spanId}-01`)
    assert.equal(tp2, `00-${remote.traceId}-${second.spanContext().spanId}-01`)
    assert.equal(first.status.code, 2, 'the retried attempt ended in error')
    assert.equal(first.attributes['http.request.resend_count'], 0)
    assert.equal(second.attributes['http.request.resend_count'], 1)
    assert.equal(second.status.code, 0)
    assert.equal(second.attributes['http.response.status_code'], 200)
    assert.equal(first.attributes['server.port'], 8080)
    assert.equal(second.attributes['server.port'], 80)
    // The first attempt ends where the second starts; the last one with the request.
    assert.deepEqual(first.endTime, second.startTime)
    assert.deepEqual(second.endTime, server.endTime)
    const phase = spans.find((s) => s.name === 'request phase') as ReadableSpan
    assert.deepEqual(
      phase.events.map((e) => [e.name, e.attributes?.['portcullis.outcome']]),
      [
        ['policy rate-limit', 'pass'],
        ['policy authorize', 'pass'],
      ],
    )
    // No secret and no query in any name, attribute or event.
    const body = JSON.stringify(spans.map((s) => [s.name, s.attributes, s.events]))
    assert.ok(!body.includes(SECRET), 'the path and the user agent are masked')
    assert.ok(!body.includes('hunter2secret'), "the origin's credentials are masked")
    assert.ok(!body.includes('q=1'), 'no query')
    assert.match(String(server.attributes['url.path']), /^\/orders\//)
    assert.match(String(second.attributes['url.full']), /^http:\/\/.*10\.0\.0\.2\/orders\//)
  })

  test('a new trace (no caller): the request span has no parent; a 5xx without an answer is an error', () => {
    const { exporter, sdk } = parts()
    const root = { traceId: newTraceId(), spanId: newSpanId(), traceFlags: 1, isRemote: false }
    const ctx = request({ upstreamMs: -1, errorCode: 'GW_ERR_UPSTREAM_UNAVAILABLE' })
    const t = new RequestTrace(sdk, root, undefined)
    t.startUpstream('POST', 'https://backend.test', '/pay', 1)
    t.finish(ctx, 503, 'error', performance.now() - ctx.startTime, performance.now(), { in: 3, out: 0 })
    const spans = exporter.getFinishedSpans()
    const server = spans.find((s) => s.kind === 1) as ReadableSpan
    assert.equal(server.parentSpanContext, undefined)
    assert.equal(server.status.code, 2)
    assert.equal(server.attributes['portcullis.error_code'], 'GW_ERR_UPSTREAM_UNAVAILABLE')
    const client = spans.find((s) => s.kind === 2) as ReadableSpan
    assert.equal(client.name, 'POST')
    assert.equal(client.status.code, 2)
    assert.equal(client.attributes['http.response.status_code'], undefined)
    assert.equal(client.attributes['server.port'], 443)
    assert.ok(!spans.some((s) => s.name === 'request phase'), 'no request phase ran: none recorded')
  })
})
