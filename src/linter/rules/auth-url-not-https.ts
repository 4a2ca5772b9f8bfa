import { defineRule, isObject } from './util.js'
import type { Hit, SpecLocation } from '../types.js'

export const authUrlNotHttps = defineRule({
  id: 'auth-url-not-https',
  title: 'OAuth or OpenID Connect URL over plain HTTP',
  category: 'API2',
  severity: 'high',
  why: "Authorization, token, refresh and discovery endpoints carry codes, client secrets and tokens. Over plain HTTP anyone on the path reads or replaces them (a forged discovery document points clients at an attacker's keys).",
  before: `components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: http://auth.example.com/token
          scopes: { read: Read }`,
  after: `components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.com/token
          scopes: { read: Read }`,
  check(ctx) {
    const out: Hit[] = []
    for (const s of ctx.schemes.values()) {
      const locs: SpecLocation[] = []
      if (typeof s.value.openIdConnectUrl === 'string' && /^http:/i.test(s.value.openIdConnectUrl))
        locs.push(ctx.loc({ file: s.at.file, pointer: `${s.at.pointer}/openIdConnectUrl` }))
      if (isObject(s.value.flows))
        for (const [flow, f] of Object.entries(s.value.flows))
          if (isObject(f))
            for (const k of ['authorizationUrl', 'tokenUrl', 'refreshUrl'])
              if (typeof f[k] === 'string' && /^http:/i.test(f[k] as string))
                locs.push(ctx.loc({ file: s.at.file, pointer: `${s.at.pointer}/flows/${flow}/${k}` }))
      if (locs.length > 0)
        out.push({ message: `security scheme "${s.name}" uses http:// for its endpoints`, locations: locs })
    }
    return out
  },
})
