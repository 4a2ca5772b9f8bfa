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

export const PROXY_KINDS = ['direct', 'bare-node', 'fastify', 'nginx', 'portcullis', 'fastify-stack'] as const
export type ProxyKind = (typeof PROXY_KINDS)[number]
/** The proxies of the plain route (the peer stack runs only where its checks are asked for). */
const PLAIN_PROXIES: readonly ProxyKind[] = ['direct', 'bare-node', 'fastify', 'nginx', 'portcullis']

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
  /**
   * Targets against peers doing the same work in the same scenario: Portcullis's CPU per request
   * divided by the peer's, in each round (both run in it, shuffled), median at or below the
   * target (plain: fastify and the bare proxy; full-stack: the peer stack).
   */
  peerTargets?: Partial<Record<ProxyKind, number>>
  /** The peer stack keeps its rate-limit counters on the bench's Redis (else in memory). */
  peerRedis?: boolean
  /** Also driven at a constant rate in the latency phase (added latency over `direct`). */
  latency?: readonly ProxyKind[]
  /**
   * Every proxy of the scenario must pass the enforcement check (bench/enforcement.ts) before
   * anything is measured, or the run fails: the same refusals of bad tokens, bodies and traffic.
   */
  enforce?: boolean
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
  // The full-stack scenarios' token: a customer who may amend order 42.
  const fullStackToken = await new SignJWT({
    sub: 'bench-user',
    scope: 'orders:read orders:write',
    roles: ['customer'],
    orders: ['42'],
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'bench', typ: 'at+jwt' })
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 7 * 24 * 3600)
    .setJti('bench-full-stack-token')
    .sign(privateKey)
  return { token, ordersToken, fullStackToken, privateKey, spki: await exportSPKI(publicKey) }
})()

/**
 * A token for the enforcement check (bench/enforcement.ts): the full-stack token's claims with
 * `claims` over them, signed with the bench's key, or with a key of its own (`foreignKey`: a token
 * no stack may accept).
 */
export async function signBenchToken(claims: Record<string, unknown>, foreignKey = false): Promise<string> {
  const key = foreignKey ? (await generateKeyPair('RS256')).privateKey : jwtFixture.privateKey
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({
    sub: 'bench-user',
    scope: 'orders:read orders:write',
    roles: ['customer'],
    orders: ['42'],
    ...claims,
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'bench', typ: 'at+jwt' })
    .setIssuer(JWT_ISSUER)
    .setAudience(JWT_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(key)
}

/** What the peer stack needs to verify the bench's tokens. */
export const benchJwt = { issuer: JWT_ISSUER, audience: JWT_AUDIENCE, publicKeyPem: jwtFixture.spki }

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
      dns: { servers: [benchDns.server], minTtl: '1h', maxTtl: '1d' },
    },
  }
  return base
}

/** The full-stack scenarios' contract (request and response schemas), shared with the peer stack. */
export const FULL_STACK_SPEC = new URL('../../bench/full-stack.openapi.yaml', import.meta.url).pathname

/**
 * The full-stack request: a ~1 KB JSON amendment of order 42, which the token is bound to
 * (legitimate traffic: every check passes, the answer is a 200).
 */
const FULL_STACK_BODY = JSON.stringify({
  items: [1, 2, 3, 4, 5].map((i) => ({
    sku: `SKU-${1040 + i}`,
    qty: i,
    title: `Stainless steel water bottle, 750 ml, colour ${i}`,
    giftWrap: i % 2 === 0,
  })),
  shippingAddress: {
    name: 'Jane Doe',
    street: '1200 Harbour View Road, Building C, Floor 4',
    city: 'Rotterdam',
    postalCode: '3011 AB',
    country: 'NL',
    phone: '+31 10 555 0199',
  },
  note: `Please deliver between 9:00 and 17:00 on weekdays; leave the parcel with the concierge at the front desk if nobody answers. ${'Handle with care. '.repeat(12)}`,
})
const fullStackRequest: BenchRequest = {
  method: 'POST',
  path: '/api/orders/42/amend',
  headers: {
    'content-type': 'application/json',
    accept: 'application/json',
    authorization: `Bearer ${jwtFixture.fullStackToken}`,
  },
  body: FULL_STACK_BODY,
}

/**
 * Every protection of the demo at once (issue 22), on the one route: jwt-auth (RS256, verified-token
 * cache), authorize (default deny, the operation's scope), object-ownership (the order id bound to
 * the token's `orders` claim), openapi-validation of the request (path parameter, the 1 KB JSON
 * body) and of the response (block), property-filter (the role-restricted response property
 * removed, the role-reserved request property refused), rate-limit (per client IP, never reached,
 * RateLimit headers on) on Redis or in memory, security-headers, the audit log with every detector,
 * and the access log (on in every scenario).
 */
function withFullStack(redis: boolean): (base: PortcullisBenchConfig) => PortcullisBenchConfig {
  return (base) => {
    withAuditAndDetectors(base)
    withRateLimit(redis)(base)
    const policies = withJwtAuth(true)(base).policies as Record<string, unknown>
    policies['rate-limit'] = {
      limits: [{ name: 'per-ip', rate: 1_000_000_000, per: 'second', key: ['ip'] }],
    }
    policies.authorize = {
      rules: [{ match: { methods: ['POST'], path: '/api/orders/{id}/amend' }, scopes: ['orders:write'] }],
    }
    policies['object-ownership'] = {
      objects: [
        {
          type: 'order',
          binding: { in: 'claims.orders' },
          access: [{ match: { methods: ['POST'], path: '/api/orders/{id}/amend' }, ids: ['path.id'] }],
        },
      ],
    }
    policies['openapi-validation'] = { spec: FULL_STACK_SPEC, responses: 'block' }
    policies['property-filter'] = { spec: FULL_STACK_SPEC }
    policies['security-headers'] = {}
    return base
  }
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
    proxies: PLAIN_PROXIES,
    peerTargets: { fastify: 0.75, 'bare-node': 1.1 },
    latency: ['direct', 'nginx', 'portcullis'],
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
  {
    // The baseline of the full-stack scenarios: their request (the 1 KB JSON POST with its token)
    // through the plain route, as every POST scenario is compared with the same POST (see
    // `reference`). The plain GET stays in the report as a second ratio when `plain` runs too.
    name: 'full-stack-plain',
    proxies: ['portcullis'],
    request: fullStackRequest,
  },
  {
    // Every protection at once, rate limits on Redis; the peer stack does the same checks.
    name: 'full-stack',
    maxRatio: 2.0,
    reference: 'full-stack-plain',
    peerTargets: { 'fastify-stack': 0.6 },
    peerRedis: true,
    proxies: ['portcullis', 'fastify-stack'],
    request: fullStackRequest,
    portcullisConfig: withFullStack(true),
    needsRedis: true,
    latency: ['direct', 'portcullis', 'fastify-stack'],
    enforce: true,
  },
  {
    // The same with the memory store (Portcullis) and the in-memory rate limiter (the peer).
    name: 'full-stack-memory',
    maxRatio: 2.0,
    reference: 'full-stack-plain',
    peerTargets: { 'fastify-stack': 0.6 },
    proxies: ['portcullis', 'fastify-stack'],
    request: fullStackRequest,
    portcullisConfig: withFullStack(false),
    enforce: true,
  },
]
