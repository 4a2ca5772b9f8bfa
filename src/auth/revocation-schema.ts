/**
 * The `revocation` block of the authentication policies that check tokens against revocations
 * (jwt-auth, oauth2-introspection): one schema, so both read and document it alike.
 */
import { Type } from '@sinclair/typebox'

export const RevocationConfig = Type.Object(
  {
    file: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Path (relative to the config file) of a denylist, one `jti:<value>` or `sha256:<hex of the token>` per line; reloaded on change. Local to this gateway.',
      }),
    ),
    shared: Type.Boolean({
      default: true,
      description:
        'Also check the shared revocation list (the `revocations` map in the configured store, written through the admin API `/v1/revocations`): with the Redis store, every gateway sharing it sees a revocation within about a second.',
    }),
    maxStaleSeconds: Type.Integer({
      minimum: 1,
      maximum: 86400,
      default: 300,
      description:
        'When the store has been unreachable this long (no sync of the shared list), token requests are refused with 503 `GW_ERR_STATE_UNAVAILABLE` (unless `failOpen`). Before the first sync, requests wait up to 1 s, then are refused the same way.',
    }),
    failOpen: Type.Boolean({
      default: false,
      description:
        'While the shared list is stale or not yet loaded, accept tokens that are not in the last copy (revocations made meanwhile are missed) instead of refusing them.',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'Revoked tokens: a local file and the shared list. Checked on every request, cache hits too.',
  },
)
