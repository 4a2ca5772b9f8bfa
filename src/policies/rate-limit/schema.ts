import { type Static, Type } from '@sinclair/typebox'

const Name = (description: string) => Type.String({ minLength: 1, maxLength: 128, description })

/** One part of a limit's key: where the value that requests are counted per comes from. */
export const KeyPart = Type.Union(
  [
    Type.Literal('ip', { description: 'The client IP (trusted-proxy aware: the context client IP).' }),
    Type.Literal('principal', { description: 'The authenticated principal id (any authentication policy).' }),
    Type.Literal('api-key', { description: 'The API key id (a principal of type api-key).' }),
    Type.Literal('route', { description: 'The route name: one bucket for everyone on the route.' }),
    Type.Object(
      {
        header: Type.String({
          pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
          description: 'Request header name.',
        }),
      },
      { additionalProperties: false, description: 'A request header value.' },
    ),
    Type.Object(
      { claim: Name('Claim of the principal (dotted path for nested claims).') },
      { additionalProperties: false, description: "A claim of the principal's token." },
    ),
    Type.Object(
      { query: Name('Query parameter name (decoded).') },
      { additionalProperties: false, description: 'A query parameter value (the first one).' },
    ),
    Type.Object(
      {
        pathParam: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Parameter name.' }),
        pattern: Type.String({
          pattern: '^/',
          description:
            'Path template with `{name}` segments matched against the canonical path, e.g. `/api/v2/users/{id}/orders`.',
        }),
      },
      { additionalProperties: false, description: 'A path parameter taken from a path template.' },
    ),
    Type.Object(
      {
        jsonField: Type.String({
          pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$',
          description: 'Field of a JSON request body (dotted path for nested objects).',
        }),
      },
      {
        additionalProperties: false,
        description:
          'A field of the JSON request body (the body is buffered up to the route body limit; strings and numbers only).',
      },
    ),
  ],
  { description: 'One source of the key.' },
)
export type KeyPart = Static<typeof KeyPart>

const Per = Type.Union(
  [
    Type.Literal('second'),
    Type.Literal('minute'),
    Type.Literal('hour'),
    Type.Literal('day'),
    Type.Integer({ minimum: 1, maximum: 31_536_000_000, description: 'A period in milliseconds.' }),
  ],
  {
    default: 'second',
    description: 'The period `rate` is counted over: second, minute, hour, day, or a number of milliseconds.',
  },
)

export const Throttle = Type.Object(
  {
    maxQueue: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 100,
      description:
        'Requests per key that may wait (across all gateways sharing the store: the queue is a reservation in the limiter).',
    }),
    maxWaitMs: Type.Integer({
      minimum: 1,
      maximum: 60_000,
      default: 5000,
      description:
        'Longest wait of a queued request; the queue is never longer than this many ms of the rate.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Instead of rejecting at once, excess requests wait in a FIFO queue per key and are released at the limit rate; past maxQueue / maxWaitMs they get 429. gcra only.',
  },
)

export const Limit = Type.Object(
  {
    name: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_-]{1,32}$',
        description:
          'Name of the limit in RateLimit / RateLimit-Policy headers and in logs (default `l1`, `l2`… by position). Also part of the store key: renaming a limit starts it afresh.',
      }),
    ),
    algorithm: Type.Union([Type.Literal('gcra'), Type.Literal('sliding-window')], {
      default: 'gcra',
      description:
        '`gcra`: token bucket (burst, then one request per rate interval; one atomic store call). `sliding-window`: at most `rate` in any `per` (weighted previous window; two counters).',
    }),
    rate: Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Requests admitted per `per`.' }),
    per: Per,
    burst: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000_000,
        description: 'gcra: requests admitted at once on a fresh key (default: `rate`).',
      }),
    ),
    cost: Type.Integer({ minimum: 1, default: 1, description: 'Units one request takes (at most burst).' }),
    key: Type.Array(KeyPart, {
      minItems: 1,
      maxItems: 8,
      default: ['ip'],
      description:
        'What requests are counted per: one part or a combination (all values together form the key).',
    }),
    onMissingKey: Type.Union([Type.Literal('ip'), Type.Literal('deny'), Type.Literal('skip')], {
      default: 'ip',
      description:
        'When a request lacks a key part (no principal, no such header/claim/field): `ip` counts it under the client IP instead (the default), `deny` refuses it (400 GW_ERR_BAD_REQUEST), `skip` lets it bypass this limit (only for parts the client cannot leave out at will).',
    }),
    scope: Type.Union([Type.Literal('route'), Type.Literal('gateway')], {
      default: 'route',
      description:
        '`route`: each route counts on its own (a global limit applies per route). `gateway`: every route with a limit of this name shares its counters (e.g. one per-IP budget for the whole API).',
    }),
    methods: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Z]+$' }), {
        minItems: 1,
        description:
          'Only requests with these methods count (e.g. `[POST]` for a business-flow quota); all when absent.',
      }),
    ),
    failOpen: Type.Boolean({
      default: true,
      description:
        'When the shared store fails: true keeps limiting with the local insurance limiter (this instance’s share of the rate; `localFallback`), false answers 503 GW_ERR_STATE_UNAVAILABLE.',
    }),
    throttle: Type.Optional(Throttle),
    code: Type.Union([Type.Literal('rate-limited'), Type.Literal('quota-exceeded')], {
      default: 'rate-limited',
      description:
        'Error code of a denial: GW_ERR_RATE_LIMITED, or GW_ERR_QUOTA_EXCEEDED for business-flow quotas.',
    }),
  },
  { additionalProperties: false },
)
export type Limit = Static<typeof Limit>

export const Concurrency = Type.Object(
  {
    max: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Requests in flight per key.' }),
    key: Type.Array(KeyPart, { minItems: 1, maxItems: 8, default: ['ip'], description: 'Per what.' }),
    maxKeys: Type.Integer({
      minimum: 1,
      maximum: 10_000_000,
      default: 100_000,
      description: 'Keys tracked at once (bounded memory); a request with a new key past it gets 503.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Concurrency cap per key on this gateway (not shared through the store): more than `max` in flight get 429 GW_ERR_CONCURRENCY_LIMITED. A slot is released when the response ends or the client goes away.',
  },
)

export const RateLimitConfig = Type.Object(
  {
    limits: Type.Array(Limit, {
      default: [],
      maxItems: 16,
      description: 'The limits of the route; a request must pass every one that applies to it.',
    }),
    instances: Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 10_000 })], {
      default: 'auto',
      description:
        'Gateways sharing the store, for the local insurance limiter during a store outage (each takes rate / instances). `auto`: counted from heartbeats in the store (last known count; 1 before the first).',
    }),
    localFallback: Type.Boolean({
      default: true,
      description:
        'With failOpen: keep limiting locally during a store outage (true) or admit everything (false).',
    }),
    probeIntervalMs: Type.Integer({
      minimum: 50,
      maximum: 10_000,
      default: 250,
      description: 'During a store outage, how often the store is probed; the first answer ends the outage.',
    }),
    headers: Type.Boolean({
      default: true,
      description: 'Send RateLimit and RateLimit-Policy headers (draft-ietf-httpapi-ratelimit-headers-09).',
    }),
    concurrency: Type.Optional(Concurrency),
  },
  { additionalProperties: false },
)
export type RateLimitConfig = Static<typeof RateLimitConfig>
