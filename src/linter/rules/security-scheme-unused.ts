import { defineRule } from './util.js'
import type { Hit } from '../types.js'

export const securitySchemeUnused = defineRule({
  id: 'security-scheme-unused',
  title: 'Security scheme defined but never required',
  category: 'hygiene',
  severity: 'info',
  why: 'A scheme no requirement uses is either dead (remove it) or was meant to protect operations that forgot to require it. Either way, readers of the contract are misled.',
  before: `paths:
  /status:
    get:
      security: []
      responses:
        "200": { description: OK }
components:
  securitySchemes:
    key: { type: apiKey, in: header, name: X-API-Key }`,
  after: `security:
  - key: []
paths:
  /status:
    get:
      security: []
      responses:
        "200": { description: OK }
components:
  securitySchemes:
    key: { type: apiKey, in: header, name: X-API-Key }`,
  check(ctx) {
    const used = new Set<string>()
    for (const o of ctx.ops) for (const r of o.security ?? []) for (const k of Object.keys(r)) used.add(k)
    const root = ctx.root.security
    if (Array.isArray(root))
      for (const r of root) if (r && typeof r === 'object') for (const k of Object.keys(r)) used.add(k)
    const out: Hit[] = []
    for (const s of ctx.schemes.values())
      if (!used.has(s.name))
        out.push({ message: `security scheme "${s.name}" is never required`, locations: [ctx.loc(s.at)] })
    return out
  },
})
