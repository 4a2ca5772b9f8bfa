import { findCredential } from '../credentials.js'
import { esc } from '../context.js'
import type { Hit } from '../types.js'
import { defineRule } from './util.js'

const MAX_VISITS = 2_000_000

export const exampleCredentials = defineRule({
  id: 'example-credentials',
  title: 'Credential in an example',
  category: 'API8',
  severity: 'high',
  why: "Examples are published with the documentation, copied into tests, Postman collections and support tickets. A real password, API key, private key or token in an example is a leaked credential; even a demo account's password gets reused. Use obvious placeholders (`<password>`, `sk_test_...`).",
  before: `paths:
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
            example:
              username: alice
              password: Summer2024!
      responses:
        "204": { description: Logged in }`,
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
            example:
              username: alice
              password: <password>
      responses:
        "204": { description: Logged in }`,
  check(ctx) {
    const out: Hit[] = []
    let visits = 0
    const scan = (v: unknown, pointer: string, key: string | undefined, file: string, depth: number) => {
      if (++visits > MAX_VISITS || depth > 64) return
      if (typeof v === 'string') {
        const hit = findCredential(v, key)
        if (hit)
          out.push({
            message: `an example holds a ${hit.kind}`,
            locations: [ctx.loc({ file, pointer }, undefined, `${hit.kind}${key ? ` in "${key}"` : ''}`)],
          })
        return
      }
      if (v === null || typeof v !== 'object') return
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) scan(v[i], `${pointer}/${i}`, key, file, depth + 1)
      } else for (const [k, x] of Object.entries(v)) scan(x, `${pointer}/${esc(k)}`, k, file, depth + 1)
    }
    for (const e of ctx.documentIndex().examples) scan(e.value, e.pointer, undefined, e.file, 0)
    return out
  },
})
