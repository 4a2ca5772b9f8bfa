/**
 * The canonical form of an audit record: RFC 8785 (JSON Canonicalization Scheme) for the values
 * records hold. Object members sorted by their names' UTF-16 code units, no whitespace, strings and
 * numbers serialized as ECMAScript's JSON.stringify does (which is what RFC 8785 specifies), members
 * whose value is `undefined` left out. Hashes and MACs are computed over these bytes (UTF-8), and
 * the writer writes exactly these bytes, so `audit verify` can also refuse a line that was
 * re-serialized (re-ordered members, added whitespace, a duplicated member).
 */

/** Deepest nesting accepted: records are shallow; a deeper value is a bug or hostile input. */
export const MAX_DEPTH = 16

export class CanonicalError extends Error {
  override name = 'CanonicalError'
}

/** What JSON.stringify escapes in a string (or may: any surrogate goes the slow way). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

/** A string as JSON.stringify (and so RFC 8785) writes it; the common case skips JSON.stringify. */
export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`
}

function value(v: unknown, depth: number): string {
  switch (typeof v) {
    case 'string':
      return jsonString(v)
    case 'number':
      if (!Number.isFinite(v)) throw new CanonicalError('a number is not finite')
      return JSON.stringify(v)
    case 'boolean':
      return v ? 'true' : 'false'
    case 'object': {
      if (v === null) return 'null'
      if (depth >= MAX_DEPTH) throw new CanonicalError(`nested deeper than ${MAX_DEPTH} levels`)
      if (Array.isArray(v)) {
        let out = '['
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out += ','
          const x = v[i]
          // As JSON.stringify: an undefined array element is null.
          out += x === undefined ? 'null' : value(x, depth + 1)
        }
        return `${out}]`
      }
      const proto = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) throw new CanonicalError('not a plain object')
      return `{${members(v as Record<string, unknown>, depth + 1).parts.join(',')}}`
    }
    default:
      throw new CanonicalError(`a ${typeof v} cannot be serialized`)
  }
}

/** An object's members in canonical order: their names, and each as a `"name":value` string. */
export interface Members {
  names: string[]
  parts: string[]
}

/**
 * The members of an object in canonical order (names sorted by UTF-16 code units, JavaScript's
 * default string order). Members whose value is undefined are left out.
 */
export function members(o: Record<string, unknown>, depth = 0): Members {
  const keys = Object.keys(o).sort()
  const names: string[] = []
  const parts: string[] = []
  for (const k of keys) {
    const x = o[k]
    if (x === undefined) continue
    names.push(k)
    parts.push(`${jsonString(k)}:${value(x, depth)}`)
  }
  return { names, parts }
}

/**
 * The canonical JSON text of a value (RFC 8785).
 *
 * @example
 * canonicalize({ b: 1, a: [true, null, 'x'] }) // '{"a":[true,null,"x"],"b":1}'
 */
export function canonicalize(v: unknown): string {
  return value(v, 0)
}

/** The canonical text of a value that is a member of a top-level object (nesting counted from 1). */
export function canonicalMember(v: unknown): string {
  return value(v, 1)
}

/** The canonical text of an object from its {@link members}. */
export function joinMembers(m: Members): string {
  return `{${m.parts.join(',')}}`
}

/**
 * The canonical text of the object with one more string member, put at its sorted place. Used to
 * add the `mac` to a record without serializing it twice. The name must not be a member already.
 */
export function withStringMember(m: Members, name: string, v: string): string {
  let i = 0
  while (i < m.names.length && (m.names[i] as string) < name) i++
  if (m.names[i] === name) throw new CanonicalError(`"${name}" is already a member`)
  const parts = m.parts.slice()
  parts.splice(i, 0, `${JSON.stringify(name)}:${JSON.stringify(v)}`)
  return `{${parts.join(',')}}`
}
