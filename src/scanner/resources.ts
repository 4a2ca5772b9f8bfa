/**
 * The spec seen as resources: a collection path (`/api/v2/orders`) with its item path
 * (`/api/v2/orders/{id}`) and the operations on each, plus `…/me` profile paths. Seeding and the
 * object-level checks work from this model.
 */
import type { Operation } from '../openapi/index.js'
import type { ScanContext, SeededObject } from './types.js'

export interface Resource {
  /** Last static segment of the collection path (`orders`). */
  type: string
  collectionPath: string
  itemPath: string
  /** Name of the item path's last parameter (`id`). */
  itemParam: string
  list?: Operation
  create?: Operation
  get?: Operation
  put?: Operation
  patch?: Operation
  delete?: Operation
  /** `GET …/me` beside the item path: the caller's own object of this type. */
  me?: Operation
  meWrite?: Operation[]
}

const ITEM = /^(.*)\/\{([^{}/]+)\}$/

function hasParams(path: string): boolean {
  return /\{[^}]*\}/.test(path)
}

/** Resources whose collection path has no parameters of its own. */
export function findResources(ops: readonly Operation[]): Resource[] {
  const byPath = new Map<string, Operation[]>()
  for (const op of ops) {
    const list = byPath.get(op.path) ?? []
    list.push(op)
    byPath.set(op.path, list)
  }
  const out: Resource[] = []
  for (const [path, list] of byPath) {
    const m = ITEM.exec(path)
    if (!m) continue
    const collectionPath = m[1] as string
    if (collectionPath === '' || hasParams(collectionPath)) continue
    const type = collectionPath.split('/').filter(Boolean).pop() as string
    const at = (p: string, method: string) => (byPath.get(p) ?? []).find((o) => o.method === method)
    const r: Resource = { type, collectionPath, itemPath: path, itemParam: m[2] as string }
    const assign = <K extends keyof Resource>(k: K, v: Resource[K] | undefined) => {
      if (v !== undefined) r[k] = v
    }
    assign('list', at(collectionPath, 'GET'))
    assign('create', at(collectionPath, 'POST'))
    assign(
      'get',
      list.find((o) => o.method === 'GET'),
    )
    assign(
      'put',
      list.find((o) => o.method === 'PUT'),
    )
    assign(
      'patch',
      list.find((o) => o.method === 'PATCH'),
    )
    assign(
      'delete',
      list.find((o) => o.method === 'DELETE'),
    )
    const mePath = `${collectionPath}/me`
    assign('me', at(mePath, 'GET'))
    const meWrite = (byPath.get(mePath) ?? []).filter((o) => o.method === 'PATCH' || o.method === 'PUT')
    if (meWrite.length > 0) r.meWrite = meWrite
    out.push(r)
  }
  return out
}

/** Fills a path template: `{name}` from `values`, the item parameter from `id`. */
export function fillPath(template: string, values: Record<string, string>): string | undefined {
  let missing = false
  const out = template.replace(/\{([^{}/]+)\}/g, (_m, name: string) => {
    const v = values[name]
    if (v === undefined) {
      missing = true
      return ''
    }
    return encodeURIComponent(v)
  })
  return missing ? undefined : out
}

export function itemPathFor(r: Resource, id: string): string {
  return fillPath(r.itemPath, { [r.itemParam]: id }) as string
}

/** The names an object's id may go by in a body: `id`, `_id`, `uuid`, `orderId`, `order_id`. */
export function idKeys(type: string): string[] {
  const singular = type.replace(/ies$/, 'y').replace(/s$/, '')
  return ['id', '_id', 'uuid', `${singular}Id`, `${singular}_id`, `${singular}ID`]
}

/** The id of an object in a JSON body (top level or under `data`), as a string. */
export function idOf(body: unknown, type: string): string | undefined {
  for (const candidate of [body, (body as { data?: unknown } | null)?.data]) {
    if (candidate === null || typeof candidate !== 'object' || Array.isArray(candidate)) continue
    for (const k of idKeys(type)) {
      const v = (candidate as Record<string, unknown>)[k]
      if (typeof v === 'string' && v !== '') return v
      if (typeof v === 'number' && Number.isFinite(v)) return String(v)
    }
  }
  return undefined
}

/** An array of objects in a list answer: the body itself, or under items/data/results/… */
export function listItems(body: unknown): unknown[] | undefined {
  if (Array.isArray(body)) return body
  if (body !== null && typeof body === 'object') {
    for (const k of ['items', 'data', 'results', 'records', 'content', 'values']) {
      const v = (body as Record<string, unknown>)[k]
      if (Array.isArray(v)) return v
    }
  }
  return undefined
}

export function objectsOf(ctx: ScanContext, owner: string, type?: string): SeededObject[] {
  return ctx.objects.filter((o) => o.owner === owner && (type === undefined || o.type === type))
}

/** Whether an operation's path or operationId names an admin function. */
export function isAdminOperation(op: Operation): boolean {
  const roles = op.raw['x-portcullis-roles']
  if (
    Array.isArray(roles) &&
    roles.length > 0 &&
    roles.every((r) => r === 'admin' || /admin/i.test(String(r)))
  ) {
    return true
  }
  if (op.tags.some((t) => /^admin/i.test(t))) return true
  return /(^|\/)(admin|internal|manage|management)(\/|$)/i.test(op.path)
}

/** The roles an operation requires (`x-portcullis-roles`), when the spec says. */
export function requiredRoles(op: Operation): string[] | undefined {
  const roles = op.raw['x-portcullis-roles']
  return Array.isArray(roles) ? roles.map(String) : undefined
}
