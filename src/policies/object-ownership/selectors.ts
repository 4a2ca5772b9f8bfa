import type { Params } from '../../gateway/query.js'
/**
 * Where object ids are in a request (path parameters, query, headers, JSON body) and JSON pointers
 * with `*` wildcards over arrays. Everything is compiled once; extraction is bounded by `maxIds`.
 */

/** Thrown when a request holds ids in a form the policy refuses to guess at (fail closed → 400). */
export class IdSelectorError extends Error {
  override readonly name = 'IdSelectorError'
}

/** Thrown when a request addresses more ids than allowed. */
export class TooManyIdsError extends Error {
  override readonly name = 'TooManyIdsError'
}

export type CompiledSelector =
  | { source: 'path'; name: string; split: string | undefined; label: string }
  | { source: 'query'; name: string; split: string | undefined; label: string }
  | { source: 'header'; name: string; split: string | undefined; label: string }
  | { source: 'body'; pointer: PointerToken[]; split: string | undefined; label: string }

/** A JSON pointer token; `WILDCARD` walks every element of an array. */
export type PointerToken = string | typeof WILDCARD
export const WILDCARD: unique symbol = Symbol('*')

/** Parses an RFC 6901 pointer (`''` is the whole document); a `*` token is a wildcard when `wildcards`. */
export function parsePointer(pointer: string, wildcards: boolean): PointerToken[] {
  if (pointer === '') return []
  if (!pointer.startsWith('/')) throw new Error(`"${pointer}" is not a JSON pointer (it must start with /)`)
  return pointer
    .slice(1)
    .split('/')
    .map((t) => (wildcards && t === '*' ? WILDCARD : t.replaceAll('~1', '/').replaceAll('~0', '~')))
}

/** The value at a pointer without wildcards, or undefined. Own properties only. */
export function getPointer(doc: unknown, tokens: readonly PointerToken[]): unknown {
  let cur = doc
  for (const t of tokens) {
    if (t === WILDCARD) return undefined
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]{0,8})$/.test(t)) return undefined
      cur = cur[Number(t)]
    } else if (cur !== null && typeof cur === 'object') {
      if (!Object.hasOwn(cur, t)) return undefined
      cur = (cur as Record<string, unknown>)[t]
    } else return undefined
  }
  return cur
}

export function compileSelector(s: string | { from: string; split?: string }): CompiledSelector {
  const from = typeof s === 'string' ? s : s.from
  const split = typeof s === 'string' ? undefined : s.split
  const dot = from.indexOf('.')
  const source = from.slice(0, dot)
  const rest = from.slice(dot + 1)
  if (rest === '' && source !== 'body') throw new Error(`"${from}": give a name after the dot`)
  switch (source) {
    case 'path':
    case 'query':
      return { source, name: rest, split, label: from }
    case 'header':
      return { source, name: rest.toLowerCase(), split, label: from }
    case 'body':
      return { source, pointer: parsePointer(rest, true), split, label: from }
    default:
      throw new Error(`"${from}": the source must be path, query, header or body`)
  }
}

/** What extraction reads; the body is parsed once by the caller, only when a selector needs it. */
export interface IdSources {
  params: Readonly<Record<string, string>>
  /** Raw query string ('' when none). */
  query: string
  headers: Readonly<Record<string, string | string[] | undefined>>
  body: unknown
}

/**
 * Adds the ids `sel` finds to `out`. Numbers become their JavaScript string form (`2`, and `2.0`
 * too, is "2"); null, absent values and empty strings are skipped; an object where an id is
 * expected, or an array under a pointer without `*`, holding anything but scalars, is an error.
 */
export function extractIds(
  sel: CompiledSelector,
  src: IdSources,
  out: Set<string>,
  max: number,
  query: () => Params,
): void {
  const add = (raw: string) => {
    const parts = sel.split === undefined ? [raw] : raw.split(sel.split)
    for (const p of parts) {
      if (p === '') continue
      out.add(p)
      if (out.size > max) throw new TooManyIdsError(`more than ${max} object ids`)
    }
  }
  switch (sel.source) {
    case 'path': {
      const v = src.params[sel.name]
      if (v !== undefined) add(v)
      return
    }
    case 'query': {
      if (src.query === '') return
      // Every occurrence: `?id=1&id=2` is two ids whichever one the upstream reads; another
      // spelling (`ID`, `id[]`, `x=1;id=2`) is refused by the parser (src/gateway/query.ts).
      for (const v of query().values(sel.name)) add(v)
      return
    }
    case 'header': {
      const v = src.headers[sel.name]
      if (v === undefined) return
      for (const x of Array.isArray(v) ? v : [v]) add(x)
      return
    }
    case 'body': {
      const visit = (v: unknown, depth: number): void => {
        if (v === undefined || v === null) return
        if (typeof v === 'string') add(v)
        else if (typeof v === 'number' || typeof v === 'boolean') add(String(v))
        else if (Array.isArray(v) && depth === 0) for (const x of v) visit(x, 1)
        else throw new IdSelectorError(`${sel.label}: an id must be a string or a number`)
      }
      walk(src.body, sel.pointer, 0, (v) => visit(v, 0), max)
      return
    }
  }
}

/** Calls `found` for every value the (wildcard) pointer reaches. Bounded: at most `max` values. */
function walk(
  cur: unknown,
  tokens: readonly PointerToken[],
  i: number,
  found: (v: unknown) => void,
  max: number,
): void {
  if (i === tokens.length) {
    found(cur)
    return
  }
  const t = tokens[i] as PointerToken
  if (t === WILDCARD) {
    if (!Array.isArray(cur)) return
    if (cur.length > max) throw new TooManyIdsError(`more than ${max} object ids`)
    for (const x of cur) walk(x, tokens, i + 1, found, max)
    return
  }
  if (Array.isArray(cur)) {
    if (!/^(0|[1-9][0-9]{0,8})$/.test(t)) return
    walk(cur[Number(t)], tokens, i + 1, found, max)
  } else if (cur !== null && typeof cur === 'object') {
    // Members whose name equals the token in any case: `{"AccountId": 2}` is read as `accountId`
    // by case-insensitive binders (ASP.NET, Jackson with ACCEPT_CASE_INSENSITIVE_PROPERTIES).
    const lower = t.toLowerCase()
    for (const k of Object.keys(cur))
      if (k === t || k.toLowerCase() === lower)
        walk((cur as Record<string, unknown>)[k], tokens, i + 1, found, max)
  }
}

/** The id of a created object from its Location header: the last path segment, percent-decoded. */
export function idFromLocation(location: string | string[] | number | undefined): string | undefined {
  if (typeof location !== 'string' || location === '') return undefined
  let path: string
  try {
    path = new URL(location, 'http://x').pathname
  } catch {
    return undefined
  }
  const segs = path.split('/')
  let last = segs.pop()
  if (last === '') last = segs.pop()
  if (last === undefined || last === '') return undefined
  try {
    return decodeURIComponent(last)
  } catch {
    return undefined
  }
}

/** An id value found in a response (a string or a finite number), as a string. */
export function idString(v: unknown): string | undefined {
  if (typeof v === 'string') return v === '' ? undefined : v
  if (typeof v === 'number' && Number.isFinite(v)) return String(v)
  return undefined
}
