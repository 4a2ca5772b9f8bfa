import type { Hit } from '../types.js'
import { defineRule } from './util.js'

const VERSION = /^v(\d+)(?:\.\d+)?$/i

export const multipleApiVersions = defineRule({
  id: 'multiple-api-versions',
  title: 'Several API versions served side by side',
  category: 'API9',
  severity: 'medium',
  why: "When `/v1/...` and `/v2/...` live in one contract, the old version keeps running with the checks it had when it was current. Attackers go straight for it (the old user endpoint without the new ownership check). Retire old versions on a schedule and keep each version's protections equal until then.",
  before: `paths:
  /v1/users/{id}:
    get:
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "200": { description: User }
  /v2/users/{id}:
    get:
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "200": { description: User }`,
  after: `paths:
  /v2/users/{id}:
    get:
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "200": { description: User }`,
  check(ctx) {
    const byVersion = new Map<string, string[]>()
    for (const o of ctx.ops) {
      const v = o.op.path.split('/').find((s) => VERSION.test(s))
      if (v === undefined) continue
      const list = byVersion.get(v.toLowerCase()) ?? []
      list.push(o.op.path)
      byVersion.set(v.toLowerCase(), list)
    }
    if (byVersion.size < 2) return []
    const versions = [...byVersion.keys()].sort()
    const oldest = versions[0] as string
    const firstOld = ctx.ops.find((o) => o.op.path.split('/').some((s) => s.toLowerCase() === oldest))
    const hit: Hit = {
      message: `versions ${versions.join(', ')} are served side by side (${byVersion.get(oldest)?.length} operations on ${oldest})`,
      locations: firstOld ? [ctx.opLoc(firstOld, `oldest version ${oldest}`)] : [],
    }
    return hit.locations.length > 0 ? [hit] : []
  },
})
