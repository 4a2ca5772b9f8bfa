import type { Hit } from '../types.js'
import { defineRule, isObject, serversOf } from './util.js'

export const serverVariableUnrestricted = defineRule({
  id: 'server-variable-unrestricted',
  title: 'Server variable without an enum',
  category: 'API8',
  severity: 'low',
  why: 'A server URL variable (`https://{tenant}.example.com`) with no `enum` lets generated clients and tools send requests, and credentials, to any host the variable is set to. List the allowed values, or document a fixed domain and a pattern.',
  before: `servers:
  - url: https://{host}/v1
    variables:
      host: { default: api.example.com }`,
  after: `servers:
  - url: https://{region}.api.example.com/v1
    variables:
      region: { default: eu, enum: [eu, us] }`,
  check(ctx) {
    const out: Hit[] = []
    for (const s of serversOf(ctx))
      for (const [name, v] of Object.entries(s.variables))
        if (isObject(v) && !Array.isArray(v.enum))
          out.push({
            message: `server variable "${name}" of ${s.url} takes any value`,
            locations: [ctx.loc({ file: s.at.file, pointer: `${s.at.pointer}/variables/${name}` })],
          })
    return out
  },
})
