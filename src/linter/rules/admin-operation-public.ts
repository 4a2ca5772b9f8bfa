import { defineRule, perOperation } from './util.js'

export const adminOperationPublic = defineRule({
  id: 'admin-operation-public',
  title: 'Administrative operation without authentication',
  category: 'API5',
  severity: 'critical',
  why: 'An operation that looks administrative (tag, path, role change) and requires no authentication at all, or allows anonymous calls, hands its function to anyone who finds the path. Internal and admin paths are the first thing scanners try.',
  before: `paths:
  /admin/cache:
    delete:
      tags: [admin]
      security: []
      responses:
        "204": { description: Flushed }`,
  after: `paths:
  /admin/cache:
    delete:
      tags: [admin]
      x-portcullis-roles: [admin]
      security:
        - oauth: [admin]
      responses:
        "204": { description: Flushed }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: { admin: Administration }`,
  check: (ctx) => {
    // A document that declares no security anywhere is operation-no-security's finding; here the
    // admin operation is the one left out while others are protected, or explicitly public.
    const anySecured = ctx.ops.some((x) => x.security !== undefined && !x.anonymous)
    return perOperation(ctx, (o) =>
      o.admin !== undefined && (o.anonymous || (o.security === undefined && anySecured))
        ? `${o.label} looks administrative (${o.admin}) and ${o.security === undefined ? 'declares no security' : 'allows anonymous callers'}`
        : undefined,
    )
  },
})
