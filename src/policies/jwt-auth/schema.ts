import { type Static, Type } from '@sinclair/typebox'
import { RevocationConfig } from '../../auth/revocation-schema.js'

/** JWS algorithms the policy can verify. `none` is not one of them, whatever the config says. */
export const JWS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'HS256',
  'HS384',
  'HS512',
] as const
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number]

const StaticKey = Type.Object(
  {
    kid: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Key id tokens name in their `kid` header (overrides the JWK’s).',
      }),
    ),
    alg: Type.Optional(
      Type.Union(
        JWS_ALGORITHMS.map((a) => Type.Literal(a)),
        { description: 'Restrict the key to this algorithm (also taken from the JWK’s `alg`).' },
      ),
    ),
    pem: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'A PEM public key (SPKI or PKCS#1) or X.509 certificate, usually read from a file with `$' +
          '{file:keys/idp.pem}`.',
      }),
    ),
    jwk: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'A JWK as JSON, usually read from a file with `$' +
          '{file:keys/idp.jwk.json}`; `kty: oct` for an HMAC secret (HS* only).',
      }),
    ),
  },
  { additionalProperties: false, description: 'One verification key: exactly one of `pem` or `jwk`.' },
)

const Requirement = Type.Object(
  {
    claim: Type.String({
      minLength: 1,
      description: 'Claim to check (`amr`, `acr`, or a dotted path into nested claims).',
    }),
    allOf: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        description: 'The claim (a list) must contain every one of these values (e.g. `amr: [mfa]`).',
      }),
    ),
    anyOf: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        description: 'The claim (or one member of it, when a list) must be one of these values.',
      }),
    ),
    atLeast: Type.Optional(
      Type.String({ minLength: 1, description: 'The claim must be this level of `levels` or a higher one.' }),
    ),
    levels: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        description: 'Ordered levels for `atLeast`, lowest first (e.g. acr values bronze, silver, gold).',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'A step-up requirement: exactly one of `allOf`, `anyOf` or `atLeast` (with `levels`).',
  },
)

export const JwtAuthConfig = Type.Object(
  {
    algorithms: Type.Array(
      Type.Union(
        JWS_ALGORITHMS.map((a) => Type.Literal(a)),
        {},
      ),
      {
        minItems: 1,
        uniqueItems: true,
        description:
          'Accepted JWS algorithms (required, no default). `none` is never accepted; a key is only used with algorithms of its type.',
      },
    ),
    issuer: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Expected `iss` (exact match); required for `discovery`. Strongly recommended.',
      }),
    ),
    audience: Type.Optional(
      Type.Union(
        [Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })],
        {
          description: 'Accepted `aud` value(s); the token must name at least one. Strongly recommended.',
        },
      ),
    ),
    keys: Type.Optional(Type.Array(StaticKey, { minItems: 1, description: 'Static verification keys.' })),
    jwksFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Path (relative to the config file) of a local JWKS file (`{"keys":[...]}`), reloaded when it changes.',
      }),
    ),
    jwksUrl: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'URL of a remote JWKS (https; http only for loopback or with `remote.allowHttp`).',
      }),
    ),
    discovery: Type.Boolean({
      default: false,
      description: 'Find the JWKS from `<issuer>/.well-known/openid-configuration` (`jwks_uri`).',
    }),
    remote: Type.Object(
      {
        timeoutMs: Type.Integer({
          minimum: 100,
          maximum: 60000,
          default: 5000,
          description:
            'Deadline of one JWKS or discovery fetch; also the longest a first request waits for keys.',
        }),
        maxBytes: Type.Integer({
          minimum: 1024,
          maximum: 16777216,
          default: 524288,
          description: 'Largest JWKS or discovery document accepted, in bytes.',
        }),
        refreshIntervalMs: Type.Integer({
          minimum: 100,
          default: 300000,
          description: 'Refetch the JWKS this often (also the retry interval after a failure, up to 5 s).',
        }),
        unknownKidMinIntervalMs: Type.Integer({
          minimum: 0,
          default: 30000,
          description: 'A token with an unknown `kid` triggers a refetch at most this often.',
        }),
        maxStaleMs: Type.Integer({
          minimum: 0,
          default: 86400000,
          description:
            'Keep verifying with the last JWKS this long after the last successful fetch while the endpoint is down; then fail closed (503). At least refreshIntervalMs.',
        }),
        allowHttp: Type.Boolean({
          default: false,
          description: 'Allow plain-http JWKS and discovery URLs on non-loopback hosts (not recommended).',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'Fetching remote keys (`jwksUrl`, `discovery`).',
      },
    ),
    clockSkewSec: Type.Integer({
      minimum: 0,
      maximum: 600,
      default: 30,
      description: 'Tolerance for `exp`, `nbf` and `iat`, in seconds.',
    }),
    requiredClaims: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Claims that must be present (`exp` always is).',
    }),
    typ: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Required `typ` header, e.g. `at+jwt` for RFC 9068 access tokens (`application/` optional).',
      }),
    ),
    maxLifetimeSec: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'Refuse tokens whose `exp − iat` exceeds this (and tokens without `iat`).',
      }),
    ),
    requireClaims: Type.Array(Requirement, {
      default: [],
      description:
        'Step-up requirements (e.g. `amr` contains `mfa`); unmet → 401 insufficient_user_authentication.',
    }),
    token: Type.Object(
      {
        header: Type.String({
          minLength: 1,
          pattern: '^[A-Za-z0-9-]+$',
          default: 'authorization',
          description: 'Request header carrying the token.',
        }),
        scheme: Type.String({
          pattern: '^[A-Za-z0-9-]*$',
          default: 'Bearer',
          description: "Scheme before the token in the header; '' when the value is the bare token.",
        }),
        cookie: Type.Optional(
          Type.String({
            minLength: 1,
            pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
            description: 'Read the token from this cookie instead of a header.',
          }),
        ),
        maxBytes: Type.Integer({
          minimum: 256,
          maximum: 65536,
          default: 8192,
          description: 'Longest token accepted; longer ones are refused before parsing.',
        }),
        forward: Type.Boolean({
          default: true,
          description:
            'Pass the token header on to the upstream (false removes it; a cookie is always passed).',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Where the token is read from.' },
    ),
    principal: Type.Object(
      {
        idClaim: Type.String({
          minLength: 1,
          default: 'sub',
          description: 'Claim holding the principal id.',
        }),
        rolesClaims: Type.Array(Type.String({ minLength: 1 }), {
          default: ['roles', 'realm_access.roles', 'groups'],
          description: 'Claims (dotted paths allowed) whose string values become the principal’s roles.',
        }),
        serviceClaim: Type.Optional(
          Type.String({
            minLength: 1,
            description: 'With `serviceValues`: the principal is a service when this claim has one of them.',
          }),
        ),
        serviceValues: Type.Array(Type.String(), {
          default: [],
          description: 'Values of `serviceClaim` that mark a service (sub = client_id always does).',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'How the principal is built from the claims.',
      },
    ),
    cache: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description: 'Cache verified tokens: a repeated token costs no signature check.',
        }),
        maxEntries: Type.Integer({
          minimum: 1,
          maximum: 10000000,
          default: 10000,
          description: 'Most tokens cached (least recently used go first).',
        }),
        maxTtlSec: Type.Integer({
          minimum: 1,
          default: 300,
          description: 'Longest a verified token stays cached (never past its `exp`).',
        }),
      },
      { additionalProperties: false, default: {}, description: 'The verified-token cache.' },
    ),
    revocation: RevocationConfig,
    realm: Type.String({
      minLength: 1,
      pattern: '^[^"\\\\]*$',
      default: 'portcullis',
      description: 'Realm in the `WWW-Authenticate` challenge.',
    }),
  },
  { additionalProperties: false, default: {} },
)

export type JwtAuthConfig = Static<typeof JwtAuthConfig>
