import { sensitiveKind } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, nodeLoc, typesOf } from './util.js'

export const responseSensitiveProperty = defineRule({
  id: 'response-sensitive-property',
  title: 'Secret-looking property in a response',
  category: 'API3',
  severity: 'high',
  why: 'A response schema that declares `password`, `passwordHash`, `secret`, `ssn`, `cardNumber`, `cvv`, a private key or a token (outside login and token operations) promises to send it to the client. Even when a UI hides it, every client, proxy log and browser cache gets it (excessive data exposure). Remove it from the response schema, or mark it `writeOnly` if the same schema is used for input.',
  before: `components:
  schemas:
    User:
      type: object
      properties:
        id: { type: string, format: uuid }
        passwordHash: { type: string }
paths:
  /users/{id}:
    get:
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "200":
          description: A user
          content:
            application/json:
              schema: { $ref: "#/components/schemas/User" }`,
  after: `components:
  schemas:
    User:
      type: object
      properties:
        id: { type: string, format: uuid }
paths:
  /users/{id}:
    get:
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "200":
          description: A user
          content:
            application/json:
              schema: { $ref: "#/components/schemas/User" }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.responseNodes()) {
      if (n.name === undefined) continue
      const kind = sensitiveKind(n.name)
      if (kind === undefined) continue
      const t = typesOf(n.schema)
      if (t.has('object') || t.has('array') || t.has('boolean') || n.schema.properties !== undefined) continue
      if (kind === 'token' && n.op.authFlow) continue
      out.push({
        message: `${n.op.label} returns "${n.name}"`,
        locations: [nodeLoc(ctx, n, `"${n.name}"`)],
        ops: [n.op],
      })
    }
    return out
  },
})
