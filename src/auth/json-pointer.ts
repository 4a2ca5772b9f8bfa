/**
 * RFC 6901 JSON Pointers into a parsed JSON document (an authorization server's answer):
 * compiled once at config time, evaluated per verified token. Only own members are followed
 * (never `__proto__` or anything inherited); array elements by decimal index.
 */

/** A JSON Pointer: '' (the whole document) or '/'-separated reference tokens, `~0` and `~1` escapes only. */
export const JSON_POINTER_PATTERN = '^(/([^~/]|~[01])*)*$'

/** The unescaped reference tokens of a pointer; throws for a string that is not a pointer. */
export function pointerTokens(pointer: string): string[] {
  if (pointer === '') return []
  if (!new RegExp(JSON_POINTER_PATTERN).test(pointer)) throw new Error(`not a JSON Pointer: ${pointer}`)
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'))
}

const ARRAY_INDEX = /^(0|[1-9][0-9]{0,8})$/

/** A getter for a pointer: the value it reaches, or undefined. */
export function compilePointer(pointer: string): (doc: unknown) => unknown {
  const tokens = pointerTokens(pointer)
  return (doc) => {
    let cur = doc
    for (const t of tokens) {
      if (Array.isArray(cur)) {
        if (!ARRAY_INDEX.test(t)) return undefined
        const i = Number(t)
        if (i >= cur.length) return undefined
        cur = cur[i]
      } else if (cur !== null && typeof cur === 'object') {
        if (!Object.hasOwn(cur, t)) return undefined
        cur = (cur as Record<string, unknown>)[t]
      } else return undefined
    }
    return cur
  }
}
