/**
 * Seeding: before the checks run, the scanner learns objects each identity owns, so the
 * object-level checks have ids to swap.
 *
 * - Ids from auth.yaml (`seed.ids.<identity>.<type>`), read once as their owner.
 * - Created: for every collection with a POST and a sibling item path (`/orders` + `/orders/{id}`),
 *   one object per user identity, from the request body's example (or a minimal valid value made
 *   from the schema). The id comes from the answer (`/id` or an id-like property) or `Location`.
 *   Only these objects may be changed or deleted in safe mode; they are deleted at the end.
 * - Read: each identity's own collection list (`GET /orders`) and profile (`GET /users/me`).
 */
import type { Operation } from '../openapi/index.js'
import { findResources, fillPath, idOf, itemPathFor, listItems, type Resource } from './resources.js'
import { flatten, generateValue, isObject, requestBody, type Schema } from './schema-tools.js'
import type { ScanContext, SeededObject } from './types.js'

const LIST_MAX = 3

interface SeedRun extends ScanContext {
  auth?:
    | { config: { seed?: { create?: boolean; ids?: Record<string, Record<string, (string | number)[]>> } } }
    | undefined
}

/** The body to create an object with: the example, else a value generated from the schema. */
export function exampleBody(ctx: ScanContext, op: Operation): unknown {
  const shape = requestBody(ctx.spec, op)
  if (!shape) return undefined
  if (shape.example !== undefined) return shape.example
  return generateValue(shape.schema)
}

function requiredQuery(op: Operation): boolean {
  return op.parameters.some((p) => p.required && p.in !== 'path')
}

/** The id of a created object: from the answer's body, else from its Location header. */
export function createdId(type: string, json: unknown, location: string | undefined): string | undefined {
  const fromBody = idOf(json, type)
  if (fromBody !== undefined) return fromBody
  if (location) {
    const seg = location.split('?')[0]?.split('/').filter(Boolean).pop()
    if (seg) return decodeURIComponent(seg)
  }
  return undefined
}

/**
 * Marks free-text string properties with the owner's name (`scan note` → `scan note-alice`), so
 * two users' objects made from the same example differ in more than their id: a BOLA proof can
 * then rest on an owner-specific field even when the API shows no owner id. Properties with an
 * enum, const, format or pattern, or no room under maxLength, are left alone.
 */
export function personalize(body: unknown, schema: Schema | undefined, owner: string): unknown {
  if (!isObject(body) || !schema) return body
  const props = flatten(schema).properties
  if (!isObject(props)) return body
  const out: Record<string, unknown> = { ...body }
  for (const [k, v] of Object.entries(body)) {
    const p = props[k]
    if (typeof v !== 'string' || !isObject(p)) continue
    if (p.enum !== undefined || p.const !== undefined || p.format !== undefined || p.pattern !== undefined)
      continue
    const marked = `${v}-${owner}`
    if (typeof p.maxLength === 'number' && marked.length > p.maxLength) continue
    out[k] = marked
  }
  return out
}

/** Creates one object as `owner` through the resource's POST; undefined when it did not work. */
export async function createObject(
  ctx: ScanContext,
  r: Resource,
  owner: string,
): Promise<SeededObject | undefined> {
  if (!r.create) return undefined
  const body = personalize(exampleBody(ctx, r.create), requestBody(ctx.spec, r.create)?.schema, owner)
  if (body === undefined && r.create.requestBody?.required) return undefined
  const res = await ctx.send(owner, {
    method: 'POST',
    path: r.collectionPath,
    ...(body !== undefined ? { json: body } : {}),
  })
  if (res.status < 200 || res.status > 299) {
    ctx.debug(`seed: ${owner} POST ${r.collectionPath} → ${res.status}`)
    return undefined
  }
  const id = createdId(r.type, res.json, res.headers.location)
  if (id === undefined) return undefined
  const obj: SeededObject = { type: r.type, id, owner, path: itemPathFor(r, id), createdByScanner: true }
  if (idOf(res.json, r.type) === id) obj.body = res.json
  else if (r.get) {
    const read = await ctx.send(owner, { method: 'GET', path: obj.path })
    if (read.status >= 200 && read.status < 300 && read.json !== undefined) obj.body = read.json
  }
  return obj
}

export async function seedObjects(ctx: SeedRun): Promise<SeededObject[]> {
  const out: SeededObject[] = []
  const resources = findResources(ctx.operations)
  const known = (owner: string, type: string, id: string) =>
    out.some((o) => o.owner === owner && o.type === type && o.id === id)
  const seed = ctx.auth?.config.seed
  const members = ctx.identities.filter((i) => !i.anonymous)
  const users = members.filter((i) => !i.roles.includes('admin'))

  // 1. Ids from auth.yaml.
  for (const [owner, types] of Object.entries(seed?.ids ?? {})) {
    for (const [type, ids] of Object.entries(types)) {
      const r = resources.find((x) => x.type === type)
      if (!r) {
        ctx.debug(`seed: no resource "${type}" in the spec (seed.ids.${owner})`)
        continue
      }
      for (const raw of ids) {
        const id = String(raw)
        const obj: SeededObject = { type, id, owner, path: itemPathFor(r, id), createdByScanner: false }
        if (r.get) {
          const res = await ctx.send(owner, { method: 'GET', path: obj.path })
          if (res.status >= 200 && res.status < 300) obj.body = res.json
        }
        out.push(obj)
      }
    }
  }

  await Promise.all(
    members.map(async (who) => {
      for (const r of resources) {
        // 2. The identity's own profile.
        if (r.me) {
          const res = await ctx.send(who.name, { method: 'GET', path: r.me.path })
          const id = res.status >= 200 && res.status < 300 ? idOf(res.json, r.type) : undefined
          if (id !== undefined && !known(who.name, r.type, id)) {
            out.push({
              type: r.type,
              id,
              owner: who.name,
              path: itemPathFor(r, id),
              selfPath: r.me.path,
              body: res.json,
              createdByScanner: false,
              profile: true,
            })
          }
        }
        // 3. One object created by each user identity.
        if (
          seed?.create !== false &&
          r.create &&
          users.some((u) => u.name === who.name) &&
          !requiredQuery(r.create)
        ) {
          const obj = await createObject(ctx, r, who.name)
          if (obj) out.push(obj)
        }
        // 4. What the identity's own list shows.
        if (r.list && !requiredQuery(r.list) && fillPath(r.collectionPath, {}) !== undefined) {
          const res = await ctx.send(who.name, { method: 'GET', path: r.collectionPath })
          const items = res.status >= 200 && res.status < 300 ? listItems(res.json) : undefined
          let n = 0
          for (const item of items ?? []) {
            if (n >= LIST_MAX) break
            const id = idOf(item, r.type)
            if (id === undefined || !isObject(item)) continue
            if (known(who.name, r.type, id)) continue
            out.push({
              type: r.type,
              id,
              owner: who.name,
              path: itemPathFor(r, id),
              body: item,
              createdByScanner: false,
            })
            n++
          }
        }
      }
    }),
  )
  return out
}

/** Deletes every object the scanner created (as its owner); a 404 means a check deleted it already. */
export async function cleanupObjects(ctx: ScanContext): Promise<void> {
  const resources = findResources(ctx.operations)
  await Promise.all(
    ctx.objects
      .filter((o) => o.createdByScanner)
      .map(async (o) => {
        const r = resources.find((x) => x.type === o.type)
        if (!r?.delete) return
        const res = await ctx.send(o.owner, { method: 'DELETE', path: o.path })
        ctx.debug(`cleanup: ${o.owner} DELETE ${o.path} → ${res.status}`)
      }),
  )
}
