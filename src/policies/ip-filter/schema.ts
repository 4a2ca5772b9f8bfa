import { Type } from '@sinclair/typebox'

const Ranges = (description: string) =>
  Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { default: [], maxItems: 10_000, description })

export const IpFilterConfig = Type.Object(
  {
    allow: Ranges(
      'Client addresses or CIDR ranges (IPv4 and IPv6, e.g. `10.0.0.0/8`, `2001:db8::/32`) that may use the route; when the list is not empty, every other client gets 403 GW_ERR_IP_NOT_ALLOWED.',
    ),
    deny: Ranges(
      'Client addresses or CIDR ranges refused with 403 GW_ERR_IP_NOT_ALLOWED, even when `allow` lists them too (deny wins).',
    ),
  },
  { additionalProperties: false },
)
