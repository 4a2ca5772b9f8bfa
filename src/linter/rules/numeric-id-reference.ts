import { isIdName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, isNumericIdSchema, isObject } from './util.js'

export const numericIdReference = defineRule({
  id: 'numeric-id-reference',
  title: 'Sequential object ids in query parameters or request bodies',
  category: 'API1',
  severity: 'medium',
  why: 'An id in a query (`?ids=1,2,3`) or a body (`{"accountId": 7}`) names an object just like a path does, but it is easy to forget in ownership checks: the handler checks the path and trusts the rest. Numeric ids make the enumeration trivial. Check every referenced object\'s owner, and prefer random ids.',
  before: `paths:
  /transfers:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                fromAccountId: { type: integer }
      responses:
        "201": { description: Created }`,
  after: `paths:
  /transfers:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                fromAccountId: { type: string, format: uuid }
      responses:
        "201": { description: Created }`,
  check(ctx) {
    const out: Hit[] = []
    const seen = new Set<string>()
    for (const n of ctx.requestNodes()) {
      if (n.name === undefined || n.source === 'path' || n.source === 'header' || n.source === 'cookie')
        continue
      if (n.op.admin !== undefined) continue
      if (!isIdName(n.name) || (n.source === 'body' && n.path.length === 1 && /^(id|_id)$/.test(n.name)))
        continue
      let s = n.schema
      if (s.type === 'array' && isObject(s.items)) {
        const r = ctx.deref(s.items, { file: n.at.file, pointer: `${n.at.pointer}/items` })
        if (r && isObject(r.value)) s = r.value
      }
      if (!isNumericIdSchema(s)) continue
      // An array and its items carry the same name: one location per operation and name.
      const key = `${n.op.label}|${n.source}|${n.path.join('.')}`
      if (seen.has(key)) continue
      seen.add(key)
      out.push({
        message: `${n.op.label}: "${n.name}" (${n.source}) references objects by sequential id`,
        locations: [ctx.loc(n.at, n.op, `"${n.name}" in ${n.source}`)],
        ops: [n.op],
      })
    }
    return out
  },
})
