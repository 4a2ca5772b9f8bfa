/**
 * The `inventory:` section of the config (wired into config/schema.ts). See docs/inventory.md.
 */
import { type Static, Type } from '@sinclair/typebox'

export const InventoryConfig = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description:
        'Keep the API inventory: every request is mapped to an operation (method + path template) in the log phase, with bounded per-operation statistics; sampled messages are classified for personal data and credentials.',
    }),
    sampleRate: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0.01,
      description:
        'Share of requests whose headers, query, buffered request body and response body are classified and whose JSON fields are recorded (besides the first `warmupSamples` of each operation). 1 classifies every request.',
    }),
    warmupSamples: Type.Integer({
      minimum: 0,
      maximum: 1000,
      default: 20,
      description:
        'The first requests of each newly seen operation are all sampled, whatever `sampleRate` says.',
    }),
    maxSampleBytes: Type.Integer({
      minimum: 256,
      maximum: 1_048_576,
      default: 65_536,
      description:
        'Most bytes of a sampled body that are read (a response is copied as it streams, up to this); a longer body is classified on its first part.',
    }),
    maxOperations: Type.Integer({
      minimum: 10,
      maximum: 10_000,
      default: 1000,
      description:
        'Most operations kept; requests to further new operations count in one `(overflow)` entry per method.',
    }),
    maxSegmentValues: Type.Integer({
      minimum: 2,
      maximum: 10_000,
      default: 50,
      description:
        'Distinct literal values one path segment may take (under the same parent) before it becomes a parameter (`{param}`): the cardinality guard against path explosion.',
    }),
    maxFieldsPerOperation: Type.Integer({
      minimum: 10,
      maximum: 2000,
      default: 150,
      description: 'Most JSON field paths (with their types) remembered per operation.',
    }),
    specs: Type.Optional(
      Type.Array(
        Type.Object(
          {
            file: Type.String({
              minLength: 1,
              description: 'OpenAPI document (relative to the config file).',
            }),
            pathPrefix: Type.String({
              default: '',
              description: 'Prefix under which the gateway serves the paths of this document.',
            }),
          },
          { additionalProperties: false },
        ),
        {
          maxItems: 64,
          description:
            'The specs traffic is compared with (shadow, zombie, unused, undeclared data). Default: every spec named in the config (routes with `match.openapi`, at their path prefix, and policies with a `spec`).',
        },
      ),
    ),
    unusedAfterDays: Type.Number({
      minimum: 0.001,
      maximum: 366,
      default: 30,
      description: 'An operation of a spec with no traffic for this long is flagged unused.',
    }),
    retentionDays: Type.Number({
      minimum: 1,
      maximum: 366,
      default: 90,
      description:
        'With the Redis store: an operation with no traffic for this long disappears from the shared inventory.',
    }),
    flushIntervalMs: Type.Integer({
      minimum: 100,
      maximum: 600_000,
      default: 2000,
      description:
        'With the Redis store: how often a gateway adds what it counted to the shared inventory (the merged view lags by at most this).',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'The API inventory built from live traffic (docs/inventory.md): operations, statistics, data classes, and flags against the spec.',
  },
)

export type InventoryConfig = Static<typeof InventoryConfig>
