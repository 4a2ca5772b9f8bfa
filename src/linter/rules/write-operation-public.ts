import { defineRule, perOperation } from './util.js'

export const writeOperationPublic = defineRule({
  id: 'write-operation-public',
  title: 'Write operation open to anonymous callers',
  category: 'API2',
  severity: 'high',
  why: 'A POST, PUT, PATCH or DELETE with `security: []` (or an empty requirement `{}` among its alternatives) changes state for anyone on the internet. Apart from login, registration and password-reset flows, which must be public and are rate-limited instead, a write without authentication is almost always a mistake copied from a public read.',
  before: `paths:
  /orders/{id}:
    delete:
      security: []
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "204": { description: Deleted }`,
  after: `paths:
  /orders/{id}:
    delete:
      security:
        - bearer: []
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "204": { description: Deleted }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }`,
  check: (ctx) =>
    perOperation(ctx, (o) =>
      o.write && o.anonymous && !o.authFlow
        ? `${o.label} changes state and accepts anonymous callers`
        : undefined,
    ),
})
