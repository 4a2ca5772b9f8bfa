import type { OpInfo } from '../context.js'
import type { Hit } from '../types.js'
import { defineRule } from './util.js'

/** Whether a caller holding `user`'s credentials meets one of `admin`'s requirements. */
function satisfiedBy(admin: OpInfo, user: OpInfo): boolean {
  for (const need of admin.security ?? []) {
    if (Object.keys(need).length === 0) return true
    for (const have of user.security ?? []) {
      if (Object.keys(have).length === 0) continue
      const ok = Object.entries(need).every(([scheme, scopes]) => {
        const got = have[scheme]
        return got !== undefined && scopes.every((s) => got.includes(s))
      })
      if (ok) return true
    }
  }
  return false
}

export const adminSharesUserAccess = defineRule({
  id: 'admin-shares-user-access',
  title: "Administrative operation reachable with a user's credentials",
  category: 'API5',
  severity: 'high',
  why: "An operation that looks administrative (an `admin` tag, an `/admin/` or `/internal/` path, a role or permission change) but requires exactly the scopes a plain user's token already has is protected only by whatever check the handler remembers to make. This is the most common shape of Broken Function Level Authorization, and generic linters do not see it. Give it its own scope (`admin:users`) or declare the role it needs (`x-portcullis-roles: [admin]`, enforced by the gateway's authorize policy).",
  before: `security:
  - oauth: [users]
paths:
  /users/me:
    get:
      responses:
        "200": { description: Me }
  /admin/users/{id}/role:
    put:
      tags: [admin]
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "200": { description: Role changed }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: { users: Users, admin: Administration }`,
  after: `security:
  - oauth: [users]
paths:
  /users/me:
    get:
      responses:
        "200": { description: Me }
  /admin/users/{id}/role:
    put:
      tags: [admin]
      security:
        - oauth: [admin]
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "200": { description: Role changed }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: { users: Users, admin: Administration }`,
  check(ctx) {
    const users = ctx.ops.filter((o) => o.admin === undefined && o.security !== undefined && !o.anonymous)
    const out: Hit[] = []
    for (const a of ctx.ops) {
      if (a.admin === undefined || a.security === undefined || a.anonymous) continue
      if (a.roles !== undefined) {
        // Roles are declared: a finding only when a user operation accepts every one of them.
        const same = users.find(
          (u) => u.roles !== undefined && u.roles.length > 0 && a.roles?.every((r) => u.roles?.includes(r)),
        )
        if (same !== undefined)
          out.push({
            message: `${a.label} looks administrative (${a.admin}) but requires the roles [${a.roles.join(', ')}] that ${same.label} also accepts`,
            locations: [ctx.opLoc(a), ctx.opLoc(same, 'a user operation with the same roles')],
            ops: [a],
          })
        continue
      }
      const peer = users.find((u) => satisfiedBy(a, u))
      if (peer === undefined) continue
      out.push({
        message: `${a.label} looks administrative (${a.admin}) but a token for ${peer.label} meets its security requirement; no role is declared`,
        locations: [ctx.opLoc(a), ctx.opLoc(peer, 'a user operation with the same requirement')],
        ops: [a],
      })
    }
    return out
  },
})
