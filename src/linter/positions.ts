/**
 * JSON pointer → line and column in the file as written, for findings (text output, SARIF
 * `region`). JSON files are scanned once by a small tokenizer that records the offset of every
 * requested pointer (a 13 MB spec in a fraction of a second); YAML files are parsed with
 * positions by the `yaml` library. A pointer points at its member's key when it has one (the
 * line that says `password:`), else at its value. Unknown pointers fall back to their nearest
 * known ancestor, so a location is never lost.
 */
import { readFileSync } from 'node:fs'
import { isMap, isScalar, isSeq, type Node, parseDocument } from 'yaml'

export interface Position {
  line: number
  column: number
}

/** Positions of many pointers in one file. */
export function locatePointers(
  file: string,
  pointers: Iterable<string>,
  text?: string,
): Map<string, Position> {
  const src = text ?? readFileSync(file, 'utf8')
  const wanted = new Set<string>()
  for (const p of pointers) {
    // Every ancestor too: the fallback for a pointer that is not in the file.
    let cur = p
    for (;;) {
      if (wanted.has(cur)) break
      wanted.add(cur)
      if (cur === '') break
      cur = cur.slice(0, cur.lastIndexOf('/'))
    }
  }
  const offsets = /^\s*[[{]/.test(src.slice(0, 256)) ? jsonOffsets(src, wanted) : undefined
  const found = offsets ?? yamlOffsets(src, wanted)
  const lines = lineStarts(src)
  const out = new Map<string, Position>()
  for (const p of wanted) {
    let cur = p
    let off = found.get(cur)
    while (off === undefined && cur !== '') {
      cur = cur.slice(0, cur.lastIndexOf('/'))
      off = found.get(cur)
    }
    out.set(p, toPosition(lines, off ?? 0))
  }
  return out
}

function lineStarts(text: string): number[] {
  const out = [0]
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) out.push(i + 1)
  return out
}

function toPosition(lines: number[], offset: number): Position {
  let lo = 0
  let hi = lines.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if ((lines[mid] as number) <= offset) lo = mid
    else hi = mid - 1
  }
  return { line: lo + 1, column: offset - (lines[lo] as number) + 1 }
}

function esc(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1')
}

/**
 * One pass over JSON text; records the offset of the key (or array element) of every wanted
 * pointer. Undefined when the text is not JSON the scanner can follow.
 */
function jsonOffsets(text: string, wanted: Set<string>): Map<string, number> | undefined {
  const out = new Map<string, number>()
  // Stack of containers: for objects, the pointer of the container and the current key;
  // for arrays, the pointer and the current index.
  const stack: { pointer: string; isArray: boolean; index: number }[] = []
  const n = text.length
  let i = 0
  let pendingKey: { pointer: string; offset: number } | undefined
  const valueStart = (offset: number): string | undefined => {
    // The pointer of the value that starts at `offset`.
    const top = stack[stack.length - 1]
    if (top === undefined) return ''
    if (top.isArray) {
      const p = `${top.pointer}/${top.index}`
      if (wanted.has(p)) out.set(p, offset)
      return p
    }
    const k = pendingKey
    pendingKey = undefined
    if (k === undefined) return undefined
    if (wanted.has(k.pointer)) out.set(k.pointer, k.offset)
    return k.pointer
  }
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x2c || c === 0x3a) {
      i++
      continue
    }
    if (c === 0x7b || c === 0x5b) {
      const p = valueStart(i)
      if (p === undefined) return undefined
      if (p === '' && wanted.has('')) out.set('', i)
      if (!wanted.has(p)) {
        // No wanted pointer lies below (ancestors of every wanted pointer are wanted): skip it.
        const end = skipContainer(text, i)
        if (end < 0) return undefined
        i = end
        const top = stack[stack.length - 1]
        if (top?.isArray) top.index++
        continue
      }
      stack.push({ pointer: p, isArray: c === 0x5b, index: 0 })
      i++
      continue
    }
    if (c === 0x7d || c === 0x5d) {
      stack.pop()
      const top = stack[stack.length - 1]
      if (top?.isArray) top.index++
      i++
      continue
    }
    if (c === 0x22) {
      // a string: a key (in an object, with no pending key) or a value
      const start = i
      i++
      let hasEscape = false
      while (i < n) {
        const d = text.charCodeAt(i)
        if (d === 0x5c) {
          hasEscape = true
          i += 2
          continue
        }
        if (d === 0x22) break
        i++
      }
      i++
      const top = stack[stack.length - 1]
      if (top !== undefined && !top.isArray && pendingKey === undefined) {
        const raw = text.slice(start + 1, i - 1)
        let key = raw
        if (hasEscape) {
          try {
            key = JSON.parse(`"${raw}"`) as string
          } catch {
            return undefined
          }
        }
        pendingKey = { pointer: `${top.pointer}/${esc(key)}`, offset: start }
        continue
      }
      if (valueStart(start) === undefined) return undefined
      if (top?.isArray) top.index++
      continue
    }
    // a literal: number, true, false, null
    const start = i
    while (i < n) {
      const d = text.charCodeAt(i)
      if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09)
        break
      i++
    }
    if (valueStart(start) === undefined) return undefined
    const top = stack[stack.length - 1]
    if (top?.isArray) top.index++
  }
  return out
}

/** The offset just after the object or array that starts at `start`, or -1. */
function skipContainer(text: string, start: number): number {
  let depth = 0
  const n = text.length
  for (let i = start; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      i++
      while (i < n) {
        const d = text.charCodeAt(i)
        if (d === 0x5c) i += 2
        else if (d === 0x22) break
        else i++
      }
    } else if (c === 0x7b || c === 0x5b) depth++
    else if (c === 0x7d || c === 0x5d) {
      depth--
      if (depth === 0) return i + 1
    }
  }
  return -1
}

function yamlOffsets(text: string, wanted: Set<string>): Map<string, number> {
  const out = new Map<string, number>()
  let doc: ReturnType<typeof parseDocument>
  try {
    doc = parseDocument(text, { uniqueKeys: false, merge: false, prettyErrors: false })
  } catch {
    return out
  }
  const visit = (
    node: Node | null | undefined,
    pointer: string,
    keyOffset: number | undefined,
    depth: number,
  ) => {
    if (depth > 300 || node === null || node === undefined) return
    if (wanted.has(pointer)) out.set(pointer, keyOffset ?? node.range?.[0] ?? 0)
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
        const p = `${pointer}/${esc(key)}`
        if (!wanted.has(p)) continue
        const kOff = isScalar(pair.key) ? pair.key.range?.[0] : undefined
        visit(pair.value as Node | null, p, kOff, depth + 1)
        if (!out.has(p) && kOff !== undefined) out.set(p, kOff)
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, idx) => {
        const p = `${pointer}/${idx}`
        if (wanted.has(p)) visit(item as Node, p, undefined, depth + 1)
      })
    }
  }
  visit(doc.contents as Node | null, '', undefined, 0)
  return out
}
