import { isPageSizeName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, isJsonMedia, isObject, typesOf } from './util.js'

const PAGING =
  /^(page|offset|cursor|after|before|skip|pagetoken|nextpagetoken|continuationtoken|start|startindex|since|marker)$/i

export const listResponseUnpaginated = defineRule({
  id: 'list-response-unpaginated',
  title: 'List operation without pagination',
  category: 'API4',
  severity: 'low',
  why: 'A GET that returns an array with no page size, cursor or `maxItems` returns the whole collection, however large it grows: slow answers, memory spikes, and a one-request data export for a scraper. Page it from the start; adding paging later breaks clients.',
  before: `paths:
  /orders:
    get:
      responses:
        "200":
          description: Orders
          content:
            application/json:
              schema:
                type: array
                items: { type: object }`,
  after: `paths:
  /orders:
    get:
      parameters:
        - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 100 } }
        - { name: cursor, in: query, schema: { type: string, maxLength: 64 } }
      responses:
        "200":
          description: Orders
          content:
            application/json:
              schema:
                type: array
                maxItems: 100
                items: { type: object }`,
  check(ctx) {
    const out: Hit[] = []
    for (const o of ctx.ops) {
      if (o.op.method !== 'GET') continue
      if (
        o.op.parameters.some(
          (p) => p.in === 'query' && (isPageSizeName(p.name) || PAGING.test(p.name.replace(/[_-]/g, ''))),
        )
      )
        continue
      const ok = o.op.responses.find((r) => r.status === '200' || r.status === '2XX')
      const m = ok?.content.find((c) => isJsonMedia(c.type))
      if (!m?.schemaLocation) continue
      const r = ctx.deref(m.schema, m.schemaLocation)
      if (!r || !isObject(r.value)) continue
      let arr: Record<string, unknown> | undefined
      if (typesOf(r.value).has('array')) arr = r.value
      else if (isObject(r.value.properties))
        for (const k of ['items', 'data', 'results', 'records', 'values', 'content']) {
          const v = r.value.properties[k]
          if (v === undefined) continue
          const d = ctx.deref(v, { file: r.at.file, pointer: `${r.at.pointer}/properties/${k}` })
          if (d !== undefined && isObject(d.value) && typesOf(d.value).has('array')) arr = d.value
        }
      if (arr === undefined || typeof arr.maxItems === 'number') continue
      out.push({ message: `${o.label} returns a list with no paging`, locations: [ctx.opLoc(o)], ops: [o] })
    }
    return out
  },
})
