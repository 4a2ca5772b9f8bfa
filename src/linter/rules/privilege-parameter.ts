import { isPrivilegeName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, typesOf } from './util.js'

export const privilegeParameter = defineRule({
  id: 'privilege-parameter',
  title: 'Privilege taken from a client-controlled parameter',
  category: 'API5',
  severity: 'high',
  why: 'A header, cookie or boolean query parameter such as `X-Role: admin`, `isAdmin=true` or `admin=1` lets the caller state their own privileges. Whoever reads the docs sets it. Privileges must come from the verified credential, never from the request.',
  before: `paths:
  /reports:
    get:
      parameters:
        - { name: X-Role, in: header, schema: { type: string, enum: [user, admin] } }
      responses:
        "200": { description: Reports }`,
  after: `paths:
  /reports:
    get:
      x-portcullis-roles: [admin]
      responses:
        "200": { description: Reports }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops)
      for (const p of o.op.parameters) {
        const name = p.name.replace(/^x-/i, '')
        if (!isPrivilegeName(name)) continue
        const schema = (p.schema ?? {}) as Record<string, unknown>
        const boolean = typesOf(schema).has('boolean')
        if (p.in === 'path' || (p.in === 'query' && !boolean)) continue
        out.push({
          message: `${o.label}: the caller sets "${p.name}" (${p.in}) themselves`,
          locations: [ctx.loc(p.location, o)],
          ops: [o],
        })
      }
    return out
  },
})
