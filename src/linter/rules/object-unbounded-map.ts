import type { Hit } from '../types.js'
import { defineRule, isObject, nodeLoc } from './util.js'

export const objectUnboundedMap = defineRule({
  id: 'object-unbounded-map',
  title: 'Request map without maxProperties',
  category: 'API4',
  severity: 'low',
  why: "An object with `additionalProperties` (a free-form map of metadata, labels, attributes) and no `maxProperties` accepts a million keys: hash-flooding, storage growth, and every key a chance for mass assignment. Bound it, and the keys' shape with `propertyNames`.",
  before: `paths:
  /items:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                labels:
                  type: object
                  additionalProperties: { type: string, maxLength: 100 }
      responses:
        "201": { description: Created }`,
  after: `paths:
  /items:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                labels:
                  type: object
                  maxProperties: 20
                  additionalProperties: { type: string, maxLength: 100 }
      responses:
        "201": { description: Created }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.requestNodes()) {
      const ap = n.schema.additionalProperties
      if (!(ap === true || isObject(ap)) || typeof n.schema.maxProperties === 'number') continue
      const what = n.path.join('.') || 'the body'
      out.push({
        message: `${n.op.label}: "${what}" takes any number of keys`,
        locations: [nodeLoc(ctx, n)],
        ops: [n.op],
      })
    }
    return out
  },
})
