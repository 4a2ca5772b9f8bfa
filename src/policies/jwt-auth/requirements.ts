/**
 * Step-up requirements (`requireClaims`): compiled once into predicates over verified claims.
 * Unmet → 401 with `error="insufficient_user_authentication"` (RFC 9470), naming the acceptable
 * `acr_values` when the requirement is on `acr`.
 */
import { compileClaimPath, stringList } from '../../auth/principal.js'
import type { JwtAuthConfig } from './schema.js'

export interface CompiledRequirement {
  /** For logs: `amr allOf mfa`. */
  describe: string
  test(claims: Readonly<Record<string, unknown>>): boolean
  /** acr values that would satisfy it (for the challenge), when it is about `acr`. */
  acrValues: readonly string[] | undefined
}

export function compileRequirements(list: JwtAuthConfig['requireClaims']): CompiledRequirement[] {
  return list.map((r, i) => {
    const where = `jwt-auth: requireClaims[${i}]`
    const kinds = [r.allOf, r.anyOf, r.atLeast].filter((x) => x !== undefined).length
    if (kinds !== 1) throw new Error(`${where}: set exactly one of allOf, anyOf or atLeast`)
    if (r.levels !== undefined && r.atLeast === undefined)
      throw new Error(`${where}: levels only go with atLeast`)
    const get = compileClaimPath(r.claim)
    const isAcr = r.claim === 'acr'
    if (r.allOf !== undefined) {
      const need = [...r.allOf]
      return {
        describe: `${r.claim} allOf ${need.join(',')}`,
        acrValues: undefined,
        test: (c) => {
          const have = stringList(get(c), false)
          return need.every((v) => have.includes(v))
        },
      }
    }
    if (r.anyOf !== undefined) {
      const ok = new Set(r.anyOf)
      return {
        describe: `${r.claim} anyOf ${r.anyOf.join(',')}`,
        acrValues: isAcr ? [...r.anyOf] : undefined,
        test: (c) => stringList(get(c), false).some((v) => ok.has(v)),
      }
    }
    const levels = r.levels
    if (levels === undefined) throw new Error(`${where}: atLeast needs levels (lowest first)`)
    const min = levels.indexOf(r.atLeast as string)
    if (min === -1) throw new Error(`${where}: atLeast "${r.atLeast}" is not one of levels`)
    const rank = new Map(levels.map((l, j) => [l, j]))
    return {
      describe: `${r.claim} atLeast ${r.atLeast}`,
      acrValues: isAcr ? levels.slice(min) : undefined,
      test: (c) => stringList(get(c), false).some((v) => (rank.get(v) ?? -1) >= min),
    }
  })
}
