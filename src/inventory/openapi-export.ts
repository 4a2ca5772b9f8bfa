/**
 * An OpenAPI 3.1 document reconstructed from traffic: every observed operation (method + path
 * template) with its path and query parameters, the request and response media types, and JSON
 * schemas inferred from the sampled bodies' field paths and value types (a property is required
 * when every sampled parent object had it). What the inventory knows beyond the contract (request
 * counts, flags, data classes) goes in the `x-portcullis-inventory` extension of each operation.
 */
import type { InventoryOperation, InventoryView } from './view.js'

type Schema = Record<string, unknown>

interface Node {
  types: Map<string, number>
  props: Map<string, Node>
  items: Node | undefined
}

const newNode = (): Node => ({ types: new Map(), props: new Map(), items: undefined })

/** Splits `$.a.b[].c` into `['.a', '.b', '[]', '.c']`; undefined when it is not such a path. */
function tokens(path: string): string[] | undefined {
  if (!path.startsWith('$')) return undefined
  const out: string[] = []
  let i = 1
  while (i < path.length) {
    if (path.startsWith('[]', i)) {
      out.push('[]')
      i += 2
      continue
    }
    if (path[i] !== '.') return undefined
    let j = i + 1
    while (j < path.length && path[j] !== '.' && path[j] !== '[') j++
    out.push(path.slice(i, j))
    i = j
  }
  return out
}

function decodeKey(seg: string): string {
  try {
    return decodeURIComponent(seg)
  } catch {
    return seg
  }
}

/** A JSON schema from field paths and their type counts. */
export function inferSchema(
  fields: readonly { path: string; types: Record<string, number> }[],
): Schema | undefined {
  const root = newNode()
  let any = false
  for (const f of fields) {
    const t = tokens(f.path)
    if (t === undefined) continue
    let node = root
    for (const tok of t) {
      if (tok === '[]') {
        node.items ??= newNode()
        node = node.items
      } else {
        const k = decodeKey(tok.slice(1))
        let next = node.props.get(k)
        if (!next) {
          next = newNode()
          node.props.set(k, next)
        }
        node = next
      }
    }
    for (const [type, n] of Object.entries(f.types)) node.types.set(type, (node.types.get(type) ?? 0) + n)
    any = true
  }
  return any ? toSchema(root) : undefined
}

function toSchema(node: Node): Schema {
  const base = new Map<string, number>()
  const formats = new Map<string, number>()
  let strings = 0
  for (const [t, n] of node.types) {
    const [b, fmt] = t.split(':') as [string, string | undefined]
    base.set(b, (base.get(b) ?? 0) + n)
    if (b === 'string') {
      strings += n
      if (fmt) formats.set(fmt, (formats.get(fmt) ?? 0) + n)
    }
  }
  if (base.has('integer') && base.has('number')) {
    base.set('number', (base.get('number') as number) + (base.get('integer') as number))
    base.delete('integer')
  }
  const types = [...base.keys()].sort()
  const s: Schema = {}
  if (types.length === 1) s.type = types[0]
  else if (types.length > 1) s.type = types
  for (const [fmt, n] of formats) if (n === strings) s.format = fmt
  if (base.has('object') && node.props.size > 0) {
    const objects = base.get('object') as number
    const props: Record<string, Schema> = {}
    const required: string[] = []
    for (const k of [...node.props.keys()].sort()) {
      const child = node.props.get(k) as Node
      Object.defineProperty(props, k, {
        value: toSchema(child),
        enumerable: true,
        writable: true,
        configurable: true,
      })
      let present = 0
      for (const n of child.types.values()) present += n
      if (present >= objects) required.push(k)
    }
    s.properties = props
    if (required.length > 0) s.required = required
  }
  if (base.has('array') && node.items) s.items = toSchema(node.items)
  return s
}

function scalarSchema(types: readonly string[]): Schema {
  if (types.length === 0) return { type: 'string' }
  const base = new Set(types.map((t) => t.split(':')[0] as string))
  if (base.has('integer') && base.has('number')) base.delete('integer')
  const list = [...base].sort()
  const s: Schema = { type: list.length === 1 ? list[0] : list }
  const fmts = new Set(types.filter((t) => t.startsWith('string:')).map((t) => t.slice(7)))
  if (
    list.length === 1 &&
    list[0] === 'string' &&
    fmts.size === 1 &&
    types.every((t) => t.startsWith('string:'))
  ) {
    s.format = [...fmts][0]
  }
  return s
}

/** A valid, unique operationId for an operation without one. */
function makeOperationId(op: InventoryOperation, taken: Set<string>): string {
  const base =
    op.operationId ??
    `${op.method.toLowerCase()}${op.path
      .split('/')
      .filter((s) => s !== '')
      .map((s) =>
        s
          .replace(/[{}]/g, '')
          .replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase()),
      )
      .map((s) => (s === '' ? '' : s[0]?.toUpperCase() + s.slice(1)))
      .join('')}`
  let id = base || op.method.toLowerCase()
  for (let i = 2; taken.has(id); i++) id = `${base}${i}`
  taken.add(id)
  return id
}

/** True when a template can be a key of `paths` (starts with `/`, braces only around whole parameters). */
function validTemplate(path: string): boolean {
  if (!path.startsWith('/')) return false
  const names = new Set<string>()
  for (const seg of path.split('/')) {
    if (!seg.includes('{') && !seg.includes('}')) continue
    const m = /^\{([A-Za-z0-9_.-]+)\}$/.exec(seg)
    if (!m || names.has(m[1] as string)) return false
    names.add(m[1] as string)
  }
  return true
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])

export interface ExportOptions {
  title?: string
  /** Include spec operations that saw no traffic (default: observed ones only). */
  includeUnseen?: boolean
}

/**
 * @example
 * const doc = toOpenApi(await inventory.view())
 * writeFileSync('reconstructed.json', JSON.stringify(doc, null, 2))
 */
export function toOpenApi(view: InventoryView, opts: ExportOptions = {}): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  const taken = new Set<string>()
  for (const op of view.operations) {
    if (op.requests === 0 && !opts.includeUnseen) continue
    const method = op.method.toLowerCase()
    if (!METHODS.has(method) || !validTemplate(op.path)) continue
    const parameters: Schema[] = []
    for (const p of op.pathParams) {
      parameters.push({ name: p.name, in: 'path', required: true, schema: scalarSchema(p.types) })
    }
    const sampled = op.samples.req ?? 0
    for (const q of op.queryParams) {
      parameters.push({
        name: q.name,
        in: 'query',
        required: q.count >= op.requests && op.requests > 0,
        schema: scalarSchema(q.types),
      })
    }
    const operation: Record<string, unknown> = {
      operationId: makeOperationId(op, taken),
      summary: op.inSpec ? `${op.method} ${op.path}` : `${op.method} ${op.path} (not in any spec)`,
    }
    if (op.deprecated || op.flags.includes('zombie')) operation.deprecated = true
    if (parameters.length > 0) operation.parameters = parameters
    const reqFields = op.fields.filter((f) => f.where === 'req')
    const reqSchema = inferSchema(reqFields)
    const reqType = op.contentTypes.request[0]
    if (reqSchema !== undefined || (reqType !== undefined && sampled > 0 && op.method !== 'GET')) {
      operation.requestBody = {
        content: { [reqType ?? 'application/json']: reqSchema ? { schema: reqSchema } : {} },
      }
    }
    const responses: Record<string, unknown> = {}
    const statuses = Object.keys(op.statuses)
      .filter((s) => /^[1-5]\d\d$/.test(s))
      .sort()
    for (const status of statuses) {
      const schema = inferSchema(op.fields.filter((f) => f.where === `res:${status}`))
      const r: Record<string, unknown> = { description: `Observed ${op.statuses[status]} time(s)` }
      if (schema !== undefined)
        r.content = { [op.contentTypes.response[0] ?? 'application/json']: { schema } }
      responses[status] = r
    }
    if (statuses.length === 0) responses.default = { description: 'No response observed' }
    operation.responses = responses
    operation['x-portcullis-inventory'] = {
      requests: op.requests,
      flags: op.flags,
      dataClasses: op.dataClasses.map((d) => d.class),
      authenticatedShare: op.authenticatedShare,
      ...(op.firstSeen ? { firstSeen: op.firstSeen } : {}),
      ...(op.lastSeen ? { lastSeen: op.lastSeen } : {}),
    }
    paths[op.path] ??= {}
    ;(paths[op.path] as Record<string, unknown>)[method] = operation
  }
  return {
    openapi: '3.1.0',
    info: {
      title: opts.title ?? 'API reconstructed from traffic by Portcullis',
      version: view.generatedAt.slice(0, 10),
      description: `Reconstructed from traffic observed since ${view.observingSince} (generated ${view.generatedAt}). Schemas are inferred from sampled bodies; review before use.`,
    },
    paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  }
}
