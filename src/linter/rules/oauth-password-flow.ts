import { defineRule, isObject } from './util.js'
import type { Hit } from '../types.js'

export const oauthPasswordFlow = defineRule({
  id: 'oauth-password-flow',
  title: 'OAuth 2 resource owner password flow',
  category: 'API2',
  severity: 'high',
  why: "The password grant hands the user's password to the client application, defeating the point of OAuth (the client never sees credentials), and cannot support MFA or federated login. RFC 9700 forbids it. Use the authorization code flow with PKCE, or client credentials for machines.",
  before: `components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        password:
          tokenUrl: https://auth.example.com/token
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
      if (s.value.type === 'oauth2' && isObject(s.value.flows) && s.value.flows.password !== undefined)
        out.push({
          message: `security scheme "${s.name}" offers the password flow`,
          locations: [ctx.loc({ file: s.at.file, pointer: `${s.at.pointer}/flows/password` })],
        })
    return out
  },
})
