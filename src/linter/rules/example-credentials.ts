import { findCredential } from '../credentials.js'
import { esc } from '../context.js'
import type { Hit } from '../types.js'
import { defineRule } from './util.js'

const EXAMPLE_KEYS = new Set(['example', 'examples', 'x-example', 'x-examples'])
const MAX_VISITS = 2_000_000

export const exampleCredentials = defineRule({
  id: 'example-credentials',
  title: 'Credential in an example',
  category: 'API8',
  severity: 'high',
  grouped: true,
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
      if (Array.isArray(v))
        v.forEach((x, i) => {
          scan(x, `${pointer}/${i}`, key, file, depth + 1)
        })
      else for (const [k, x] of Object.entries(v)) scan(x, `${pointer}/${esc(k)}`, k, file, depth + 1)
    }
    const walk = (v: unknown, pointer: string, file: string, depth: number) => {
      if (++visits > MAX_VISITS || depth > 200 || v === null || typeof v !== 'object') return
      if (Array.isArray(v)) {
        v.forEach((x, i) => {
          walk(x, `${pointer}/${i}`, file, depth + 1)
        })
        return
      }
      for (const [k, x] of Object.entries(v)) {
        const p = `${pointer}/${esc(k)}`
        if (EXAMPLE_KEYS.has(k)) scan(x, p, undefined, file, 0)
        else walk(x, p, file, depth + 1)
      }
    }
    for (const file of ctx.spec.documents.fileNames()) walk(ctx.spec.documents.document(file), '', file, 0)
    return out
  },
})
