/**
 * The egress proxy (issue 19, src/egress) with real servers on 127.0.0.1 and a test DNS server:
 * destination allowlist, addresses checked at connect time, TLS required (a CONNECT tunnel must
 * carry a ClientHello for its host) or originated by the proxy, timeouts and size caps, an audit
 * event per call, response validation against a third-party API's OpenAPI document. Then DNS
 * rebinding end to end: the gateway's ssrf-guard sees a public address, the application's fetch
 * would reach 127.0.0.1; through the egress proxy it does not.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import tls from 'node:tls'
import { Value } from '@sinclair/typebox/value'
import pino from 'pino'
import { memoryAudit } from '../src/audit/event.js'
import { EgressConfig } from '../src/egress/config.js'
import { type EgressProxy, startEgressProxy } from '../src/egress/proxy.js'
import { startDnsServer, type TestDnsServer } from './helpers/dns-server.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'

const SPEC = `
openapi: 3.1.0
info: { title: partner, version: '1' }
paths:
  /items:
    get:
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                required: [items]
                properties: { items: { type: array, items: { type: string } } }
  /items/bad:
    get:
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: { type: object, additionalProperties: false, properties: { items: { type: array } } }
`

async function listen(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return (server.address() as AddressInfo).port
}

/** A request through the proxy in absolute form. */
function viaProxy(
  proxy: string,
  url: string,
  opts: { method?: string; body?: string } = {},
): Promise<{ status: number; body: string; error?: string }> {
  const p = new URL(proxy)
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: p.hostname,
        port: p.port,
        method: opts.method ?? 'GET',
        path: url,
        agent: false,
        headers: {
          host: new URL(url).host,
          ...(opts.body ? { 'content-length': Buffer.byteLength(opts.body) } : {}),
        },
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        res.on('error', (e) => resolve({ status: res.statusCode ?? 0, body, error: e.message }))
        res.on('aborted', () => resolve({ status: res.statusCode ?? 0, body, error: 'aborted' }))
      },
    )
    req.on('error', (e) => resolve({ status: 0, body: '', error: e.message }))
    req.end(opts.body)
  })
}

/** Opens a CONNECT tunnel; the socket after `200`, or the refusal status. */
function tunnel(proxy: string, target: string): Promise<{ status: number; socket: Socket }> {
  const p = new URL(proxy)
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: p.hostname,
      port: p.port,
      method: 'CONNECT',
      path: target,
      agent: false,
    })
    req.on('connect', (res, socket) => resolve({ status: res.statusCode ?? 0, socket }))
    req.on('response', (res) => resolve({ status: res.statusCode ?? 0, socket: res.socket }))
    req.on('error', reject)
    req.end()
  })
}

function closedOrEnded(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let data = ''
    s.on('data', (c: Buffer) => {
      data += c.toString('latin1')
    })
    s.on('error', () => resolve(data))
    s.on('close', () => resolve(data))
  })
}

describe('egress proxy', () => {
  let dns: TestDnsServer
  let dir: string
  let api: http.Server
  let apiPort = 0
  let apiHits = 0
  let secure: https.Server
  let securePort = 0
  let secure2: https.Server
  let securePort2 = 0
  let slow: http.Server
  let slowPort = 0
  let proxy: EgressProxy
  const audit = memoryAudit()
  let cert: Buffer

  before(async () => {
    dir = tempDir('pc-egress-')
    writeFileSync(join(dir, 'partner.yaml'), SPEC)
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=secure.partner.test',
        '-addext',
        'subjectAltName=DNS:secure.partner.test',
        '-keyout',
        join(dir, 'secure.key'),
        '-out',
        join(dir, 'secure.pem'),
      ],
      { stdio: 'ignore' },
    )
    cert = readFileSync(join(dir, 'secure.pem'))
    dns = await startDnsServer({
      'api.partner.test': { a: ['127.0.0.1'] },
      'secure.partner.test': { a: ['127.0.0.1'] },
      'loop.partner.test': { a: ['127.0.0.2'] },
      'meta.partner.test': { a: ['169.254.169.254'] },
      'slow.partner.test': { a: ['127.0.0.1'] },
      'x.partner.test': { a: ['127.0.0.1'] },
      'origin.partner.test': { a: ['127.0.0.1'] },
    })
    api = http.createServer((req, res) => {
      apiHits++
      res.setHeader('content-type', 'application/json')
      if (req.url === '/items') return res.end(JSON.stringify({ items: ['a', 'b'] }))
      if (req.url === '/items/bad') return res.end(JSON.stringify({ items: [], debug: { sql: 'select *' } }))
      if (req.url === '/big') return res.end('x'.repeat(5000))
      if (req.url === '/redirect') {
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' })
        return res.end()
      }
      let n = 0
      req.on('data', (c: Buffer) => {
        n += c.length
      })
      req.on('end', () => res.end(JSON.stringify({ got: n, host: req.headers.host })))
    })
    apiPort = await listen(api)
    secure = https.createServer({ cert, key: readFileSync(join(dir, 'secure.key')) }, (req, res) =>
      res.end(JSON.stringify({ tls: true, url: req.url })),
    )
    securePort = await listen(secure)
    secure2 = https.createServer({ cert, key: readFileSync(join(dir, 'secure.key')) }, (req, res) =>
      res.end(JSON.stringify({ originated: true, url: req.url, host: req.headers.host })),
    )
    securePort2 = await listen(secure2)
    slow = http.createServer(() => undefined) // accepts, never answers
    slowPort = await listen(slow)
    writeFileSync(join(dir, 'secure.pem'), cert)
    const config = Value.Default(EgressConfig, {
      enabled: true,
      port: 0,
      allowAddresses: ['127.0.0.1/32'],
      dns: { servers: [dns.server], minTtlSec: 0, timeoutMs: 500, tries: 1 },
      responseTimeoutMs: 400,
      maxRequestBodyBytes: 1000,
      maxResponseBodyBytes: 2000,
      allow: [
        { host: 'api.partner.test', ports: [apiPort], tls: 'optional', openapi: { spec: 'partner.yaml' } },
        { host: '*.partner.test', ports: [apiPort], tls: 'optional' },
        { host: 'secure.partner.test', ports: [securePort], tls: 'required' },
        { host: 'origin.partner.test', ports: [securePort], tls: 'originate', ca: 'secure.pem' },
        { host: 'secure.partner.test', ports: [securePort2], tls: 'originate', ca: 'secure.pem' },
        { host: 'slow.partner.test', ports: [slowPort], tls: 'optional' },
      ],
    }) as never
    proxy = await startEgressProxy(config, { logger: pino({ level: 'silent' }), audit, baseDir: dir })
  })
  after(async () => {
    await proxy?.close()
    for (const s of [api, secure, secure2, slow]) s?.closeAllConnections?.()
    await Promise.all([api, secure, secure2, slow].map((s) => new Promise((r) => s?.close(r))))
    await dns?.close()
  })

  it('plain HTTP to an allowed destination: connected to the checked address, audited, validated', async () => {
    const q = dns.queries.length
    const r = await viaProxy(proxy.url, `http://api.partner.test:${apiPort}/items`)
    assert.equal(r.status, 200, r.body)
    assert.deepEqual(JSON.parse(r.body), { items: ['a', 'b'] })
    assert.deepEqual(
      dns.queries
        .slice(q)
        .map((x) => `${x.name} ${x.type}`)
        .sort(),
      ['api.partner.test A', 'api.partner.test AAAA'],
      'resolved once (one A, one AAAA query) for the call',
    )
    const ev = audit.events.filter((e) => e.type === 'egress.request').at(-1)
    assert.equal(ev?.decision, 'allow')
    assert.equal(ev?.status, 200)
    assert.equal(ev?.data?.host, 'api.partner.test')
    assert.equal(ev?.data?.address, '127.0.0.1')
    assert.ok(Number(ev?.data?.bytesIn) > 0)
  })

  it('an answer that departs from the third-party spec is blocked (API10)', async () => {
    const r = await viaProxy(proxy.url, `http://api.partner.test:${apiPort}/items/bad`)
    assert.equal(r.status, 502)
    assert.equal(JSON.parse(r.body).code, 'GW_ERR_UPSTREAM_RESPONSE_INVALID')
    assert.doesNotMatch(r.body, /select/)
    assert.ok(audit.events.some((e) => e.type === 'egress.response-invalid' && e.decision === 'deny'))
  })

  it('destinations not allowed, addresses refused at connect time: 403, nothing connected', async () => {
    const hits = apiHits
    for (const url of [
      'http://other.test/',
      `http://api.partner.test:${apiPort + 1}/`,
      `http://loop.partner.test:${apiPort}/`,
      `http://meta.partner.test:${apiPort}/`,
      `http://127.0.0.1:${apiPort}/`,
      `http://user:pw@api.partner.test:${apiPort}/items`,
    ]) {
      const r = await viaProxy(proxy.url, url)
      assert.equal(r.status, 403, `${url}: ${r.body}`)
    }
    assert.equal((await tunnel(proxy.url, 'other.test:443')).status, 403)
    assert.equal((await tunnel(proxy.url, `loop.partner.test:${apiPort}`)).status, 403)
    assert.equal(apiHits, hits)
    const denied = audit.events.filter((e) => e.type === 'egress.request' && e.decision === 'deny')
    assert.ok(denied.some((e) => /address refused: loopback/.test(String(e.reason))))
    assert.ok(denied.some((e) => /address refused: metadata/.test(String(e.reason))))
    assert.ok(denied.some((e) => e.reason === 'destination not allowed'))
  })

  it('a redirect to an internal address is the application’s next request: checked again', async () => {
    const r = await viaProxy(proxy.url, `http://x.partner.test:${apiPort}/redirect`)
    assert.equal(r.status, 302)
    const next = await viaProxy(proxy.url, 'http://169.254.169.254/latest/meta-data/')
    assert.equal(next.status, 403)
  })

  it('TLS required: plain HTTP refused; a tunnel must carry a ClientHello for its host', async () => {
    assert.equal((await viaProxy(proxy.url, `http://secure.partner.test:${securePort}/`)).status, 403)
    // A real TLS session through the tunnel.
    const t = await tunnel(proxy.url, `secure.partner.test:${securePort}`)
    assert.equal(t.status, 200)
    const body = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ socket: t.socket, servername: 'secure.partner.test', ca: cert }, () => {
        s.write('GET /through HTTP/1.1\r\nhost: secure.partner.test\r\nconnection: close\r\n\r\n')
      })
      let out = ''
      s.on('data', (c: Buffer) => {
        out += c.toString()
      })
      s.on('end', () => resolve(out))
      s.on('error', reject)
    })
    assert.match(body, /"tls":true,"url":"\/through"/)
    // Plain bytes in a TLS-required tunnel: closed, never reaching the destination.
    const plain = await tunnel(proxy.url, `secure.partner.test:${securePort}`)
    plain.socket.write('GET / HTTP/1.1\r\nhost: secure.partner.test\r\n\r\n')
    assert.equal(await closedOrEnded(plain.socket), '')
    // A ClientHello for another name (domain fronting): closed.
    const fronted = await tunnel(proxy.url, `secure.partner.test:${securePort}`)
    const s = tls.connect({ socket: fronted.socket, servername: 'evil.example', ca: cert })
    const err = await new Promise<string>((resolve) => {
      s.on('error', (e) => resolve(e.message))
      s.on('secureConnect', () => resolve('connected'))
      s.on('close', () => resolve('closed'))
    })
    assert.notEqual(err, 'connected')
    await new Promise((r) => setTimeout(r, 50).unref())
    const reasons = audit.events.filter((e) => e.type === 'egress.request').map((e) => String(e.reason))
    assert.ok(reasons.some((x) => /did not start with a TLS ClientHello/.test(x)))
    assert.ok(reasons.some((x) => /TLS SNI evil\.example is not the CONNECT host/.test(x)))
  })

  it('TLS originated by the proxy, with certificate verification; CONNECT refused there', async () => {
    const ok = await viaProxy(proxy.url, `http://secure.partner.test:${securePort2}/orders?x=1`)
    assert.equal(ok.status, 200, ok.body)
    assert.deepEqual(JSON.parse(ok.body), {
      originated: true,
      url: '/orders?x=1',
      host: `secure.partner.test:${securePort2}`,
    })
    assert.equal(audit.events.filter((e) => e.type === 'egress.request').at(-1)?.data?.tls, 'originated')
    // origin.partner.test is not in the certificate: verification must fail…
    const bad = await viaProxy(proxy.url, `http://origin.partner.test:${securePort}/x`)
    assert.equal(bad.status, 502, bad.body)
    assert.equal((await tunnel(proxy.url, `origin.partner.test:${securePort}`)).status, 403)
  })

  it('timeouts and size caps', async () => {
    const t0 = performance.now()
    const r = await viaProxy(proxy.url, `http://slow.partner.test:${slowPort}/`)
    assert.equal(r.status, 504)
    assert.ok(performance.now() - t0 < 5000)
    const big = await viaProxy(proxy.url, `http://x.partner.test:${apiPort}/big`)
    assert.equal(big.status, 502, 'a declared body over the cap is refused')
    const post = await viaProxy(proxy.url, `http://x.partner.test:${apiPort}/upload`, {
      method: 'POST',
      body: 'y'.repeat(1500),
    })
    assert.equal(post.status, 413)
    const small = await viaProxy(proxy.url, `http://x.partner.test:${apiPort}/upload`, {
      method: 'POST',
      body: 'ok',
    })
    assert.equal(small.status, 200)
    assert.equal(
      JSON.parse(small.body).host,
      `x.partner.test:${apiPort}`,
      'the Host header is the name, not the address',
    )
  })

  it('only listed clients may use it', async () => {
    const p = await startEgressProxy(
      Value.Default(EgressConfig, { enabled: true, port: 0, clients: ['10.0.0.0/8'] }) as never,
      { logger: pino({ level: 'silent' }), audit: memoryAudit(), baseDir: dir },
    )
    try {
      assert.equal((await viaProxy(p.url, 'http://api.partner.test/')).status, 403)
      assert.equal((await tunnel(p.url, 'api.partner.test:443')).status, 403)
    } finally {
      await p.close()
    }
  })
})

describe('DNS rebinding: ssrf-guard in the gateway, the egress proxy at the application', () => {
  let dns: TestDnsServer
  let internal: http.Server
  let internalPort = 0
  let internalHits = 0
  let app: http.Server
  let gw: GatewayProcess
  let egressUrl = ''

  /** What the application does with a URL: fetch it through the egress proxy, or directly. */
  const fetchDirect = async (u: URL): Promise<number> => {
    const r = new (await import('node:dns')).promises.Resolver()
    r.setServers([dns.server])
    const [ip] = await r.resolve4(u.hostname)
    return new Promise((resolve) => {
      const req = http.get(
        { host: ip, port: u.port, path: u.pathname, headers: { host: u.host }, agent: false },
        (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        },
      )
      req.on('error', () => resolve(0))
    })
  }

  before(async () => {
    // The first A answer of each name is public, every later one 127.0.0.1; TTL 0.
    dns = await startDnsServer({
      'rebind.test': [
        { a: ['93.184.216.34'], ttl: 0 },
        { a: ['127.0.0.1'], ttl: 0 },
      ],
      'rebind-control.test': [
        { a: ['93.184.216.34'], ttl: 0 },
        { a: ['127.0.0.1'], ttl: 0 },
      ],
    })
    internal = http.createServer((_req, res) => {
      internalHits++
      res.end('internal secret')
    })
    internalPort = await listen(internal)
    app = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => {
        body += c
      })
      req.on('end', async () => {
        const { url, via } = JSON.parse(body) as { url: string; via: 'proxy' | 'direct' }
        const status =
          via === 'proxy' ? (await viaProxy(egressUrl, url)).status : await fetchDirect(new URL(url))
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ fetched: status }))
      })
    })
    const appPort = await listen(app)
    const dir = tempDir('pc-rebind-')
    gw = await spawnGateway(
      `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
accessLog: { enabled: false }
reload: { watch: false }
upstreams: { app: { targets: [ { url: "http://127.0.0.1:${appPort}" } ] } }
routes:
  - name: fetch
    match: { pathPrefix: /fetch }
    upstream: app
    policies:
      ssrf-guard:
        fields: { names: [url] }
        dns: { servers: ["${dns.server}"], minTtl: 0, timeout: 1s, tries: 1 }
egress:
  enabled: true
  port: 0
  dns: { servers: ["${dns.server}"], minTtl: 0, timeout: 1s, tries: 1 }
  allow:
    - { host: rebind.test, ports: [${internalPort}], tls: optional }
`,
      dir,
    )
    const log = await gw.waitForLog(/egress proxy listening/, 10_000)
    egressUrl = /"url":"(http:\/\/127\.0\.0\.1:\d+)","destinations"/.exec(log)?.[1] ?? ''
    assert.ok(egressUrl, log)
  })
  after(async () => {
    await gw?.stop()
    await Promise.all([internal, app].map((s) => new Promise((r) => s?.close(r))))
    await dns?.close()
  })

  const post = (url: string, via: 'proxy' | 'direct') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const u = new URL(gw.url)
      const body = JSON.stringify({ url, via })
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          method: 'POST',
          path: '/fetch',
          agent: false,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let t = ''
          res.on('data', (c: Buffer) => {
            t += c
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: t }))
        },
      )
      req.on('error', reject)
      req.end(body)
    })

  it('control: the gateway sees a public address, the application fetching directly reaches 127.0.0.1', async () => {
    const r = await post(`http://rebind-control.test:${internalPort}/secret`, 'direct')
    assert.equal(r.status, 200, r.body)
    assert.deepEqual(JSON.parse(r.body), { fetched: 200 })
    assert.equal(internalHits, 1, 'the rebinding is real: the internal server was reached')
  })

  it('through the egress proxy the rebound address is refused at connect time', async () => {
    const before = internalHits
    const r = await post(`http://rebind.test:${internalPort}/secret`, 'proxy')
    assert.equal(r.status, 200, 'ssrf-guard let it through: it saw the public answer')
    assert.deepEqual(JSON.parse(r.body), { fetched: 403 })
    assert.equal(internalHits, before, 'the internal server was not reached')
    const log = await gw.waitForLog(/egress call refused/, 5000)
    assert.match(log, /address refused: loopback \(127\.0\.0\.1\)/)
  })
})
