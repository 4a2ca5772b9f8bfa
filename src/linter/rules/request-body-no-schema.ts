import type { Hit } from '../types.js'
import { defineRule } from './util.js'

const STRUCTURED = /json|xml|x-www-form-urlencoded|multipart\/form-data|yaml/

export const requestBodyNoSchema = defineRule({
  id: 'request-body-no-schema',
  title: 'Structured request body without a schema',
  category: 'API8',
  severity: 'medium',
  why: 'A JSON, XML or form body with no schema accepts anything: no validation at the edge, no mass-assignment protection, no size or shape limits. It is the opposite of a positive security model. Describe it, with `additionalProperties: false`.',
  before: `paths:
  /profile:
    put:
      requestBody:
        content:
          application/json: {}
      responses:
        "204": { description: Saved }`,
  after: `paths:
  /profile:
    put:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              properties:
                displayName: { type: string, maxLength: 100 }
      responses:
        "204": { description: Saved }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops)
      for (const m of o.op.requestBody?.content ?? [])
        if (STRUCTURED.test(m.type) && m.schema === undefined)
          out.push({
            message: `${o.label}: ${m.type} body has no schema`,
            locations: [ctx.loc(m.location, o)],
            ops: [o],
          })
    return out
  },
})
