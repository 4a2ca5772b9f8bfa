import { defineRule } from './util.js'
import type { Hit } from '../types.js'

export const apikeyInQuery = defineRule({
  id: 'apikey-in-query',
  title: 'API key sent in the query string',
  category: 'API2',
  severity: 'high',
  why: 'URLs are written to access logs, proxy logs, browser history and `Referer` headers. An API key in the query string leaks through all of them and cannot be rotated fast enough. Send keys in a header.',
  before: `components:
  securitySchemes:
    key: { type: apiKey, in: query, name: api_key }`,
  after: `components:
  securitySchemes:
    key: { type: apiKey, in: header, name: X-API-Key }`,
  check(ctx) {
    const out: Hit[] = []
    for (const s of ctx.schemes.values())
      if (s.value.type === 'apiKey' && s.value.in === 'query')
        out.push({
          message: `security scheme "${s.name}" takes the key from the query string`,
          locations: [ctx.loc(s.at)],
        })
    return out
  },
})
