import { defineRule, hasStatus, perOperation } from './util.js'

export const missing401Response = defineRule({
  id: 'missing-401-response',
  title: 'Secured operations without a 401 response',
  category: 'API2',
  severity: 'low',
  why: 'An operation that requires authentication should say what happens without it. Without a documented 401, clients do not handle expiry, and contract tests never check that the operation refuses anonymous calls. Reported once, with every operation concerned.',
  before: `security:
  - bearer: []
paths:
  /me:
    get:
      responses:
        "200": { description: Me }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }`,
  after: `security:
  - bearer: []
paths:
  /me:
    get:
      responses:
        "200": { description: Me }
        "401": { description: Missing or expired token }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }`,
  check: (ctx) =>
    perOperation(ctx, (o) =>
      o.security !== undefined && !o.anonymous && !hasStatus(o.op, '401')
        ? `${o.label} has no 401 response`
        : undefined,
    ),
})
