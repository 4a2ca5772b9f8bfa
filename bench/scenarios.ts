// Bench scenarios. A scenario names the proxies it runs, the request the load generator sends, and how it
// changes the base Portcullis config (e.g. adding a policy to the route). Add new scenarios to SCENARIOS.
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { startDnsServer } from '../test/helpers/dns-server.js'
import type { BenchRequest } from './loadgen.js'

export const PROXY_KINDS = ['direct', 'bare-node', 'fastify', 'nginx', 'portcullis'] as const
export type ProxyKind = (typeof PROXY_KINDS)[number]

/** The subset of the Portcullis config the bench writes; scenarios may add any further keys. */
export interface PortcullisBenchConfig {
  listeners: { name: string; host: string; port: number }[]
  admin: { host: string; port: number }
  upstreams: Record<string, { targets: { url: string }[] }>
  routes: { name: string; match: { pathPrefix: string }; upstream: string; [key: string]: unknown }[]
  accessLog: { destination: string }
  [key: string]: unknown
}

export interface Scenario {
  name: string
  proxies: readonly ProxyKind[]
  request: BenchRequest
  /** returns the config to run Portcullis with for this scenario (the base is a fresh object, free to mutate) */
  portcullisConfig?: (base: PortcullisBenchConfig) => PortcullisBenchConfig
  /** the scenario needs the bench's redis-server (started once, pinned with the load generator) */
  needsRedis?: boolean
  /** the issue's target: Portcullis CPU us/req in this scenario at most `maxRatio` x the plain route's */
  maxRatio?: number
  /**
   * the scenario the ratio is taken against, run paired (default `plain`): a POST scenario is
   * compared with the same POST through the plain route (`post-json`)
   */
  reference?: string
}

/** The bench's redis-server, set by run.ts before a scenario with `needsRedis` starts Portcullis. */
export const benchRedis: { port: number | undefined } = { port: undefined }

export interface PortcullisPorts {
  listenerPort: number
  adminPort: number
  upstreamOrigin: string
  accessLogPath: string
}

export function basePortcullisConfig(p: PortcullisPorts): PortcullisBenchConfig {
  return {
    listeners: [{ name: 'public', host: '127.0.0.1', port: p.listenerPort }],
    admin: { host: '127.0.0.1', port: p.adminPort },
    upstreams: { bench: { targets: [{ url: p.upstreamOrigin }] } },
    routes: [{ name: 'plain', match: { pathPrefix: '/' }, upstream: 'bench' }],
    accessLog: { destination: p.accessLogPath },
    // The API inventory is on by default; the plain route (every ratio's reference) stays without it.
    inventory: { enabled: false },
  }
}

/**
 * The jwt-auth scenarios' key and token: an RS256 key pair made with jose when the bench starts; the
 * gateway gets the public key inline (a static key: no issuer process), every request sends the token.
 */
const JWT_ISSUER = 'https://idp.bench.example'
const JWT_AUDIENCE = 'bench-api'
const jwtFixture = await (async () => {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const now = Math.floor(Date.now() / 1000)
  const token = await new SignJWT({ sub: 'bench-user', scope: 'orders:read', roles: ['reader'] })
    .setProtectedHeader({ alg: 'RS256', kid: 'bench', typ: 'at+jwt' })
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 7 * 24 * 3600) // outlives any bench run
    .setJti('bench-token')
    .sign(privateKey)
  // The authorize-ownership scenario's token: the same, with the orders it is bound to.
  const ordersToken = await new SignJWT({
    sub: 'bench-user',
    scope: 'orders:read',
    roles: ['reader'],
    orders: ['42'],
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'bench', typ: 'at+jwt' })
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 7 * 24 * 3600)
    .setJti('bench-orders-token')
    .sign(privateKey)
  return { token, ordersToken, spki: await exportSPKI(publicKey) }
})()

function withJwtAuth(cache: boolean): (base: PortcullisBenchConfig) => PortcullisBenchConfig {
  return (base) => {
    base.policies = {
      'jwt-auth': {
        algorithms: ['RS256'],
        issuer: JWT_ISSUER,
        audience: JWT_AUDIENCE,
        typ: 'at+jwt',
        keys: [{ kid: 'bench', pem: jwtFixture.spki }],
        cache: { enabled: cache },
      },
    }
    return base
  }
}

/**
 * The authorize-ownership scenario: jwt-auth (cache on) for the principal, authorize (default deny,
 * a rule for GET /api/orders/{id} needing the scope orders:read) and object-ownership (memory
 * store) binding the order id in the path to the token's `orders` claim, on every request.
 */
function withAuthorizeOwnership(base: PortcullisBenchConfig): PortcullisBenchConfig {
  const policies = withJwtAuth(true)(base).policies as Record<string, unknown>
  policies.authorize = {
    rules: [{ match: { methods: ['GET'], path: '/api/orders/{id}' }, scopes: ['orders:read'] }],
  }
  policies['object-ownership'] = {
    objects: [
      {
        type: 'order',
        binding: { in: 'claims.orders' },
        access: [{ match: { path: '/api/orders/{id}' }, ids: ['path.id'] }],
      },
    ],
  }
  return base
}

/**
 * The audit scenarios (issue 7). `audit-detect` is the issue's: the plain route with the
 * tamper-evident audit log on (file sink, `fsync: interval`) and every detector on, the overhead
 * normal traffic pays (the detectors see every request; the log records security decisions, which
 * normal traffic has few of). `audit-per-request` makes the log write a record for every request
 * (jwt-auth with `events.authSuccess`): compare it with `jwt-auth` for the cost of one record.
 * The keyring and the chain files go in the bench's temporary directory (next to the access log).
 */
/** One audit key for the whole bench run: every start of the gateway signs with the same key. */
const AUDIT_KEY = randomBytes(32).toString('base64')
let auditStarts = 0

function withAuditAndDetectors(
  base: PortcullisBenchConfig,
  recordEveryRequest = false,
): PortcullisBenchConfig {
  if (recordEveryRequest) withJwtAuth(true)(base)
  const dir = dirname(base.accessLog.destination)
  const keyring = join(dir, 'audit-keyring.json')
  writeFileSync(keyring, JSON.stringify({ active: 'bench', keys: { bench: AUDIT_KEY } }), { mode: 0o600 })
  base.audit = {
    enabled: true,
    sink: 'file',
    // A new chain per start (round): each round measures the same work, from an empty directory.
    file: { dir: join(dir, `audit-${++auditStarts}`), fsync: 'interval' },
    keyring: { file: keyring },
    events: { authSuccess: recordEveryRequest },
  }
  base.detect = {
    enabled: true,
    bruteForce: { enabled: true },
    credentialStuffing: { enabled: true },
    enumeration: { enabled: true },
    flood: { enabled: true, requests: 1_000_000_000 }, // the bench is a flood: alert never, count always
    globalSpike: { enabled: true },
    scraping: { enabled: true },
    errorSpike: { enabled: true },
  }
  return base
}

/**
 * The rate-limit scenarios: one GCRA limit per client IP on every request, high enough never to
 * refuse (the bench counts any non-2xx as an error), with the RateLimit headers on; in memory or
 * on the bench's Redis (one atomic Lua call per request).
 */
function withRateLimit(redis: boolean): (base: PortcullisBenchConfig) => PortcullisBenchConfig {
  return (base) => {
    base.policies = {
      'rate-limit': { limits: [{ name: 'per-ip', rate: 1_000_000_000, per: 'second', key: ['ip'] }] },
    }
    if (redis) {
      if (benchRedis.port === undefined)
        throw new Error('rate-limit-redis: the bench redis-server is not running')
      base.stores = { backend: 'redis', redis: { host: '127.0.0.1', port: benchRedis.port } }
    }
    return base
  }
}

const jwtRequest: BenchRequest = {
  method: 'GET',
  path: '/api/orders/42',
  headers: { accept: 'application/json', authorization: `Bearer ${jwtFixture.token}` },
}

/**
 * A 1 KB JSON body that the demo spec accepts (POST /api/v2/users/me/avatar: `imageUrl`, a URI of
 * at most 2048 characters), for the openapi-validation scenario and its plain baseline.
 */
const AVATAR_BODY = JSON.stringify({ imageUrl: `https://images.example.com/${'a'.repeat(970)}.png` })
const postRequest: BenchRequest = {
  method: 'POST',
  path: '/api/v2/users/me/avatar',
  headers: { 'content-type': 'application/json', accept: 'application/json' },
  body: AVATAR_BODY,
}

/**
 * The ssrf-guard scenario: the same 1 KB avatar POST, its `imageUrl` (`format: uri` in the demo
 * spec) checked by ssrf-guard. The host resolves through a DNS server in the bench process (on
 * 127.0.0.1, answering a public address with a day's TTL): the gateway queries it once per start
 * and then answers from its cache, which is the steady state the scenario measures.
 */
const benchDns = await startDnsServer({ 'images.example.com': { a: ['93.184.216.34'], ttl: 86_400 } })
benchDns.unref()

function withSsrfGuard(base: PortcullisBenchConfig): PortcullisBenchConfig {
  base.policies = {
    'ssrf-guard': {
      spec: new URL('../../examples/demo/openapi.yaml', import.meta.url).pathname,
      dns: { servers: [benchDns.server], minTtlSec: 3600, maxTtlSec: 86_400 },
    },
  }
  return base
}

/**
 * The tracing scenario's OTLP/HTTP sink, in the bench process on 127.0.0.1: it reads each export
 * and answers 200 (what a collector does before its own work), so the gateway's cost is the SDK's
 * spans, their JSON encoding and the export requests.
 */
const otlpSink = createServer((req, res) => {
  req.resume()
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
})
await new Promise<void>((resolve) => otlpSink.listen(0, '127.0.0.1', resolve))
otlpSink.unref()
const otlpSinkUrl = `http://127.0.0.1:${(otlpSink.address() as AddressInfo).port}/v1/traces`

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'plain',
    proxies: PROXY_KINDS,
    request: { method: 'GET', path: '/api/orders/42', headers: { accept: 'application/json' } },
  },
  {
    // RS256 token on every request, verified-token cache on: after the first request, a cache hit.
    name: 'jwt-auth',
    maxRatio: 1.3,
    proxies: ['portcullis'],
    request: jwtRequest,
    portcullisConfig: withJwtAuth(true),
  },
  {
    // The same without the cache: one RS256 signature verification per request.
    name: 'jwt-auth-nocache',
    proxies: ['portcullis'],
    request: jwtRequest,
    portcullisConfig: withJwtAuth(false),
  },
  {
    // The baseline for openapi-json: the same 1 KB JSON POST through the plain route.
    name: 'post-json',
    proxies: ['portcullis'],
    request: postRequest,
  },
  {
    // The same POST, its body read, parsed by the guarded parser and validated against the demo spec.
    name: 'openapi-json',
    maxRatio: 1.5,
    proxies: ['portcullis'],
    request: postRequest,
    portcullisConfig: (base) => {
      base.policies = {
        'openapi-validation': { spec: new URL('../../examples/demo/openapi.yaml', import.meta.url).pathname },
      }
      return base
    },
  },
  {
    // The same POST with its URL field checked (body read, JSON parsed, URL parsed, DNS from cache).
    name: 'ssrf-guard',
    maxRatio: 1.3,
    reference: 'post-json',
    proxies: ['portcullis'],
    request: postRequest,
    portcullisConfig: withSsrfGuard,
  },
  {
    name: 'audit-detect',
    maxRatio: 1.3,
    proxies: ['portcullis'],
    request: { method: 'GET', path: '/api/orders/42', headers: { accept: 'application/json' } },
    portcullisConfig: (base) => withAuditAndDetectors(base),
  },
  {
    name: 'audit-per-request',
    proxies: ['portcullis'],
    request: jwtRequest,
    portcullisConfig: (base) => withAuditAndDetectors(base, true),
  },
  {
    // authorize + object-ownership (BOLA binding) on top of jwt-auth: a GET of an order by id.
    name: 'authorize-ownership',
    maxRatio: 1.3,
    proxies: ['portcullis'],
    request: {
      method: 'GET',
      path: '/api/orders/42',
      headers: { accept: 'application/json', authorization: `Bearer ${jwtFixture.ordersToken}` },
    },
    portcullisConfig: withAuthorizeOwnership,
  },
  {
    // The baseline for leak-guard: the same ~20 KB JSON answer through the plain route (streamed).
    name: 'plain-big',
    proxies: ['portcullis'],
    request: { method: 'GET', path: '/api/orders?big', headers: { accept: 'application/json' } },
  },
  {
    // leak-guard (block mode) scanning a ~20 KB JSON response; its reference is the same request on
    // the plain route (the response then streams, with leak-guard it is buffered and scanned).
    name: 'leak-guard',
    maxRatio: 1.3,
    reference: 'plain-big',
    proxies: ['portcullis'],
    request: { method: 'GET', path: '/api/orders?big', headers: { accept: 'application/json' } },
    portcullisConfig: (base) => {
      base.policies = { 'leak-guard': { mode: 'block' } }
      return base
    },
  },
  {
    name: 'rate-limit-memory',
    maxRatio: 1.2,
    proxies: ['portcullis'],
    request: { method: 'GET', path: '/api/orders/42', headers: { accept: 'application/json' } },
    portcullisConfig: withRateLimit(false),
  },
  {
    // The API inventory (issue 18) at its default sampling (1%, and the first 20 requests of each
    // operation): every request mapped to its operation and counted; samples classified.
    name: 'inventory',
    maxRatio: 1.15,
    proxies: ['portcullis'],
    request: { method: 'GET', path: '/api/orders/42', headers: { accept: 'application/json' } },
    portcullisConfig: (base) => {
      base.inventory = { enabled: true }
      return base
    },
  },
  {
    // Every message classified: the 1 KB JSON POST of openapi-json (the validation policy buffers
    // its body, so the inventory classifies it) and its JSON answer, on every request. Compare with
    // openapi-json, the same without the inventory.
    name: 'inventory-classify-all',
    proxies: ['portcullis'],
    request: postRequest,
    portcullisConfig: (base) => {
      base.policies = {
        'openapi-validation': { spec: new URL('../../examples/demo/openapi.yaml', import.meta.url).pathname },
      }
      base.inventory = { enabled: true, sampleRate: 1 }
      return base
    },
  },
  {
    // OpenTelemetry on, 10% of requests traced (a request span, its phases, the upstream call),
    // exported over OTLP/HTTP to a local sink; the other 90% pay the sampling decision.
    name: 'tracing',
    maxRatio: 1.2,
    proxies: ['portcullis'],
    request: { method: 'GET', path: '/api/orders/42', headers: { accept: 'application/json' } },
    portcullisConfig: (base) => {
      base.tracing = { enabled: true, endpoint: otlpSinkUrl, sampleRatio: 0.1 }
      return base
    },
  },
  {
    name: 'rate-limit-redis',
    maxRatio: 1.6,
    proxies: ['portcullis'],
    request: { method: 'GET', path: '/api/orders/42', headers: { accept: 'application/json' } },
    portcullisConfig: withRateLimit(true),
    needsRedis: true,
  },
]
