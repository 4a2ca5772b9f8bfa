import type { Hit } from '../types.js'
import { defineRule, nodeLoc } from './util.js'

const SHAPE = ['type', 'enum', 'const', 'allOf', 'anyOf', 'oneOf', 'not', 'properties', 'items', '$ref']

export const schemaTypeMissing = defineRule({
  id: 'schema-type-missing',
  title: 'Request properties without a type',
  category: 'hygiene',
  severity: 'low',
  why: 'A request property with no `type` (nor enum, composition or properties) accepts strings, numbers, objects and arrays alike. Handlers that expect a string get an object (`{"$gt": ""}` against a NoSQL query), and no limit applies.',
  before: `paths:
  /notes:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                title: { description: The title }
      responses:
        "201": { description: Created }`,
  after: `paths:
  /notes:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                title: { type: string, maxLength: 200, description: The title }
      responses:
        "201": { description: Created }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.requestNodes()) {
      if (n.name === undefined || n.source !== 'body') continue
      if (SHAPE.some((k) => n.schema[k] !== undefined)) continue
      out.push({
        message: `${n.op.label}: "${n.path.join('.')}" has no type`,
        locations: [nodeLoc(ctx, n)],
        ops: [n.op],
      })
    }
    return out
  },
})
