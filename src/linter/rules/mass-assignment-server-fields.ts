import { isServerSetName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, nodeLoc } from './util.js'

export const massAssignmentServerFields = defineRule({
  id: 'mass-assignment-server-fields',
  title: 'Server-set fields writable in request bodies (mass assignment)',
  category: 'API3',
  severity: 'medium',
  why: "Fields the server owns (`id`, `createdAt`, `ownerId`, `balance`, `verified`...) declared in a request schema without `readOnly: true` invite the client to set them, and frameworks that bind the whole body onto the model will take them: a user sets their own balance or takes over someone else's object by changing `ownerId`. Mark them `readOnly` (the gateway then refuses them) or use a separate input schema.",
  before: `components:
  schemas:
    Account:
      type: object
      properties:
        id: { type: string, format: uuid }
        ownerId: { type: string, format: uuid }
        nickname: { type: string, maxLength: 50 }
paths:
  /accounts:
    post:
      requestBody:
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Account" }
      responses:
        "201": { description: Created }`,
  after: `components:
  schemas:
    Account:
      type: object
      properties:
        id: { type: string, format: uuid, readOnly: true }
        ownerId: { type: string, format: uuid, readOnly: true }
        nickname: { type: string, maxLength: 50 }
paths:
  /accounts:
    post:
      requestBody:
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Account" }
      responses:
        "201": { description: Created }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.requestNodes()) {
      if (n.source !== 'body' || n.name === undefined || n.path.length > 2 || n.op.admin !== undefined)
        continue
      if (!isServerSetName(n.name) || n.schema.readOnly === true) continue
      // A nested `id` names another object (`labels[].id`): a reference, not this object's id.
      if (n.path.length > 1 && /^(id|_id|uuid)$/i.test(n.name)) continue
      if (!['POST', 'PUT', 'PATCH'].includes(n.op.op.method)) continue
      out.push({
        message: `${n.op.label}: the client may set "${n.path.join('.')}"`,
        locations: [nodeLoc(ctx, n, `"${n.name}"`)],
        ops: [n.op],
      })
    }
    return out
  },
})
