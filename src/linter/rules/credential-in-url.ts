import { isPasswordName, sensitiveKind } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule } from './util.js'

export const credentialInUrl = defineRule({
  id: 'credential-in-url',
  title: 'Password, token or key as a path or query parameter',
  category: 'API2',
  severity: 'high',
  why: 'Path and query parameters are part of the URL: access logs, proxies, browser history, monitoring tools and `Referer` headers keep them. A password, token or API key there leaks to every one of them. Take credentials in a header or a request body.',
  before: `paths:
  /login:
    get:
      security: []
      parameters:
        - { name: username, in: query, schema: { type: string, maxLength: 64 } }
        - { name: password, in: query, schema: { type: string, maxLength: 256 } }
      responses:
        "200": { description: Logged in }`,
  after: `paths:
  /login:
    post:
      security: []
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                username: { type: string, maxLength: 64 }
                password: { type: string, format: password, writeOnly: true, maxLength: 256 }
      responses:
        "200": { description: Logged in }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops)
      for (const p of o.op.parameters) {
        if (p.in !== 'query' && p.in !== 'path') continue
        if (
          !isPasswordName(p.name) &&
          sensitiveKind(p.name) === undefined &&
          !/^(api[_-]?key|access[_-]?key|auth|authorization|secret[_-]?key)$/i.test(p.name)
        )
          continue
        out.push({
          message: `${o.label}: "${p.name}" travels in the URL (${p.in})`,
          locations: [ctx.loc(p.location, o, `"${p.name}" in ${p.in}`)],
          ops: [o],
        })
      }
    return out
  },
})
