/**
 * How checks pick a caller and fill an operation's parameters: path parameters from objects the
 * caller owns (matched by position in the templates, so `{userId}` of `/users/{userId}/addresses`
 * is the caller's own profile id), id-like query parameters from the caller's objects of that
 * type, other parameters from examples or generated values; and which identity can reach an
 * operation (lowest privilege first, not the first in the file).
 */
import type { Operation, Parameter } from '../../openapi/index.js'
import { byPrivilege, lowestUser } from '../roles.js'
import { fillFrom, fillPath, findResources, idKeys, singular, templateParams, typeOf } from '../resources.js'
import { generateValue, resolveSchema } from '../schema-tools.js'
import type { ScanContext, ScanRequest, ScanResponse, SeededObject } from '../types.js'

/** The identity's objects, in the order parameters are filled from: profile, created, others. */
export function ownedObjects(ctx: ScanContext, who: string | undefined): SeededObject[] {
  if (who === undefined) return []
  const mine = ctx.objects.filter((o) => o.owner === who)
  return [
    ...mine.filter((o) => o.profile),
    ...mine.filter((o) => !o.profile && o.createdByScanner),
    ...mine.filter((o) => !o.profile && !o.createdByScanner),
  ]
}

export function exampleOf(ctx: ScanContext, p: Parameter): unknown {
  try {
    const raw = ctx.spec.documents.at(p.location.file, p.location.pointer) as { example?: unknown }
    if (raw && raw.example !== undefined) return raw.example
  } catch {
    // fall through to the schema
  }
  return generateValue(resolveSchema(ctx.spec, p.schema, p.schemaLocation), p.name)
}

/** The resource type an id-like parameter name refers to (`accountId` → accounts), if the spec has it. */
export function typeOfIdParam(ctx: ScanContext, name: string): string | undefined {
  const n = name.toLowerCase()
  for (const r of findResources(ctx.operations)) {
    const keys = idKeys(r.type).filter((k) => k !== 'id' && k !== '_id' && k !== 'uuid')
    if (keys.some((k) => k.toLowerCase() === n) || `${singular(r.type)}s` === n) return r.type
  }
  return undefined
}

/**
 * Values for an operation's parameters as `who`. Path parameters come from `who`'s objects; with
 * `strict`, a path parameter no object fills makes the operation unfillable (an example value
 * would name someone else's object), else the example or a generated value is used. Required
 * query parameters that name a resource's id take `who`'s object of that type.
 */
export function fillOperation(
  ctx: ScanContext,
  op: Operation,
  who: string | undefined,
  opts: { strict?: boolean; objects?: readonly SeededObject[] } = {},
): { path: string; query: Record<string, string>; object?: SeededObject } | undefined {
  const objects = opts.objects ?? ownedObjects(ctx, who)
  const names = templateParams(op.path)
  let values: Record<string, string> | undefined
  let object: SeededObject | undefined
  if (names.length > 0) {
    values = fillFrom(op.path, objects) ?? fillByType(op.path, objects)
    if (values) {
      const filled = values
      const item = op.path.replace(/(\/[^/{}]+)+$/, '')
      object = objects.find(
        (o) =>
          o.template !== undefined &&
          ((sameShape(o.template, item) &&
            templateParams(o.template).every((n, i) => o.params?.[n] === filled[names[i] as string])) ||
            (o.id === filled[names[names.length - 1] as string] &&
              o.type === typeOf(item.replace(/\/\{[^}]+\}$/, '')))),
      )
    } else {
      if (opts.strict) return undefined
      values = {}
      const partial = fillPartial(op.path, objects)
      for (const p of op.parameters) {
        if (p.in !== 'path') continue
        const v = partial[p.name] ?? exampleOf(ctx, p)
        if (v === undefined || v === null || typeof v === 'object') values[p.name] = '1'
        else values[p.name] = String(v)
      }
      for (const n of names) values[n] ??= partial[n] ?? '1'
    }
  }
  const query: Record<string, string> = {}
  for (const p of op.parameters) {
    if (p.in !== 'query' || !p.required) continue
    const type = typeOfIdParam(ctx, p.name)
    const mine = type ? objects.find((o) => o.type === type) : undefined
    if (mine) {
      query[p.name] = mine.id
      continue
    }
    if (type && opts.strict) return undefined
    const v = exampleOf(ctx, p)
    if (v === undefined) return undefined
    query[p.name] = Array.isArray(v)
      ? v.join(',')
      : typeof v === 'object' && v !== null
        ? JSON.stringify(v)
        : String(v)
  }
  const path = fillPath(op.path, values ?? {})
  if (path === undefined) return undefined
  return { path, query, ...(object ? { object } : {}) }
}

/**
 * Values by type when the templates do not line up (`/admin/users/{id}/role` and the caller's
 * profile at `/users/{id}`): each parameter from an object whose type is the static segment
 * before it (versions skipped).
 */
export function fillByType(
  template: string,
  objects: readonly SeededObject[],
): Record<string, string> | undefined {
  const segs = template.split('/')
  const values: Record<string, string> = {}
  for (let i = 0; i < segs.length; i++) {
    const m = /^\{([^}]+)\}$/.exec(segs[i] as string)
    if (!m) continue
    const type = typeOf(segs.slice(0, i).join('/') || '/')
    const o = type ? objects.find((x) => x.type === type) : undefined
    if (!o) return undefined
    values[m[1] as string] = o.id
  }
  return values
}

/** Same static segments and parameters at the same places (parameter names may differ). */
export function sameShape(a: string, b: string): boolean {
  const x = a.split('/')
  const y = b.split('/')
  if (x.length !== y.length) return false
  return x.every((s, i) => {
    const t = y[i] as string
    const ps = /^\{[^}]+\}$/.test(s)
    const pt = /^\{[^}]+\}$/.test(t)
    return ps === pt && (ps || s === t)
  })
}

/** The parameters some object fills, when not all of them can be. */
function fillPartial(template: string, objects: readonly SeededObject[]): Record<string, string> {
  const out: Record<string, string> = {}
  const names = templateParams(template)
  for (let k = names.length; k > 0; k--) {
    // Longest prefix of the template ending at the k-th parameter that objects can fill.
    const upTo = template.split('/').reduce(
      (acc, seg) => {
        if (acc.done) return acc
        acc.parts.push(seg)
        if (/^\{[^}]+\}$/.test(seg)) acc.n++
        if (acc.n === k) acc.done = true
        return acc
      },
      { parts: [] as string[], n: 0, done: false },
    )
    const v = fillFrom(upTo.parts.join('/'), objects)
    if (v) return { ...v, ...out }
  }
  return out
}

/** The first ordinary user (lowest privilege with credentials), else undefined. */
export function firstUser(ctx: ScanContext): string | undefined {
  return lowestUser(ctx)
}

/** The identity's own profile object, if seeding found one. */
export function profileOf(ctx: ScanContext, who: string): SeededObject | undefined {
  return ctx.objects.find((o) => o.owner === who && o.profile)
}

const reachCache = new WeakMap<ScanContext, Map<Operation, string | null>>()

/**
 * Sends a request to `op` as the identities that may reach it, lowest privilege first, until
 * one is not refused (401/403, or no way to fill the request as that identity). Remembers who
 * reached each operation. Returns that identity and its answer, or the last refusal.
 */
export async function sendAsReachable(
  ctx: ScanContext,
  op: Operation,
  build: (who: string) => ScanRequest | undefined,
): Promise<{ who: string; res: ScanResponse } | undefined> {
  let cache = reachCache.get(ctx)
  if (!cache) {
    cache = new Map()
    reachCache.set(ctx, cache)
  }
  const known = cache.get(op)
  const order = byPrivilege(ctx).map((i) => i.name)
  const tries = known ? [known, ...order.filter((n) => n !== known)] : order
  let last: { who: string; res: ScanResponse } | undefined
  for (const who of tries.slice(0, 4)) {
    const req = build(who)
    if (!req) continue
    const res = await ctx.send(who, req)
    last = { who, res }
    if (res.status === 0) return last
    if (res.status !== 401 && res.status !== 403) {
      cache.set(op, who)
      return last
    }
  }
  return last
}
