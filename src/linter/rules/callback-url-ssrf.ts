import type { Hit } from '../types.js'
import { defineRule, isObject } from './util.js'

export const callbackUrlSsrf = defineRule({
  id: 'callback-url-ssrf',
  title: 'Callbacks to a URL taken from the request',
  category: 'API7',
  severity: 'medium',
  why: 'An operation with `callbacks` calls back a URL the client supplied (`{$request.body#/callbackUrl}`). That is an outbound request to an attacker-chosen address, made from inside your network: the same SSRF controls apply (allowlisted schemes and hosts, private ranges refused after DNS resolution, no redirects).',
  before: `paths:
  /jobs:
    post:
      responses:
        "202": { description: Accepted }
      callbacks:
        done:
          "{$request.body#/callbackUrl}":
            post:
              responses:
                "200": { description: OK }`,
  after: `paths:
  /jobs:
    post:
      responses:
        "202": { description: "Accepted; poll GET /jobs/{id} for the result" }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops) {
      const cbs = o.op.raw.callbacks
      if (!isObject(cbs)) continue
      for (const [name, cb] of Object.entries(cbs)) {
        const r = ctx.deref(cb, { file: o.location.file, pointer: `${o.location.pointer}/callbacks/${name}` })
        if (!r || !isObject(r.value)) continue
        const fromRequest = Object.keys(r.value).filter((expr) => /\$request\./.test(expr))
        if (fromRequest.length === 0) continue
        out.push({
          message: `${o.label}: callback "${name}" calls ${fromRequest[0]}`,
          locations: [
            ctx.loc(
              {
                file: o.location.file,
                pointer: `${o.location.pointer}/callbacks/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`,
              },
              o,
            ),
          ],
          ops: [o],
        })
      }
    }
    return out
  },
})
