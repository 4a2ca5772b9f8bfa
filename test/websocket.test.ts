/**
 * WebSocket pass-through (issue 19), through the real gateway to a real WebSocket echo server
 * (the `ws` package) on 127.0.0.1:
 *
 * - a route with `websocket:` and JWT auth: a valid token connects and echoes (text, and a 256 KiB
 *   binary message); a missing or invalid token gets 401 before any upgrade (the upstream never
 *   sees the handshake);
 * - a route without `websocket:` answers 501 to a handshake, and forwards nothing;
 * - authorize (403 without the role), ip-filter (403) and rate-limit (429) apply to the handshake; an upstream that answers 200
 *   instead of 101 opens no tunnel (502);
 * - caps: `maxConnectionsPerClient` (429) and `maxConnections` (503); a slot is free again once
 *   its connection closed;
 * - the idle timeout closes a silent connection;
 * - a reload that removes a route closes its connections, and leaves the other routes' open.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { SignJWT } from 'jose'
import WebSocket, { WebSocketServer } from 'ws'
import { tempDir } from './helpers/process.js'
import { startTestGateway, type TestGateway } from './helpers/servers.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const SECRET = 'websocket-test-secret-0123456789abcdefgh'

let upstream: WebSocketServer
/** An HTTP server that answers every request (upgrades included) with 200: it never upgrades. */
let plain: TestUpstream
/** The TLS listener's throw-away certificate. */
let certDir = ''
/** Handshakes the upstream accepted: their request path. */
const handshakes: string[] = []
let gw: TestGateway
let token = ''

function config(upPort: number, withGone: boolean): string {
  // "short": HTTP timeouts far below the tunnel's life (they must not apply to a tunnel).
  return `listeners:
  - { name: public, host: 127.0.0.1, port: 0 }
  - { name: short, host: 127.0.0.1, port: 0, headersTimeout: 300ms, requestTimeout: 300ms, keepAliveTimeout: 200ms }
  - { name: tlsh2, host: 127.0.0.1, port: 0, tls: { cert: "${join(certDir, 'c.pem')}", key: "${join(certDir, 'k.key')}" }, http2: {} }
admin: { enabled: false }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${upPort}" } ] }
  plainhttp: { targets: [ { url: "${plain.url}" } ] }
routes:
  - name: chat
    match: { pathPrefix: /chat }
    upstream: up
    websocket: { maxConnectionsPerClient: 2 }
    policies:
      jwt-auth:
        algorithms: [HS256]
        issuer: https://issuer.example
        audience: api
        keys:
          - jwk: '{"kty":"oct","k":"${Buffer.from(SECRET).toString('base64url')}"}'
  - name: admin
    match: { pathPrefix: /admin-ws }
    upstream: up
    websocket: {}
    policies:
      jwt-auth:
        algorithms: [HS256]
        issuer: https://issuer.example
        audience: api
        keys:
          - jwk: '{"kty":"oct","k":"${Buffer.from(SECRET).toString('base64url')}"}'
      authorize: { rules: [ { match: { pathPrefix: /admin-ws }, roles: [admin] } ] }
  - name: denied
    match: { pathPrefix: /denied }
    upstream: up
    websocket: {}
    policies: { ip-filter: { deny: [127.0.0.0/8] } }
  - name: limited
    match: { pathPrefix: /limited }
    upstream: up
    websocket: {}
    policies: { rate-limit: { limits: [ { rate: 2, per: minute } ] } }
  - { name: refuses, match: { pathPrefix: /refuses }, upstream: plainhttp, websocket: {} }
  - { name: quiet, match: { pathPrefix: /quiet }, upstream: up, websocket: { idleTimeout: 1s } }
${withGone ? '  - { name: gone, match: { pathPrefix: /gone }, upstream: up, websocket: { maxConnections: 2 } }\n' : ''}  - { name: plain, match: { pathPrefix: / }, upstream: up }
accessLog: { enabled: false }
reload: { watch: false }
log: { level: silent }
`
}

before(async () => {
  certDir = tempDir('pc-ws-')
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost'].concat([
      '-keyout',
      join(certDir, 'k.key'),
      '-out',
      join(certDir, 'c.pem'),
    ]),
    { stdio: 'ignore' },
  )
  plain = await startUpstream()
  upstream = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((r) => upstream.once('listening', r))
  upstream.on('connection', (ws, req) => {
    handshakes.push(req.url ?? '')
    ws.on('message', (data, binary) => ws.send(data, { binary }))
  })
  const upPort = (upstream.address() as AddressInfo).port
  gw = await startTestGateway('', { configYaml: config(upPort, true) })
  token = await new SignJWT({ sub: 'alice', iss: 'https://issuer.example', aud: 'api' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET))
})

after(async () => {
  await gw?.close()
  for (const c of upstream?.clients ?? []) c.terminate()
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()))
  await plain?.close()
})

const wsUrl = (path: string) => `ws://127.0.0.1:${gw.port}${path}`

/** Opens a WebSocket; resolves once open, or with the HTTP answer that refused it. */
function connect(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ ws: WebSocket } | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(path), { headers })
    ws.once('open', () => resolve({ ws }))
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        body += d
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    ws.once('error', reject)
  })
}

async function open(path: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const r = await connect(path, headers)
  assert.ok('ws' in r, `expected an open WebSocket, got ${JSON.stringify(r)}`)
  return r.ws
}

function echo(ws: WebSocket, data: string | Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    ws.once('message', (d) => resolve(Buffer.isBuffer(d) ? d : Buffer.from(d as ArrayBuffer)))
    ws.once('error', reject)
    ws.send(data)
  })
}

function closed(ws: WebSocket, timeoutMs = 15_000): Promise<number> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(-1)
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('not closed in time')), timeoutMs)
    ws.once('close', (code) => {
      clearTimeout(t)
      resolve(code)
    })
  })
}

async function closeAll(...sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map((ws) => {
      const done = closed(ws)
      ws.close()
      return done
    }),
  )
}

describe('a WebSocket route with JWT auth', () => {
  it('a valid token connects and echoes text and binary messages', async () => {
    const ws = await open('/chat/room?x=1', { authorization: `Bearer ${token}` })
    assert.equal((await echo(ws, 'hello')).toString(), 'hello')
    const big = Buffer.alloc(256 * 1024, 7)
    assert.ok((await echo(ws, big)).equals(big))
    assert.ok(handshakes.includes('/chat/room?x=1'))
    await closeAll(ws)
  })

  it('a missing or invalid token gets 401 before any upgrade; the upstream never sees it', async () => {
    const before = handshakes.length
    const missing = await connect('/chat/nobody')
    assert.ok('status' in missing)
    assert.equal(missing.status, 401)
    assert.equal(JSON.parse(missing.body).code, 'GW_ERR_AUTH_MISSING')
    const bad = await connect('/chat/nobody', { authorization: `Bearer ${token.slice(0, -4)}AAAA` })
    assert.ok('status' in bad)
    assert.equal(bad.status, 401)
    assert.equal(JSON.parse(bad.body).code, 'GW_ERR_AUTH_INVALID')
    assert.equal(handshakes.length, before, 'no handshake reached the upstream')
  })

  it('wss on a TLS listener that also serves HTTP/2 (a WebSocket client speaks HTTP/1.1 there)', async () => {
    const l = gw.running.listeners.find((x) => x.name === 'tlsh2')
    assert.ok(l)
    const ws = new WebSocket(`${l.url.replace('https', 'wss')}/chat/tls`, {
      headers: { authorization: `Bearer ${token}` },
      rejectUnauthorized: false,
    })
    await new Promise((r, j) => {
      ws.once('open', r)
      ws.once('error', j)
    })
    assert.equal((await echo(ws, 'over tls')).toString(), 'over tls')
    await closeAll(ws)
    const refused = new WebSocket(`${l.url.replace('https', 'wss')}/chat/tls`, { rejectUnauthorized: false })
    const status = await new Promise<number>((r, j) => {
      refused.once('unexpected-response', (_q, res) => r(res.statusCode ?? 0))
      refused.once('open', () => j(new Error('opened without a token')))
      refused.once('error', j)
    })
    assert.equal(status, 401)
  })

  it('a route without `websocket:` answers 501 and forwards nothing', async () => {
    const before = handshakes.length
    const r = await connect('/plain-route')
    assert.ok('status' in r)
    assert.equal(r.status, 501)
    assert.equal(JSON.parse(r.body).code, 'GW_ERR_NOT_IMPLEMENTED')
    assert.equal(handshakes.length, before)
  })
})

describe('other request-phase policies on the handshake', () => {
  it('authorize: a valid token without the role gets 403; one with it connects', async () => {
    const before = handshakes.length
    const r = await connect('/admin-ws/x', { authorization: `Bearer ${token}` })
    assert.ok('status' in r)
    assert.equal(r.status, 403)
    assert.equal(handshakes.length, before)
    const admin = await new SignJWT({
      sub: 'root',
      iss: 'https://issuer.example',
      aud: 'api',
      roles: ['admin'],
    })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(SECRET))
    const ws = await open('/admin-ws/x', { authorization: `Bearer ${admin}` })
    assert.equal((await echo(ws, 'admin')).toString(), 'admin')
    await closeAll(ws)
  })

  it('ip-filter: a denied address gets 403, nothing upgraded', async () => {
    const before = handshakes.length
    const r = await connect('/denied/x')
    assert.ok('status' in r)
    assert.equal(r.status, 403)
    assert.equal(JSON.parse(r.body).code, 'GW_ERR_IP_NOT_ALLOWED')
    assert.equal(handshakes.length, before)
  })

  it('rate-limit: handshakes count as requests (2 per minute: the third gets 429)', async () => {
    const a = await open('/limited/1')
    const b = await open('/limited/2')
    const c = await connect('/limited/3')
    assert.ok('status' in c)
    assert.equal(c.status, 429)
    assert.equal(JSON.parse(c.body).code, 'GW_ERR_RATE_LIMITED')
    await closeAll(a, b)
  })

  it('an upstream that answers 200 instead of 101 gets no tunnel: 502, connection closed', async () => {
    // The "WebSocket smuggling" shape: a proxy that keeps the connection open as a tunnel after a
    // failed upgrade lets the client talk to the upstream unchecked. Only a 101 opens a tunnel.
    const r = await connect('/refuses/x')
    assert.ok('status' in r)
    assert.equal(r.status, 502)
    assert.equal(JSON.parse(r.body).code, 'GW_ERR_UPSTREAM_UNAVAILABLE')
    assert.ok(plain.received.includes('/refuses/x'), 'the upstream saw the handshake')
    assert.equal(gw.running.gateway.tunnels.size, 0)
  })
})

describe('hostile handshakes', () => {
  it('a handshake pipelined behind a request in progress closes the connection; the gateway serves on', async () => {
    // Node hands the upgrade over while the first response is still being written on the socket:
    // answering it there would throw (ERR_HTTP_SOCKET_ASSIGNED) and, uncaught, stop the process.
    const { connect: tcp } = await import('node:net')
    const s = tcp(gw.port, '127.0.0.1')
    const gone = new Promise<void>((r) => s.on('close', () => r()))
    s.on('error', () => undefined)
    s.write(
      'GET /plain-slow HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /quiet/p HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    const timedOut = await Promise.race([
      gone.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), 10_000).unref()),
    ])
    s.destroy()
    assert.equal(timedOut, false, 'the gateway closed the connection')
    const ws = await open('/quiet/after')
    assert.equal((await echo(ws, 'alive')).toString(), 'alive')
    await closeAll(ws)
  })
})

/** A raw handshake on a new connection; the status line the gateway answered, or '' when it closed without one. */
async function rawHandshake(lines: string[]): Promise<string> {
  const { connect: tcp } = await import('node:net')
  const s = tcp(gw.port, '127.0.0.1')
  s.on('error', () => undefined)
  let got = ''
  s.on('data', (d: Buffer) => {
    got += d.toString('latin1')
  })
  const gone = new Promise<void>((r) => s.on('close', () => r()))
  s.write(`${lines.join('\r\n')}\r\n\r\n`)
  await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000).unref())])
  s.destroy()
  return got.split('\r\n')[0] ?? ''
}

describe('malformed handshakes', () => {
  const base = ['GET /quiet/m HTTP/1.1', 'Host: x', 'Upgrade: websocket', 'Connection: Upgrade']
  const key = ['Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13']
  it('a handshake with a body (Content-Length or Transfer-Encoding) gets 400, nothing upgraded', async () => {
    const before = handshakes.length
    assert.match(await rawHandshake([...base, ...key, 'Content-Length: 5']), /^HTTP\/1\.1 400 /)
    assert.match(await rawHandshake([...base, ...key, 'Transfer-Encoding: chunked']), /^HTTP\/1\.1 400 /)
    assert.equal(handshakes.length, before)
  })
  it('a handshake without Sec-WebSocket-Key or -Version gets 400', async () => {
    assert.match(await rawHandshake([...base, 'Sec-WebSocket-Version: 13']), /^HTTP\/1\.1 400 /)
    assert.match(
      await rawHandshake([...base, 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']),
      /^HTTP\/1\.1 400 /,
    )
  })
})

describe('caps and timeouts', () => {
  it('maxConnectionsPerClient: the third connection from one client gets 429; a slot frees on close', async () => {
    const auth = { authorization: `Bearer ${token}` }
    const a = await open('/chat/a', auth)
    const b = await open('/chat/b', auth)
    const c = await connect('/chat/c', auth)
    assert.ok('status' in c)
    assert.equal(c.status, 429)
    assert.equal(JSON.parse(c.body).code, 'GW_ERR_CONCURRENCY_LIMITED')
    await closeAll(a)
    // The gateway frees the slot when it sees the close; poll (bounded) until a new one opens.
    let d: WebSocket | undefined
    for (let i = 0; i < 100 && d === undefined; i++) {
      const r = await connect('/chat/d', auth)
      if ('ws' in r) d = r.ws
      else await new Promise((res) => setTimeout(res, 50))
    }
    assert.ok(d, 'a connection opened once a slot was free')
    assert.equal((await echo(d, 'again')).toString(), 'again')
    await closeAll(b, d)
  })

  it('maxConnections: a route full of connections answers 503', async () => {
    const a = await open('/gone/1')
    const b = await open('/gone/2')
    const c = await connect('/gone/3')
    assert.ok('status' in c)
    assert.equal(c.status, 503)
    assert.equal(JSON.parse(c.body).code, 'GW_ERR_OVERLOADED')
    await closeAll(a, b)
  })

  it('the idle timeout closes a silent connection; traffic keeps one open', async () => {
    const silent = await open('/quiet/s')
    const busy = await open('/quiet/b')
    const silentClosed = closed(silent)
    // The busy one talks every 200 ms for 1.6 s (the idle timeout is 1 s), then stops.
    for (let i = 0; i < 8; i++) {
      assert.equal((await echo(busy, `m${i}`)).toString(), `m${i}`)
      await new Promise((r) => setTimeout(r, 200))
    }
    assert.equal(busy.readyState, WebSocket.OPEN, 'the busy connection is still open')
    await silentClosed
    await closed(busy)
  })

  it("the listener's HTTP timeouts (300 ms) do not cut a tunnel that outlives them", async () => {
    const short = gw.running.listeners.find((l) => l.name === 'short')
    assert.ok(short)
    const ws = new WebSocket(`${short.url.replace('http', 'ws')}/chat/long`, {
      headers: { authorization: `Bearer ${token}` },
    })
    await new Promise((r, j) => {
      ws.once('open', r)
      ws.once('error', j)
    })
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 200))
      assert.equal((await echo(ws, `t${i}`)).toString(), `t${i}`)
    }
    await closeAll(ws)
  })
})

describe('reload', () => {
  it('a reload that removes a route closes its connections; other routes stay open', async () => {
    const gone = await open('/gone/x')
    const chat = await open('/chat/stays', { authorization: `Bearer ${token}` })
    const goneClosed = closed(gone)
    writeFileSync(gw.configFile, config((upstream.address() as AddressInfo).port, false))
    assert.equal(await gw.running.reload('test'), true)
    await goneClosed
    assert.equal((await echo(chat, 'still here')).toString(), 'still here')
    const r = await connect('/gone/y')
    assert.ok('status' in r)
    assert.equal(r.status, 501, 'the path now falls to the plain route')
    await closeAll(chat)
  })
})
