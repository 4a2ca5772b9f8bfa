/**
 * HTTP/2 listeners (issue 19), against the real gateway in this process:
 *
 * - TLS: ALPN offers h2 then http/1.1; an h2 client speaks HTTP/2, an HTTP/1.1 client (or one that
 *   offers no ALPN) HTTP/1.1, on the same port, and a policy (JWT auth) answers the same over both;
 * - plain: h2c with prior knowledge beside HTTP/1.1 on the same port; a listener without `http2`
 *   speaks no HTTP/2;
 * - limits: SETTINGS_MAX_CONCURRENT_STREAMS and SETTINGS_MAX_HEADER_LIST_SIZE are advertised; a
 *   client that opens more streams than allowed loses the connection and its extra stream is never
 *   forwarded; a header list over the limit gets 431 and the connection serves on;
 * - CONTINUATION flood (the 2024 class of attacks, CVE-2024-27316 and siblings): attacker
 *   connections send one HEADERS frame without END_HEADERS and then CONTINUATION frames without
 *   end (empty ones, and ones full of fields), while another client keeps sending requests: each
 *   attacker connection is closed after a bounded number of frames, no attacker request reaches
 *   the upstream, and every request of the other client is answered 200.
 *
 * Bounded: at most 4 × 20 000 frames of attack, 127.0.0.1 only, no timing asserted.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import https from 'node:https'
import http2 from 'node:http2'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type tls from 'node:tls'
import { SignJWT } from 'jose'
import { tempDir } from './helpers/process.js'
import { encodeHeaderBlock, FLAG, FRAME, frame, RawH2Connection } from './helpers/raw-h2.js'
import { startTestGateway, type TestGateway } from './helpers/servers.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const SECRET = 'http2-listener-test-secret-0123456789abcdef'
const MAX_STREAMS = 4
const FLOOD_CAP = 20_000

let up: TestUpstream
let gw: TestGateway
let tlsPort = 0
let h2cPort = 0
let h1Port = 0
let token = ''

function listenerPort(name: string): number {
  const l = gw.running.listeners.find((x) => x.name === name)
  assert.ok(l, `listener ${name}`)
  return Number(new URL(l.url).port)
}

before(async () => {
  up = await startUpstream()
  const dir = tempDir('pc-h2-')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-keyout',
      join(dir, 'k.key'),
      '-out',
      join(dir, 'c.pem'),
    ],
    { stdio: 'ignore' },
  )
  gw = await startTestGateway(up.url, {
    configYaml: `listeners:
  - { name: tls, host: 127.0.0.1, port: 0, tls: { cert: "${join(dir, 'c.pem')}", key: "${join(dir, 'k.key')}" }, http2: {} }
  - { name: h2c, host: 127.0.0.1, port: 0, http2: { maxConcurrentStreams: ${MAX_STREAMS}, maxHeaderListSize: 8192 } }
  - { name: h1, host: 127.0.0.1, port: 0 }
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: private
    match: { pathPrefix: /private }
    upstream: up
    policies:
      jwt-auth:
        algorithms: [HS256]
        issuer: https://issuer.example
        audience: api
        keys:
          - jwk: '{"kty":"oct","k":"${Buffer.from(SECRET).toString('base64url')}"}'
  - { name: all, match: { pathPrefix: / }, upstream: up }
accessLog: { enabled: false }
reload: { watch: false }
log: { level: silent }
`,
  })
  tlsPort = listenerPort('tls')
  h2cPort = listenerPort('h2c')
  h1Port = listenerPort('h1')
  token = await new SignJWT({ sub: 'alice', iss: 'https://issuer.example', aud: 'api' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET))
})

after(async () => {
  await gw?.close()
  await up?.close()
})

/** One HTTP/2 request with node:http2; the status and the negotiated ALPN protocol. */
async function h2Request(
  url: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; alpn: string | false | undefined; body: string }> {
  const c = http2.connect(url, { rejectUnauthorized: false })
  try {
    return await new Promise((resolve, reject) => {
      c.on('error', reject)
      const s = c.request({ ':path': path, ...headers })
      let status = 0
      let body = ''
      s.setEncoding('utf8')
      s.on('response', (h) => {
        status = Number(h[':status'])
      })
      s.on('data', (d: string) => {
        body += d
      })
      s.on('end', () => resolve({ status, alpn: c.alpnProtocol, body }))
      s.on('error', reject)
    })
  } finally {
    c.close()
  }
}

/** One HTTPS/1.1 request; the status and the ALPN protocol of the connection. */
function h1sRequest(
  path: string,
  alpn: string[] | undefined,
  headers: Record<string, string> = {},
): Promise<{ status: number; alpn: string | false; version: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: tlsPort,
        path,
        headers,
        rejectUnauthorized: false,
        servername: 'localhost',
        agent: false,
        ...(alpn ? { ALPNProtocols: alpn } : {}),
      },
      (res) => {
        const socket = res.socket as tls.TLSSocket
        res.resume()
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            alpn: socket.alpnProtocol ?? false,
            version: res.httpVersion,
          }),
        )
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe('ALPN on a TLS listener', () => {
  it('an h2 client gets HTTP/2; the route is proxied', async () => {
    const r = await h2Request(`https://localhost:${tlsPort}`, '/hello')
    assert.equal(r.alpn, 'h2')
    assert.equal(r.status, 200)
    assert.equal(JSON.parse(r.body).path, '/hello')
  })

  it('an HTTP/1.1 client (ALPN http/1.1, or none) gets HTTP/1.1 on the same port', async () => {
    const a = await h1sRequest('/hello', ['http/1.1'])
    assert.deepEqual(a, { status: 200, alpn: 'http/1.1', version: '1.1' })
    const b = await h1sRequest('/hello', undefined)
    assert.equal(b.status, 200)
    assert.equal(b.version, '1.1')
    assert.equal(b.alpn, false)
  })

  it('JWT auth answers the same over both protocols: 401 without a token, 200 with one', async () => {
    const url = `https://localhost:${tlsPort}`
    assert.equal((await h2Request(url, '/private/x')).status, 401)
    assert.equal((await h1sRequest('/private/x', ['http/1.1'])).status, 401)
    const auth = { authorization: `Bearer ${token}` }
    assert.equal((await h2Request(url, '/private/x', auth)).status, 200)
    assert.equal((await h1sRequest('/private/x', ['http/1.1'], auth)).status, 200)
  })
})

describe('h2c prior knowledge on a plain listener', () => {
  it('HTTP/2 with prior knowledge and HTTP/1.1 share the port', async () => {
    const r = await h2Request(`http://127.0.0.1:${h2cPort}`, '/h2c')
    assert.equal(r.status, 200)
    const res = await fetch(`http://127.0.0.1:${h2cPort}/h1`)
    assert.equal(res.status, 200)
    assert.equal(((await res.json()) as { path: string }).path, '/h1')
  })

  it('a listener without http2 speaks no HTTP/2 (the preface is refused, nothing forwarded)', async () => {
    const before = up.received.length
    const c = await RawH2Connection.connect(h1Port)
    const r = await c.request(
      [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':authority', 'localhost'],
        [':path', '/never'],
      ],
      { timeoutMs: 3000 },
    )
    await c.until(() => c.closed, 5000)
    c.close()
    assert.equal(r.status, undefined)
    assert.ok(c.closed, 'the connection was closed')
    assert.equal(up.received.slice(before).includes('/never'), false)
  })
})

describe('limits', () => {
  it('SETTINGS advertise the concurrency and header list limits', async () => {
    const c = http2.connect(`http://127.0.0.1:${h2cPort}`)
    try {
      const settings = await new Promise<http2.Settings>((resolve, reject) => {
        c.once('remoteSettings', resolve)
        c.once('error', reject)
      })
      assert.equal(settings.maxConcurrentStreams, MAX_STREAMS)
      assert.equal(settings.maxHeaderListSize, 8192)
      assert.equal(settings.enablePush, false)
    } finally {
      c.close()
    }
  })

  it('a client over maxConcurrentStreams loses the connection (GOAWAY); the extra stream is never forwarded', async () => {
    // RFC 9113 §5.1.2 lets a server answer either way: nghttp2 refuses the stream (REFUSED_STREAM)
    // while its SETTINGS are not yet acknowledged, and treats it as a connection error after
    // (PROTOCOL_ERROR, which Node reports as a session error: GOAWAY(INTERNAL_ERROR)).
    const c = await RawH2Connection.connect(h2cPort)
    try {
      // The server's SETTINGS, acknowledged by the client (the helper answers them).
      await c.until(() => c.frames.some((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0), 5000)
      const block = (i: number) =>
        encodeHeaderBlock([
          [':method', 'GET'],
          [':scheme', 'http'],
          [':authority', 'localhost'],
          [':path', `/slow?ms=300&concurrent=${i}`],
        ])
      const frames: Buffer[] = []
      for (let i = 0; i <= MAX_STREAMS; i++) {
        frames.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, c.newStreamId(), block(i)))
      }
      c.write(Buffer.concat(frames))
      await c.until(() => c.goaway !== undefined || c.closed, 10_000)
      const extra = c.stream(1 + 2 * MAX_STREAMS)
      const refused = extra.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM
      assert.ok(
        refused ||
          c.goaway?.code === http2.constants.NGHTTP2_PROTOCOL_ERROR ||
          c.goaway?.code === http2.constants.NGHTTP2_INTERNAL_ERROR,
        JSON.stringify({ goaway: c.goaway, extra }),
      )
      assert.equal(extra.status, undefined)
      assert.ok((c.goaway?.lastStreamId ?? 0) < 1 + 2 * MAX_STREAMS, 'the extra stream was not accepted')
      assert.equal(up.received.includes(`/slow?ms=300&concurrent=${MAX_STREAMS}`), false)
    } finally {
      c.close()
    }
  })

  it('a header list over maxHeaderListSize gets 431, the connection serves on', async () => {
    const c = await RawH2Connection.connect(h2cPort)
    try {
      const base: [string, string][] = [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':authority', 'localhost'],
      ]
      const big = await c.request([...base, [':path', '/big'], ['x-big', 'a'.repeat(9000)]])
      assert.equal(big.status, 431)
      assert.equal(big.code, 'GW_ERR_HEADERS_TOO_LARGE')
      const ok = await c.request([...base, [':path', '/small']])
      assert.equal(ok.status, 200)
      assert.equal(up.received.includes('/big'), false)
    } finally {
      c.close()
    }
  })
})

/** One attacker connection: HEADERS without END_HEADERS, then CONTINUATION frames until closed. */
async function continuationFlood(
  n: number,
  empty: boolean,
): Promise<{ sent: number; closed: boolean; goaway: number | undefined }> {
  const c = await RawH2Connection.connect(h2cPort)
  let sent = 0
  try {
    const id = c.newStreamId()
    c.write(
      frame(
        FRAME.HEADERS,
        FLAG.END_STREAM,
        id,
        encodeHeaderBlock([
          [':method', 'GET'],
          [':scheme', 'http'],
          [':authority', 'localhost'],
          [':path', `/echo?attacker=${n}`],
        ]),
      ),
    )
    while (sent < FLOOD_CAP && !c.closed && c.goaway === undefined) {
      const batch: Buffer[] = []
      for (let i = 0; i < 100; i++) {
        const payload = empty
          ? Buffer.alloc(0)
          : encodeHeaderBlock([[`x-flood-${sent + i}`, 'v'.repeat(100)]])
        batch.push(frame(FRAME.CONTINUATION, 0, id, payload))
      }
      if (!c.write(Buffer.concat(batch))) await new Promise((r) => c.socket.once('drain', r))
      sent += 100
      await new Promise((r) => setImmediate(r))
    }
    await c.until(() => c.closed || c.goaway !== undefined, 10_000)
    return { sent, closed: c.closed, goaway: c.goaway?.code }
  } finally {
    c.close()
  }
}

describe('CONTINUATION flood', () => {
  it('attacker connections are closed after a bounded number of frames; another client is served', async () => {
    const victim = http2.connect(`http://127.0.0.1:${h2cPort}`)
    victim.on('error', () => undefined)
    const statuses: number[] = []
    let flooding = true
    let duringFlood = 0
    const served = (async () => {
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
    for (let i = 0; i < 4; i++) results.push(await continuationFlood(i, i % 2 === 0))
    flooding = false
    await served
    victim.close()
    for (const r of results) {
      assert.ok(r.closed || r.goaway !== undefined, `attacker connection closed: ${JSON.stringify(r)}`)
      assert.ok(r.sent < FLOOD_CAP, `closed before the test's own cap: ${JSON.stringify(r)}`)
      assert.notEqual(r.goaway, http2.constants.NGHTTP2_NO_ERROR, 'an error GOAWAY, not a graceful one')
    }
    assert.equal(
      up.received.filter((u) => u.includes('attacker=')).length,
      0,
      'no attacker request forwarded',
    )
    assert.ok(duringFlood > 0, 'the other client was answered while the flood ran')
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'every request of the other client was answered 200',
    )
    console.log(
      `CONTINUATION flood: 4 attacker connections (empty frames, then 100-byte fields, alternating) ` +
        `closed after ${results.map((r) => r.sent).join(', ')} frames (GOAWAY codes ` +
        `${results.map((r) => r.goaway ?? 'none').join(', ')}); 0 attacker requests forwarded; the ` +
        `other client got ${statuses.length} answers (${duringFlood} during the flood), all 200`,
    )
  })
})
