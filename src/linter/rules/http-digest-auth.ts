import { defineRule } from './util.js'
import type { Hit } from '../types.js'

export const httpDigestAuth = defineRule({
  id: 'http-digest-auth',
  title: 'HTTP Digest or another legacy HTTP scheme',
  category: 'API2',
  severity: 'medium',
  why: 'HTTP Digest relies on MD5 and forces the server to keep passwords (or equivalents) in a recoverable form; NTLM and Negotiate are hard to proxy safely. Use bearer tokens.',
  before: `components:
  securitySchemes:
    digest: { type: http, scheme: digest }`,
  after: `components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }`,
  check(ctx) {
    const out: Hit[] = []
    for (const s of ctx.schemes.values()) {
      const scheme = String(s.value.scheme ?? '').toLowerCase()
      if (s.value.type === 'http' && ['digest', 'ntlm', 'negotiate', 'hoba'].includes(scheme))
        out.push({ message: `security scheme "${s.name}" uses HTTP ${scheme}`, locations: [ctx.loc(s.at)] })
    }
    return out
  },
})
