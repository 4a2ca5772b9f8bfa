import type { Hit } from '../types.js'
import { defineRule, isBoundedString, nodeLoc, typesOf } from './util.js'

export const stringUnbounded = defineRule({
  id: 'string-unbounded',
  title: 'Request strings without maxLength',
  category: 'API4',
  severity: 'medium',
  why: 'A string input with no `maxLength` (and no enum, bounded format or anchored pattern) may be megabytes long: it is stored, indexed, logged, rendered and regex-matched at that size. Bounding every input string is the cheapest resource-consumption control, and the gateway enforces it for free from the contract.',
  before: `paths:
  /feedback:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                message: { type: string }
      responses:
        "201": { description: Received }`,
  after: `paths:
  /feedback:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                message: { type: string, maxLength: 2000 }
      responses:
        "201": { description: Received }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.requestNodes()) {
      const t = typesOf(n.schema)
      if (!t.has('string') || n.name === undefined) continue
      const f = n.schema.format
      if (f === 'binary' || f === 'byte' || f === 'base64' || n.schema.contentEncoding !== undefined) continue
      if (isBoundedString(n.schema)) continue
      out.push({
        message: `${n.op.label}: "${n.path.join('.') || n.name}" has no maxLength`,
        locations: [nodeLoc(ctx, n, `"${n.name}"`)],
        ops: [n.op],
      })
    }
    return out
  },
})
