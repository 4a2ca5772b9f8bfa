/**
 * Property plans: what an operation's request and response schemas say about each property, for
 * the property filter. A plan is a tree of nodes mirroring the schema (properties, array items,
 * additional properties), with `$ref`, `allOf`, `anyOf` and `oneOf` looked through and merged,
 * built once per spec. Recursive schemas become cyclic plans (nodes are shared by location), so
 * building is bounded by the spec and walking is bounded by the data.
 */
import type { Location, OpenApiSpec, Operation } from '../../openapi/index.js'

/** What the schemas say about one property name of an object. */
export interface PropInfo {
  /** Every declaration that restricts the property lists its roles; one of each list is needed. */
  roles: (readonly string[])[]
  readOnly: boolean
  writeOnly: boolean
  /** Plans of the property's value. */
  children: PlanNode[]
}

export interface PlanNode {
  props: Map<string, PropInfo>
  /** Plans of array items. */
  items: PlanNode[]
  /** Plans of the values of undeclared properties (additionalProperties / patternProperties). */
  extra: PlanNode[]
}

/** Response plans of an operation: by declared status (`200`, `2XX`, `default`). */
export interface OperationPlans {
  request: PlanNode[]
  responses: Map<string, PlanNode[]>
  /** True when some property anywhere carries a role, readOnly or writeOnly mark. */
  requestMarked: boolean
  responseMarked: boolean
}

const BRANCHES = ['allOf', 'anyOf', 'oneOf'] as const
const MAX_INLINE_DEPTH = 64

function isJson(t: string): boolean {
  return t === 'application/json' || t.endsWith('+json') || t === '*/*' || t === 'application/*'
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

const ptr = (loc: Location, ...tokens: (string | number)[]): Location => ({
  file: loc.file,
  pointer: `${loc.pointer}${tokens.map((t) => `/${String(t).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')}`,
})

/**
 * Builds plans for a spec's operations. Throws a plain Error naming the place of a malformed
 * `x-portcullis-roles` (a config error at load time).
 */
export class PlanBuilder {
  private readonly nodes = new Map<string, PlanNode>()
  readonly problems: string[] = []

  constructor(private readonly spec: OpenApiSpec) {}

  operation(op: Operation): OperationPlans {
    const request: PlanNode[] = []
    for (const m of op.requestBody?.content ?? []) {
      if (isJson(m.type) && m.schemaLocation) request.push(this.nodeAt(m.schema, m.schemaLocation))
    }
    const responses = new Map<string, PlanNode[]>()
    for (const r of op.responses) {
      const list: PlanNode[] = []
      for (const m of r.content) {
        if (isJson(m.type) && m.schemaLocation) list.push(this.nodeAt(m.schema, m.schemaLocation))
      }
      responses.set(r.status, list)
    }
    return {
      request,
      responses,
      requestMarked: anyProp(request, (p) => p.readOnly || p.roles.length > 0),
      responseMarked: anyProp([...responses.values()].flat(), (p) => p.writeOnly || p.roles.length > 0),
    }
  }

  /** The plan of the schema written at `loc` (shared: one node per location). */
  private nodeAt(schema: unknown, loc: Location): PlanNode {
    const key = `${loc.file}#${loc.pointer}`
    let node = this.nodes.get(key)
    if (node) return node
    node = { props: new Map(), items: [], extra: [] }
    this.nodes.set(key, node)
    this.fill(node, schema, loc, new Set([key]), 0)
    return node
  }

  private deref(ref: string, loc: Location): { value: unknown; loc: Location } | undefined {
    try {
      const t = this.spec.documents.target(ref, loc)
      return { value: this.spec.documents.at(t.file, t.pointer), loc: t }
    } catch {
      return undefined // the loader and the validator report broken references
    }
  }

  /** Merges what `schema` says into `node`, inlining `$ref`s and composition branches. */
  private fill(node: PlanNode, schema: unknown, loc: Location, inlined: Set<string>, depth: number): void {
    if (!isObject(schema) || depth > MAX_INLINE_DEPTH) return
    if (typeof schema.$ref === 'string') {
      const t = this.deref(schema.$ref, loc)
      if (t) {
        const key = `${t.loc.file}#${t.loc.pointer}`
        if (!inlined.has(key)) {
          inlined.add(key)
          this.fill(node, t.value, t.loc, inlined, depth + 1)
          inlined.delete(key)
        }
      }
      if (this.spec.version === '3.0') return
    }
    for (const b of BRANCHES) {
      const list = schema[b]
      if (!Array.isArray(list)) continue
      for (let i = 0; i < list.length; i++) this.fill(node, list[i], ptr(loc, b, i), inlined, depth + 1)
    }
    const props = schema.properties
    if (isObject(props)) {
      for (const [name, value] of Object.entries(props)) {
        const at = ptr(loc, 'properties', name)
        let info = node.props.get(name)
        if (!info) {
          info = { roles: [], readOnly: false, writeOnly: false, children: [] }
          node.props.set(name, info)
        }
        this.annotate(info, value, at)
        info.children.push(this.nodeAt(value, at))
      }
    }
    if (isObject(schema.items)) node.items.push(this.nodeAt(schema.items, ptr(loc, 'items')))
    if (Array.isArray(schema.prefixItems)) {
      schema.prefixItems.forEach((s, i) => {
        node.items.push(this.nodeAt(s, ptr(loc, 'prefixItems', i)))
      })
    }
    if (isObject(schema.additionalProperties))
      node.extra.push(this.nodeAt(schema.additionalProperties, ptr(loc, 'additionalProperties')))
    if (isObject(schema.patternProperties)) {
      for (const [k, v] of Object.entries(schema.patternProperties))
        node.extra.push(this.nodeAt(v, ptr(loc, 'patternProperties', k)))
    }
  }

  /** readOnly, writeOnly and x-portcullis-roles of a property schema, through a `$ref` chain. */
  private annotate(info: PropInfo, schema: unknown, loc: Location): void {
    let cur: unknown = schema
    let at = loc
    for (let i = 0; i < 16 && isObject(cur); i++) {
      if (cur.readOnly === true) info.readOnly = true
      if (cur.writeOnly === true) info.writeOnly = true
      const roles = cur['x-portcullis-roles']
      if (roles !== undefined) {
        if (
          !Array.isArray(roles) ||
          roles.length === 0 ||
          !roles.every((r) => typeof r === 'string' && r !== '')
        )
          this.problems.push(
            `${at.file}#${at.pointer}: x-portcullis-roles must be a non-empty list of strings`,
          )
        else info.roles.push(roles as string[])
      }
      // In OAS 3.0 a $ref's siblings are ignored; the target's own annotations still apply.
      if (typeof cur.$ref !== 'string') break
      const t = this.deref(cur.$ref, at)
      if (!t) break
      cur = t.value
      at = t.loc
    }
  }
}

/** The plans of the response a status selects: exact, then `2XX`, then `default`. */
export function responsePlans(plans: OperationPlans, status: number): PlanNode[] {
  const s = String(status)
  return plans.responses.get(s) ?? plans.responses.get(`${s[0]}XX`) ?? plans.responses.get('default') ?? []
}

/** True when some property reachable from `nodes` satisfies `pred` (cycles visited once). */
function anyProp(nodes: readonly PlanNode[], pred: (p: PropInfo) => boolean): boolean {
  const seen = new Set<PlanNode>()
  const stack = [...nodes]
  for (let n = stack.pop(); n; n = stack.pop()) {
    if (seen.has(n)) continue
    seen.add(n)
    for (const p of n.props.values()) {
      if (pred(p)) return true
      stack.push(...p.children)
    }
    stack.push(...n.items, ...n.extra)
  }
  return false
}
