import { isUrlName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, nodeLoc, typesOf } from './util.js'

const URL_FORMATS = new Set([
  'uri',
  'url',
  'iri',
  'uri-reference',
  'iri-reference',
  'hostname',
  'idn-hostname',
])

export const ssrfUrlInput = defineRule({
  id: 'ssrf-url-input',
  title: 'URL-valued input the server may fetch (SSRF)',
  category: 'API7',
  severity: 'high',
  why: "A parameter or body property that holds a URL or host (`format: uri`, or named `url`, `callback`, `webhook`, `imageUrl`, `redirect`...) is how server-side request forgery starts: the server fetches `http://169.254.169.254/` (cloud credentials), `http://localhost:6379/` or an internal admin page on the attacker's behalf. Each one needs an allowlist of schemes and hosts, resolution checks against private ranges, and no redirects: document the allowed hosts (`pattern`, description) and put an SSRF guard in front.",
  before: `paths:
  /webhooks:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                url: { type: string, format: uri, maxLength: 2048 }
      responses:
        "201": { description: Registered }`,
  after: `paths:
  /webhooks:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                endpointId:
                  type: string
                  format: uuid
                  description: One of the endpoints registered and verified in the dashboard
      responses:
        "201": { description: Registered }`,
  check(ctx) {
    const out: Hit[] = []
    for (const n of ctx.requestNodes()) {
      if (n.name === undefined) continue
      const t = typesOf(n.schema)
      if (t.size > 0 && !t.has('string')) continue
      if (Array.isArray(n.schema.enum) || n.schema.const !== undefined) continue
      const byFormat = typeof n.schema.format === 'string' && URL_FORMATS.has(n.schema.format)
      if (!byFormat && !isUrlName(n.name)) continue
      if (n.source === 'header') continue
      out.push({
        message: `${n.op.label}: "${n.path.join('.') || n.name}" (${n.source}) takes a URL${byFormat ? ` (format: ${String(n.schema.format)})` : ''}`,
        locations: [nodeLoc(ctx, n, `"${n.name}" in ${n.source}`)],
        ops: [n.op],
      })
    }
    return out
  },
})
