/**
 * The spec seen as resources: an item path template (`/books/v1/{book_id}`,
 * `/v2/users/{userId}/addresses/{addressId}`) with its collection (`/books/v1`, nested ones
 * included) and the operations on each; the identity endpoints (`/me`, `/profile`, `/account`, …)
 * and the resource they return. Types come from the whole path, not its last segment: version
 * segments (`v1`, `api`) are skipped, so `/books/v1/{id}` is a book and `/v2/users/{id}` a user.
 * Seeding and the object checks work from this model.
 */
import type { OpenApiSpec, Operation } from '../openapi/index.js'
import { isObject } from './schema-tools.js'
import type { ScanContext, SeededObject } from './types.js'

export interface Resource {
  /** The collection's last meaningful static segment (`books`, `addresses`). */
  type: string
  /** Template, may hold the parents' parameters (`/v2/users/{userId}/addresses`). */
  collectionPath: string
  itemPath: string
  /** Name of the item path's last parameter (`book_id`). */
  itemParam: string
  list?: Operation
  create?: Operation
  get?: Operation
  put?: Operation
  patch?: Operation
  delete?: Operation
  /** `GET` of the caller's own object of this type (`/users/me`, `/profile`, `/api/me`). */
  me?: Operation
  meWrite?: Operation[]
}

/** Segments that say nothing about what a path holds. */
const NOISE = /^(v\d+(\.\d+)*|api|apis|rest|latest|public|beta|alpha|stable|current)$/i
/** Last segments of identity endpoints: the caller's own object. */
const SELF =
  /^(me|self|myself|profile|my-?profile|account|my-?account|whoami|current|current-?user|currentuser|user-?info|userinfo)$/i
/** Types that hold people (where a self endpoint's object belongs when nothing else says). */
const PEOPLE =
  /^(users?|members?|customers?|accounts?|people|persons?|profiles?|players?|employees?|clients?|authors?|readers?)$/i

function segments(path: string): string[] {
  return path.split('/').filter(Boolean)
}

function isParam(seg: string): boolean {
  return /^\{[^{}]+\}$/.test(seg)
}

/** The type of a collection path: its last static segment that is not a version or `api`. */
export function typeOf(collectionPath: string): string | undefined {
  const segs = segments(collectionPath).filter((s) => !isParam(s))
  for (let i = segs.length - 1; i >= 0; i--)
    if (!NOISE.test(segs[i] as string)) return (segs[i] as string).toLowerCase()
  return undefined
}

/** `orders` → `order`, `addresses` → `address`, `categories` → `category`. */
export function singular(type: string): string {
  if (/ies$/.test(type)) return type.replace(/ies$/, 'y')
  if (/(ss|x|ch|sh)es$/.test(type) || /sses$/.test(type)) return type.replace(/es$/, '')
  if (/[^s]s$/.test(type)) return type.slice(0, -1)
  return type
}

const cache = new WeakMap<readonly Operation[], Resource[]>()
const selfCache = new WeakMap<readonly Operation[], Operation[]>()

/** GET operations that answer the caller's own object (`/me`, `/profile`, …; no path parameter). */
export function selfOperations(ops: readonly Operation[]): Operation[] {
  const hit = selfCache.get(ops)
  if (hit) return hit
  const out = ops.filter((op) => {
    if (op.method !== 'GET' || op.path.includes('{')) return false
    const last = segments(op.path).pop()
    return last !== undefined && SELF.test(last)
  })
  selfCache.set(ops, out)
  return out
}

/** The `$ref` a response schema names (through a `data` or single-property wrapper), if any. */
function responseRef(op: Operation): string | undefined {
  const r = op.responses.find((x) => /^2/.test(x.status))
  const m = r?.content.find((c) => c.type.includes('json')) ?? r?.content[0]
  let s = m?.schema
  for (let i = 0; i < 3 && isObject(s); i++) {
    if (typeof s.$ref === 'string') return s.$ref
    const props = isObject(s.properties) ? s.properties : undefined
    if (!props) return undefined
    const keys = Object.keys(props).filter((k) => !/^(meta|links|_links|status|success|message)$/.test(k))
    s = keys.length === 1 ? props[keys[0] as string] : props.data
  }
  return undefined
}

/**
 * Every resource of the spec: one per item path template (a path ending in a parameter),
 * including "virtual" ones that only appear as parents (`/v2/users/{userId}` of
 * `/v2/users/{userId}/addresses`), so objects found elsewhere (the caller's profile) can fill
 * their parameter. Cached per operation list.
 */
export function findResources(ops: readonly Operation[]): Resource[] {
  const hit = cache.get(ops)
  if (hit) return hit
  const byPath = new Map<string, Operation[]>()
  for (const op of ops) {
    const list = byPath.get(op.path) ?? []
    list.push(op)
    byPath.set(op.path, list)
  }
  const items = new Set<string>()
  for (const path of byPath.keys()) {
    const segs = segments(path)
    for (let i = 0; i < segs.length; i++) {
      if (isParam(segs[i] as string) && i > 0) items.add(`/${segs.slice(0, i + 1).join('/')}`)
    }
  }
  const out: Resource[] = []
  const at = (p: string, method: string) => (byPath.get(p) ?? []).find((o) => o.method === method)
  for (const itemPath of items) {
    const segs = segments(itemPath)
    const collectionPath = `/${segs.slice(0, -1).join('/')}`
    const type = typeOf(collectionPath)
    if (!type) continue
    const r: Resource = {
      type,
      collectionPath,
      itemPath,
      itemParam: (segs[segs.length - 1] as string).slice(1, -1),
    }
    const assign = <K extends keyof Resource>(k: K, v: Resource[K] | undefined) => {
      if (v !== undefined) r[k] = v
    }
    assign('list', at(collectionPath, 'GET'))
    assign('create', at(collectionPath, 'POST'))
    assign('get', at(itemPath, 'GET'))
    assign('put', at(itemPath, 'PUT'))
    assign('patch', at(itemPath, 'PATCH'))
    assign('delete', at(itemPath, 'DELETE'))
    out.push(r)
  }
  // Identity endpoints: `${collection}/me` first, then the resource returning the same schema,
  // then a resource of people.
  for (const me of selfOperations(ops)) {
    const parent = me.path.replace(/\/[^/]+$/, '')
    const ref = responseRef(me)
    const r =
      out.find((x) => x.collectionPath === parent && !x.collectionPath.includes('{')) ??
      (ref ? out.find((x) => x.get && responseRef(x.get) === ref) : undefined) ??
      out.find((x) => PEOPLE.test(x.type) && !x.collectionPath.includes('{') && !x.me) ??
      out.find((x) => PEOPLE.test(x.type) && !x.collectionPath.includes('{'))
    if (!r || r.me) continue
    r.me = me
    const writes = (byPath.get(me.path) ?? []).filter((o) => o.method === 'PATCH' || o.method === 'PUT')
    if (writes.length > 0) r.meWrite = writes
  }
  cache.set(ops, out)
  return out
}

/** Fills a path template: `{name}` from `values`. Undefined when a value is missing. */
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

/** The parameter names of a template, in order. */
export function templateParams(template: string): string[] {
  return [...template.matchAll(/\{([^{}/]+)\}/g)].map((m) => m[1] as string)
}

export function itemPathFor(
  r: Resource,
  id: string,
  parents: Record<string, string> = {},
): string | undefined {
  return fillPath(r.itemPath, { ...parents, [r.itemParam]: id })
}

/**
 * Values for a template's parameters, taken from objects by position: `{userId}` in
 * `/v2/users/{userId}/addresses` comes from an object whose template has a parameter at the same
 * place after the same static segments (`/v2/users/{id}` → the caller's profile). Objects are
 * tried in order; undefined when a parameter stays unfilled.
 */
export function fillFrom(
  template: string,
  objects: readonly SeededObject[],
): Record<string, string> | undefined {
  const t = segments(template)
  const values: Record<string, string> = {}
  for (let i = 0; i < t.length; i++) {
    const seg = t[i] as string
    if (!isParam(seg)) continue
    const name = seg.slice(1, -1)
    let found: string | undefined
    for (const o of objects) {
      if (!o.template || !o.params) continue
      const s = segments(o.template)
      if (s.length <= i || !isParam(s[i] as string)) continue
      let same = true
      for (let j = 0; j < i; j++) {
        const a = t[j] as string
        const b = s[j] as string
        if (isParam(a) !== isParam(b) || (!isParam(a) && a !== b)) {
          same = false
          break
        }
      }
      if (!same) continue
      const v = o.params[(s[i] as string).slice(1, -1)]
      if (v !== undefined) {
        found = v
        break
      }
    }
    if (found === undefined) return undefined
    values[name] = found
  }
  return values
}

/** `{data: {...}}`, `{order: {...}}`, `{order: {...}, meta}` → the object inside (two levels at most). */
export function unwrap(body: unknown): unknown {
  let cur = body
  for (let i = 0; i < 2; i++) {
    if (!isObject(cur)) return cur
    if (isObject(cur.data)) {
      cur = cur.data
      continue
    }
    const entries = Object.entries(cur)
    const meta = (k: string) => /^(meta|links|_links|included|status|success|message|ok|jsonapi)$/.test(k)
    const main = entries.filter(([k]) => !meta(k))
    if (main.length === 1 && isObject(main[0]?.[1])) {
      cur = main[0]?.[1]
      continue
    }
    return cur
  }
  return cur
}

/**
 * The keys an object's id may go by: the path parameter's own name and its spellings, `id`,
 * `_id`, `uuid`, `<singular>Id`; for parameters named like numbers or names, `number`/`no` and
 * `username`/`name`.
 */
export function idKeys(type: string, param?: string): string[] {
  const one = singular(type)
  const keys: string[] = []
  if (param) {
    keys.push(
      param,
      param.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()),
    )
    keys.push(param.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase())
    const m = /^(.*?)[_-]?(id|uuid|no|num|number|key|slug|code|name|handle)$/i.exec(param)
    const suffix = m?.[2]?.toLowerCase()
    if (suffix === 'no' || suffix === 'num' || suffix === 'number')
      keys.push('number', 'no', 'num', `${m?.[1]}Number`)
    if (suffix === 'name' || suffix === 'handle') keys.push('username', 'name', 'login', 'handle')
    if (suffix === 'slug') keys.push('slug')
  }
  keys.push('id', '_id', 'uuid', `${one}Id`, `${one}_id`, `${one}ID`, `${one}Uuid`)
  return [...new Set(keys)]
}

/** The id of an object in a JSON body (unwrapped from `data` or a one-key wrapper), as a string. */
export function idOf(body: unknown, type: string, param?: string): string | undefined {
  for (const candidate of [unwrap(body), body]) {
    if (!isObject(candidate)) continue
    for (const k of idKeys(type, param)) {
      const v = candidate[k]
      if (typeof v === 'string' && v !== '' && v.length <= 200) return v
      if (typeof v === 'number' && Number.isFinite(v)) return String(v)
    }
  }
  return undefined
}

const LIST_KEYS = [
  'items',
  'data',
  'results',
  'records',
  'content',
  'values',
  'list',
  'rows',
  'entries',
  'hits',
]

/**
 * The array of objects in a list answer: the body itself, or the one array under
 * items/data/results/… or named like the type (`{orders: [...]}`). An object with an id of its
 * own is an object, not a list, whatever arrays it holds (`{id, items: [...]}`).
 */
export function listItems(body: unknown, type?: string): unknown[] | undefined {
  if (Array.isArray(body)) return body
  if (!isObject(body)) return undefined
  if (['id', '_id', 'uuid'].some((k) => typeof body[k] === 'string' || typeof body[k] === 'number'))
    return undefined
  if (type && Array.isArray(body[type])) return body[type] as unknown[]
  for (const k of LIST_KEYS) {
    const v = body[k]
    if (Array.isArray(v)) return v
  }
  const arrays = Object.values(body).filter(Array.isArray)
  const scalars = Object.values(body).filter((v) => !Array.isArray(v) && !isObject(v))
  if (arrays.length === 1 && scalars.length === 0) return arrays[0] as unknown[]
  return undefined
}

export function objectsOf(ctx: ScanContext, owner: string, type?: string): SeededObject[] {
  return ctx.objects.filter((o) => o.owner === owner && (type === undefined || o.type === type))
}

/** Words that name a function meant for staff or admins (path and operationId). */
const ADMIN_WORDS =
  /^(admin|admins|administrator|administration|internal|backoffice|staff|moderation|superuser|sudo|impersonate|impersonation|audit|audits|auditlog|compliance|freeze|unfreeze|suspend|unsuspend|ban|unban|promote|demote|refund|refunds|payout|payouts|permissions|privileges|maintenance)$/i
/** The same for operations that change something (reading one's own roles is no admin function). */
const ADMIN_WRITE_WORDS = /^(role|roles|grant|grants|approve|approval|reject|manage|management|verify)$/i
/** Phrases of a description or summary that reserve an operation for staff. */
const ADMIN_PHRASE =
  /\((admins?|administrators?|staff)( only)?\)|\b(admins? only|administrators? only|for admin(istrator)?s|staff only|support (desk|staff|team|agents?)|back[- ]office|compliance team|internal use|operators? only|moderators? only|privileged|superusers? only|requires? (the )?admin)/i

function opWords(op: Operation): string[] {
  return `${op.path} ${op.operationId ?? ''}`
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
}

/**
 * Whether an operation is meant for admins or staff: `x-portcullis-roles` with only privileged
 * roles, an admin tag, an admin-like path segment, or (without any marker) a privileged function's
 * name or description: freeze, audit, role, approve, refund, "support desk", "staff only", …
 */
export function isAdminOperation(op: Operation): boolean {
  return adminReason(op) !== undefined
}

/** Why an operation looks like one for admins or staff, or undefined. */
export function adminReason(op: Operation): string | undefined {
  const roles = op.raw['x-portcullis-roles']
  if (Array.isArray(roles) && roles.length > 0) {
    return roles.every((r) => /admin|staff|support|manager|moderator|operator|root/i.test(String(r)))
      ? `x-portcullis-roles: ${roles.join(', ')}`
      : undefined
  }
  const tag = op.tags.find((t) => /^(admin|internal|staff|backoffice|management)/i.test(t))
  if (tag) return `tag "${tag}"`
  if (/(^|\/)(admin|internal|manage|management|backoffice|staff)(\/|$)/i.test(op.path)) return 'its path'
  const writes = op.method !== 'GET' && op.method !== 'HEAD'
  const word = opWords(op).find((w) => ADMIN_WORDS.test(w) || (writes && ADMIN_WRITE_WORDS.test(w)))
  if (word) return `"${word}" in its name`
  const raw = op.raw as { summary?: unknown; description?: unknown }
  const text = `${typeof raw.summary === 'string' ? raw.summary : ''} ${typeof raw.description === 'string' ? raw.description.slice(0, 2000) : ''}`
  const phrase = ADMIN_PHRASE.exec(text)?.[0]
  if (phrase) return `"${phrase}" in its description`
  return undefined
}

/** The roles an operation requires (`x-portcullis-roles`), when the spec says. */
export function requiredRoles(op: Operation): string[] | undefined {
  const roles = op.raw['x-portcullis-roles']
  return Array.isArray(roles) ? roles.map(String) : undefined
}

/** The spec's operations on the same path, for a resource label in messages. */
export function describeResource(r: Resource): string {
  return `${r.type} (${r.itemPath})`
}

export type { OpenApiSpec }
