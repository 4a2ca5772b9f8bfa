import { defineRule } from './util.js'
import type { Hit } from '../types.js'

export const securitySchemeUndefined = defineRule({
  id: 'security-scheme-undefined',
  title: 'Security requirement names an undefined scheme',
  category: 'API2',
  severity: 'high',
  why: 'A requirement that names a scheme missing from `components.securitySchemes` cannot be enforced: depending on the tool it is ignored (the operation becomes public) or fails at startup. Either way the contract does not say what was meant.',
  before: `security:
  - oauth: [read]
paths: {}`,
  after: `security:
  - oauth: [read]
paths: {}
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: { read: Read }`,
  check(ctx) {
    const missing = new Map<string, Hit>()
    for (const o of ctx.ops)
      for (const r of o.security ?? [])
        for (const name of Object.keys(r)) {
          if (ctx.schemes.has(name)) continue
          const h = missing.get(name) ?? {
            message: `security scheme "${name}" is not defined`,
            locations: [],
            ops: [],
          }
          h.locations.push(ctx.opLoc(o))
          h.ops?.push(o)
          missing.set(name, h)
        }
    const root = ctx.root.security
    if (Array.isArray(root) && ctx.ops.length === 0)
      for (const r of root)
        if (r !== null && typeof r === 'object')
          for (const name of Object.keys(r))
            if (!ctx.schemes.has(name) && !missing.has(name))
              missing.set(name, {
                message: `security scheme "${name}" is not defined`,
                locations: [ctx.loc({ file: ctx.rootFile, pointer: '/security' })],
              })
    return [...missing.values()]
  },
})
