/**
 * Messages for config problems: paths (`routes[0].upstream`), values described without ever
 * showing a secret, and ajv's schema errors turned into one readable message per problem.
 */
import type { TSchema } from '@sinclair/typebox'
import type { ErrorObject } from 'ajv'
import { durationStem, durationUnitOf } from './durations.js'

export type Seg = string | number

/** A problem at a path of the document, before it is located (line, column) and scrubbed. */
export type Problem = {
  segs: Seg[]
  message: string
  /** Locate the key of the last segment rather than its value (unknown fields). */
  atKey?: boolean
  /** The path this problem is about when it differs from `segs` (a missing required field). */
  covers?: Seg[]
}

export function formatPath(segs: readonly Seg[]): string {
  let out = ''
  for (const s of segs) {
    if (typeof s === 'number') out += `[${s}]`
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(s)) out += out === '' ? s : `.${s}`
    else out += `[${JSON.stringify(s)}]`
  }
  return out
}

export function pointerToSegs(pointer: string, data: unknown): Seg[] {
  if (pointer === '') return []
  const segs: Seg[] = []
  let cur: unknown = data
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(cur)) {
      const n = Number(key)
      segs.push(n)
      cur = cur[n]
    } else {
      segs.push(key)
      cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[key] : undefined
    }
  }
  return segs
}

export function valueAt(data: unknown, segs: readonly Seg[]): unknown {
  let cur = data
  for (const s of segs) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string | number, unknown>)[s]
  }
  return cur
}

export function describe(value: unknown, secret: boolean): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return `a list of ${value.length}`
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') {
    if (secret) return 'a string (secret, not shown)'
    return value.length > 40 ? `string "${value.slice(0, 40)}…"` : `string "${value}"`
  }
  return `${typeof value} ${String(value)}`
}

/** Turns ajv's errors into one readable message per problem, choosing the best anyOf branch. */
export function ajvProblems(
  errors: ErrorObject[],
  data: unknown,
  secretPaths: ReadonlySet<string>,
): Problem[] {
  const out: Problem[] = []
  const anyOfPaths = new Map<string, ErrorObject>()
  for (const e of errors) if (e.keyword === 'anyOf') anyOfPaths.set(e.schemaPath, e)
  const consumed = new Set<ErrorObject>()
  for (const [schemaPath, e] of anyOfPaths) {
    const branches = errors.filter((x) => x !== e && x.schemaPath.startsWith(`${schemaPath}/`))
    const deep = branches.filter((x) => x.instancePath !== e.instancePath)
    const shallow = branches.filter((x) => x.instancePath === e.instancePath)
    if (deep.length > 0) {
      // The value has the shape of one branch and fails inside it: report that branch only.
      for (const s of shallow) consumed.add(s)
      consumed.add(e)
    } else {
      // One description per branch: its const if it has one (a literal `false` is also
      // `type: boolean`), else its type, else the first constraint it failed.
      const byBranch = new Map<string, ErrorObject[]>()
      for (const s of shallow) {
        const branch = s.schemaPath.slice(schemaPath.length + 1).split('/')[0] ?? ''
        byBranch.set(branch, [...(byBranch.get(branch) ?? []), s])
        consumed.add(s)
      }
      const allowed: string[] = []
      for (const errs of byBranch.values()) {
        const c = errs.find((x) => x.keyword === 'const')
        const t = errs.find((x) => x.keyword === 'type')
        if (c) allowed.push(JSON.stringify((c.params as { allowedValue: unknown }).allowedValue))
        else if (t) allowed.push(`a ${(t.params as { type: string }).type}`)
        else if (errs[0]) allowed.push(`a value that ${errs[0].message ?? 'is valid'}`)
      }
      consumed.add(e)
      const segs = pointerToSegs(e.instancePath, data)
      out.push({
        segs,
        message: `expected ${[...new Set(allowed)].join(' or ')}, found ${describe(valueAt(data, segs), secretPaths.has(formatPath(segs)))}`,
      })
    }
  }
  for (const e of errors) {
    if (consumed.has(e)) continue
    // The `if` of a policy entry (`enabled: false` needs no required field) only restates the
    // `required` errors of its `else` branch, which are reported.
    if (e.keyword === 'if') continue
    const segs = pointerToSegs(e.instancePath, data)
    const found = describe(valueAt(data, segs), secretPaths.has(formatPath(segs)))
    let message: string
    switch (e.keyword) {
      case 'required': {
        const prop = (e.params as { missingProperty: string }).missingProperty
        out.push({ segs, message: `missing required field "${prop}"`, covers: [...segs, prop] })
        continue
      }
      case 'additionalProperties': {
        const prop = (e.params as { additionalProperty: string }).additionalProperty
        const props =
          (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {}
        // a duration field as a config file writes it (`timeout`, not the old `timeoutMs`)
        const known = Object.keys(props).map((k) =>
          durationUnitOf(k, props[k] as TSchema) !== undefined ? durationStem(k) : k,
        )
        // Reported at the unknown key itself, not at the start of the enclosing mapping.
        out.push({
          segs: [...segs, prop],
          atKey: true,
          message: `unknown field "${prop}"${known.length ? ` (expected one of: ${known.join(', ')})` : ''}`,
        })
        continue
      }
      case 'type':
        message = `expected ${(e.params as { type: string }).type}, found ${found}`
        break
      case 'pattern':
        message = `expected a value matching ${(e.params as { pattern: string }).pattern}, found ${found}`
        break
      default:
        message = `expected a value that ${e.message ?? 'is valid'}, found ${found}`
    }
    out.push({ segs, message })
  }
  return out
}
