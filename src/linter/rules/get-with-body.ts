import { defineRule, perOperation } from './util.js'

export const getWithBody = defineRule({
  id: 'get-with-body',
  title: 'GET, HEAD or DELETE with a request body',
  category: 'API8',
  severity: 'low',
  why: 'Bodies on GET, HEAD and DELETE have no defined meaning (RFC 9110): caches ignore them, some proxies drop them, others forward them, and request smuggling lives in such disagreements. Use POST for a query that needs a body.',
  before: `paths:
  /search:
    get:
      requestBody:
        content:
          application/json:
            schema: { type: object }
      responses:
        "200": { description: Results }`,
  after: `paths:
  /search:
    post:
      requestBody:
        content:
          application/json:
            schema: { type: object }
      responses:
        "200": { description: Results }`,
  check: (ctx) =>
    perOperation(ctx, (o) =>
      ['GET', 'HEAD', 'DELETE'].includes(o.op.method) && o.op.requestBody !== undefined
        ? `${o.label} declares a request body`
        : undefined,
    ),
})
