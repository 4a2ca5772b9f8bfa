import type { Hit } from '../types.js'
import { defineRule, isObject } from './util.js'

const SIGNATURE = /signature|hmac|x-hub|webhook-id|svix|timestamp/i

function signed(op: Record<string, unknown>): boolean {
  if (Array.isArray(op.security) && op.security.length > 0) return true
  const params = Array.isArray(op.parameters) ? op.parameters : []
  return params.some(
    (p) => isObject(p) && p.in === 'header' && typeof p.name === 'string' && SIGNATURE.test(p.name),
  )
}

export const callbackUnauthenticated = defineRule({
  id: 'callback-unauthenticated',
  title: 'Webhook or callback without a signature',
  category: 'API10',
  severity: 'medium',
  why: 'A webhook (OAS 3.1 `webhooks`) or callback that documents no security and no signature header tells receivers to trust whatever reaches their URL: anyone who learns the URL can forge events (a payment "succeeded"). Sign the payload (an HMAC header with a timestamp) and document how to verify it.',
  before: `webhooks:
  orderPaid:
    post:
      requestBody:
        content:
          application/json:
            schema: { type: object }
      responses:
        "200": { description: Received }`,
  after: `webhooks:
  orderPaid:
    post:
      parameters:
        - name: Webhook-Signature
          in: header
          required: true
          description: HMAC-SHA256 of the timestamp and body with the endpoint's secret
          schema: { type: string, maxLength: 200 }
      requestBody:
        content:
          application/json:
            schema: { type: object }
      responses:
        "200": { description: Received }`,
  check(ctx) {
    const out: Hit[] = []
    const visitItem = (item: unknown, pointer: string, label: string) => {
      if (!isObject(item)) return
      for (const [m, op] of Object.entries(item)) {
        if (!isObject(op) || !['get', 'post', 'put', 'patch', 'delete'].includes(m)) continue
        if (signed(op)) continue
        out.push({
          message: `${label} (${m.toUpperCase()}) carries no signature or security`,
          locations: [ctx.loc({ file: ctx.rootFile, pointer: `${pointer}/${m}` })],
        })
      }
    }
    const webhooks = ctx.root.webhooks
    if (isObject(webhooks))
      for (const [name, item] of Object.entries(webhooks))
        visitItem(item, `/webhooks/${name}`, `webhook "${name}"`)
    for (const o of ctx.ops) {
      const cbs = o.op.raw.callbacks
      if (!isObject(cbs)) continue
      for (const [name, cb] of Object.entries(cbs)) {
        if (!isObject(cb) || cb.$ref !== undefined) continue
        for (const [expr, item] of Object.entries(cb))
          visitItem(
            item,
            `${o.location.pointer}/callbacks/${name}/${expr.replace(/~/g, '~0').replace(/\//g, '~1')}`,
            `callback "${name}" of ${o.label}`,
          )
      }
    }
    return out
  },
})
