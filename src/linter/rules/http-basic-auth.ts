import { defineRule } from './util.js'
import type { Hit } from '../types.js'

export const httpBasicAuth = defineRule({
  id: 'http-basic-auth',
  title: 'HTTP Basic authentication',
  category: 'API2',
  severity: 'medium',
  why: 'Basic authentication sends the long-lived password itself with every request: no expiry, no scope, no revocation without a password change, and every log or proxy that sees a header sees the password. Exchange it once for a short-lived token (OAuth 2, or a session token).',
  before: `components:
  securitySchemes:
    basic: { type: http, scheme: basic }`,
  after: `components:
  securitySchemes:
    bearer: { type: http, scheme: bearer, bearerFormat: JWT }`,
  check(ctx) {
    const out: Hit[] = []
    for (const s of ctx.schemes.values())
      if (s.value.type === 'http' && String(s.value.scheme).toLowerCase() === 'basic')
        out.push({
          message: `security scheme "${s.name}" is HTTP Basic: the password travels with every request`,
          locations: [ctx.loc(s.at)],
        })
    return out
  },
})
