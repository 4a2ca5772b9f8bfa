import { defineRule, perOperation } from './util.js'

const VERB =
  /^(delete|remove|destroy|update|set|create|add|reset|cancel|approve|reject|grant|revoke|disable|enable|ban|promote|transfer|pay|purge)([A-Z_-]|$)/
const SEGMENT =
  /^(delete|remove|destroy|update|create|reset|cancel|approve|reject|grant|revoke|disable|enable|ban|promote|purge)$/i

export const mutationViaGet = defineRule({
  id: 'mutation-via-get',
  title: 'State change through GET',
  category: 'API5',
  severity: 'medium',
  why: "GET is meant to be safe: browsers prefetch it, crawlers follow it, caches replay it, and an `<img src>` on any web page makes the victim's browser send it with their cookies (CSRF). A GET that deletes, cancels or grants is triggered by all of them. Use POST, PUT, PATCH or DELETE.",
  before: `paths:
  /orders/{id}/cancel:
    get:
      operationId: cancelOrder
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "200": { description: Cancelled }`,
  after: `paths:
  /orders/{id}/cancel:
    post:
      operationId: cancelOrder
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "200": { description: Cancelled }`,
  check: (ctx) =>
    perOperation(ctx, (o) => {
      if (o.op.method !== 'GET') return undefined
      const last =
        o.op.path
          .split('/')
          .filter((s) => s && !s.startsWith('{'))
          .pop() ?? ''
      const byId = VERB.test(o.op.operationId ?? '')
      if (!byId && !SEGMENT.test(last)) return undefined
      return `${o.label} looks like a state change (${byId ? `operationId "${o.op.operationId}"` : `path "${last}"`}) but is a GET`
    }),
})
