/**
 * Where offsets fall in a JSON text, as JSON pointers (RFC 6901): one linear pass of a small
 * tokenizer that tracks the path of containers and keys. An offset outside any value (or in text
 * that is not JSON) gets no pointer.
 */

function escapeToken(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1')
}

/** For each offset (sorted ascending), the pointer of the string or value holding it. */
export function pointersAt(text: string, offsets: readonly number[]): (string | undefined)[] {
  const out: (string | undefined)[] = offsets.map(() => undefined)
  if (offsets.length === 0) return out
  // Stack of containers: for objects the current key, for arrays the current index.
  const stack: { array: boolean; key: string; index: number }[] = []
  let next = 0
  let expectKey = false
  const path = () => stack.map((f) => `/${f.array ? String(f.index) : escapeToken(f.key)}`).join('')
  let i = 0
  const n = text.length
  const last = offsets[offsets.length - 1] as number
  while (i < n && i <= last) {
    const c = text.charCodeAt(i)
    if (c === 0x22 /* " */) {
      const start = i
      i++
      let raw = ''
      let seg = i
      while (i < n) {
        const d = text.charCodeAt(i)
        if (d === 0x5c) {
          raw += text.slice(seg, i)
          raw += text.slice(i, i + 2)
          i += 2
          seg = i
          continue
        }
        if (d === 0x22) break
        i++
      }
      raw += text.slice(seg, i)
      const end = i
      i++
      const top = stack[stack.length - 1]
      if (expectKey && top && !top.array) {
        let key = raw
        try {
          key = JSON.parse(`"${raw}"`) as string
        } catch {
          // keep raw
        }
        top.key = key
        expectKey = false
        continue
      }
      while (next < offsets.length && (offsets[next] as number) <= end) {
        if ((offsets[next] as number) >= start) out[next] = path()
        next++
      }
      continue
    }
    if (c === 0x7b /* { */) {
      stack.push({ array: false, key: '', index: 0 })
      expectKey = true
    } else if (c === 0x5b /* [ */) {
      stack.push({ array: true, key: '', index: 0 })
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop()
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1]
      if (top?.array) top.index++
      else if (top) expectKey = true
    } else if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09 && c !== 0x3a) {
      // a number or literal: offsets inside it belong to the current path
      while (next < offsets.length && (offsets[next] as number) <= i) {
        if ((offsets[next] as number) === i) out[next] = path()
        next++
      }
    }
    while (next < offsets.length && (offsets[next] as number) < i) next++
    i++
  }
  return out
}
