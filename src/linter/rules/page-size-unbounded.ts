import { isPageSizeName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, isObject } from './util.js'

export const pageSizeUnbounded = defineRule({
  id: 'page-size-unbounded',
  title: 'Page-size parameter without a maximum',
  category: 'API4',
  severity: 'medium',
  why: '`?limit=1000000` on a list endpoint makes the server load, serialize and send the whole table in one answer: the simplest denial of service and the simplest bulk data scrape. Give every page-size parameter a `maximum`.',
  before: `paths:
  /products:
    get:
      parameters:
        - { name: limit, in: query, schema: { type: integer, minimum: 1 } }
      responses:
        "200": { description: Products }`,
  after: `paths:
  /products:
    get:
      parameters:
        - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 100 } }
      responses:
        "200": { description: Products }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops)
      for (const p of o.op.parameters) {
        if (p.in !== 'query' || !isPageSizeName(p.name) || !p.schemaLocation) continue
        const r = ctx.deref(p.schema, p.schemaLocation)
        const s = r && isObject(r.value) ? r.value : {}
        if (s.maximum !== undefined || s.exclusiveMaximum !== undefined || Array.isArray(s.enum)) continue
        if (s.type !== undefined && s.type !== 'integer' && s.type !== 'number' && s.type !== 'string')
          continue
        out.push({
          message: `${o.label}: "${p.name}" has no maximum`,
          locations: [ctx.loc(p.location, o)],
          ops: [o],
        })
      }
    return out
  },
})
