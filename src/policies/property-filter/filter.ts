/**
 * The two walks of the property filter, iterative (an explicit stack) so hostile nesting cannot
 * overflow the call stack: removing properties from a parsed JSON response, and finding the
 * properties a JSON request body may not carry. Both visit every value once.
 */
import type { LinearRegExp } from '../../util/linear-regex.js'
import type { PlanNode, PropInfo } from './plan.js'

/** Property names from config are compared ignoring case, `_` and `-`. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, '')
}

/** Names and patterns of sensitive properties, compiled once. */
export interface SensitiveMatcher {
  names: ReadonlySet<string>
  patterns: readonly LinearRegExp[]
}

/** Per-request view of the rules for one walk. */
export interface ResponseRules {
  sensitive: SensitiveMatcher
  /** Normalized sensitive names this operation may return. */
  allowSensitive: ReadonlySet<string>
  /** Normalized name → role lists (one of each list needed). */
  restricted: ReadonlyMap<string, (readonly string[])[]>
  roles: ReadonlySet<string>
}

export interface RequestRules {
  reserved: ReadonlyMap<string, (readonly string[])[]>
  roles: ReadonlySet<string>
}

export interface Removal {
  /** Names of removed properties (unique, at most 20, each at most 64 characters). */
  names: string[]
  count: number
}

export interface RequestViolation {
  pointer: string
  reason: 'readOnly' | 'reserved' | 'role'
}

const MAX_NAMES = 20
const NO_INFO: readonly PropInfo[] = []
const MAX_MEMO = 10_000

/** True when `roles` holds one role of every list. */
function allowed(lists: readonly (readonly string[])[], roles: ReadonlySet<string>): boolean {
  for (const list of lists) if (!list.some((r) => roles.has(r))) return false
  return true
}

function isSensitive(name: string, s: SensitiveMatcher, allow: ReadonlySet<string>): boolean {
  const n = normalizeName(name)
  if (allow.has(n)) return false
  if (s.names.has(n)) return true
  for (const re of s.patterns) if (re.test(name)) return true
  return false
}

/** What the plans say of the property `name` (no allocation when one plan or none knows it). */
function propsOf(nodes: readonly PlanNode[], name: string): readonly PropInfo[] {
  if (nodes.length === 1) {
    const p = (nodes[0] as PlanNode).props.get(name)
    return p === undefined ? NO_INFO : [p]
  }
  let out: PropInfo[] | undefined
  for (const n of nodes) {
    const p = n.props.get(name)
    if (p === undefined) continue
    if (out === undefined) out = [p]
    else out.push(p)
  }
  return out ?? NO_INFO
}

/** The plans of the value of `name` in an object described by `nodes`. */
function childPlans(nodes: readonly PlanNode[], infos: readonly PropInfo[]): readonly PlanNode[] {
  if (infos.length === 1) return (infos[0] as PropInfo).children
  if (infos.length > 0) return infos.flatMap((i) => i.children)
  if (nodes.length === 1) return (nodes[0] as PlanNode).extra
  return nodes.flatMap((n) => n.extra)
}

/** The plans of the items of an array described by `nodes`. */
function itemPlans(nodes: readonly PlanNode[]): readonly PlanNode[] {
  if (nodes.length === 1) return (nodes[0] as PlanNode).items
  return nodes.length === 0 ? nodes : nodes.flatMap((n) => n.items)
}

function escapeToken(k: string): string {
  return k.replace(/~/g, '~0').replace(/\//g, '~1')
}

/**
 * Removes every property of `value` that is sensitive, `writeOnly`, restricted by config to roles
 * the principal lacks, or marked `x-portcullis-roles` in the response schema (`plans`) with none
 * of the principal's roles. An object that loses properties is replaced by a copy without them
 * (cheaper than `delete`, which turns objects into slow dictionaries); the result is `value` or
 * its replacement.
 */
export function filterResponse(
  value: unknown,
  plans: readonly PlanNode[],
  rules: ResponseRules,
): { value: unknown; removal: Removal } {
  const removal: Removal = { names: [], count: 0 }
  const seen = new Set<string>()
  // Names repeat (arrays of objects): what the config says of a name is computed once per body.
  const memo = new Map<string, boolean>()
  const byConfig = (k: string): boolean => {
    let r = memo.get(k)
    if (r === undefined) {
      r = isSensitive(k, rules.sensitive, rules.allowSensitive)
      if (!r) {
        const lists = rules.restricted.get(normalizeName(k))
        r = lists !== undefined && !allowed(lists, rules.roles)
      }
      if (memo.size < MAX_MEMO) memo.set(k, r)
    }
    return r
  }
  const record = (k: string) => {
    removal.count++
    const name = k.length > 64 ? `${k.slice(0, 64)}…` : k
    if (removal.names.length < MAX_NAMES && !seen.has(name)) {
      seen.add(name)
      removal.names.push(name)
    }
  }
  const root: { v: unknown } = { v: value }
  type Frame = [unknown, readonly PlanNode[], Record<string, unknown> | unknown[], string | number]
  const stack: Frame[] = [[value, plans, root as unknown as Record<string, unknown>, 'v']]
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [v, nodes, parent, slot] = top
    if (Array.isArray(v)) {
      const items = itemPlans(nodes)
      for (let i = 0; i < v.length; i++) {
        const x = v[i]
        if (x !== null && typeof x === 'object') stack.push([x, items, v, i])
      }
      continue
    }
    const obj = v as Record<string, unknown>
    const keys = Object.keys(obj)
    let kept: string[] | undefined
    for (let j = 0; j < keys.length; j++) {
      const k = keys[j] as string
      const infos = nodes.length === 0 ? NO_INFO : propsOf(nodes, k)
      let remove = byConfig(k)
      if (!remove) {
        for (const i of infos) {
          if (i.writeOnly || !allowed(i.roles, rules.roles)) {
            remove = true
            break
          }
        }
      }
      if (remove) {
        record(k)
        kept ??= keys.slice(0, j)
        continue
      }
      kept?.push(k)
      const child = obj[k]
      if (child !== null && typeof child === 'object') stack.push([child, childPlans(nodes, infos), obj, k])
    }
    if (kept) {
      // A plain object keeps V8's fast shapes (a null-prototype one or `delete` do not); a
      // `__proto__` member is defined, not assigned, so it stays a plain member.
      const copy: Record<string, unknown> = {}
      for (const k of kept) {
        if (k === '__proto__')
          Object.defineProperty(copy, k, {
            value: obj[k],
            enumerable: true,
            writable: true,
            configurable: true,
          })
        else copy[k] = obj[k]
      }
      ;(parent as Record<string | number, unknown>)[slot] = copy
      // Children already pushed hold `obj` as their parent: re-point them at the copy.
      for (let f = stack.length - 1; f >= 0 && (stack[f] as Frame)[2] === obj; f--)
        (stack[f] as Frame)[2] = copy
    }
  }
  return { value: root.v, removal }
}

/**
 * The properties of a JSON request body that the caller may not send: `readOnly` in the request
 * schema, marked `x-portcullis-roles` without the role, or reserved by config without the role.
 * Stops after `max` violations.
 */
export function checkRequest(
  value: unknown,
  plans: readonly PlanNode[],
  rules: RequestRules,
  max: number,
): RequestViolation[] {
  const out: RequestViolation[] = []
  const reserved = rules.reserved.size > 0
  // Where a value is, as a chain of tokens: its JSON pointer is only written for a violation.
  type Where = { up: Where | undefined; token: string | number } | undefined
  const pointerOf = (w: Where, last: string): string => {
    let p = `/${escapeToken(last)}`
    for (let x = w; x !== undefined; x = x.up)
      p = `/${typeof x.token === 'number' ? x.token : escapeToken(x.token)}${p}`
    return p
  }
  type Frame = [unknown, readonly PlanNode[], Where]
  const stack: Frame[] = [[value, plans, undefined]]
  for (let top = stack.pop(); top && out.length < max; top = stack.pop()) {
    const [v, nodes, where] = top
    if (v === null || typeof v !== 'object') continue
    // Nothing the plans say below and nothing reserved by name: no violation can be there.
    if (nodes.length === 0 && !reserved) continue
    if (Array.isArray(v)) {
      const items = itemPlans(nodes)
      for (let i = v.length - 1; i >= 0; i--) {
        const x = v[i]
        if (x !== null && typeof x === 'object') stack.push([x, items, { up: where, token: i }])
      }
      continue
    }
    const obj = v as Record<string, unknown>
    const keys = Object.keys(obj)
    let next: Frame[] | undefined
    for (const k of keys) {
      const infos = nodes.length === 0 ? NO_INFO : propsOf(nodes, k)
      let reason: RequestViolation['reason'] | undefined
      const lists = reserved ? rules.reserved.get(normalizeName(k)) : undefined
      if (lists && (lists.some((l) => l.length === 0) || !allowed(lists, rules.roles))) reason = 'reserved'
      for (const i of infos) {
        if (reason) break
        if (i.readOnly) reason = 'readOnly'
        else if (!allowed(i.roles, rules.roles)) reason = 'role'
      }
      if (reason) {
        out.push({ pointer: pointerOf(where, k), reason })
        if (out.length >= max) break
        continue
      }
      const child = obj[k]
      if (child === null || typeof child !== 'object') continue
      const frame: Frame = [child, childPlans(nodes, infos), { up: where, token: k }]
      if (next === undefined) next = [frame]
      else next.push(frame)
    }
    // Depth first, in document order.
    if (next !== undefined) for (let i = next.length - 1; i >= 0; i--) stack.push(next[i] as Frame)
  }
  return out
}
