/**
 * Path templating for paths no spec describes: segments that look like identifiers become
 * parameters, and a cardinality guard keeps the set of templates bounded whatever the traffic.
 *
 * - A segment is an identifier when it is an integer, a UUID, a date, an email, a hex string of
 *   8+ characters with a digit, a base64url token of 16+ characters with a digit and a letter, or
 *   a code of 6+ characters at least 30% digits (`ord-2024-0042`). Version segments (`v1`,
 *   `v2.1`) never are: they tell API versions apart.
 * - The literal segments seen under one parent are learned in a trie. When a parent has more than
 *   `maxLiterals` distinct literal children, it is collapsed: from then on any literal there is
 *   a parameter (`{param}`), and the templates learned under it are folded into the collapsed one
 *   (see `collapsedPrefixes`). The trie holds at most `maxNodes` nodes; past that, new literals
 *   are parameters too. Paths deeper than `maxDepth` segments end in one `{rest}` parameter.
 *
 * Parameter names: `{id}` for identifiers, `{uuid}`, `{date}`, `{email}`, `{param}` for collapsed
 * literals; a name used twice in one template gets a number (`{id}`, `{id2}`).
 */

export type SegmentKind = 'id' | 'uuid' | 'date' | 'email' | 'param'

const INTEGER = /^\d+$/
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/
const DATE = /^\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/
const EMAIL = /^[^@\s/]{1,64}@[^@\s/]{1,253}\.[A-Za-z]{2,63}$/
const HEX = /^[0-9a-fA-F]{8,}$/
const B64URL = /^[A-Za-z0-9_-]{16,}={0,2}$/
const VERSION = /^v\d+(?:\.\d+)*$/i
const DIGIT = /\d/
const LETTER = /[A-Za-z]/

/** What kind of identifier a segment is, or undefined for a literal. */
export function segmentKind(seg: string): SegmentKind | undefined {
  if (seg.length === 0 || VERSION.test(seg)) return undefined
  if (INTEGER.test(seg)) return 'id'
  if (seg.length >= 36 && UUID.test(seg)) return 'uuid'
  if (seg.length >= 10 && DATE.test(seg)) return 'date'
  if (seg.includes('@') && EMAIL.test(seg)) return 'email'
  if (seg.length >= 8 && HEX.test(seg) && DIGIT.test(seg)) return 'id'
  if (seg.length >= 16 && B64URL.test(seg) && DIGIT.test(seg) && LETTER.test(seg)) return 'id'
  if (seg.length >= 6) {
    let digits = 0
    for (let i = 0; i < seg.length; i++) {
      const c = seg.charCodeAt(i)
      if (c >= 48 && c <= 57) digits++
    }
    if (digits >= 3 && digits / seg.length >= 0.3) return 'id'
  }
  return undefined
}

/** True when a template segment is a parameter (`{name}`). */
export function isParamSegment(seg: string): boolean {
  return seg.length > 2 && seg.charCodeAt(0) === 123 && seg.charCodeAt(seg.length - 1) === 125
}

interface Node {
  literals: Map<string, Node> | undefined
  /** The parameter child (identifiers, and every literal once collapsed). */
  param: Node | undefined
  /** Name of the parameter child, fixed by the first value that created it. */
  paramKind: SegmentKind
  collapsed: boolean
}

function newNode(): Node {
  return { literals: undefined, param: undefined, paramKind: 'id', collapsed: false }
}

export interface TemplaterOptions {
  /** Distinct literal children of one segment before it collapses into a parameter. */
  maxLiterals: number
  /** Trie nodes (distinct learned prefixes) in all. */
  maxNodes: number
  /** Segments kept; the rest become one `{rest}` parameter. */
  maxDepth: number
}

export const DEFAULT_TEMPLATER: TemplaterOptions = { maxLiterals: 50, maxNodes: 20_000, maxDepth: 16 }

/**
 * @example
 * const t = new Templater()
 * t.template('/users/42/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301') // '/users/{id}/orders/{uuid}'
 */
export class Templater {
  private readonly root = newNode()
  private nodes = 1
  private readonly opts: TemplaterOptions
  /** Prefixes (templates up to a collapsed segment, e.g. `/files`) collapsed so far. */
  private readonly collapsed = new Set<string>()
  /** Called with the collapsed prefix when a segment collapses. */
  onCollapse: ((prefix: string) => void) | undefined

  constructor(opts: Partial<TemplaterOptions> = {}) {
    this.opts = { ...DEFAULT_TEMPLATER, ...opts }
  }

  /** Nodes in the trie (bounded by maxNodes). */
  get size(): number {
    return this.nodes
  }

  /** Prefixes collapsed so far. */
  collapsedPrefixes(): string[] {
    return [...this.collapsed]
  }

  /**
   * The template of a path, learning its literal segments (and collapsing a segment when it has
   * too many). Segments that are already parameters (`{id}`) stay parameters: re-templating a
   * template after a collapse gives its current form.
   */
  template(path: string): string {
    const segs = path.split('/')
    // segs[0] is '' for an absolute path.
    const out: string[] = ['']
    const used = new Map<string, number>()
    let node = this.root
    const last = Math.min(segs.length, this.opts.maxDepth + 1)
    for (let i = 1; i < last; i++) {
      const seg = segs[i] as string
      let kind: SegmentKind | undefined = isParamSegment(seg) ? kindOfParam(seg) : segmentKind(seg)
      if (kind === undefined && node.collapsed) kind = 'param'
      if (kind === undefined) {
        let next = node.literals?.get(seg)
        if (next === undefined) {
          if (this.nodes >= this.opts.maxNodes) kind = 'param'
          else {
            node.literals ??= new Map()
            if (node.literals.size >= this.opts.maxLiterals) {
              this.collapse(node, out.join('/'))
              kind = 'param'
            } else {
              next = newNode()
              node.literals.set(seg, next)
              this.nodes++
            }
          }
        }
        if (next !== undefined) {
          out.push(seg)
          node = next
          continue
        }
      }
      // A parameter.
      if (node.param === undefined) {
        if (this.nodes >= this.opts.maxNodes) {
          out.push(paramName('param', used))
          return withRest(out, segs, i + 1)
        }
        node.param = newNode()
        node.paramKind = kind as SegmentKind
        this.nodes++
      }
      out.push(paramName(node.collapsed ? 'param' : node.paramKind, used))
      node = node.param
    }
    if (segs.length > last) return withRest(out, segs, last)
    return out.join('/') || '/'
  }

  /** Applies a collapse learned elsewhere (another gateway): `prefix` is a template prefix. */
  applyCollapse(prefix: string): void {
    if (this.collapsed.has(prefix)) return
    let node = this.root
    const segs = prefix === '' ? [''] : prefix.split('/')
    for (let i = 1; i < segs.length; i++) {
      const seg = segs[i] as string
      const next = isParamSegment(seg) ? node.param : node.literals?.get(seg)
      if (next === undefined) {
        // Not learned here yet: learn the path to it first.
        this.template(segs.slice(0, i + 1).join('/'))
        const again = isParamSegment(seg) ? node.param : node.literals?.get(seg)
        if (again === undefined) return
        node = again
      } else node = next
    }
    this.collapse(node, prefix)
  }

  private collapse(node: Node, prefix: string): void {
    if (node.collapsed) return
    node.collapsed = true
    if (node.literals) {
      this.nodes -= countNodes(node.literals)
      node.literals = undefined
    }
    if (node.param === undefined) {
      node.param = newNode()
      this.nodes++
    }
    node.paramKind = 'param'
    this.collapsed.add(prefix)
    this.onCollapse?.(prefix)
  }
}

function countNodes(m: Map<string, Node>): number {
  let n = 0
  const stack: Node[] = [...m.values()]
  while (stack.length > 0) {
    const x = stack.pop() as Node
    n++
    if (x.literals) for (const c of x.literals.values()) stack.push(c)
    if (x.param) stack.push(x.param)
  }
  return n
}

function kindOfParam(seg: string): SegmentKind {
  const name = seg.slice(1, -1).replace(/\d+$/, '')
  return name === 'uuid' || name === 'date' || name === 'email' || name === 'param' ? name : 'id'
}

function paramName(kind: SegmentKind, used: Map<string, number>): string {
  const n = (used.get(kind) ?? 0) + 1
  used.set(kind, n)
  return n === 1 ? `{${kind}}` : `{${kind}${n}}`
}

function withRest(out: string[], segs: string[], from: number): string {
  if (from < segs.length) out.push('{rest}')
  return out.join('/')
}
