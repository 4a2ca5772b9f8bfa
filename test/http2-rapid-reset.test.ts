/**
 * Rapid reset (CVE-2023-44487) against the gateway's HTTP/2 listener: attacker connections open
 * streams and cancel them (HEADERS + RST_STREAM, written as fast as the socket takes them: half
 * the connections in the same write, so the gateway finds the stream already cancelled, half one
 * event-loop turn later, so the request is under way, upstream included, when it is cancelled),
 * while another client keeps sending ordinary requests on its own connection. Bounded: 8
 * attacker connections × at most 3000 streams, 127.0.0.1 only; no timing is asserted, only work
 * and outcomes: each attacker connection is closed with GOAWAY(ENHANCE_YOUR_CALM) by the
 * gateway's own cap (rapidReset.maxResets = 50; nghttp2's own limit, about 1000, would answer
 * INTERNAL_ERROR), the upstream sees at most a cap's worth of attacker requests per connection,
 * and every request of the other client, during the flood and after, is answered 200.
 */
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { after, before, test } from 'node:test'
import { encodeHeaderBlock, FLAG, FRAME, frame, RawH2Connection, rstStreamFrame } from './helpers/raw-h2.js'
import { startTestGateway, type TestGateway } from './helpers/servers.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const MAX_RESETS = 50
const ATTACKERS = 8
const STREAMS_PER_ATTACKER = 3000

let up: TestUpstream
let gw: TestGateway

before(async () => {
  up = await startUpstream()
  gw = await startTestGateway(up.url, {
    configYaml: `listeners:
  - { name: h2, host: 127.0.0.1, port: 0, http2: { rapidReset: { maxResets: ${MAX_RESETS}, interval: 1m } } }
admin: { enabled: true, host: 127.0.0.1, port: 0 }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up } ]
accessLog: { enabled: false }
reload: { watch: false }
log: { level: silent }
`,
  })
})

after(async () => {
  await gw?.close()
  await up?.close()
})

/** One attacker connection: HEADERS + RST_STREAM(CANCEL) pairs until the gateway closes it. */
async function attack(n: number): Promise<{ sent: number; goaway: number | undefined; closed: boolean }> {
  const c = await RawH2Connection.connect(gw.port)
  const block = encodeHeaderBlock([
    [':method', 'GET'],
    [':scheme', 'http'],
    [':authority', 'localhost'],
    [':path', `/slow?ms=200&attacker=${n}`],
  ])
  let sent = 0
  try {
    const late = n % 2 === 1
    while (sent < STREAMS_PER_ATTACKER && !c.closed && c.goaway === undefined) {
      const opens: Buffer[] = []
      const resets: Buffer[] = []
      for (let i = 0; i < 20; i++) {
        const id = c.newStreamId()
        opens.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, block))
        resets.push(rstStreamFrame(id, 8))
      }
      if (late) {
        c.write(Buffer.concat(opens))
        await new Promise((r) => setTimeout(r, 5))
        c.write(Buffer.concat(resets))
      } else c.write(Buffer.concat(opens.flatMap((o, i) => [o, resets[i] as Buffer])))
      sent += 20
      await new Promise((r) => setImmediate(r))
    }
    await c.until(() => c.closed || c.goaway !== undefined, 10_000)
    return { sent, goaway: c.goaway?.code, closed: c.closed }
  } finally {
    c.close()
  }
}

test('a rapid reset flood closes the attacking connections and leaves another client served', async () => {
  const victim = http2.connect(gw.url)
  victim.on('error', () => undefined)
  const statuses: number[] = []
  let duringFlood = 0
  let flooding = true
  const served = (async () => {
    // The other client: one request at a time on its own connection, through the whole flood.
    while (flooding || statuses.length < 20) {
      const status = await new Promise<number>((resolve) => {
        const s = victim.request({ ':path': '/echo?victim=1' })
        s.on('response', (h) => resolve(Number(h[':status'])))
        s.on('error', () => resolve(0))
        s.resume()
      })
      statuses.push(status)
      if (flooding) duringFlood++
      if (statuses.length > 5000) break
    }
  })()
  const results = []
  for (let i = 0; i < ATTACKERS; i++) results.push(await attack(i))
  flooding = false
  await served
  victim.close()

  for (const r of results) {
    assert.equal(
      r.goaway,
      http2.constants.NGHTTP2_ENHANCE_YOUR_CALM,
      `GOAWAY(ENHANCE_YOUR_CALM): ${JSON.stringify(r)}`,
    )
  }
  // Work bound: attacker streams that reached the upstream, per connection, at most the cap (+1,
  // the one that tripped it).
  const attackerRequests = up.received.filter((u) => u.includes('attacker='))
  for (let i = 0; i < ATTACKERS; i++) {
    const n = attackerRequests.filter((u) => u.endsWith(`attacker=${i}`)).length
    assert.ok(n <= MAX_RESETS + 1, `attacker ${i}: ${n} requests reached the upstream`)
  }
  assert.ok(statuses.length >= 20, `the other client made ${statuses.length} requests`)
  assert.ok(duringFlood > 0, 'the other client was answered while the flood ran')
  assert.deepEqual(
    statuses.filter((s) => s !== 200),
    [],
    'every request of the other client was answered 200',
  )
  const metrics = await (await fetch(`${gw.running.admin?.url}/metrics`)).text()
  const closed = Number(
    /portcullis_http2_sessions_closed_total\{reason="rapid_reset"\} (\d+)/.exec(metrics)?.[1],
  )
  assert.equal(closed, ATTACKERS)
  console.log(
    `rapid reset: ${ATTACKERS} attacker connections sent ${results.map((r) => r.sent).join(', ')} ` +
      `HEADERS+RST_STREAM pairs before GOAWAY(ENHANCE_YOUR_CALM); ${attackerRequests.length} attacker ` +
      `requests reached the upstream; the other client got ${statuses.length} answers ` +
      `(${duringFlood} during the flood), all 200`,
  )
})

test('after the flood the gateway has nothing in flight and serves a new connection', async () => {
  const deadline = Date.now() + 10_000
  while (gw.running.gateway.inFlight !== 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20))
  assert.equal(gw.running.gateway.inFlight, 0)
  const c = http2.connect(gw.url)
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const s = c.request({ ':path': '/after' })
      s.on('response', (h) => resolve(Number(h[':status'])))
      s.on('error', reject)
      s.resume()
    })
    assert.equal(status, 200)
  } finally {
    c.close()
  }
})
