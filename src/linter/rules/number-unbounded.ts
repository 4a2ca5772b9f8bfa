import { isIdName, isPageSizeName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, nodeLoc, typesOf } from './util.js'

export const numberUnbounded = defineRule({
  id: 'number-unbounded',
  title: 'Request numbers without minimum and maximum',
  category: 'API4',
  severity: 'low',
  why: 'An unbounded quantity, amount or duration invites a negative quantity (a refund instead of a charge), a 10^18 page offset or a one-year timeout. State the range: `minimum` and `maximum` (ids need only a minimum).',
  before: `paths:
  /cart/items:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                quantity: { type: integer }
      responses:
        "201": { description: Added }`,
  after: `paths:
  /cart/items:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                quantity: { type: integer, minimum: 1, maximum: 100 }
      responses:
        "201": { description: Added }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.requestNodes()) {
      const t = typesOf(n.schema)
      if (!(t.has('integer') || t.has('number')) || t.has('string') || n.name === undefined) continue
      if (Array.isArray(n.schema.enum) || n.schema.const !== undefined) continue
      if (n.source === 'query' && isPageSizeName(n.name)) continue // page-size-unbounded says it better
      const min = n.schema.minimum !== undefined || n.schema.exclusiveMinimum !== undefined
      const max = n.schema.maximum !== undefined || n.schema.exclusiveMaximum !== undefined
      if (min && (max || isIdName(n.name))) continue
      out.push({
        message: `${n.op.label}: "${n.path.join('.') || n.name}" has no ${min ? 'maximum' : max ? 'minimum' : 'minimum or maximum'}`,
        locations: [nodeLoc(ctx, n, `"${n.name}"`)],
        ops: [n.op],
      })
    }
    return out
  },
})
