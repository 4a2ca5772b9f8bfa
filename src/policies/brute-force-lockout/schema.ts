import { Type } from '@sinclair/typebox'

export const BruteForceLockoutConfig = Type.Object(
  {
    maxFailures: Type.Integer({
      minimum: 1,
      default: 10,
      description: 'Failed authentications within `windowSec` that lock the source out.',
    }),
    windowSec: Type.Integer({ minimum: 1, default: 300, description: 'The window failures are counted in.' }),
    lockoutSec: Type.Integer({ minimum: 1, default: 60, description: 'The first lockout.' }),
    backoffFactor: Type.Number({
      minimum: 1,
      maximum: 10,
      default: 2,
      description: 'Each further lockout of the same source lasts this many times longer.',
    }),
    maxLockoutSec: Type.Integer({ minimum: 1, default: 3600, description: 'The longest lockout.' }),
    historySec: Type.Integer({
      minimum: 1,
      default: 86400,
      description: 'How long earlier lockouts are remembered for the growing lockout.',
    }),
    failureStatuses: Type.Array(Type.Integer({ minimum: 400, maximum: 599 }), {
      default: [401],
      description:
        "Response statuses that count as a failed authentication: the gateway's own (a bad token or key) and the upstream's (a wrong password on a login route).",
    }),
    by: Type.Array(Type.Union([Type.Literal('ip'), Type.Literal('credential')]), {
      default: ['ip', 'credential'],
      minItems: 1,
      description:
        'What failures are counted per: the client IP (trusted-proxy aware) and/or the credential id named by `credential`.',
    }),
    credential: Type.Optional(
      Type.Object(
        {
          jsonField: Type.Optional(
            Type.String({
              minLength: 1,
              pattern: '^[A-Za-z0-9_.-]+$',
              description: 'Top-level field of a JSON request body holding the account name (login routes).',
            }),
          ),
          header: Type.Optional(
            Type.String({ pattern: '^[a-z0-9-]+$', description: 'Request header holding the account name.' }),
          ),
        },
        {
          additionalProperties: false,
          description: 'Where the account being tried is named, so that failures count per account too.',
        },
      ),
    ),
    uniformFailures: Type.Optional(
      Type.Object(
        {
          statuses: Type.Array(Type.Integer({ minimum: 400, maximum: 599 }), {
            default: [401, 403, 404],
            minItems: 1,
            description:
              "Upstream answers that are failed logins: each is replaced by the same answer, whatever the upstream said (a 404 'no such user' and a 401 'wrong password' become indistinguishable).",
          }),
          status: Type.Integer({
            minimum: 400,
            maximum: 499,
            default: 401,
            description: 'The status every failed login gets.',
          }),
          minDurationMs: Type.Integer({
            minimum: 0,
            maximum: 10_000,
            default: 500,
            description:
              'No failed login is answered sooner than this after the request arrived. Set it above the slowest failure (a password hash check under load): a failure slower than it shows through (logged as `uniform failure over minDurationMs`).',
          }),
        },
        {
          additionalProperties: false,
          description:
            "Makes failed logins indistinguishable (user enumeration, OWASP API2): the upstream's failure answers on the route get the same status, the same body (a GW_ERR_AUTH_INVALID problem document), the same headers (only the gateway's own: security, CORS, rate-limit headers, request id) and a minimum duration. The route's responses are buffered.",
        },
      ),
    ),
    failOpen: Type.Boolean({
      default: true,
      description:
        'When the store cannot answer: true lets requests through (availability), false answers 503 (GW_ERR_STATE_UNAVAILABLE).',
    }),
  },
  { additionalProperties: false },
)
