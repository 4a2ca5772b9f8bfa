import type { Hit } from '../types.js'
import { defineRule } from './util.js'

const IDENTITY =
  /^x-(forwarded-|remote-|auth-|authenticated-|original-)?(user|user-?id|username|user-?name|account-?id|customer-?id|principal|email|uid|member-?id|roles?|groups?)$/i

export const identityHeaderParameter = defineRule({
  id: 'identity-header-parameter',
  title: 'Caller identity taken from a request header',
  category: 'API1',
  severity: 'high',
  why: 'Headers such as `X-User-Id`, `X-Remote-User` or `X-Forwarded-User` are set by whoever sends the request unless a trusted proxy strips and rewrites them on every path. An API that documents them as inputs trusts the caller to say who they are: change the header, become someone else. Derive identity from the verified credential.',
  before: `paths:
  /orders:
    get:
      parameters:
        - { name: X-User-Id, in: header, required: true, schema: { type: string, maxLength: 36 } }
      responses:
        "200": { description: The user's orders }`,
  after: `security:
  - bearer: []
paths:
  /orders:
    get:
      responses:
        "200": { description: The caller's orders }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops)
      for (const p of o.op.parameters)
        if (p.in === 'header' && IDENTITY.test(p.name))
          out.push({
            message: `${o.label} takes the caller's identity from header "${p.name}"`,
            locations: [ctx.loc(p.location, o)],
            ops: [o],
          })
    return out
  },
})
