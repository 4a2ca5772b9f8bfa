import { defineRule, perOperation } from './util.js'

export const traceOperation = defineRule({
  id: 'trace-operation',
  title: 'TRACE operation',
  category: 'API8',
  severity: 'medium',
  why: 'TRACE echoes the request back, headers included: with any script injection it turns into a way to read `HttpOnly` cookies and authorization headers (cross-site tracing). No API needs it.',
  before: `paths:
  /orders:
    trace:
      responses:
        "200": { description: Echo }`,
  after: `paths:
  /orders:
    get:
      responses:
        "200": { description: Orders }`,
  check: (ctx) => perOperation(ctx, (o) => (o.op.method === 'TRACE' ? `${o.label} is declared` : undefined)),
})
