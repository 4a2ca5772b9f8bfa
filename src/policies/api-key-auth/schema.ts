import { type Static, Type } from '@sinclair/typebox'
import { SCOPE_PATTERN } from '../../keys/store.js'

export const ApiKeyAuthConfig = Type.Object(
  {
    source: Type.Union([Type.Literal('file'), Type.Literal('store')], {
      default: 'file',
      description:
        'Where the key records are: `file`, a key store file (`store`); or `store`, the replicated map `api-keys` of the `stores:` backend, which must be `redis` (gateways sharing that Redis see a revocation within a second). Both are written by `portcullis keys`.',
    }),
    store: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'With source: file (required there, not allowed with source: store): the key store file written by `portcullis keys` (hashes only), relative to the config file. Reloaded when it changes; a broken file is refused and the previous keys stay in effect.',
      }),
    ),
    maxStaleSeconds: Type.Integer({
      minimum: 1,
      maximum: 86400,
      default: 300,
      description:
        'With source: store: while Redis cannot be reached the gateway keeps checking keys against its last copy of the records; once that copy is older than this, requests with a key get 503 GW_ERR_STATE_UNAVAILABLE (fail closed). Revocations made while Redis is unreachable cannot arrive before it is back.',
    }),
    header: Type.String({
      default: 'x-api-key',
      pattern: '^[A-Za-z0-9-]{1,64}$',
      description: 'Request header that carries the key.',
    }),
    queryParam: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_.-]{1,64}$',
        description:
          'Also accept the key in this query parameter. Discouraged: URLs end up in browser history, proxy and server logs, and the query reaches the upstream. Logged as a warning at start.',
      }),
    ),
    requiredScopes: Type.Array(Type.String({ pattern: SCOPE_PATTERN }), {
      default: [],
      description: 'Scopes the key must all have on this route; otherwise 403.',
    }),
    realm: Type.String({
      default: 'portcullis',
      pattern: '^[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]{1,100}$',
      description: 'Realm in the `WWW-Authenticate: ApiKey realm="…"` header of 401 responses.',
    }),
    stripHeader: Type.Boolean({
      default: true,
      description:
        'Remove the key header (and the query parameter, with queryParam) before proxying, so the upstream never sees the credential.',
    }),
    lastUsedFlushSeconds: Type.Integer({
      minimum: 0,
      maximum: 86400,
      default: 60,
      description:
        'How often last-used times are written (0: not tracked): merged into `<store>.last-used.json` with source: file, into the map `api-keys-used` with source: store. Never a write per request.',
    }),
  },
  { additionalProperties: false },
)

export type ApiKeyAuthConfig = Static<typeof ApiKeyAuthConfig>
