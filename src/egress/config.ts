/** The `egress:` section: the forward proxy for the protected application's own outbound calls. */
import { type Static, Type } from '@sinclair/typebox'
import { SsrfDnsConfig } from '../policies/ssrf-guard/schema.js'

const Cidrs = (description: string, dflt: string[] = []) =>
  Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { default: dflt, maxItems: 1000, description })

export const EgressDestination = Type.Object(
  {
    host: Type.String({
      minLength: 1,
      maxLength: 253,
      description:
        'Destination host: a name (`api.stripe.com`), `*.example.com` for its subdomains, or an IP address.',
    }),
    ports: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }), {
      default: [443],
      minItems: 1,
      description: 'Ports allowed on this host.',
    }),
    tls: Type.Union([Type.Literal('required'), Type.Literal('originate'), Type.Literal('optional')], {
      default: 'required',
      description:
        '`required`: only TLS — a CONNECT tunnel must start with a TLS ClientHello whose SNI (when sent) is this host, plain `http://` requests are refused. `originate`: the application sends plain `http://` requests through the proxy and the proxy speaks verified TLS to the destination (so it can see and validate the answers); CONNECT is refused. `optional`: anything.',
    }),
    ca: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'PEM file of the CAs trusted for this destination when the proxy originates TLS (default: Node’s bundled roots).',
      }),
    ),
    openapi: Type.Optional(
      Type.Object(
        {
          spec: Type.String({
            minLength: 1,
            description: "The destination API's OpenAPI document (relative to the config file).",
          }),
          basePath: Type.String({
            default: '',
            pattern: '^(/[^/]+)*$',
            description: "The spec's paths are under this prefix of the destination's paths.",
          }),
          responses: Type.Union([Type.Literal('block'), Type.Literal('monitor')], {
            default: 'block',
            description:
              '`block`: an answer that departs from the spec (undeclared status, wrong content type, body not matching its schema, undeclared properties) becomes 502 for the application; `monitor`: logged and audited, passed on.',
          }),
        },
        {
          additionalProperties: false,
          description:
            'Validate the answers of this third-party API against its OpenAPI document (OWASP API10, unsafe consumption of APIs). Needs plain-HTTP traffic through the proxy: `tls: originate` (or `optional` with http:// URLs).',
        },
      ),
    ),
  },
  { additionalProperties: false },
)
export type EgressDestination = Static<typeof EgressDestination>

export const EgressConfig = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description:
        'Open the forward proxy (plain HTTP proxying and CONNECT); point the application at it with `HTTP_PROXY` / `HTTPS_PROXY`.',
    }),
    host: Type.String({
      default: '127.0.0.1',
      description: 'Address to bind; keep it where only the application reaches it.',
    }),
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 3128,
      description: 'Port to bind (0 = ephemeral).',
    }),
    clients: Cidrs('Client addresses or ranges allowed to use the proxy; others get 403.', [
      '127.0.0.0/8',
      '::1',
    ]),
    allow: Type.Array(EgressDestination, {
      default: [],
      maxItems: 10_000,
      description: 'The destinations the application may reach; everything else is refused (403).',
    }),
    allowAddresses: Cidrs(
      'Address ranges a destination may resolve to although special (an internal API the application calls on purpose). Loopback, private, link-local, metadata… are refused otherwise, at connect time.',
    ),
    denyAddresses: Cidrs('Address ranges refused on top of the built-in special ranges.'),
    dns: SsrfDnsConfig,
    connectTimeoutMs: Type.Integer({
      minimum: 1,
      maximum: 120_000,
      default: 5000,
      description: 'Connecting to a destination.',
    }),
    responseTimeoutMs: Type.Integer({
      minimum: 1,
      maximum: 600_000,
      default: 30_000,
      description: 'Plain HTTP: time the destination has to send its response head.',
    }),
    idleTimeoutMs: Type.Integer({
      minimum: 1,
      maximum: 3_600_000,
      default: 60_000,
      description: 'Longest silence on a connection (either side) before it is closed.',
    }),
    maxRequestBodyBytes: Type.Integer({
      minimum: 0,
      default: 10_485_760,
      description: 'Plain HTTP: largest request body sent on (413 beyond).',
    }),
    maxResponseBodyBytes: Type.Integer({
      minimum: 0,
      default: 10_485_760,
      description:
        'Plain HTTP: largest response body passed back (the response is cut beyond; 502 when validated).',
    }),
    maxTunnelBytes: Type.Integer({
      minimum: 0,
      default: 1_073_741_824,
      description: 'CONNECT: most bytes a tunnel carries, both directions together, before it is closed.',
    }),
    maxConnections: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      default: 1024,
      description: 'Client connections at once; more are refused.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      "The egress proxy: the protected application's own outbound calls (`HTTPS_PROXY=http://127.0.0.1:3128`) go only to allowed destinations, to addresses checked at connect time (DNS rebinding closed), over TLS where required, within timeouts and size caps, each in the audit log; optionally validated against the destination's OpenAPI document (see docs/egress.md).",
  },
)
export type EgressConfig = Static<typeof EgressConfig>
