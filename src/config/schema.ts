/**
 * The configuration schema: the single source of validation, defaults, the generated JSON Schema
 * (docs/config.schema.json) and the reference (docs/config.md). Every field has a description and
 * a default (or is required).
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox'
import { BUILTIN_POLICIES } from '../policies/registry.js'
import { StoresConfig } from '../stores/config.js'
import { AuditConfig } from '../audit/config.js'
import { DetectConfig } from '../detect/config.js'
import { EgressConfig } from '../egress/config.js'
import { InventoryConfig } from '../inventory/config.js'

export const TlsConfig = Type.Object(
  {
    cert: Type.String({ minLength: 1, description: 'PEM certificate chain file path.' }),
    key: Type.String({ minLength: 1, description: 'PEM private key file path.' }),
    minVersion: Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], {
      default: 'TLSv1.2',
      description: 'Lowest TLS version accepted.',
    }),
    ciphers: Type.Optional(
      Type.String({
        description:
          "OpenSSL cipher list for TLSv1.2. Default: Mozilla's intermediate profile (ECDHE/DHE with AES-GCM or ChaCha20-Poly1305: forward secrecy, no CBC). Setting it replaces that profile.",
      }),
    ),
    certificates: Type.Optional(
      Type.Array(
        Type.Object(
          {
            cert: Type.String({ minLength: 1, description: 'PEM certificate chain file path.' }),
            key: Type.String({ minLength: 1, description: 'PEM private key file path.' }),
            serverNames: Type.Optional(
              Type.Array(Type.String({ minLength: 1, maxLength: 253 }), {
                minItems: 1,
                description:
                  "SNI names this certificate serves (`api.example.com`, `*.example.com`); default: the certificate's DNS subjectAltNames (else its CN).",
              }),
            ),
          },
          { additionalProperties: false },
        ),
        {
          maxItems: 1000,
          description:
            'More certificates, chosen by the client’s SNI name (exact, then a wildcard one level up); `cert`/`key` serve clients whose name matches none, or send none.',
        },
      ),
    ),
    reloadIntervalSec: Type.Integer({
      minimum: 0,
      maximum: 86_400,
      default: 60,
      description:
        'How often the certificate and key files are checked for changes (content hash): a renewed certificate is served to new connections without a restart; a broken new pair is logged and the old one stays. 0: only on config reload.',
    }),
    clientAuth: Type.Optional(
      Type.Object(
        {
          ca: Type.String({
            minLength: 1,
            description: 'PEM bundle of the CAs whose client certificates are accepted.',
          }),
          mode: Type.Union([Type.Literal('optional'), Type.Literal('required')], {
            default: 'optional',
            description:
              '`required`: the TLS handshake fails without a valid client certificate. `optional`: it is asked for and verified, and the `mtls` policy requires it per route.',
          }),
        },
        { additionalProperties: false, description: 'Ask clients for certificates (mutual TLS).' },
      ),
    ),
  },
  { additionalProperties: false, description: 'Serve HTTPS with this certificate.' },
)

export const Http2Config = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description:
        'Serve HTTP/2 on this listener: with `tls`, offered through ALPN (`h2`, then `http/1.1`); without, as h2c with prior knowledge (a connection that opens with the HTTP/2 preface; HTTP/1.1 stays available on the same port). No `Upgrade: h2c`.',
    }),
    maxConcurrentStreams: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 100,
      description:
        'SETTINGS_MAX_CONCURRENT_STREAMS: streams a client may have open at once on one connection. A client that opens more after acknowledging the setting loses the connection (GOAWAY); before, the extra stream is refused (REFUSED_STREAM).',
    }),
    maxHeaderListSize: Type.Integer({
      minimum: 1024,
      maximum: 65536,
      default: 16384,
      description:
        'SETTINGS_MAX_HEADER_LIST_SIZE: largest request header list (RFC 9113 §6.5.2: name + value + 32 bytes per field, pseudo-headers included); larger gets 431, as `maxHeaderBytes` over HTTP/1.1.',
    }),
    rapidReset: Type.Object(
      {
        maxResets: Type.Integer({
          minimum: 1,
          default: 100,
          description: 'Streams a client may cancel (RST_STREAM before the response finished) per interval.',
        }),
        intervalMs: Type.Integer({ minimum: 100, default: 10000, description: 'The interval, in ms.' }),
      },
      {
        additionalProperties: false,
        default: {},
        description:
          'Rapid reset guard (CVE-2023-44487): a connection that cancels more streams than this is closed with GOAWAY(ENHANCE_YOUR_CALM).',
      },
    ),
  },
  { additionalProperties: false, description: 'HTTP/2 on this listener (see docs/http2.md).' },
)

export const ListenerConfig = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      pattern: '^[a-z0-9][a-z0-9-]*$',
      description: 'Listener name, for logs.',
    }),
    host: Type.String({ default: '0.0.0.0', description: 'Address to bind.' }),
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 8080,
      description: 'Port to bind (0 = ephemeral).',
    }),
    tls: Type.Optional(TlsConfig),
    maxHeaderBytes: Type.Integer({
      minimum: 1024,
      maximum: 1048576,
      default: 16384,
      description: 'Largest request head (request line + headers) in bytes; larger gets 431.',
    }),
    maxHeaderCount: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 100,
      description: 'Most request header fields; more gets 431.',
    }),
    headersTimeoutMs: Type.Integer({
      minimum: 100,
      default: 10000,
      description: 'Time a client has to send the whole request head (slowloris guard).',
    }),
    requestTimeoutMs: Type.Integer({
      minimum: 0,
      default: 60000,
      description: 'Time a client has to send the whole request, body included (0 = none).',
    }),
    keepAliveTimeoutMs: Type.Integer({
      minimum: 0,
      default: 5000,
      description:
        'Idle keep-alive time: an HTTP/1.1 connection between requests, an HTTP/2 connection with no open stream (then GOAWAY). 0 = none.',
    }),
    http2: Type.Optional(Http2Config),
  },
  { additionalProperties: false },
)

export const AdminConfig = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description: 'Serve /healthz, /readyz and /metrics (and, with `token`, the admin API).',
    }),
    host: Type.String({ default: '127.0.0.1', description: 'Address to bind; keep it private.' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 9901, description: 'Port to bind.' }),
    token: Type.Optional(
      Type.String({
        minLength: 32,
        description:
          // biome-ignore lint/suspicious/noTemplateCurlyInString: ${env:} and ${file:} are config syntax
          'Bearer token of the admin API (`/v1/…`, see docs/admin-api.md), at least 32 characters; write it as `${env:NAME}` or `${file:PATH}`. Never logged. Without it the API is off (404); /healthz, /readyz and /metrics need no token.',
      }),
    ),
    revocationDefaultTtlSeconds: Type.Integer({
      minimum: 60,
      maximum: 31622400,
      default: 86400,
      description:
        'How long a revocation posted without `expiresAt` (and without a token whose `exp` can be read) stays, in seconds; pass the token’s expiry instead when you know it.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'The admin listener and the admin API.' },
)

export const TargetConfig = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      description: 'Origin of the target, http(s)://host:port, optionally with a base path.',
    }),
  },
  { additionalProperties: false },
)

export const UpstreamConfig = Type.Object(
  {
    targets: Type.Array(TargetConfig, { minItems: 1, description: 'Targets, used round robin.' }),
    connections: Type.Integer({
      minimum: 1,
      default: 128,
      description: 'Most keep-alive connections per target.',
    }),
    keepAliveTimeoutMs: Type.Integer({
      minimum: 100,
      default: 4000,
      description: 'Idle upstream socket lifetime.',
    }),
    connectTimeoutMs: Type.Integer({ minimum: 1, default: 5000, description: 'Connect timeout (then 504).' }),
    headersTimeoutMs: Type.Integer({
      minimum: 1,
      default: 30000,
      description: 'Time the upstream has to send response headers (then 504).',
    }),
    bodyTimeoutMs: Type.Integer({
      minimum: 1,
      default: 30000,
      description: 'Longest idle gap while streaming a response body (then the response is cut).',
    }),
    retries: Type.Integer({
      minimum: 0,
      maximum: 5,
      default: 1,
      description: 'Retries on another target for idempotent requests without a body that failed to connect.',
    }),
    preserveHost: Type.Boolean({
      default: false,
      description: "Send the client's Host to the upstream (otherwise the target's host).",
    }),
    tls: Type.Object(
      {
        rejectUnauthorized: Type.Boolean({ default: true, description: 'Verify https targets.' }),
        ca: Type.Optional(Type.String({ description: 'PEM CA bundle file path for https targets.' })),
      },
      { additionalProperties: false, default: {}, description: 'TLS to https targets.' },
    ),
    passiveHealth: Type.Object(
      {
        failures: Type.Integer({
          minimum: 1,
          default: 5,
          description: 'Consecutive connect errors, timeouts or 502/503/504 answers that eject a target.',
        }),
        ejectMs: Type.Integer({
          minimum: 100,
          default: 30000,
          description: 'How long an ejected target rests.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Eject failing targets.' },
    ),
    activeHealth: Type.Optional(
      Type.Object(
        {
          path: Type.String({ pattern: '^/', default: '/healthz', description: 'Path probed with GET.' }),
          intervalMs: Type.Integer({ minimum: 100, default: 5000, description: 'Probe interval.' }),
          timeoutMs: Type.Integer({ minimum: 50, default: 2000, description: 'Probe timeout.' }),
          unhealthyThreshold: Type.Integer({
            minimum: 1,
            default: 2,
            description: 'Failed probes to mark down.',
          }),
          healthyThreshold: Type.Integer({ minimum: 1, default: 1, description: 'Good probes to mark up.' }),
        },
        { additionalProperties: false, description: 'Probe targets; a target marked down gets no traffic.' },
      ),
    ),
  },
  { additionalProperties: false },
)

/**
 * A policy's config schema with the common `enabled` switch added. An entry with `enabled: false`
 * needs none of the policy's required fields (`object-ownership: { enabled: false }` turns a
 * global entry off on a route): the required list applies only when the entry is on.
 */
function policyEntry(p: (typeof BUILTIN_POLICIES)[number], onByDefault: boolean): TSchema {
  // Only an entry that is on by default has `default: {}`: ajv fills defaults for optional
  // properties too, and a filled-in route entry would replace the global one of the same id.
  const entry = Type.Object(
    {
      enabled: Type.Boolean({
        default: true,
        description: 'Run this policy (false turns a global one off on a route).',
      }),
      ...p.schema.properties,
    },
    { additionalProperties: false, ...(onByDefault ? { default: {} } : {}), description: p.description },
  )
  // Fields with a default are always there (ajv fills them in); only the others move under `else`.
  const props = entry.properties as Record<string, { default?: unknown }>
  const required = entry.required ?? []
  const withoutDefault = required.filter((k) => props[k]?.default === undefined)
  if (withoutDefault.length === 0) return entry
  return {
    ...entry,
    required: required.filter((k) => props[k]?.default !== undefined),
    if: { properties: { enabled: { const: false } }, required: ['enabled'] },
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then/else keyword
    then: {},
    else: { required: withoutDefault },
  } as TSchema
}

const routePolicyProps: Record<string, TSchema> = {}
const globalPolicyProps: Record<string, TSchema> = {}
for (const p of BUILTIN_POLICIES) {
  routePolicyProps[p.id] = Type.Optional(policyEntry(p, false))
  // Policies that are on by default are filled in even when `policies:` names others.
  globalPolicyProps[p.id] = p.defaultEnabled ? policyEntry(p, true) : Type.Optional(policyEntry(p, false))
}
export const PoliciesConfig = Type.Object(routePolicyProps, {
  additionalProperties: false,
  description: 'Policies by id, with their config; merged over the global `policies` by id.',
})

export const RouteConfig = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      pattern: '^[a-z0-9][a-z0-9_-]*$',
      description: 'Route name (metrics, logs).',
    }),
    match: Type.Object(
      {
        hosts: Type.Optional(
          Type.Array(Type.String({ minLength: 1 }), {
            description: 'Host names (exact, or `*.example.com`); any host when absent.',
          }),
        ),
        pathPrefix: Type.String({
          pattern: '^/',
          default: '/',
          description:
            'Canonical path prefix, matched on segment boundaries (`/api` matches `/api/x`, not `/apix`).',
        }),
        methods: Type.Optional(
          Type.Array(Type.String({ pattern: '^[A-Z]+$' }), { description: 'Methods; any when absent.' }),
        ),
        openapi: Type.Optional(
          Type.Object(
            {
              spec: Type.String({
                minLength: 1,
                description:
                  "OpenAPI 3.0/3.1 document (relative to the config file) whose operations become this route's routes: each operation (method + path template, under `pathPrefix`) is a route named by its operationId, with this route's upstream, policies and authentication. Re-read on every reload.",
              }),
              undeclared: Type.Union([Type.Literal('block'), Type.Literal('monitor')], {
                default: 'block',
                description:
                  'Requests under `pathPrefix` that match no operation: `block` (404 GW_ERR_ROUTE_NOT_IN_SPEC, or 405 GW_ERR_METHOD_NOT_IN_SPEC with Allow, before any policy), or `monitor` (passed through this route, logged as `shadow-api`).',
              }),
            },
            {
              additionalProperties: false,
              description:
                "Routing from an OpenAPI document (instead of `methods`). Validation stays the openapi-validation policy's job (give it the same spec, with `basePath` = `pathPrefix`).",
            },
          ),
        ),
      },
      { additionalProperties: false, default: {}, description: 'What requests this route takes.' },
    ),
    upstream: Type.String({ minLength: 1, description: 'Name of an upstream under `upstreams`.' }),
    stripPrefix: Type.Boolean({ default: false, description: 'Remove the matched prefix before proxying.' }),
    methodOverride: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'Honour method override requests (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`, a `_method` query parameter) on this route: a POST naming PUT, PATCH or DELETE is routed, validated, authorized and forwarded as that method, without the header or parameter. Off: such requests are refused (400 GW_ERR_METHOD_OVERRIDE), as on every route by default. See docs/security/method-override.md.',
      }),
    ),
    requestBuffering: Type.Object(
      {
        maxBytes: Type.Integer({
          minimum: 0,
          default: 1048576,
          description:
            'Request bodies up to this size are read whole before an upstream connection is taken, so a client that sends its body slowly holds a gateway socket, not an upstream connection (as nginx buffers bodies). Larger bodies stream. 0: every body streams.',
        }),
        idleTimeoutMs: Type.Integer({
          minimum: 100,
          default: 10000,
          description:
            "Longest pause between two parts of a request body while the gateway reads it, to buffer it before forwarding or for a policy that reads it (408 GW_ERR_REQUEST_TIMEOUT). The listener's requestTimeoutMs still bounds the whole request.",
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description:
          'Request body buffering (the defense against slow uploads that would hold every upstream connection).',
      },
    ),
    websocket: Type.Optional(
      Type.Object(
        {
          idleTimeoutMs: Type.Integer({
            minimum: 1000,
            default: 60000,
            description:
              'A WebSocket connection with no byte in either direction for this long is closed (ping/pong frames count as traffic).',
          }),
          maxConnections: Type.Integer({
            minimum: 1,
            default: 1000,
            description: 'WebSocket connections open at once on this route; more get 503 GW_ERR_OVERLOADED.',
          }),
          maxConnectionsPerClient: Type.Integer({
            minimum: 1,
            default: 20,
            description:
              'WebSocket connections open at once on this route from one client address (after `trustedProxies`); more get 429 GW_ERR_CONCURRENCY_LIMITED.',
          }),
        },
        {
          additionalProperties: false,
          description:
            "WebSocket pass-through on this route (see docs/websocket.md): a GET with `Upgrade: websocket` goes through the route's request phase (authentication, ip-filter, rate limits, authorize…) like any request; if it passes, the upstream's 101 and then the connection's bytes are relayed both ways. `{}` turns it on with the defaults. Without it, upgrades get 501.",
        },
      ),
    ),
    responseBodyLimit: Type.Integer({
      minimum: 0,
      default: 10485760,
      description: 'Largest response body a policy may buffer for inspection (then 502).',
    }),
    policies: Type.Optional(PoliciesConfig),
    authentication: Type.Optional(
      Type.Object(
        {
          anyOf: Type.Optional(
            Type.Array(Type.String({ minLength: 1 }), {
              minItems: 1,
              description:
                'Authentication policies of this route, tried in order: the first credential the request carries decides (an invalid one is refused, never passed on to the next).',
            }),
          ),
          allOf: Type.Optional(
            Type.Array(Type.String({ minLength: 1 }), {
              minItems: 1,
              description:
                'Authentication policies that must all succeed (e.g. an API key and a user token).',
            }),
          ),
        },
        {
          additionalProperties: false,
          description:
            'How the authentication policies enabled on this route combine (exactly one of anyOf / allOf). Without it, each enforces its own credential.',
        },
      ),
    ),
  },
  { additionalProperties: false },
)

export const GatewayConfig = Type.Object(
  {
    listeners: Type.Array(ListenerConfig, { minItems: 1, description: 'Client-facing listeners.' }),
    admin: AdminConfig,
    upstreams: Type.Record(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$' }), UpstreamConfig, {
      description: 'Upstream services by name.',
    }),
    routes: Type.Array(RouteConfig, {
      minItems: 1,
      description: 'Routes. The most specific match wins: exact host, then wildcard, then longest prefix.',
    }),
    policies: Type.Object(globalPolicyProps, {
      additionalProperties: false,
      default: {},
      description:
        'Policies applied to every route (a route may override each, or set `enabled: false`). request-size-limit and security-headers are on unless disabled.',
    }),
    stores: StoresConfig,
    proxy: Type.Object(
      {
        trustedProxies: Type.Array(Type.String(), {
          default: [],
          description:
            'CIDRs or addresses of proxies in front of the gateway whose X-Forwarded-* are believed.',
        }),
        requestIdHeader: Type.String({
          default: 'x-request-id',
          pattern: '^[a-z0-9-]+$',
          description: 'Header carrying the request id (accepted when well-formed, else generated).',
        }),
        allowSemicolonInPath: Type.Boolean({
          default: false,
          description: 'Accept `;` in paths. Off: `/a/..;/b` tricks against Java servers are rejected.',
        }),
        maxUrlLength: Type.Integer({
          minimum: 64,
          default: 8192,
          description: 'Longest request target (414).',
        }),
        maxUpstreamRequestsPerClient: Type.Integer({
          minimum: 0,
          default: 64,
          description:
            'Most requests one client address (after trustedProxies) may have waiting on upstreams at once; more get 429 GW_ERR_CONCURRENCY_LIMITED. Keeps one client from holding every upstream connection. 0: no cap.',
        }),
        maxQueryParams: Type.Integer({
          minimum: 1,
          maximum: 100000,
          default: 1000,
          description:
            'Most query parameters (and form-body fields) a policy will read; more is a 400. See docs/security/query-strings.md.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Proxy behaviour and request hygiene.' },
    ),
    accessLog: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Write one JSON line per request.' }),
        destination: Type.String({
          default: 'stdout',
          description: '`stdout`, `stderr`, or a file path (appended).',
        }),
      },
      { additionalProperties: false, default: {}, description: 'The access log (pino JSON lines).' },
    ),
    audit: AuditConfig,
    detect: DetectConfig,
    egress: EgressConfig,
    inventory: InventoryConfig,
    log: Type.Object(
      {
        level: Type.Union(
          ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info', description: 'Level of the gateway log (stderr).' },
        ),
        refusals: Type.Object(
          {
            perInterval: Type.Integer({
              minimum: 0,
              default: 20,
              description:
                'Lines written per kind of refusal (policy, code and route) per interval; the rest are counted and summed up in one line at the end of the interval. 0: only the summaries.',
            }),
            intervalMs: Type.Integer({
              minimum: 1000,
              default: 60000,
              description: 'The interval of `perInterval`.',
            }),
          },
          {
            additionalProperties: false,
            default: {},
            description:
              'Per-request refusal lines (a request that failed validation, an authorization denial) are sampled, so an attack does not flood the log: the signal stays (every kind, with counts), the volume does not. Metrics, the access log and the audit log still record every request.',
          },
        ),
      },
      { additionalProperties: false, default: {}, description: 'The gateway log.' },
    ),
    shutdown: Type.Object(
      {
        drainTimeoutMs: Type.Integer({
          minimum: 0,
          default: 10000,
          description: 'How long in-flight requests may finish after SIGTERM/SIGINT.',
        }),
        idleGraceMs: Type.Integer({
          minimum: 0,
          default: 1000,
          description:
            'After SIGTERM/SIGINT, how long idle keep-alive connections stay open (within the drain deadline): a request a client sends on one is answered with `Connection: close` instead of meeting a reset connection.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Graceful shutdown.' },
    ),
    reload: Type.Object(
      {
        watch: Type.Boolean({
          default: true,
          description: 'Reload when the config file changes (SIGHUP always).',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Hot reload.' },
    ),
  },
  { additionalProperties: false, title: 'Portcullis configuration' },
)

export type GatewayConfig = Static<typeof GatewayConfig>
export type ListenerConfig = Static<typeof ListenerConfig>
export type UpstreamConfig = Static<typeof UpstreamConfig>
export type RouteConfig = Static<typeof RouteConfig>
export type TlsConfig = Static<typeof TlsConfig>
export type AdminConfig = Static<typeof AdminConfig>
