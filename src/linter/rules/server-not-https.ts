import type { Hit } from '../types.js'
import { defineRule, serversOf } from './util.js'

export const serverNotHttps = defineRule({
  id: 'server-not-https',
  title: 'Server reachable over plain HTTP',
  category: 'API8',
  severity: 'high',
  why: 'A server URL with `http://` (or a scheme variable that allows `http`) means tokens, cookies, API keys and personal data cross the network in clear text, readable and changeable by anyone on the path. Serve the API over HTTPS only (and send HSTS).',
  before: `servers:
  - url: http://api.example.com/v1`,
  after: `servers:
  - url: https://api.example.com/v1`,
  check(ctx) {
    const out: Hit[] = []
    for (const s of serversOf(ctx)) {
      const plain = s.expanded.filter((u) => /^(http|ws):\/\//i.test(u))
      if (plain.length > 0)
        out.push({ message: `server ${plain[0]} is not HTTPS`, locations: [ctx.loc(s.at)] })
    }
    return out
  },
})
