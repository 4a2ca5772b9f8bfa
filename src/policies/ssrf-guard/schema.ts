import { type Static, Type } from '@sinclair/typebox'

const Names = (description: string, pattern?: string) =>
  Type.Array(Type.String({ minLength: 1, maxLength: 256, ...(pattern ? { pattern } : {}) }), {
    default: [],
    maxItems: 256,
    description,
  })

export const SsrfDnsConfig = Type.Object(
  {
    servers: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      default: [],
      maxItems: 8,
      description:
        'DNS servers to resolve URL hosts with (`1.1.1.1`, `[2606:4700::1111]:53`, `127.0.0.1:5353`). Empty: the system’s (/etc/resolv.conf). Queries are asynchronous (c-ares), never in the thread pool.',
    }),
    hostsFile: Type.String({
      default: '/etc/hosts',
      description:
        'Names in this hosts file are answered from it first, as getaddrinfo (what most upstreams use) does; re-read when it changes. Empty: none.',
    }),
    timeoutMs: Type.Integer({ minimum: 50, maximum: 30_000, default: 2000, description: 'Per query.' }),
    tries: Type.Integer({ minimum: 1, maximum: 5, default: 2, description: 'Attempts per server.' }),
    cacheEntries: Type.Integer({
      minimum: 0,
      maximum: 1_000_000,
      default: 10_000,
      description: 'Host names whose answers are cached (bounded, least recently used first out).',
    }),
    minTtlSec: Type.Integer({
      minimum: 0,
      maximum: 86_400,
      default: 5,
      description: 'Shortest time an answer is cached.',
    }),
    maxTtlSec: Type.Integer({
      minimum: 1,
      maximum: 86_400,
      default: 300,
      description: 'Longest time an answer is cached.',
    }),
    negativeTtlSec: Type.Integer({
      minimum: 0,
      maximum: 86_400,
      default: 30,
      description: 'How long a name that does not exist is remembered.',
    }),
    onError: Type.Union([Type.Literal('refuse'), Type.Literal('allow')], {
      default: 'refuse',
      description:
        'When resolution fails (timeout, server failure): `refuse` the URL (fail closed, the default) or `allow` it.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'How URL host names are resolved and cached.' },
)

export const SsrfGuardConfig = Type.Object(
  {
    spec: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'OpenAPI 3.0/3.1 document (relative to the config file): every request input whose schema has `format: uri`, `url`, `iri`, `uri-reference` or `iri-reference` is checked (query, header and cookie-less parameters; JSON body properties at any depth, arrays and maps included; form and multipart fields).',
      }),
    ),
    basePath: Type.String({
      default: '',
      pattern: '^(/[^/]+)*$',
      description:
        "The spec's paths are under this prefix of the gateway path (as openapi-validation's `basePath`).",
    }),
    fields: Type.Object(
      {
        names: Names(
          'Property names checked wherever they occur: JSON body properties at any depth, query parameters, form fields (e.g. `imageUrl`, `callback`, `webhook`).',
        ),
        jsonPointers: Names(
          'JSON pointers into the request body (RFC 6901); a `*` segment is any array item or object member (`/hooks/*/url`).',
          '^(/([^/~]|~[01])*)+$',
        ),
        query: Names('Query parameters (decoded names).'),
        headers: Names('Request headers.', "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"),
        form: Names('Fields of form (urlencoded) and multipart bodies.'),
      },
      {
        additionalProperties: false,
        default: {},
        description:
          'URL-valued inputs named in the config, on every request of the route (besides those the spec marks).',
      },
    ),
    schemes: Type.Array(Type.String({ pattern: '^[a-z][a-z0-9+.-]*$' }), {
      default: ['http', 'https'],
      minItems: 1,
      description: 'URL schemes allowed; any other (file, gopher, dict, ftp, …) is refused.',
    }),
    allowHosts: Names(
      'When not empty, the only hosts URLs may name: exact names or addresses, or `*.example.com` for subdomains. Their addresses are still checked.',
    ),
    denyHosts: Names('Hosts refused besides the built-in internal names (same forms as allowHosts).'),
    allowAddresses: Names(
      'CIDR ranges exempted from the refused ranges (an internal service URLs may point at on purpose, e.g. `10.20.0.5/32`).',
    ),
    denyAddresses: Names('CIDR ranges refused on top of the built-in ones (e.g. your own public networks).'),
    ports: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }), {
      default: [],
      maxItems: 64,
      description: 'Ports URLs may name (the scheme default counts when none is written); any when empty.',
    }),
    allowUserinfo: Type.Boolean({
      default: false,
      description:
        'Accept `user:password@` in URLs (refused by default: parsers disagree about where the host starts).',
    }),
    maxUrlLength: Type.Integer({
      minimum: 16,
      maximum: 65_536,
      default: 2048,
      description: 'Longest URL accepted.',
    }),
    maxUrls: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 32,
      description: 'Most URL values one request may carry (each may cost a DNS query); more is refused.',
    }),
    maxBodyBytes: Type.Integer({
      minimum: 1,
      maximum: 104_857_600,
      default: 1_048_576,
      description:
        'Largest body inspected on a request that may carry URL fields; a larger one is refused (413), since it could not be checked.',
    }),
    dns: SsrfDnsConfig,
  },
  { additionalProperties: false },
)
export type SsrfGuardConfig = Static<typeof SsrfGuardConfig>
