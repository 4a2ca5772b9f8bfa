import { defineRule, perOperation } from './util.js'

export const operationIdMissing = defineRule({
  id: 'operation-id-missing',
  title: 'Operations without an operationId',
  category: 'hygiene',
  severity: 'info',
  why: 'Gateway policies, audit logs and inventory reports name operations by `operationId`. Without one, rules must repeat method and path, and they silently stop matching when a path is renamed.',
  before: `paths:
  /orders:
    get:
      responses:
        "200": { description: Orders }`,
  after: `paths:
  /orders:
    get:
      operationId: listOrders
      responses:
        "200": { description: Orders }`,
  check: (ctx) =>
    perOperation(ctx, (o) => (o.op.operationId === undefined ? `${o.label} has no operationId` : undefined)),
})
