import type { Hit } from '../types.js'
import { defineRule, serversOf } from './util.js'

export const serverMissing = defineRule({
  id: 'server-missing',
  title: 'No server declared',
  category: 'API9',
  severity: 'info',
  why: 'Without `servers` the contract does not say where the API lives (OAS then means "/" on whatever host served the document). Inventory tools cannot tie the contract to a deployment, and clients guess.',
  before: `paths: {}`,
  after: `servers:
  - url: https://api.example.com/v1
paths: {}`,
  check(ctx) {
    if (serversOf(ctx).length > 0) return []
    const h: Hit = {
      message: 'the document declares no server',
      locations: [ctx.loc({ file: ctx.rootFile, pointer: '' })],
    }
    return [h]
  },
})
