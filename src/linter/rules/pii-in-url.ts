import { isPiiName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule } from './util.js'

export const piiInUrl = defineRule({
  id: 'pii-in-url',
  title: 'Personal data as a path or query parameter',
  category: 'API3',
  severity: 'medium',
  why: "Emails, phone numbers, dates of birth, IBANs and national ids in URLs end up in access logs, analytics, proxies and `Referer` headers, kept far longer and shown to far more people than the data's owner agreed to. Send them in a body (POST a search) or use an opaque id.",
  before: `paths:
  /users/by-email/{email}:
    get:
      parameters:
        - { name: email, in: path, required: true, schema: { type: string, format: email, maxLength: 254 } }
      responses:
        "200": { description: The user }`,
  after: `paths:
  /users/search:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                email: { type: string, format: email, maxLength: 254 }
      responses:
        "200": { description: Matching users }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops)
      for (const p of o.op.parameters)
        if ((p.in === 'path' || p.in === 'query') && isPiiName(p.name))
          out.push({
            message: `${o.label}: "${p.name}" in the URL`,
            locations: [ctx.loc(p.location, o, `"${p.name}" in ${p.in}`)],
            ops: [o],
          })
    return out
  },
})
