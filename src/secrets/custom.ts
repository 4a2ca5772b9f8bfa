/**
 * User-defined detectors and allow rules from a YAML (or JSON) file, validated against a TypeBox
 * schema like the gateway config; every problem is reported with the file and the path in it,
 * and patterns must compile on the linear-time engine.
 *
 * ```yaml
 * detectors:
 *   - id: acme-api-key
 *     name: ACME API key
 *     keywords: [acme_]
 *     pattern: 'acme_[A-Za-z0-9]{32}'
 *     severity: high
 * allow:
 *   paths: ['test/fixtures/**']
 *   values: ['acme_0000000000000000000000000000000']
 * ```
 */
import { readFileSync } from 'node:fs'
import { type Static, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { parse } from 'yaml'
import { ConfigError } from '../cli/command.js'
import { DetectorError, SecretScanner } from './engine.js'
import type { Detector } from './types.js'

const CustomDetector = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,63}$', description: 'Stable kebab-case id.' }),
    name: Type.String({ minLength: 1, maxLength: 200 }),
    provider: Type.String({ default: 'Custom', maxLength: 100 }),
    keywords: Type.Array(Type.String({ minLength: 2, maxLength: 100 }), { minItems: 1, maxItems: 50 }),
    pattern: Type.String({ minLength: 1, maxLength: 2000 }),
    secretGroup: Type.Optional(Type.Integer({ minimum: 0, maximum: 20 })),
    before: Type.Optional(Type.Integer({ minimum: 0, maximum: 4096 })),
    after: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536 })),
    boundary: Type.Optional(Type.Boolean()),
    minEntropy: Type.Optional(Type.Number({ minimum: 0, maximum: 8 })),
    severity: Type.Union(
      [Type.Literal('critical'), Type.Literal('high'), Type.Literal('medium'), Type.Literal('low')],
      {
        default: 'high',
      },
    ),
    docs: Type.String({ default: '', maxLength: 500 }),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
)

export const SecretsConfig = Type.Object(
  {
    detectors: Type.Array(CustomDetector, { default: [], maxItems: 1000 }),
    allow: Type.Object(
      {
        paths: Type.Array(Type.String({ minLength: 1, maxLength: 500 }), {
          default: [],
          maxItems: 1000,
          description: 'gitignore-style globs of files never reported.',
        }),
        values: Type.Array(Type.String({ minLength: 1, maxLength: 2000 }), {
          default: [],
          maxItems: 10_000,
          description: 'Exact values never reported (test keys).',
        }),
        detectors: Type.Array(Type.String(), { default: [], description: 'Detector ids turned off.' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
)

export type SecretsConfigT = Static<typeof SecretsConfig>

/** Loads and validates the file; throws ConfigError listing every problem. */
export function loadSecretsConfig(file: string): SecretsConfigT {
  let raw: unknown
  try {
    raw = parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message.split('\n')[0]}`)
  }
  const value = Value.Default(SecretsConfig, Value.Clone(raw ?? {}))
  const problems = [...Value.Errors(SecretsConfig, value)].map(
    (e) => `${file}: ${e.path || '/'}: ${e.message}`,
  )
  if (problems.length > 0) throw new ConfigError(problems.slice(0, 50))
  const cfg = value as SecretsConfigT
  cfg.detectors.forEach((d, i) => {
    try {
      new SecretScanner([toDetector(d)])
    } catch (err) {
      if (!(err instanceof DetectorError)) throw err
      problems.push(`${file}: /detectors/${i}/pattern: ${err.message}`)
    }
  })
  if (problems.length > 0) throw new ConfigError(problems)
  return cfg
}

export function toDetector(d: SecretsConfigT['detectors'][number]): Detector {
  return { ...d, custom: true, specificity: 2 }
}
