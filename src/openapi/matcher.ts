/**
 * Path templates compiled into a segment tree. A request path is matched segment by segment:
 * a literal segment wins over a segment that mixes literal text and variables (`{name}.json`),
 * which wins over a whole-segment variable (`{id}`), as OAS says ("concrete paths are matched
 * before their templated counterparts"); the matcher backtracks when a more concrete branch does
 * not lead to a complete match. The path decides the operation's path item; the method is then
 * looked up in it (a path that matches with a method that does not → `allowed` lists the methods).
 *
 * Variables match one whole segment or part of one, never a `/`; values are percent-decoded.
 * Mixed segments run on the linear-time engine: `{a}.{b}.{c}` would backtrack polynomially.
 */
import { compileLinear, type LinearRegExp } from '../util/linear-regex.js'

export interface PathMatch<T> {
  value: T
  template: string
  /** Decoded path parameter values by name. */
  params: Record<string, string>
}

export type MatchResult<T> =
  | { kind: 'found'; match: PathMatch<T> }
  | { kind: 'method'; template: string; allowed: string[] }
  | { kind: 'none' }

interface Mixed<T> {
  re: LinearRegExp
  names: string[]
  literalLength: number
  node: Node<T>
}

interface Node<T> {
  literal: Map<string, Node<T>>
  mixed: Mixed<T>[]
  param: { name: string; node: Node<T> } | undefined
  methods: Map<string, T> | undefined
  template: string | undefined
}

function newNode<T>(): Node<T> {
  return { literal: new Map(), mixed: [], param: undefined, methods: undefined, template: undefined }
}

/**
 * @example
 * const m = new PathMatcher<string>()
 * m.add('/users/{id}', 'GET', 'getUser')
 * m.add('/users/me', 'GET', 'getMe')
 * m.match('/users/me', 'GET')   // → getMe
 * m.match('/users/42', 'GET')   // → getUser, params { id: '42' }
 */
export class PathMatcher<T> {
  private readonly root = newNode<T>()
  private size = 0

  /** Adds a template; throws when the same template and method is added twice. */
  add(template: string, method: string, value: T): void {
    let node = this.root
    for (const seg of splitPath(template)) {
      if (!seg.includes('{')) {
        let next = node.literal.get(seg)
        if (!next) {
          next = newNode()
          node.literal.set(seg, next)
        }
        node = next
        continue
      }
      const whole = /^\{([^{}]+)\}$/.exec(seg)
      if (whole) {
        // Variables with different names at the same place share the node (`/a/{id}` and
        // `/a/{name}/b`); each template's own name is recorded at its end node.
        if (!node.param) node.param = { name: whole[1] as string, node: newNode() }
        node = node.param.node
        continue
      }
      const names: string[] = []
      let literalLength = 0
      const source = seg.replace(
        /\{([^{}]+)\}|([^{}]+)/g,
        (_m, name: string | undefined, lit: string | undefined) => {
          if (name !== undefined) {
            names.push(name)
            return '(.+?)'
          }
          literalLength += (lit as string).length
          return escapeRegExp(lit as string)
        },
      )
      let mixed = node.mixed.find((x) => x.re.source === `^${source}$`)
      if (!mixed) {
        mixed = { re: compileLinear(`^${source}$`, 's'), names, literalLength, node: newNode() }
        node.mixed.push(mixed)
        node.mixed.sort((a, b) => b.literalLength - a.literalLength)
      }
      node = mixed.node
    }
    node.methods ??= new Map()
    const m = method.toUpperCase()
    if (node.methods.has(m)) throw new Error(`${m} ${template} is declared twice`)
    node.methods.set(m, value)
    node.template ??= template
    this.size++
  }

  get count(): number {
    return this.size
  }

  /**
   * Matches a canonical path (percent-escapes of reserved characters kept) and a method.
   * HEAD falls back to GET when the path declares no HEAD.
   */
  match(path: string, method: string): MatchResult<T> {
    const segs = splitPath(path)
    const values: string[] = []
    const node = this.walk(this.root, segs, 0, values)
    if (!node?.methods) return { kind: 'none' }
    const m = method.toUpperCase()
    const value = node.methods.get(m) ?? (m === 'HEAD' ? node.methods.get('GET') : undefined)
    const template = node.template as string
    if (value === undefined) return { kind: 'method', template, allowed: [...node.methods.keys()] }
    const params: Record<string, string> = {}
    const names = templateNames(template)
    for (let i = 0; i < names.length && i < values.length; i++)
      params[names[i] as string] = values[i] as string
    return { kind: 'found', match: { value, template, params } }
  }

  private walk(node: Node<T>, segs: readonly string[], i: number, values: string[]): Node<T> | undefined {
    if (i === segs.length) return node.methods ? node : undefined
    const raw = segs[i] as string
    const seg = decode(raw)
    if (seg === undefined) return undefined
    const lit = node.literal.get(seg)
    if (lit) {
      const found = this.walk(lit, segs, i + 1, values)
      if (found) return found
    }
    for (const mx of node.mixed) {
      const m = mx.re.exec(seg)
      if (!m) continue
      const n = values.length
      for (let g = 1; g < m.length; g++) values.push(m[g] as string)
      const found = this.walk(mx.node, segs, i + 1, values)
      if (found) return found
      values.length = n
    }
    if (node.param && seg !== '') {
      values.push(seg)
      const found = this.walk(node.param.node, segs, i + 1, values)
      if (found) return found
      values.pop()
    }
    return undefined
  }
}

const nameCache = new Map<string, string[]>()
function templateNames(template: string): string[] {
  let names = nameCache.get(template)
  if (!names) {
    names = [...template.matchAll(/\{([^{}]+)\}/g)].map((m) => m[1] as string)
    if (nameCache.size < 10000) nameCache.set(template, names)
  }
  return names
}

// The last path split: several policies of one request match the same path (authorize,
// object-ownership, openapi-validation, property-filter each have a matcher), one after the other.
let lastPath = ''
let lastSegs: readonly string[] = ['']

/** '/a/b/' → ['a', 'b', '']; '/' → ['']. The array is shared: callers must not change it. */
function splitPath(path: string): readonly string[] {
  if (path !== lastPath) {
    lastSegs = path.slice(1).split('/')
    lastPath = path
  }
  return lastSegs
}

function decode(seg: string): string | undefined {
  if (!seg.includes('%')) return seg
  try {
    return decodeURIComponent(seg)
  } catch {
    return undefined
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
