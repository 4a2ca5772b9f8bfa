import { isIdName } from '../names.js'
import type { Hit } from '../types.js'
import { defineRule, isNumericIdSchema, isObject } from './util.js'

const NOT_AN_OBJECT =
  /^(page|version|v|year|month|day|limit|size|offset|count|index|level|zoom|width|height)$/i

/** `x-portcullis-ownership` on the operation or its path item: who owns the object is declared. */
export const OWNERSHIP_EXTENSION = 'x-portcullis-ownership'

export const bolaNumericId = defineRule({
  id: 'bola-numeric-id',
  title: 'Sequential (numeric) object id in the path without an ownership declaration',
  category: 'API1',
  severity: 'high',
  why: "Integer or digit-only ids are sequential and guessable: an attacker who sees `/orders/1041` tries `/orders/1040`. Each such operation is only as safe as its owner check, the flaw behind most API breaches (OWASP API1). Use random ids (UUIDs) and declare how ownership is checked (`x-portcullis-ownership` on the operation, enforced by the gateway's object-ownership policy).",
  before: `paths:
  /orders/{id}:
    get:
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer } }
      responses:
        "200": { description: The order }`,
  after: `paths:
  /orders/{id}:
    get:
      x-portcullis-ownership: the order's ownerId is the caller
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      responses:
        "200": { description: The order }`,
  check(ctx) {
    const out: Hit[] = []
    const paths = isObject(ctx.root.paths) ? ctx.root.paths : {}
    for (const o of ctx.ops) {
      if (o.admin !== undefined) continue
      const item = paths[o.op.path]
      if (
        o.op.raw[OWNERSHIP_EXTENSION] !== undefined ||
        (isObject(item) && item[OWNERSHIP_EXTENSION] !== undefined)
      )
        continue
      const vars = [...o.op.path.matchAll(/\{([^{}/]+)\}/g)].map((m) => m[1] as string)
      for (const p of o.op.parameters) {
        if (p.in !== 'path' || NOT_AN_OBJECT.test(p.name)) continue
        const r = isObject(p.schema) && p.schemaLocation ? ctx.deref(p.schema, p.schemaLocation) : undefined
        if (r === undefined || !isObject(r.value) || !isNumericIdSchema(r.value)) continue
        if (!isIdName(p.name) && !/(number|num|no|key)$/i.test(p.name) && vars[vars.length - 1] !== p.name)
          continue
        out.push({
          message: `${o.label}: "${p.name}" is a sequential id and no ownership is declared`,
          locations: [ctx.opLoc(o, `"${p.name}" (${String(r.value.type)})`)],
          ops: [o],
        })
      }
    }
    return out
  },
})
