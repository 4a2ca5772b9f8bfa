/**
 * The `detect:` section of the config (wired into config/schema.ts). See docs/detect.md.
 */
import { type Static, type TProperties, Type } from '@sinclair/typebox'

/**
 * How account names are normalized before they are counted (see identity.ts): used by
 * brute-force-lockout (`credential.normalize`) and the detectors (`detect.identityNormalization`).
 */
export function IdentityNormalizationSchema(o: { description: string }) {
  return Type.Object(
    {
      trim: Type.Boolean({
        default: true,
        description:
          'Remove leading and trailing white space (spaces, tabs, line breaks, every Unicode space).',
      }),
      caseFold: Type.Boolean({
        default: true,
        description: '`Alice`, `ALICE` and `alice` are one account (full Unicode case folding).',
      }),
      unicode: Type.Union([Type.Literal('NFKC'), Type.Literal('none')], {
        default: 'NFKC',
        description:
          '`NFKC`: Unicode compatibility normalization (fullwidth `ａｌｉｃｅ` is `alice`, `ﬁ` is `fi`), as Django and ASP.NET Identity do; `none`: compared as sent.',
      }),
    },
    { additionalProperties: false, default: {}, description: o.description },
  )
}

const action = Type.Union([Type.Literal('alert'), Type.Literal('ban'), Type.Literal('step-up')], {
  default: 'alert',
  description:
    '`alert`: raise an alert. `ban`: raise an alert and ban the subject (an IP, or an authenticated principal) for `banSec`. `step-up`: raise an alert and, for `banSec`, refuse the principal with 401 GW_ERR_STEP_UP_REQUIRED unless its credential shows multi-factor authentication (`amr` contains `mfa`); an IP subject gets the alert only.',
})
const banSec = Type.Integer({
  minimum: 1,
  maximum: 31_622_400,
  default: 900,
  description: 'How long a ban (action `ban`) or a step-up demand (action `step-up`) lasts.',
})
const enabled = Type.Boolean({ default: true, description: 'Run this detector.' })

function detector<T extends TProperties>(props: T, description: string) {
  return Type.Object(
    { enabled, ...props, action, banSec },
    { additionalProperties: false, default: {}, description },
  )
}

function alertOnly<T extends TProperties>(props: T, description: string) {
  return Type.Object({ enabled, ...props }, { additionalProperties: false, default: {}, description })
}

export const DetectConfig = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description:
        'Run the detectors in the log phase of every request (bounded tables; a few Map operations per request).',
    }),
    maxSubjects: Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      default: 10_000,
      description:
        'Subjects (IPs, principals, routes) each detector tracks at once; the least recently seen go first.',
    }),
    suppressionSec: Type.Integer({
      minimum: 1,
      maximum: 86_400,
      default: 600,
      description: 'After an alert, the same detector raises none for the same subject for this long.',
    }),
    shared: Type.Union([Type.Literal('auto'), Type.Literal('off')], {
      default: 'auto',
      description:
        '`auto`: when the store is Redis, brute-force, credential-stuffing, enumeration (distinct objects and denied ratio) and scraping also count in the store, so their thresholds apply to the traffic of all gateways together, and an alert is raised once across all gateways per suppression window. flood, global-spike, error-spike and the sequential walk count per gateway. `off`: every gateway counts its own traffic only.',
    }),
    failureStatuses: Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
      default: [401],
      maxItems: 16,
      description:
        "Response statuses that count as a failed authentication (the gateway's own 401s and the upstream's). On routes with brute-force-lockout, its `failureStatuses` count too, and so do requests it refused because their source is locked out (429 GW_ERR_LOCKED_OUT).",
    }),
    identityNormalization: IdentityNormalizationSchema({
      description:
        'How the user name of an `Authorization: Basic` header is normalized before the detectors count it (the account names brute-force-lockout reads are normalized by its own `credential.normalize`: keep the two alike). Default: trim, Unicode NFKC, case fold.',
    }),
    bruteForce: detector(
      {
        failures: Type.Integer({
          minimum: 1,
          default: 20,
          description: 'Failed authentications that raise an alert.',
        }),
        windowSec: Type.Integer({
          minimum: 1,
          maximum: 86_400,
          default: 60,
          description: 'Sliding counting window (see docs/detect.md#windows).',
        }),
      },
      'Brute force: failed authentications per client IP and per attempted identity (principal, account, credential hash) in a window.',
    ),
    credentialStuffing: detector(
      {
        identities: Type.Integer({
          minimum: 2,
          maximum: 10_000,
          default: 10,
          description:
            'Distinct identities (account names, key ids, credentials) failing from one IP that raise an alert.',
        }),
        windowSec: Type.Integer({
          minimum: 1,
          maximum: 86_400,
          default: 300,
          description: 'Sliding counting window (see docs/detect.md#windows).',
        }),
      },
      'Credential stuffing: many distinct identities failing authentication from one client IP.',
    ),
    enumeration: detector(
      {
        foreignObjects: Type.Optional(
          Type.Integer({
            minimum: 2,
            maximum: 10_000,
            description:
              'Distinct objects one subject is refused (403/404) within the window that raise an alert, however many requests for its own objects come between them. Default 25 (or `objects` × `deniedRatio` when those older fields are given).',
          }),
        ),
        objects: Type.Optional(
          Type.Integer({
            minimum: 2,
            maximum: 10_000,
            description:
              "Older form of `foreignObjects`: the threshold is `objects` × `deniedRatio` distinct refused objects (a ratio of all requests could be diluted by requests for the caller's own objects). Ignored when `foreignObjects` is set.",
          }),
        ),
        deniedRatio: Type.Optional(
          Type.Number({
            minimum: 0,
            maximum: 1,
            description: 'Older form of `foreignObjects`, with `objects` (default 0.5).',
          }),
        ),
        sequentialRun: Type.Integer({
          minimum: 0,
          maximum: 10_000,
          default: 20,
          description:
            'Consecutive numeric ids of one collection path (each one more, or each one less, than the one before, each within `windowSec` of the one before) refused (403/404) to one subject that raise an alert: a walk over ids that are not its own. 0: off.',
        }),
        sequentialRunAllowed: Type.Integer({
          minimum: 0,
          maximum: 100_000,
          default: 100,
          description:
            "Consecutive numeric ids not known to be the subject's own (refused, or let through on a route where the gateway does not check ownership) that raise an alert, as an alert only (never a ban or step-up: it may be a user reading her own objects in order). Requests the gateway knows are for the subject's own objects (object-ownership checked them, or the id is the principal's id) never count. 0: off.",
        }),
        windowSec: Type.Integer({
          minimum: 1,
          maximum: 86_400,
          default: 300,
          description: 'Sliding window of the distinct refused objects; the longest pause within a walk.',
        }),
      },
      "BOLA enumeration: one principal (or, unauthenticated, one IP) refused many distinct object ids (the last numeric or UUID path segment), or walking consecutive ids that are not its own. Requests for objects the gateway knows are the caller's never count.",
    ),
    flood: detector(
      {
        requests: Type.Integer({
          minimum: 1,
          default: 1000,
          description: 'Requests from one client IP within the window that raise an alert.',
        }),
        windowSec: Type.Integer({
          minimum: 1,
          maximum: 3600,
          default: 10,
          description: 'Sliding counting window (see docs/detect.md#windows).',
        }),
        baselineFactor: Type.Number({
          minimum: 0,
          maximum: 1000,
          default: 10,
          description:
            'Moving baseline: an IP also raises an alert when its requests in a window reach this many times the typical per-IP count (a moving average over past windows of requests per active IP), and at least `baselineMinRequests`. Used once `warmupWindows` windows have passed. 0: off (the fixed `requests` threshold only).',
        }),
        baselineMinRequests: Type.Integer({
          minimum: 1,
          default: 200,
          description:
            'Fewest requests in a window for a baseline alert (quiet APIs do not alert on small bursts).',
        }),
        warmupWindows: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 6,
          description: 'Windows observed before the moving baselines (per IP and global) are used.',
        }),
      },
      'Floods: requests per client IP in a window against a fixed threshold and against a moving baseline.',
    ),
    globalSpike: alertOnly(
      {
        factor: Type.Number({
          minimum: 1,
          maximum: 1000,
          default: 5,
          description:
            'All requests of this gateway in a window reaching this many times their moving average over past windows raise an alert.',
        }),
        minRequests: Type.Integer({
          minimum: 1,
          default: 2000,
          description: 'Fewest requests in a window for a spike alert.',
        }),
        windowSec: Type.Integer({
          minimum: 1,
          maximum: 3600,
          default: 10,
          description: 'Sliding counting window (see docs/detect.md#windows).',
        }),
        warmupWindows: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 6,
          description: 'Windows observed before the baseline is used.',
        }),
      },
      'Global spikes: the total request rate of this gateway against its moving baseline (alert only; subject `global`).',
    ),
    scraping: detector(
      {
        pages: Type.Integer({
          minimum: 2,
          maximum: 10_000,
          default: 100,
          description: 'Distinct pages of one collection path fetched by one subject that raise an alert.',
        }),
        params: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.\\[\\]-]{1,64}$' }), {
          default: [
            'page',
            'offset',
            'cursor',
            'after',
            'before',
            'start',
            'skip',
            'from',
            'pageToken',
            'page_token',
            'page[number]',
            'page[offset]',
            'page[cursor]',
          ],
          minItems: 1,
          maxItems: 32,
          description: 'Query parameters that name a page (their values, together, are the page key).',
        }),
        windowSec: Type.Integer({
          minimum: 1,
          maximum: 86_400,
          default: 600,
          description: 'Sliding counting window (see docs/detect.md#windows).',
        }),
      },
      'Scraping: one principal (or, unauthenticated, one IP) walking many pages of one collection (distinct values of the paging query parameters on one path).',
    ),
    errorSpike: alertOnly(
      {
        errors: Type.Integer({
          minimum: 1,
          default: 50,
          description: '5xx responses on one route within the window.',
        }),
        ratio: Type.Number({
          minimum: 0,
          maximum: 1,
          default: 0.2,
          description: "Share of the route's responses in the window that must be 5xx.",
        }),
        windowSec: Type.Integer({
          minimum: 1,
          maximum: 3600,
          default: 60,
          description: 'Sliding counting window (see docs/detect.md#windows).',
        }),
      },
      'Error spikes: 5xx responses per route in a window (alert only).',
    ),
    alerts: Type.Object(
      {
        recent: Type.Integer({
          minimum: 1,
          maximum: 10_000,
          default: 200,
          description: 'Alerts kept for GET /v1/alerts on the admin API (the newest).',
        }),
        webhook: Type.Optional(
          Type.Object(
            {
              url: Type.String({
                pattern: '^https?://',
                description: 'Where each alert is POSTed as JSON.',
              }),
              secret: Type.String({
                minLength: 16,
                description:
                  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${env:} and ${file:} are config syntax
                  'HMAC-SHA256 key: `X-Portcullis-Signature: sha256=<hex>` over the body. Write it as `${env:NAME}` or `${file:PATH}`. Never logged.',
              }),
              timeoutMs: Type.Integer({
                minimum: 100,
                maximum: 60_000,
                default: 5000,
                description: 'Timeout of one delivery attempt.',
              }),
              maxAttempts: Type.Integer({
                minimum: 1,
                maximum: 20,
                default: 5,
                description: 'Delivery attempts per alert (backoff 0.5 s doubling, at most 30 s).',
              }),
              maxQueue: Type.Integer({
                minimum: 1,
                maximum: 100_000,
                default: 1000,
                description:
                  'Alerts waiting for delivery; when full the oldest is dropped (and counted in the log).',
              }),
            },
            { additionalProperties: false, description: 'HMAC-signed JSON webhook.' },
          ),
        ),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'Where alerts go: the recent list, the log, a webhook.',
      },
    ),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Attack detectors and alerts, fed from the log phase (see docs/detect.md). Bound at start.',
  },
)

export type DetectConfig = Static<typeof DetectConfig>
