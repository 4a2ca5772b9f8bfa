import { Type } from '@sinclair/typebox'
import { IdentityNormalizationSchema } from '../../detect/config.js'

export const BruteForceLockoutConfig = Type.Object(
  {
    maxFailures: Type.Integer({
      minimum: 1,
      default: 10,
      description:
        'Failed authentications within `windowSec` (a sliding window) that lock the source out (or, for an account with `accountAction: step-up`, demand a second factor).',
    }),
    windowSec: Type.Integer({
      minimum: 1,
      default: 300,
      description: 'The sliding window failures are counted in: the last `windowSec` before each failure.',
    }),
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
        "Response statuses that count as a failed authentication: the gateway's own (a bad token or key) and the upstream's (a wrong password on a login route; add 403 for an API that answers a wrong password so). On this route they are also recorded as `auth.failure` in the audit log and counted by the detectors.",
    }),
    by: Type.Array(
      Type.Union([Type.Literal('ip'), Type.Literal('credential'), Type.Literal('ip-credential')]),
      {
        default: ['ip', 'credential'],
        minItems: 1,
        uniqueItems: true,
        description:
          "What failures are counted per: `ip`, the client IP (trusted-proxy aware); `credential`, the account named by `credential`, from every address (a lock refuses the real user too: see `accountAction`); `ip-credential`, the account from one address (a lock refuses only that address's attempts on that account).",
      },
    ),
    accountAction: Type.Union([Type.Literal('lock'), Type.Literal('step-up')], {
      default: 'lock',
      description:
        'What an account (`by: credential`) past `maxFailures` gets. `lock`: its login requests are refused from every address (429) — whoever guesses can lock the real user out. `step-up`: nothing is refused; its login requests go upstream with the header `stepUpHeader: required`, for the application to demand a second factor or a CAPTCHA, until the lockout time passes. IP and `ip-credential` subjects are always locked.',
    }),
    stepUpHeader: Type.String({
      pattern: '^[a-z0-9-]{1,64}$',
      default: 'x-portcullis-step-up',
      description:
        'With `accountAction: step-up`: the request header that tells the application a second factor is required (`required`). Removed from every client request on the route, so a client cannot send it.',
    }),
    delay: Type.Optional(
      Type.Object(
        {
          afterFailures: Type.Integer({
            minimum: 1,
            description: 'Failures within the window after which each further failure makes the source wait.',
          }),
          baseSec: Type.Integer({
            minimum: 1,
            default: 1,
            description: 'The first wait; each further failure doubles it.',
          }),
          maxSec: Type.Integer({ minimum: 1, default: 30, description: 'The longest wait.' }),
        },
        {
          additionalProperties: false,
          description:
            'Progressive delays before the lockout: past `afterFailures`, each failure makes the source (every subject that would be locked) wait `baseSec`, then twice as long, … up to `maxSec`, answered 429 with Retry-After meanwhile. A guesser is slowed from the first few failures; a user who mistypes waits seconds, not `lockoutSec`.',
        },
      ),
    ),
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
          formField: Type.Optional(
            Type.String({
              minLength: 1,
              pattern: '^[A-Za-z0-9_.-]+$',
              description:
                'Field of an `application/x-www-form-urlencoded` request body holding the account name (login forms, OAuth `grant_type=password`).',
            }),
          ),
          header: Type.Optional(
            Type.String({ pattern: '^[a-z0-9-]+$', description: 'Request header holding the account name.' }),
          ),
          basicAuth: Type.Boolean({
            default: false,
            description:
              'The user name of an `Authorization: Basic` header (the password part is never read).',
          }),
          normalize: IdentityNormalizationSchema({
            description:
              'How the account name is normalized before it is counted, the way the application compares names: variants it treats as one account (` alice`, `ALICE`, `ａｌｉｃｅ`) are one account here. Default: trim, Unicode NFKC, case fold.',
          }),
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
