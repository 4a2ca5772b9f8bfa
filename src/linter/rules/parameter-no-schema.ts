import type { Hit } from '../types.js'
import { defineRule } from './util.js'

export const parameterNoSchema = defineRule({
  id: 'parameter-no-schema',
  title: 'Parameters without a schema',
  category: 'hygiene',
  severity: 'low',
  why: 'A parameter with neither `schema` nor `content` accepts any value: nothing can be validated at the edge, and injection payloads pass as they are. Give every parameter a type and bounds.',
  before: `paths:
  /search:
    get:
      parameters:
        - { name: q, in: query }
      responses:
        "200": { description: Results }`,
  after: `paths:
  /search:
    get:
      parameters:
        - { name: q, in: query, schema: { type: string, maxLength: 200 } }
      responses:
        "200": { description: Results }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops)
      for (const p of o.op.parameters)
        if (p.schema === undefined)
          out.push({
            message: `${o.label}: "${p.name}" has no schema`,
            locations: [ctx.loc(p.location, o)],
            ops: [o],
          })
    return out
  },
})
