import { defineRule, isObject } from './util.js'
import type { Hit } from '../types.js'

export const oauthNoScopes = defineRule({
  id: 'oauth-no-scopes',
  title: 'OAuth 2 scheme with no scopes',
  category: 'API5',
  severity: 'low',
  why: 'Without scopes every token can do everything the user can: a token given to a read-only integration can also delete. Scopes are how least privilege is expressed for delegated access.',
  before: `components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: {}`,
  after: `components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes:
            orders:read: Read orders
            orders:write: Place orders`,
  check(ctx) {
    const out: Hit[] = []
    for (const s of ctx.schemes.values()) {
      if (s.value.type !== 'oauth2' || !isObject(s.value.flows)) continue
      const flows = Object.values(s.value.flows).filter(isObject)
      if (flows.length > 0 && flows.every((f) => !isObject(f.scopes) || Object.keys(f.scopes).length === 0))
        out.push({ message: `security scheme "${s.name}" defines no scopes`, locations: [ctx.loc(s.at)] })
    }
    return out
  },
})
