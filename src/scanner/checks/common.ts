/** Helpers shared by the checks: operation labels, proof of ownership, write bodies. */
import type { Operation } from '../../openapi/index.js'
import { idKeys, idOf, listItems, unwrap } from '../resources.js'
import { generateValue, isObject, requestBody } from '../schema-tools.js'
import type { Check, Finding, ScanContext, ScanResponse } from '../types.js'

export function opRef(op: Operation): NonNullable<Finding['operation']> {
  return { method: op.method, path: op.path, ...(op.operationId ? { operationId: op.operationId } : {}) }
}

export function ok(res: ScanResponse): boolean {
  return res.status >= 200 && res.status < 300
}

export function baseFinding(
  check: Check,
  op: Operation | undefined,
): Pick<Finding, 'checkId' | 'title' | 'severity' | 'owasp'> & { operation?: Finding['operation'] } {
  return {
    checkId: check.id,
    title: check.title,
    severity: check.severity,
    owasp: check.owasp,
    ...(op ? { operation: opRef(op) } : {}),
  }
}

function sameScalar(a: unknown, b: unknown): boolean {
  if (a === null || b === null) return false
  if (typeof a === 'object' || typeof b === 'object') return false
  return a === b && a !== '' && a !== false && a !== 0
}

/** Fields whose value changes by itself (times, versions, request ids): never proof. */
const VOLATILE =
  /(^|_)(at|time|timestamp|date|updated|modified|created|etag|version|requestid|traceid|expires?)$|At$|Time$|Date$/i

/**
 * Whether `body` is (or, for a list, contains) the owner's object `id`, shown by the same id and
 * at least one owner-specific field: equal to the owner's view (`ref`) and different from the
 * attacker's own object of that type (`contrast`) when that is known. An object that merely holds
 * arrays (`{id, items: [...]}`) is an object, not a list. Returns the field names, or undefined.
 */
export function proveOwnerObject(
  body: unknown,
  id: string,
  type: string,
  ref: unknown,
  contrast: unknown,
  param?: string,
): string[] | undefined {
  const whole = unwrap(body)
  const candidates = idOf(whole, type, param) !== undefined ? [whole] : (listItems(whole, type) ?? [whole])
  const target = candidates.map(unwrap).find((c) => idOf(c, type, param) === id)
  const r = unwrap(ref)
  if (!isObject(target) || !isObject(r)) return undefined
  if (idOf(r, type, param) !== undefined && idOf(r, type, param) !== id) return undefined
  const c = unwrap(contrast)
  const ids = new Set(idKeys(type, param))
  const fields: string[] = []
  for (const [k, v] of Object.entries(r)) {
    if (ids.has(k) || VOLATILE.test(k)) continue
    if (!sameScalar(target[k], v)) continue
    if (isObject(c) && c[k] === v) continue
    fields.push(k)
  }
  return fields.length > 0 ? fields : undefined
}

function itemKey(item: unknown, type: string): string {
  const u = unwrap(item)
  return idOf(u, type) ?? JSON.stringify(u)
}

/**
 * Proof that an attacker's answer is the owner's data: the attacker got what the owner gets for
 * the same request (`owner`), and it is not what the attacker gets for their own (`contrast`).
 * For lists: items (by id) the owner gets and the attacker's own request does not. For objects:
 * the same id and owner-specific fields (proveOwnerObject). Returns a sentence, or undefined.
 */
export function sameAsOwner(
  attacker: unknown,
  owner: unknown,
  contrast: unknown,
  type: string,
  ownerName?: string,
  param?: string,
): string | undefined {
  const a = unwrap(attacker)
  const o = unwrap(owner)
  const c = unwrap(contrast)
  const oList = idOf(o, type, param) === undefined ? listItems(o, type) : undefined
  if (oList) {
    const aList = listItems(a, type) ?? []
    const mine = new Set((listItems(c, type) ?? []).map((x) => itemKey(x, type)))
    const theirs = new Set(oList.map((x) => itemKey(x, type)))
    const shared = [...new Set(aList.map((x) => itemKey(x, type)))].filter(
      (k) => theirs.has(k) && !mine.has(k),
    )
    if (shared.length === 0) return undefined
    const shown = shared.slice(0, 3).map((k) => (k.length > 40 ? `${k.slice(0, 40)}…` : k))
    return `${shared.length} item(s) the owner's own request lists (${shown.join(', ')}), none of them in the caller's own list`
  }
  const id = idOf(o, type, param)
  if (id === undefined) return undefined
  const fields = proveOwnerObject(a, id, type, o, c, param)
  if (!fields) return undefined
  if (!isObject(c)) {
    // No contrast: only owner-marked values (the scanner's personalised fields) count.
    const marked =
      ownerName &&
      isObject(o) &&
      fields.some((f) => typeof o[f] === 'string' && String(o[f]).includes(ownerName))
    if (!marked) return undefined
  }
  return `the owner's object (same id ${id}, same ${fields.slice(0, 4).join(', ')})`
}

/**
 * A body for a write to an existing object that changes nothing: the request schema's example or
 * generated value, with every property the object already has set to the object's current value.
 * `only` keeps the properties the object has (for PATCH).
 */
export function noOpWriteBody(ctx: ScanContext, op: Operation, current: unknown, only = false): unknown {
  const shape = requestBody(ctx.spec, op)
  if (!shape) return undefined
  const base = shape.example ?? generateValue(shape.schema)
  if (!isObject(base)) return base
  const cur = unwrap(current)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(base)) {
    if (isObject(cur) && Object.hasOwn(cur, k) && typeof cur[k] === typeof v) out[k] = cur[k]
    else if (!only) out[k] = v
  }
  if (only && Object.keys(out).length === 0) return undefined
  return out
}

export function describeIds(list: string[]): string {
  return list.slice(0, 4).join(', ')
}
