import type { Hit } from '../types.js'
import { defineRule, isJsonMedia, nodeLoc, typesOf } from './util.js'

export const responseSchemaOpen = defineRule({
  id: 'response-schema-open',
  title: 'Success response schema open to undeclared properties',
  category: 'API3',
  severity: 'low',
  why: "A response object that does not say `additionalProperties: false` allows the server to return anything beyond the declared fields: internal flags, password hashes, another tenant's data. Closed schemas turn the contract into an allowlist that tests and the gateway (openapi-validation `responses: strip`) can enforce.",
  before: `paths:
  /me:
    get:
      responses:
        "200":
          description: Me
          content:
            application/json:
              schema:
                type: object
                properties:
                  name: { type: string }`,
  after: `paths:
  /me:
    get:
      responses:
        "200":
          description: Me
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                properties:
                  name: { type: string }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.responseNodes()) {
      if (
        !n.status?.startsWith('2') ||
        !isJsonMedia(n.mediaType) ||
        n.path.length > 0 ||
        n.name !== undefined
      )
        continue
      const s = n.schema
      if (s.properties === undefined || (s.type !== undefined && !typesOf(s).has('object'))) continue
      if (s.additionalProperties === false || s.unevaluatedProperties === false) continue
      out.push({
        message: `${n.op.label}: the ${n.status} body may carry undeclared properties`,
        locations: [nodeLoc(ctx, n)],
        ops: [n.op],
      })
    }
    return out
  },
})
