import { Type } from '@sinclair/typebox'

const Mode = (description: string, def: string) =>
  Type.Union([Type.Literal('block'), Type.Literal('monitor')], { default: def, description })
const Undeclared = (description: string) =>
  Type.Union([Type.Literal('block'), Type.Literal('monitor'), Type.Literal('strip')], {
    default: 'block',
    description,
  })

const UNKNOWN_QUERY =
  'Query parameters the operation does not declare: `block` (400), `monitor` (passed, logged) or `strip` (removed before the upstream).'
const UNDECLARED_PROPS =
  'Body properties the schema does not declare (as if objects with `properties` had `additionalProperties: false`): `block` (400), `monitor` (passed, logged) or `strip` (removed before the upstream).'

export const OpenApiValidationConfig = Type.Object(
  {
    spec: Type.String({
      minLength: 1,
      description:
        'The OpenAPI 3.0 or 3.1 document (YAML or JSON), relative to the config file. Loaded, and its schemas compiled, when the config is loaded or reloaded.',
    }),
    basePath: Type.String({
      default: '',
      pattern: '^(/.*[^/])?$',
      description:
        "Prefix of the gateway path the spec's paths are relative to (e.g. `/api` when the spec says `/users` for `/api/users`); '' for none.",
    }),
    allowRemoteHosts: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        "Hosts (`host` or `host:port`; without a port, the scheme's default) whose documents remote `$ref`s may point to. They are fetched when the config is loaded or reloaded (https only; http only to a loopback address), at most 10 MiB each, redirects only within this list; a `$ref` to any other host fails the load.",
    }),
    remoteTimeoutMs: Type.Integer({
      minimum: 100,
      maximum: 120000,
      default: 10000,
      description:
        'Time allowed for fetching all remote `$ref` documents of the spec, in milliseconds (the load fails after it).',
    }),
    mode: Mode(
      '`block`: requests that violate the spec are refused. `monitor`: they are passed and the violations logged (nothing is stripped either).',
      'block',
    ),
    undeclaredRoutes: Mode(
      'Requests whose path (404, GW_ERR_ROUTE_NOT_IN_SPEC) or method (405, GW_ERR_METHOD_NOT_IN_SPEC) the spec does not declare: `block`, or `monitor` (passed, logged as shadow-API events).',
      'block',
    ),
    unknownQueryParams: Undeclared(UNKNOWN_QUERY),
    undeclaredProperties: Undeclared(UNDECLARED_PROPS),
    operations: Type.Record(
      Type.String({ minLength: 1 }),
      Type.Object(
        {
          mode: Type.Optional(Type.Union([Type.Literal('block'), Type.Literal('monitor')])),
          unknownQueryParams: Type.Optional(
            Type.Union([Type.Literal('block'), Type.Literal('monitor'), Type.Literal('strip')]),
          ),
          undeclaredProperties: Type.Optional(
            Type.Union([Type.Literal('block'), Type.Literal('monitor'), Type.Literal('strip')]),
          ),
          responses: Type.Optional(
            Type.Union([
              Type.Literal('off'),
              Type.Literal('monitor'),
              Type.Literal('block'),
              Type.Literal('strip'),
            ]),
          ),
        },
        { additionalProperties: false },
      ),
      {
        default: {},
        description:
          'Per operation overrides of `mode`, `unknownQueryParams`, `undeclaredProperties` and `responses`, by operationId (or `METHOD /path` for operations without one). An unknown id is a config error.',
      },
    ),
    responses: Type.Union(
      [Type.Literal('off'), Type.Literal('monitor'), Type.Literal('block'), Type.Literal('strip')],
      {
        default: 'off',
        description:
          "Response validation (status, content type, JSON body): `off`, `monitor` (logged), `block` (502 GW_ERR_UPSTREAM_RESPONSE_INVALID) or `strip` (undeclared properties removed; other violations logged). Any value but `off` on a route buffers its responses (up to the route's `responseBodyLimit`).",
      },
    ),
    maxResponseItems: Type.Integer({
      minimum: 1,
      default: 1000,
      description:
        'Arrays in a response body longer than this are validated on a sample of this many items (the first half, then evenly spread), in monitor and block modes; strip visits every item.',
    }),
    maxViolations: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 10,
      description: 'Most violations listed in a 400 response (the log gets the same list).',
    }),
    maxBodyBytes: Type.Integer({
      minimum: 0,
      default: 1048576,
      description:
        'Largest JSON, form or text body read for validation, in bytes (413 above; it only lowers the route limit). Multipart bodies have their own limits (`multipart`).',
    }),
    multipart: Type.Object(
      {
        maxBodyBytes: Type.Integer({
          minimum: 0,
          default: 10485760,
          description:
            'Largest `multipart/form-data` body, in bytes (413 GW_ERR_BODY_TOO_LARGE above; it only lowers the route limit). The body is parsed as it streams in and held until it is validated.',
        }),
        maxParts: Type.Integer({
          minimum: 1,
          default: 100,
          description: 'Most parts in one body (413 above).',
        }),
        maxFileBytes: Type.Integer({
          minimum: 0,
          default: 5242880,
          description:
            'Largest file part (a property with `format: binary`, or `contentMediaType`; or an undeclared part with a filename), in bytes (413 above). File parts are counted, never parsed.',
        }),
        maxFieldBytes: Type.Integer({
          minimum: 0,
          default: 100000,
          description:
            'Largest text part, in bytes (413 above); text parts are typed by their property and validated.',
        }),
        maxHeaderBytes: Type.Integer({
          minimum: 64,
          default: 8192,
          description: 'Largest header block of one part, in bytes (400 GW_ERR_MALFORMED_BODY above).',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description:
          'Limits for `multipart/form-data` request bodies. Structure the parser refuses (no final boundary, content outside the boundaries, bare CR/LF in part headers, nested multipart, a part without a name) → 400 GW_ERR_MALFORMED_BODY.',
      },
    ),
    json: Type.Object(
      {
        maxDepth: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 64,
          description: 'Deepest nesting of a JSON body.',
        }),
        maxKeys: Type.Integer({ minimum: 1, default: 1000, description: 'Most members of one JSON object.' }),
        maxArrayLength: Type.Integer({
          minimum: 1,
          default: 10000,
          description: 'Most elements of one JSON array.',
        }),
        maxStringLength: Type.Integer({
          minimum: 1,
          default: 100000,
          description: 'Longest JSON string (keys included), in UTF-16 code units.',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description:
          "Guards applied while a JSON body is parsed, before any schema: duplicate keys, `__proto__`/`constructor`/`prototype` keys and U+0000 are always refused. The spec's own `maxItems`/`maxLength`/`maximum` apply on top.",
      },
    ),
  },
  { additionalProperties: false },
)
