import type { Hit } from '../types.js'
import { defineRule, isJsonMedia, nodeLoc, typesOf } from './util.js'

export const requestSchemaOpen = defineRule({
  id: 'request-schema-open',
  title: 'Request body open to undeclared properties',
  category: 'API3',
  severity: 'medium',
  why: 'A JSON request object without `additionalProperties: false` accepts any extra field, and frameworks that bind the body onto a model store them: `{"displayName": "x", "role": "admin"}`. Closing the schema makes mass assignment visible to validation (the gateway refuses undeclared properties).',
  before: `paths:
  /users/me:
    patch:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                displayName: { type: string, maxLength: 100 }
      responses:
        "200": { description: Updated }`,
  after: `paths:
  /users/me:
    patch:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              properties:
                displayName: { type: string, maxLength: 100 }
      responses:
        "200": { description: Updated }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.requestNodes()) {
      if (n.source !== 'body' || !isJsonMedia(n.mediaType) || n.path.length > 0) continue
      const s = n.schema
      if (s.properties === undefined || (s.type !== undefined && !typesOf(s).has('object'))) continue
      if (s.additionalProperties === false || s.unevaluatedProperties === false) continue
      if (['GET', 'HEAD', 'DELETE'].includes(n.op.op.method)) continue
      out.push({
        message: `${n.op.label}: the body accepts undeclared properties`,
        locations: [nodeLoc(ctx, n)],
        ops: [n.op],
      })
    }
    return out
  },
})
