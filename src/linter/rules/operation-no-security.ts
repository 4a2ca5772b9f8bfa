import { defineRule, perOperation } from './util.js'

export const operationNoSecurity = defineRule({
  id: 'operation-no-security',
  title: 'Operation without any security requirement',
  category: 'API2',
  severity: 'high',
  why: 'Neither the operation nor the document declares a `security` requirement, so nothing in the contract says a caller must authenticate. Gateways and generated servers that enforce the contract let every such call through, and reviewers cannot tell an intentionally public operation from a forgotten one. Declare the scheme at the document level and mark public operations with an explicit `security: []`.',
  before: `paths:
  /orders:
    get:
      responses:
        "200": { description: Orders }`,
  after: `security:
  - bearer: []
paths:
  /orders:
    get:
      responses:
        "200": { description: Orders }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }`,
  check: (ctx) =>
    perOperation(ctx, (o) => (o.security === undefined ? `${o.label} declares no security` : undefined)),
})
