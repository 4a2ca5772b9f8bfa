import type { Hit } from '../types.js'
import { defineRule } from './util.js'

export const pathAmbiguousDuplicate = defineRule({
  id: 'path-ambiguous-duplicate',
  title: 'Paths that differ only by case, trailing slash or parameter name',
  category: 'API5',
  severity: 'medium',
  why: '`/Admin/users` beside `/admin/users`, `/orders/` beside `/orders`, or `/users/{id}` beside `/users/{userId}` route differently in different servers and gateways. Access rules written for one spelling miss the other, which is a classic way around function-level checks.',
  before: `paths:
  /orders:
    get:
      responses:
        "200": { description: Orders }
  /orders/:
    get:
      responses:
        "200": { description: Orders }`,
  after: `paths:
  /orders:
    get:
      responses:
        "200": { description: Orders }`,
  check(ctx) {
    const seen = new Map<string, string>()
    const out: Hit[] = []
    const paths = ctx.root.paths
    if (paths === null || typeof paths !== 'object') return out
    for (const p of Object.keys(paths)) {
      if (!p.startsWith('/')) continue
      const key =
        p
          .toLowerCase()
          .replace(/\{[^}]*\}/g, '{}')
          .replace(/\/+$/, '') || '/'
      const prev = seen.get(key)
      if (prev === undefined) {
        seen.set(key, p)
        continue
      }
      out.push({
        message: `"${p}" and "${prev}" are the same path to many routers`,
        locations: [
          ctx.loc({ file: ctx.rootFile, pointer: `/paths/${p.replace(/~/g, '~0').replace(/\//g, '~1')}` }),
          ctx.loc({ file: ctx.rootFile, pointer: `/paths/${prev.replace(/~/g, '~0').replace(/\//g, '~1')}` }),
        ],
      })
    }
    return out
  },
})
