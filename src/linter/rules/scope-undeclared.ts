import type { Hit } from '../types.js'
import { defineRule, isObject } from './util.js'

export const scopeUndeclared = defineRule({
  id: 'scope-undeclared',
  title: 'Required OAuth scope not declared by the scheme',
  category: 'API5',
  severity: 'medium',
  why: "A requirement asks for a scope that none of the scheme's flows defines: no token can ever carry it (so the operation is unusable) or, more often, the authorization server ignores unknown scopes and the check that was meant never happens. Keep the scope list and the requirements in step.",
  before: `paths:
  /orders:
    post:
      security:
        - oauth: [orders:create]
      responses:
        "201": { description: Created }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: { orders:write: Write orders }`,
  after: `paths:
  /orders:
    post:
      security:
        - oauth: [orders:write]
      responses:
        "201": { description: Created }
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: { orders:write: Write orders }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops)
      for (const r of o.security ?? [])
        for (const [name, scopes] of Object.entries(r)) {
          const s = ctx.schemes.get(name)?.value
          if (s?.type !== 'oauth2' || !isObject(s.flows)) continue
          const known = new Set(
            Object.values(s.flows).flatMap((f) =>
              isObject(f) && isObject(f.scopes) ? Object.keys(f.scopes) : [],
            ),
          )
          for (const scope of scopes)
            if (!known.has(scope))
              out.push({
                message: `${o.label} requires scope "${scope}" that "${name}" does not define`,
                locations: [ctx.opLoc(o, `scope "${scope}"`)],
                ops: [o],
              })
        }
    return out
  },
})
