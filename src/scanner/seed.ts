/**
 * Seeding: before the checks run, the scanner learns objects each identity owns, so the
 * object-level checks have ids to swap.
 *
 * - Each identity's own profile (`/me`, `/profile`, `/account`, … see resources.ts): its id fills
 *   `{userId}`-like parameters of nested paths (`/users/{userId}/addresses`).
 * - Ids from auth.yaml (`seed.ids.<identity>.<type | operationId | path | "METHOD path">`).
 * - Created: for every collection with a POST (nested ones too, parents filled with the creator's
 *   own objects), one object per ordinary user, from the request body's example (or a minimal
 *   valid value made from the schema). The id comes from the answer (top level, `data`, a
 *   one-key wrapper), from `Location`, or from a follow-up read of the owner's list. Only these
 *   objects may be changed or deleted in safe mode; they are deleted at the end.
 * - Read: each identity's own list (`GET /orders`, up to 3 objects).
 * A readable resource that ends with no object gets a note in the report saying why.
 */
import type { Operation } from '../openapi/index.js'
import {
  fillFrom,
  fillPath,
  findResources,
  idOf,
  itemPathFor,
  listItems,
  type Resource,
  singular,
  templateParams,
  unwrap,
} from './resources.js'
import { flatten, generateValue, isObject, requestBody, requestBodyAny, type Schema } from './schema-tools.js'
import type { ScanContext, ScanRequest, SeededObject } from './types.js'

const LIST_MAX = 3

interface SeedRun extends ScanContext {
  auth?:
    | { config: { seed?: { create?: boolean; ids?: Record<string, Record<string, (string | number)[]>> } } }
    | undefined
}

/** The body to create an object with: the example, else a value generated from the schema. */
export function exampleBody(ctx: ScanContext, op: Operation): unknown {
  const shape = requestBodyAny(ctx.spec, op)
  if (!shape) return undefined
  if (shape.example !== undefined) return shape.example
  return generateValue(shape.schema)
}

/** A request carrying `body` the way the operation takes it (JSON, or a form). */
export function withBody(ctx: ScanContext, op: Operation, body: unknown): Pick<ScanRequest, 'json' | 'form'> {
  if (body === undefined) return {}
  const shape = requestBodyAny(ctx.spec, op)
  if (shape?.encoding === 'form' && isObject(body))
    return {
      form: Object.fromEntries(
        Object.entries(body).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
      ),
    }
  return { json: body }
}

function requiredQuery(op: Operation): boolean {
  return op.parameters.some((p) => p.required && p.in === 'query')
}

/**
 * The id of a created object: from the answer's body (unwrapped), else from its Location header
 * (the item template's parameter when the location fits it, else its last segment).
 */
export function createdId(
  type: string,
  json: unknown,
  location: string | undefined,
  r?: Pick<Resource, 'itemPath' | 'itemParam'>,
): string | undefined {
  const fromBody = idOf(json, type, r?.itemParam)
  if (fromBody !== undefined) return fromBody
  if (location) {
    let path = location.split('?')[0] ?? ''
    try {
      path = new URL(location, 'http://x.invalid').pathname
    } catch {
      // keep the raw value
    }
    if (r) {
      const names = templateParams(r.itemPath)
      const re = new RegExp(
        `${r.itemPath
          .split(/\{[^{}/]+\}/)
          .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
          .join('([^/]+)')}/?$`,
      )
      const m = re.exec(path)
      const i = names.indexOf(r.itemParam)
      if (m && i >= 0 && m[i + 1]) return decodeURIComponent(m[i + 1] as string)
    }
    const seg = path.split('/').filter(Boolean).pop()
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

/** The owner's objects that can fill parent parameters, their profile first. */
function parentSources(ctx: ScanContext, owner: string, extra: readonly SeededObject[] = []): SeededObject[] {
  const mine = [...extra, ...ctx.objects].filter((o) => o.owner === owner)
  return [...mine.filter((o) => o.profile), ...mine.filter((o) => !o.profile)]
}

/** Creates one object as `owner` through the resource's POST; undefined when it did not work. */
export async function createObject(
  ctx: ScanContext,
  r: Resource,
  owner: string,
  known: readonly SeededObject[] = [],
  override?: Record<string, unknown>,
): Promise<SeededObject | undefined> {
  return (await tryCreate(ctx, r, owner, known, override)).object
}

/** createObject, with the reason when nothing was created (for the report's notes). */
export async function tryCreate(
  ctx: ScanContext,
  r: Resource,
  owner: string,
  known: readonly SeededObject[] = [],
  override?: Record<string, unknown>,
): Promise<{ object?: SeededObject; problem?: string; exchange?: import('./types.js').Exchange }> {
  let lastCreateProblem: string | undefined
  const create = r.create
  if (!create) return {}
  const parents = fillFrom(r.collectionPath, parentSources(ctx, owner, known)) ?? undefined
  const collection = parents ? fillPath(r.collectionPath, parents) : undefined
  if (!parents || !collection) {
    lastCreateProblem = `${create.method} ${create.path}: no object of ${owner} fills ${templateParams(r.collectionPath).join(', ')}`
    return { problem: lastCreateProblem }
  }
  const shape = requestBodyAny(ctx.spec, create)
  let body = personalize(exampleBody(ctx, create), shape?.schema, owner)
  if (override && isObject(body)) body = { ...body, ...override }
  if (body === undefined && create.requestBody?.required) {
    lastCreateProblem = `${create.method} ${create.path}: no JSON or form body to send`
    return { problem: lastCreateProblem }
  }
  const res = await ctx.send(owner, { method: 'POST', path: collection, ...withBody(ctx, create, body) })
  if (res.status < 200 || res.status > 299) {
    lastCreateProblem = `${create.method} ${collection} as ${owner} answered ${res.status || res.exchange.error}`
    ctx.debug(`seed: ${lastCreateProblem}`)
    return { problem: lastCreateProblem }
  }
  let id = createdId(r.type, res.json, res.headers.location, r)
  let readBody: unknown
  if (id === undefined && r.list) {
    // No id in the answer: find the new object in the owner's list by the values it was given.
    const list = await ctx.send(owner, { method: 'GET', path: collection })
    const items = list.status >= 200 && list.status < 300 ? (listItems(list.json, r.type) ?? []) : []
    const marks = isObject(body)
      ? Object.entries(body).filter(([, v]) => typeof v === 'string' && v.includes(owner))
      : []
    const item = items.find(
      (x) =>
        isObject(x) &&
        marks.length > 0 &&
        marks.every(([k, v]) => x[k] === v) &&
        idOf(x, r.type, r.itemParam),
    )
    if (item) {
      id = idOf(item, r.type, r.itemParam)
      readBody = item
    }
  }
  if (id === undefined) {
    lastCreateProblem = `${create.method} ${collection} answered ${res.status} without an id (none in the body, no Location${r.list ? ', not found in the list' : ''})`
    ctx.debug(`seed: ${lastCreateProblem}`)
    return { problem: lastCreateProblem }
  }
  const params = { ...parents, [r.itemParam]: id }
  const path = itemPathFor(r, id, parents)
  if (!path) return { problem: 'cannot fill the item path' }
  const obj: SeededObject = {
    type: r.type,
    id,
    owner,
    path,
    template: r.itemPath,
    params,
    createdByScanner: true,
  }
  if (idOf(res.json, r.type, r.itemParam) === id) obj.body = unwrap(res.json)
  else if (r.get) {
    const read = await ctx.send(owner, { method: 'GET', path })
    if (read.status >= 200 && read.status < 300 && read.json !== undefined) obj.body = unwrap(read.json)
  }
  obj.body ??= readBody
  return { object: obj, exchange: res.exchange }
}

/**
 * Records an object a check created (a burst, a probe) as the scanner's own, so safe mode lets it
 * be deleted and the final cleanup deletes it if the check did not. Returns its path.
 */
export function rememberCreated(
  ctx: ScanContext,
  r: Resource,
  id: string,
  owner: string,
  parents: Record<string, string> = {},
): string | undefined {
  const path = itemPathFor(r, id, parents)
  if (!path) return undefined
  ;(ctx.objects as SeededObject[]).push({
    type: r.type,
    id,
    owner,
    path,
    template: r.itemPath,
    params: { ...parents, [r.itemParam]: id },
    createdByScanner: true,
  })
  return path
}

function resourceByName(resources: readonly Resource[], name: string): Resource | undefined {
  const n = name.trim()
  const m = /^([A-Za-z]+)\s+(\/.*)$/.exec(n)
  const path = m ? (m[2] as string) : n
  return (
    resources.find((r) => r.type === n || singular(r.type) === n) ??
    resources.find((r) =>
      [r.get, r.list, r.create, r.put, r.patch, r.delete].some((op) => op?.operationId === n),
    ) ??
    resources.find((r) => r.itemPath === path || r.collectionPath === path)
  )
}

export async function seedObjects(ctx: SeedRun): Promise<SeededObject[]> {
  const out: SeededObject[] = []
  const resources = findResources(ctx.operations)
  const known = (owner: string, type: string, id: string) =>
    out.some((o) => o.owner === owner && o.type === type && o.id === id)
  const seed = ctx.auth?.config.seed
  const members = ctx.identities.filter((i) => !i.anonymous && !i.throwaway)
  const users = members.filter((i) => i.rank === 1)
  const problems = new Map<string, string[]>()
  const fromConfig = new Set<SeededObject>()
  const problem = (r: Resource, why: string) => {
    const list = problems.get(r.itemPath) ?? []
    if (list.length < 4 && !list.includes(why)) list.push(why)
    problems.set(r.itemPath, list)
  }

  // 1. Each identity's profile.
  await Promise.all(
    members.map(async (who) => {
      for (const r of resources) {
        if (!r.me) continue
        const res = await ctx.send(who.name, { method: 'GET', path: r.me.path })
        const body = unwrap(res.json)
        const id = res.status >= 200 && res.status < 300 ? idOf(body, r.type, r.itemParam) : undefined
        if (id === undefined) {
          problem(
            r,
            `${who.name}'s ${r.me.path} answered ${res.status || res.exchange.error}${res.status >= 200 && res.status < 300 ? ' without an id' : ''}`,
          )
          continue
        }
        if (known(who.name, r.type, id)) continue
        const parents = r.collectionPath.includes('{')
          ? fillFrom(
              r.collectionPath,
              out.filter((o) => o.owner === who.name),
            )
          : {}
        out.push({
          type: r.type,
          id,
          owner: who.name,
          path: itemPathFor(r, id, parents ?? {}) ?? r.me.path,
          selfPath: r.me.path,
          template: r.itemPath,
          params: { ...(parents ?? {}), [r.itemParam]: id },
          body,
          createdByScanner: false,
          profile: true,
        })
      }
    }),
  )

  // 2. Ids from auth.yaml.
  for (const [owner, types] of Object.entries(seed?.ids ?? {})) {
    for (const [name, ids] of Object.entries(types)) {
      const r = resourceByName(resources, name)
      if (!r) {
        ctx.note?.(`seed.ids.${owner}.${name}: no resource, operationId or path "${name}" in the spec`)
        continue
      }
      const parents =
        fillFrom(
          r.collectionPath,
          out.filter((o) => o.owner === owner),
        ) ?? {}
      for (const raw of ids) {
        const id = String(raw)
        const path = itemPathFor(r, id, parents)
        if (!path) {
          ctx.note?.(`seed.ids.${owner}.${name}: cannot fill ${r.itemPath} for ${owner}`)
          continue
        }
        const obj: SeededObject = {
          type: r.type,
          id,
          owner,
          path,
          template: r.itemPath,
          params: { ...parents, [r.itemParam]: id },
          createdByScanner: false,
        }
        if (r.get) {
          const res = await ctx.send(owner, { method: 'GET', path })
          if (res.status >= 200 && res.status < 300) obj.body = unwrap(res.json)
          else
            ctx.note?.(
              `seed.ids.${owner}.${name}: ${owner} reading ${path} got ${res.status || res.exchange.error}`,
            )
        }
        out.push(obj)
        fromConfig.add(obj)
      }
    }
  }

  // 3. One object created by each ordinary user; 4. what each identity's own list shows.
  // Resources whose collection has no parameter first: their objects may fill nested ones.
  const ordered = [...resources].sort(
    (a, b) => templateParams(a.collectionPath).length - templateParams(b.collectionPath).length,
  )
  await Promise.all(
    members.map(async (who) => {
      for (const r of ordered) {
        if (seed?.create !== false && r.create && users.some((u) => u.name === who.name)) {
          if (requiredQuery(r.create))
            problem(r, `${r.create.method} ${r.create.path} needs query parameters`)
          else {
            const made = await tryCreate(ctx, r, who.name, out)
            if (made.object) out.push(made.object)
            else if (made.problem) problem(r, made.problem)
          }
        }
        if (!r.list || requiredQuery(r.list)) continue
        const parents = fillFrom(r.collectionPath, parentSources(ctx, who.name, out))
        const path = parents ? fillPath(r.collectionPath, parents) : undefined
        if (!parents || !path) continue
        const res = await ctx.send(who.name, { method: 'GET', path })
        const items = res.status >= 200 && res.status < 300 ? listItems(res.json, r.type) : undefined
        let n = 0
        for (const item of items ?? []) {
          if (n >= LIST_MAX) break
          const id = idOf(item, r.type, r.itemParam)
          if (id === undefined || !isObject(item)) continue
          if (known(who.name, r.type, id)) continue
          const itemPath = itemPathFor(r, id, parents)
          if (!itemPath) continue
          out.push({
            type: r.type,
            id,
            owner: who.name,
            path: itemPath,
            template: r.itemPath,
            params: { ...parents, [r.itemParam]: id },
            body: item,
            createdByScanner: false,
          })
          n++
        }
        if (res.status < 200 || res.status > 299)
          problem(r, `${who.name}'s list ${path} answered ${res.status || res.exchange.error}`)
      }
    }),
  )
  // A list item that several identities see, or that is another identity's profile or creation,
  // is nobody's own (a directory of every user, a shared catalogue).
  const listed = out.filter((o) => !o.createdByScanner && !o.profile && !fromConfig.has(o))
  const shared = listed.filter((o) =>
    out.some((x) => x !== o && x.owner !== o.owner && x.template === o.template && x.id === o.id),
  )
  for (const o of shared) out.splice(out.indexOf(o), 1)
  for (const r of resources) {
    if (!r.get || out.some((o) => o.template === r.itemPath)) continue
    const why = problems.get(r.itemPath) ?? [
      r.create || r.list ? 'the lists were empty' : 'no create or list operation, and no seed.ids',
    ]
    ctx.note?.(`seeding: no ${r.type} object (${r.itemPath}): ${why.join('; ')}`)
  }
  return out
}

/** Deletes every object the scanner created (as its owner); a 404 means a check deleted it already. */
export async function cleanupObjects(ctx: ScanContext): Promise<void> {
  const resources = findResources(ctx.operations)
  await Promise.all(
    ctx.objects
      .filter((o) => o.createdByScanner)
      .map(async (o) => {
        const r = resources.find((x) => x.itemPath === o.template) ?? resources.find((x) => x.type === o.type)
        if (!r?.delete) {
          ctx.note?.(`cleanup: no DELETE for ${o.type} ${o.path} (created by the scanner, left behind)`)
          return
        }
        const res = await ctx.send(o.owner, { method: 'DELETE', path: o.path })
        ctx.debug(`cleanup: ${o.owner} DELETE ${o.path} → ${res.status}`)
      }),
  )
}

export { requestBody }
