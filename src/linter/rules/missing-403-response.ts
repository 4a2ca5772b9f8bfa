import { defineRule, hasStatus, perOperation, scopesOf } from './util.js'

export const missing403Response = defineRule({
  id: 'missing-403-response',
  title: 'Scoped or role-protected operations without a 403 response',
  category: 'API5',
  severity: 'low',
  why: 'An operation that needs a scope, a role or ownership of an object can refuse an authenticated caller. Documenting 403 (or 404 for objects the caller may not see) makes clients handle it and lets contract tests prove the refusal happens. Reported once, with every operation concerned.',
  before: `paths:
  /reports:
    get:
      security:
        - oauth: [reports:read]
      responses:
        "200": { description: Reports }
        "401": { description: Unauthenticated }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: { reports:read: Read reports }`,
  after: `paths:
  /reports:
    get:
      security:
        - oauth: [reports:read]
      responses:
        "200": { description: Reports }
        "401": { description: Unauthenticated }
        "403": { description: Missing scope }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: { reports:read: Read reports }`,
  check: (ctx) =>
    perOperation(ctx, (o) => {
      if (o.security === undefined || o.anonymous || hasStatus(o.op, '403')) return undefined
      const guarded = scopesOf(o).length > 0 || o.roles !== undefined || o.admin !== undefined
      return guarded ? `${o.label} needs a scope or role but documents no 403` : undefined
    }),
})
