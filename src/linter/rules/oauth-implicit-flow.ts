import { defineRule, isObject } from './util.js'
import type { Hit } from '../types.js'

export const oauthImplicitFlow = defineRule({
  id: 'oauth-implicit-flow',
  title: 'OAuth 2 implicit flow',
  category: 'API2',
  severity: 'high',
  why: 'The implicit flow returns the access token in the redirect URL fragment, where browser history, extensions and referrers can read it, with no way to bind it to the client. OAuth 2.0 Security BCP (RFC 9700) says not to use it: use the authorization code flow with PKCE.',
  before: `components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        implicit:
          authorizationUrl: https://auth.example.com/authorize
          scopes: { read: Read }`,
  after: `components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: https://auth.example.com/authorize
          tokenUrl: https://auth.example.com/token
          scopes: { read: Read }`,
  check(ctx) {
    const out: Hit[] = []
    for (const s of ctx.schemes.values())
      if (s.value.type === 'oauth2' && isObject(s.value.flows) && s.value.flows.implicit !== undefined)
        out.push({
          message: `security scheme "${s.name}" offers the implicit flow`,
          locations: [ctx.loc({ file: s.at.file, pointer: `${s.at.pointer}/flows/implicit` })],
        })
    return out
  },
})
