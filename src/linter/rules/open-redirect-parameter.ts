import type { Hit } from '../types.js'
import { defineRule } from './util.js'

export const openRedirectParameter = defineRule({
  id: 'open-redirect-parameter',
  title: 'Redirect target taken from a query parameter',
  category: 'API7',
  severity: 'medium',
  why: '`?redirect=`, `?returnTo=`, `?next=` on an operation the browser follows: unless the target is checked against an allowlist, attackers link victims through your domain to a phishing page, and OAuth flows leak codes to it. Accept only relative paths or registered URLs.',
  before: `paths:
  /logout:
    get:
      parameters:
        - { name: returnTo, in: query, schema: { type: string, maxLength: 2048 } }
      responses:
        "302": { description: Redirect }`,
  after: `paths:
  /logout:
    get:
      parameters:
        - name: returnTo
          in: query
          schema: { type: string, maxLength: 200, pattern: "^/[A-Za-z0-9/_-]{0,199}$" }
      responses:
        "302": { description: Redirect to a path of this site }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops)
      for (const p of ctx.redirectParams(o)) {
        const s = (p.schema ?? {}) as Record<string, unknown>
        if (Array.isArray(s.enum) || (typeof s.pattern === 'string' && /^\^\\?\//.test(s.pattern))) continue
        out.push({
          message: `${o.label}: "${p.name}" chooses where the client is sent`,
          locations: [ctx.loc(p.location, o)],
          ops: [o],
        })
      }
    return out
  },
})
