import { defineRule, perOperation } from './util.js'

export const securityOptionalAnonymous = defineRule({
  id: 'security-optional-anonymous',
  title: 'Authentication made optional with an empty requirement',
  category: 'API2',
  severity: 'medium',
  why: 'A security list such as `[{bearer: []}, {}]` means "authenticated, or not at all". Servers then run the same code for both, and the anonymous path is where ownership and role checks get skipped. Split the operation (a public variant and an authenticated one) or require authentication.',
  before: `paths:
  /profile:
    get:
      security:
        - bearer: []
        - {}
      responses:
        "200": { description: Profile }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }`,
  after: `paths:
  /profile:
    get:
      security:
        - bearer: []
      responses:
        "200": { description: Profile }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }`,
  check: (ctx) =>
    perOperation(ctx, (o) =>
      (o.security ?? []).length > 1 && (o.security ?? []).some((r) => Object.keys(r).length === 0)
        ? `${o.label} accepts authenticated and anonymous callers alike`
        : undefined,
    ),
})
