import type { Hit } from '../types.js'
import { defineRule, nodeLoc, typesOf } from './util.js'

export const arrayUnbounded = defineRule({
  id: 'array-unbounded',
  title: 'Request arrays without maxItems',
  category: 'API4',
  severity: 'medium',
  why: 'An input array with no `maxItems` lets one request carry a million items: a batch endpoint does a million writes, an `ids` filter a million lookups (and a million ownership checks). Bound every array the client sends.',
  before: `paths:
  /orders/batch:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: array
              items: { type: string, format: uuid }
      responses:
        "200": { description: Done }`,
  after: `paths:
  /orders/batch:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: array
              maxItems: 100
              items: { type: string, format: uuid }
      responses:
        "200": { description: Done }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.requestNodes()) {
      if (!typesOf(n.schema).has('array') || typeof n.schema.maxItems === 'number') continue
      const what = n.path.join('.') || n.name || 'the body'
      out.push({
        message: `${n.op.label}: "${what}" has no maxItems`,
        locations: [nodeLoc(ctx, n, `"${what}"`)],
        ops: [n.op],
      })
    }
    return out
  },
})
