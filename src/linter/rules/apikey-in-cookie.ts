import { defineRule } from './util.js'
import type { Hit } from '../types.js'

export const apikeyInCookie = defineRule({
  id: 'apikey-in-cookie',
  title: 'Credential sent as a cookie',
  category: 'API2',
  severity: 'medium',
  why: 'Browsers attach cookies to every request to the site, including ones forged by other sites (CSRF). An API authenticated by a cookie needs SameSite cookies and CSRF tokens on every write; an API meant for programs should use a header.',
  before: `components:
  securitySchemes:
    session: { type: apiKey, in: cookie, name: sid }`,
  after: `components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }`,
  check(ctx) {
    const out: Hit[] = []
    for (const s of ctx.schemes.values())
      if (s.value.type === 'apiKey' && s.value.in === 'cookie')
        out.push({
          message: `security scheme "${s.name}" reads the credential from a cookie: writes need CSRF protection`,
          locations: [ctx.loc(s.at)],
        })
    return out
  },
})
