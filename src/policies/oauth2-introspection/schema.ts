import { Type } from '@sinclair/typebox'
import { RevocationConfig } from '../../auth/revocation-schema.js'

/** RFC 6749 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = '^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,256}$'

export const OAuth2IntrospectionCacheConfig = Type.Object(
  {
    maxEntries: Type.Integer({
      minimum: 0,
      maximum: 1000000,
      default: 10000,
      description:
        'Most active tokens remembered (least recently used evicted first); 0 turns the positive cache off.',
    }),
    maxTtlSec: Type.Integer({
      minimum: 0,
      maximum: 86400,
      default: 300,
      description:
        'Longest time an active result is reused, in seconds; it is also never reused past the token `exp`. 0: no positive cache.',
    }),
    negativeTtlSec: Type.Integer({
      minimum: 0,
      maximum: 30,
      default: 5,
      description:
        'How long an inactive/invalid result is remembered, in seconds (blunts floods of one junk token); a token that becomes active is accepted after at most this long. 0: off.',
    }),
    maxNegativeEntries: Type.Integer({
      minimum: 0,
      maximum: 1000000,
      default: 10000,
      description: 'Most inactive results remembered; kept apart so junk tokens never evict active ones.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description: 'Introspection result cache (keyed by SHA-256 of the token).',
  },
)

export const OAuth2IntrospectionConfig = Type.Object(
  {
    // The three below are required when the policy is on; they are optional in the schema only so
    // that a route can turn a global entry off with `enabled: false` alone. create() checks them.
    endpoint: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Required. RFC 7662 introspection endpoint URL. Must be https; http is accepted only to a loopback host (localhost, 127.0.0.0/8, ::1).',
      }),
    ),
    clientId: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Required. Client id the gateway authenticates to the endpoint with.',
      }),
    ),
    clientSecret: Type.Optional(
      Type.String({
        minLength: 1,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: ${env:} and ${file:} are config syntax
        description: 'Required. Client secret; write it as `${env:NAME}` or `${file:PATH}`. Never logged.',
      }),
    ),
    clientAuthMethod: Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post')], {
      default: 'client_secret_basic',
      description:
        'How the client credentials are sent: HTTP Basic (RFC 6749 §2.3.1) or `client_id`/`client_secret` form fields.',
    }),
    tokenTypeHint: Type.Union([Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), Type.Literal(false)], {
      default: 'access_token',
      description: 'Value of the `token_type_hint` parameter, or false to send none.',
    }),
    timeoutMs: Type.Integer({
      minimum: 50,
      maximum: 60000,
      default: 2000,
      description:
        'Deadline for one introspection call (queueing, connect, response); past it the request fails closed with 503.',
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
      description: 'Largest introspection response body accepted; a larger one fails closed with 503.',
    }),
    tokenHeader: Type.String({
      default: 'authorization',
      pattern: '^[A-Za-z0-9-]{1,64}$',
      description:
        'Request header carrying the token. `authorization` expects `Bearer <token>`; any other header carries the bare token.',
    }),
    forwardToken: Type.Boolean({
      default: true,
      description: 'Pass the token header on to the upstream (false removes it before proxying).',
    }),
    maxTokenBytes: Type.Integer({
      minimum: 16,
      maximum: 65536,
      default: 8192,
      description: 'Longest token accepted; a longer one is refused with 401 before any introspection call.',
    }),
    audience: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'If not empty, the response `aud` (string or list) must contain one of these; otherwise the token is invalid here.',
    }),
    issuer: Type.Union([Type.String({ minLength: 1 }), Type.Literal(false)], {
      default: false,
      description: 'If set, the response `iss` must equal it; otherwise the token is invalid here.',
    }),
    requiredScopes: Type.Array(Type.String({ pattern: SCOPE_TOKEN }), {
      default: [],
      description: 'Scopes the token must all have on this route; otherwise 403 `insufficient_scope`.',
    }),
    realm: Type.String({
      default: 'portcullis',
      pattern: '^[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]{1,100}$',
      description: 'Realm in the `WWW-Authenticate: Bearer realm="…"` header of 401/403 responses.',
    }),
    cache: OAuth2IntrospectionCacheConfig,
    revocation: RevocationConfig,
  },
  { additionalProperties: false },
)
