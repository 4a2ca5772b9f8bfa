import type { Hit } from '../types.js'
import { defineRule } from './util.js'

const DEBUG = /^(debug|verbose|trace|test|testmode|dryrun|dev|devmode|_debug|showerrors|xdebug)$/i

export const debugParameter = defineRule({
  id: 'debug-parameter',
  title: 'Debug switch as a request parameter',
  category: 'API8',
  severity: 'medium',
  why: "`?debug=true`, `X-Debug: 1` or `?test=1` are switches anyone can flip: verbose errors, skipped checks, test payment modes. Debug behaviour must come from the deployment's configuration, not from the request.",
  before: `paths:
  /orders:
    get:
      parameters:
        - { name: debug, in: query, schema: { type: boolean } }
      responses:
        "200": { description: Orders }`,
  after: `paths:
  /orders:
    get:
      responses:
        "200": { description: Orders }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops)
      for (const p of o.op.parameters)
        if (p.in !== 'path' && DEBUG.test(p.name.replace(/^x-/i, '').replace(/[_-]/g, '')))
          out.push({
            message: `${o.label}: "${p.name}" (${p.in}) switches debug behaviour`,
            locations: [ctx.loc(p.location, o)],
            ops: [o],
          })
    return out
  },
})
