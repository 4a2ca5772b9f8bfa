import { Type } from '@sinclair/typebox'

export const OverloadSheddingConfig = Type.Object(
  {
    maxEventLoopDelayMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 60_000,
        description: 'Shed when the event loop delay (p99 over the last 500 ms) is above this.',
      }),
    ),
    maxInFlight: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000_000,
        description:
          'Shed when this many requests are in flight on the routes with this policy (per process; configure it globally to count every route).',
      }),
    ),
    retryAfterSec: Type.Integer({
      minimum: 1,
      maximum: 3600,
      default: 1,
      description: 'Retry-After of the 503.',
    }),
  },
  { additionalProperties: false },
)
