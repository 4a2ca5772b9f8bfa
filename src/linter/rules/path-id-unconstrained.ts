import { isIdName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, isObject, typesOf } from './util.js'

export const pathIdUnconstrained = defineRule({
  id: 'path-id-unconstrained',
  title: 'String id in the path with no format, pattern or length',
  category: 'API8',
  severity: 'low',
  why: 'An id parameter declared as a bare string accepts anything: `../`, quotes, 10 KB of text. Validation at the edge cannot refuse injection probes or path tricks it has no shape for. Say what an id looks like (`format: uuid`, a `pattern`, a `maxLength`).',
  before: `paths:
  /files/{fileId}:
    get:
      parameters:
        - { name: fileId, in: path, required: true, schema: { type: string } }
      responses:
        "200": { description: The file }`,
  after: `paths:
  /files/{fileId}:
    get:
      parameters:
        - { name: fileId, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "200": { description: The file }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops)
      for (const p of o.op.parameters) {
        if (p.in !== 'path' || !isIdName(p.name) || !isObject(p.schema) || !p.schemaLocation) continue
        const r = ctx.deref(p.schema, p.schemaLocation)
        if (r === undefined || !isObject(r.value)) continue
        const s = r.value
        if (
          !typesOf(s).has('string') ||
          s.format !== undefined ||
          s.pattern !== undefined ||
          s.maxLength !== undefined ||
          s.enum !== undefined
        )
          continue
        out.push({
          message: `${o.label}: "${p.name}" accepts any string`,
          locations: [ctx.loc(p.location, o)],
          ops: [o],
        })
      }
    return out
  },
})
