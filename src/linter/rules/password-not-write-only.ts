import { isPasswordName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, nodeLoc, typesOf } from './util.js'

export const passwordNotWriteOnly = defineRule({
  id: 'password-not-write-only',
  title: 'Password field without writeOnly or format: password',
  category: 'API3',
  severity: 'medium',
  why: 'A password property that is neither `writeOnly: true` nor `format: password` is, for the contract, an ordinary string: the same schema can be echoed back in a response, generated clients and docs display it, and response filters do not know to strip it. Mark it so every tool treats it as a secret.',
  before: `components:
  schemas:
    Login:
      type: object
      properties:
        username: { type: string, maxLength: 64 }
        password: { type: string, maxLength: 256 }
paths:
  /login:
    post:
      security: []
      requestBody:
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Login" }
      responses:
        "204": { description: Logged in }`,
  after: `components:
  schemas:
    Login:
      type: object
      properties:
        username: { type: string, maxLength: 64 }
        password: { type: string, format: password, writeOnly: true, maxLength: 256 }
paths:
  /login:
    post:
      security: []
      requestBody:
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Login" }
      responses:
        "204": { description: Logged in }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.requestNodes()) {
      if (n.name === undefined || n.source !== 'body' || !isPasswordName(n.name)) continue
      if (!typesOf(n.schema).has('string') && n.schema.type !== undefined) continue
      if (n.schema.writeOnly === true || n.schema.format === 'password') continue
      out.push({
        message: `"${n.name}" is a password without writeOnly/format: password`,
        locations: [nodeLoc(ctx, n)],
      })
    }
    return out
  },
})
