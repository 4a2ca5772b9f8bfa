/** Helpers shared by the checks: operation labels, proof of ownership, write bodies. */
import type { Operation } from '../../openapi/index.js'
import { idKeys, idOf, listItems } from '../resources.js'
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

/**
 * Whether `body` is (or, for a list, contains) the owner's object `id`, shown by the same id and
 * at least one owner-specific field: equal to the owner's view (`ref`) and different from the
 * attacker's own object of that type (`contrast`) when that is known. Returns the field names
 * that prove it, or undefined.
 */
export function proveOwnerObject(
  body: unknown,
  id: string,
  type: string,
  ref: unknown,
  contrast: unknown,
): string[] | undefined {
  const candidates = listItems(body) ?? [body]
  const target = candidates.find((c) => idOf(c, type) === id)
  if (!isObject(target) || !isObject(ref)) return undefined
  if (idOf(ref, type) !== undefined && idOf(ref, type) !== id) return undefined
  const ids = new Set(idKeys(type))
  const fields: string[] = []
  for (const [k, v] of Object.entries(ref)) {
    if (ids.has(k)) continue
    if (!sameScalar(target[k], v)) continue
    if (isObject(contrast) && contrast[k] === v) continue
    fields.push(k)
  }
  return fields.length > 0 ? fields : undefined
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
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(base)) {
    if (isObject(current) && Object.hasOwn(current, k) && typeof current[k] === typeof v) out[k] = current[k]
    else if (!only) out[k] = v
  }
  if (only && Object.keys(out).length === 0) return undefined
  return out
}

export function describeIds(list: string[]): string {
  return list.slice(0, 4).join(', ')
}
