/**
 * Every metric the gateway exposes, with every part that registers metrics switched on (audit
 * log, detectors, inventory, openapi-validation, leak-guard): names and types follow Prometheus'
 * conventions (counters end in `_total`, no gauge does, histograms carry a unit), process metrics
 * carry their usual names, every gateway metric is documented in docs/metrics.md, and the
 * per-request series count what was sent: bytes in to the byte, upstream latency only for what an
 * upstream answered.
 */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { formatKeyring, newKey } from '../src/audit/keyring.js'
import {
  type RecordingUpstream,
  startRecordingUpstream,
  startTestGateway,
  type TestGateway,
} from './helpers/servers.js'

const ROOT = new URL('../../', import.meta.url).pathname
const SPEC = join(ROOT, 'src/gateway/testdata/query-spec.yaml')

let up: RecordingUpstream
let gw: TestGateway
let adminUrl = ''

interface Family {
  name: string
  type: string
  help: string
  samples: { name: string; labels: Record<string, string>; value: number }[]
}

function parseExposition(text: string): Map<string, Family> {
  const out = new Map<string, Family>()
  let cur: Family | undefined
  for (const line of text.split('\n')) {
    let m = /^# HELP (\S+) (.*)$/.exec(line)
    if (m) {
      cur = { name: m[1] as string, type: '', help: m[2] as string, samples: [] }
      out.set(cur.name, cur)
      continue
    }
    m = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (m) {
      const f = out.get(m[1] as string) ?? { name: m[1] as string, type: '', help: '', samples: [] }
      f.type = m[2] as string
      out.set(f.name, f)
      cur = f
      continue
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m && cur) {
      const labels: Record<string, string> = {}
      for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
        labels[l[1] as string] = l[2] as string
      cur.samples.push({ name: m[1] as string, labels, value: Number(m[3]) })
    }
  }
  return out
}

async function scrape(): Promise<Map<string, Family>> {
  const r = await fetch(`${adminUrl}/metrics`)
  assert.equal(r.status, 200)
  return parseExposition(await r.text())
}

function value(f: Family | undefined, sample: string, labels: Record<string, string>): number {
  const s = f?.samples.find(
    (x) => x.name === sample && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
  )
  return s?.value ?? 0
}

/** Sends `raw` on a new connection and resolves the whole answer (the gateway closes it). */
function rawRequest(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(raw))
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
  const configYaml = `listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
  down: { targets: [ { url: "http://127.0.0.1:9" } ], retries: 0 }
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: up
    policies:
      leak-guard: { mode: monitor }
  - name: oa
    match: { pathPrefix: /oa }
    upstream: up
    policies:
      openapi-validation: { spec: "${SPEC}" }
  - { name: down, match: { pathPrefix: /down }, upstream: down }
accessLog: { enabled: false }
reload: { watch: false }
log: { level: silent }
audit:
  enabled: true
  keyring: { file: audit-keys.json }
detect: { enabled: true }
inventory: { enabled: true }
`
  // The audit keyring, beside the config startTestGateway writes (relative paths resolve there).
  gw = await startTestGateway(up.url, {
    configYaml,
    beforeStart: (dir: string) => {
      const key = newKey()
      writeFileSync(join(dir, 'audit-keys.json'), formatKeyring('k1', new Map([['k1', key]])))
    },
  })
  adminUrl = gw.running.admin?.url ?? ''
  assert.ok(adminUrl)
})

after(async () => {
  await gw?.close()
  await up?.close()
})

describe('metrics', () => {
  test('names and types follow the conventions; every gateway metric is documented', async () => {
    await fetch(`${gw.url}/api/x`)
    await fetch(`${gw.url}/oa?id=1`)
    await fetch(`${gw.url}/nowhere`)
    const families = await scrape()
    const doc = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8')
    const problems: string[] = []
    for (const f of families.values()) {
      if (!/^[a-z_][a-z0-9_]*$/.test(f.name)) problems.push(`${f.name}: not snake_case`)
      if (f.help === '') problems.push(`${f.name}: no HELP`)
      if (f.type === 'gauge' && f.name.endsWith('_total')) problems.push(`${f.name}: a gauge named _total`)
      if (f.type === 'counter' && !f.name.endsWith('_total'))
        problems.push(`${f.name}: a counter without _total`)
      if (f.type === 'histogram' && !/_(seconds|bytes)$/.test(f.name))
        problems.push(`${f.name}: histogram unit`)
      if (!/^(portcullis|process|nodejs)_/.test(f.name)) problems.push(`${f.name}: unknown prefix`)
      if (/^portcullis_(process|nodejs)_/.test(f.name)) problems.push(`${f.name}: process metric renamed`)
      if (f.name.startsWith('portcullis_') && !doc.includes(`\`${f.name}\``))
        problems.push(`${f.name}: not in docs/metrics.md`)
    }
    assert.deepEqual(problems, [])
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_gc_duration_seconds',
      'nodejs_version_info',
      'portcullis_requests_total',
      'portcullis_request_duration_seconds',
      'portcullis_upstream_duration_seconds',
      'portcullis_request_bytes_total',
      'portcullis_response_bytes_total',
      'portcullis_audit_records_written_total',
      'portcullis_audit_queue_length',
      'portcullis_openapi_violations_total',
      'portcullis_leaks_detected_total',
    ])
      assert.ok(families.has(name), `${name} is exposed`)
    // Every gateway metric the doc lists is one the gateway has (no stale row).
    for (const m of doc.matchAll(/^\| `(portcullis_[a-z_]+)` \|/gm))
      assert.ok(families.has(m[1] as string), `${m[1]} (documented) is exposed`)
  })

  test('bytes in to the byte, bytes out, upstream latency only for upstream answers', async () => {
    const port = Number(new URL(gw.url).port)
    const before = await scrape()
    const body = '{"hello":"world","n":12345}'
    const raw =
      'POST /api/items HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${body.length}\r\nX-Extra: one two\r\nConnection: close\r\n\r\n${body}`
    const answer = await rawRequest(port, raw)
    assert.match(answer, /^HTTP\/1\.1 200 /)
    // The upstream is down on /down: the gateway answers 502, no upstream head.
    assert.equal((await fetch(`${gw.url}/down/x`)).status, 502)
    const bytesOut = Buffer.byteLength(answer)
    // The log phase runs once per event-loop turn after the response closed: poll the counter.
    let now = before
    const deadline = Date.now() + 10000
    while (Date.now() < deadline) {
      now = await scrape()
      const inDelta =
        value(now.get('portcullis_request_bytes_total'), 'portcullis_request_bytes_total', { route: 'api' }) -
        value(before.get('portcullis_request_bytes_total'), 'portcullis_request_bytes_total', {
          route: 'api',
        })
      if (
        inDelta > 0 &&
        value(now.get('portcullis_requests_total'), 'portcullis_requests_total', { route: 'down' }) > 0
      )
        break
      await new Promise((r) => setTimeout(r, 50))
    }
    const delta = (family: string, sample: string, labels: Record<string, string>) =>
      value(now.get(family), sample, labels) - value(before.get(family), sample, labels)
    assert.equal(
      delta('portcullis_request_bytes_total', 'portcullis_request_bytes_total', { route: 'api' }),
      Buffer.byteLength(raw),
      'request line, headers and body, exactly',
    )
    assert.equal(
      delta('portcullis_response_bytes_total', 'portcullis_response_bytes_total', { route: 'api' }),
      bytesOut,
      'status line, headers and body, exactly',
    )
    const up = 'portcullis_upstream_duration_seconds'
    assert.equal(delta(up, `${up}_count`, { route: 'api', upstream: 'up' }), 1)
    assert.ok(delta(up, `${up}_sum`, { route: 'api', upstream: 'up' }) > 0)
    assert.equal(
      delta(up, `${up}_count`, { route: 'down', upstream: 'down' }),
      0,
      'no upstream answer, no sample',
    )
    assert.equal(
      delta('portcullis_requests_total', 'portcullis_requests_total', {
        route: 'down',
        status: '502',
        decision: 'error',
      }),
      1,
    )
  })
})
