import { isPrivilegeName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, nodeLoc } from './util.js'

export const privilegeFieldWritable = defineRule({
  id: 'privilege-field-writable',
  title: 'Privilege field (role, isAdmin, permissions) writable by users',
  category: 'API3',
  severity: 'high',
  why: 'A `role`, `isAdmin`, `permissions` or `scopes` property in the request body of a non-administrative operation (registration, profile update) is a privilege escalation waiting for a handler that binds the body: a user sends `{"role": "admin"}`. Keep privilege fields out of user-facing input schemas, mark them `readOnly`, or restrict them to roles with `x-portcullis-roles` on the property.',
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
                role: { type: string, enum: [user, admin] }
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
      if (n.source !== 'body' || n.name === undefined || n.op.admin !== undefined) continue
      if (
        !isPrivilegeName(n.name) ||
        n.schema.readOnly === true ||
        n.schema['x-portcullis-roles'] !== undefined
      )
        continue
      out.push({
        message: `${n.op.label}: users may send "${n.path.join('.')}"`,
        locations: [nodeLoc(ctx, n, `"${n.name}"`)],
        ops: [n.op],
      })
    }
    return out
  },
})
