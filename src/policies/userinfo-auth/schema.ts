import { Type } from '@sinclair/typebox'
import { JSON_POINTER_PATTERN } from '../../auth/json-pointer.js'

const POINTER = Type.String({ pattern: JSON_POINTER_PATTERN, maxLength: 512 })

export const UserinfoAuthCacheConfig = Type.Object(
  {
    maxEntries: Type.Integer({
      minimum: 0,
      maximum: 1000000,
      default: 10000,
      description:
        'Most valid tokens remembered (least recently used evicted first); 0 turns the positive cache off.',
    }),
    maxTtlSec: Type.Integer({
      minimum: 0,
      maximum: 3600,
      default: 30,
      description:
        'How long a valid answer is reused, in seconds. A session revoked at the application keeps working through the gateway for up to this long. 0: no positive cache (one endpoint call per request).',
    }),
    negativeTtlSec: Type.Integer({
      minimum: 0,
      maximum: 30,
      default: 5,
      description:
        'How long a refused token (endpoint answered 401/403) is remembered, in seconds (blunts floods of one junk token). 0: off.',
    }),
    maxNegativeEntries: Type.Integer({
      minimum: 0,
      maximum: 1000000,
      default: 10000,
      description: 'Most refused tokens remembered; kept apart so junk tokens never evict valid ones.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Userinfo answer cache (keyed by SHA-256 of the token; bounded LRU).',
  },
)

export const UserinfoAuthConfig = Type.Object(
  {
    // Required when the policy is on; optional in the schema only so that a route can turn a
    // global entry off with `enabled: false` alone. create() checks it.
    endpoint: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Required. The userinfo endpoint (OIDC UserInfo, or an application's `/me`) that is called with `Authorization: Bearer <token>` and answers the caller's record as a JSON object. Must be https; http is accepted only to a loopback host (localhost, 127.0.0.0/8, ::1).",
      }),
    ),
    method: Type.Union([Type.Literal('GET'), Type.Literal('POST')], {
      default: 'GET',
      description: 'HTTP method of the endpoint call (OIDC allows both; POST is sent without a body).',
    }),
    tokenHeader: Type.String({
      default: 'authorization',
      pattern: '^[A-Za-z0-9-]{1,64}$',
      description:
        'Request header carrying the token. `authorization` expects `Bearer <token>`; any other header carries the bare token. The endpoint always receives it as `Authorization: Bearer <token>`.',
    }),
    forwardToken: Type.Boolean({
      default: true,
      description:
        'Pass the token header on to the upstream (the default: an application that issued the session usually needs it). false removes it before proxying.',
    }),
    timeoutMs: Type.Integer({
      minimum: 50,
      maximum: 60000,
      default: 2000,
      description:
        'Deadline for one endpoint call (queueing, connect, response); past it the request fails closed with 503.',
    }),
    connections: Type.Integer({
      minimum: 1,
      maximum: 1024,
      default: 16,
      description: 'Most concurrent keep-alive connections to the endpoint (further calls queue).',
    }),
    maxResponseBytes: Type.Integer({
      minimum: 256,
      maximum: 1048576,
      default: 16384,
      description: 'Largest endpoint response body accepted; a larger one fails closed with 503.',
    }),
    maxTokenBytes: Type.Integer({
      minimum: 16,
      maximum: 65536,
      default: 8192,
      description: 'Longest token accepted; a longer one is refused with 401 before any endpoint call.',
    }),
    idPointer: Type.String({
      pattern: JSON_POINTER_PATTERN,
      maxLength: 512,
      default: '/sub',
      description:
        'JSON Pointer (RFC 6901) to the principal id in the answer; a number becomes a string. An answer without a non-empty id fails closed with 503 (the endpoint is misconfigured, not the caller).',
    }),
    rolesPointers: Type.Union([POINTER, Type.Array(POINTER, { maxItems: 32 })], {
      default: [],
      description:
        'JSON Pointer(s) to the principal roles: each reaches a string (one role) or an array of strings. E.g. `[/role]`.',
    }),
    scopesPointer: Type.Optional(
      Type.String({
        pattern: JSON_POINTER_PATTERN,
        maxLength: 512,
        description:
          'JSON Pointer to the principal scopes: a space-separated string or an array of strings. None by default.',
      }),
    ),
    claims: Type.Optional(
      Type.Array(POINTER, {
        maxItems: 64,
        description:
          'JSON Pointers of the answer members kept as principal claims, at the same place (`/org/id` → claims.org.id). Default: the whole answer. Either way, members whose name contains password, secret, token or hash (any case) are never kept; a pointer through such a name is a config error.',
      }),
    ),
    realm: Type.String({
      default: 'portcullis',
      pattern: '^[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]{1,100}$',
      description: 'Realm in the `WWW-Authenticate: Bearer realm="…"` header of 401 responses.',
    }),
    cache: UserinfoAuthCacheConfig,
  },
  { additionalProperties: false },
)
