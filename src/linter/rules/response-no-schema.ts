import type { Hit } from '../types.js'
import { defineRule, isJsonMedia } from './util.js'

export const responseNoSchema = defineRule({
  id: 'response-no-schema',
  title: 'JSON success response without a schema',
  category: 'API3',
  severity: 'low',
  why: 'A JSON response with no schema cannot be checked or filtered: anything the server returns conforms. Data exposure reviews, response validation and property filtering all need the shape.',
  before: `paths:
  /me:
    get:
      responses:
        "200":
          description: Me
          content:
            application/json: {}`,
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
    for (const o of ctx.ops)
      for (const r of o.op.responses) {
        if (!r.status.startsWith('2')) continue
        for (const m of r.content)
          if (isJsonMedia(m.type) && m.schema === undefined)
            out.push({
              message: `${o.label}: ${r.status} ${m.type} has no schema`,
              locations: [ctx.loc(m.location, o)],
              ops: [o],
            })
      }
    return out
  },
})
