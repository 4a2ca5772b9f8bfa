/**
 * A JSON parser with limits, for request bodies a client controls. Unlike JSON.parse it refuses:
 * nesting deeper than `maxDepth`, objects with more than `maxKeys` members, arrays longer than
 * `maxArrayLength`, strings longer than `maxStringLength` (UTF-16 units, keys included), more than
 * `maxTotalValues` values overall, duplicate keys, the keys `__proto__`, `constructor` and
 * `prototype` (prototype pollution in whatever the upstream does with the object), U+0000 in
 * strings (unless allowed), numbers that overflow to Infinity, and a byte order mark.
 * Iterative (an explicit stack), so hostile nesting cannot overflow the call stack.
 */

export interface JsonLimits {
  maxDepth: number
  maxKeys: number
  maxArrayLength: number
  maxStringLength: number
  maxTotalValues: number
  allowNul: boolean
}

export const DEFAULT_JSON_LIMITS: JsonLimits = {
  maxDepth: 64,
  maxKeys: 1000,
  maxArrayLength: 10000,
  maxStringLength: 1_000_000,
  maxTotalValues: 1_000_000,
  allowNul: false,
}

export class JsonGuardError extends Error {
  constructor(
    message: string,
    /** Character offset in the text. */
    readonly offset: number,
    /** JSON pointer of the value being read, as far as known. */
    readonly pointer: string,
  ) {
    super(message)
    this.name = 'JsonGuardError'
  }
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
const SPECIAL = /[\u0000-\u001f"\\]/g

interface Frame {
  container: Record<string, unknown> | unknown[]
  isArray: boolean
  key: string
  keys: Set<string> | undefined
  count: number
}

/**
 * Parses `text` within `limits`; throws JsonGuardError.
 *
 * Two ways, one answer. First V8's JSON.parse, then a check of its value against every rule of
 * the guarded reader below: the limits, forbidden and NUL-bearing names and strings, finite
 * numbers, and no repeated member name (JSON.parse keeps the last of them silently; the colons
 * of the text must be those of the value: see colonsWithin). Anything
 * that fails there, or a text JSON.parse refuses, is read again by the guarded reader, which
 * gives the error with its offset and pointer. So the value returned, and the error thrown, are
 * the guarded reader's (a fuzz test compares the two on random and mutated texts); the common
 * case, a body within its limits, costs one native parse and one walk (a third of the reader's
 * time on a 1 KB body).
 *
 * @example
 * parseJsonGuarded('{"a":[1,2]}', DEFAULT_JSON_LIMITS) // → { a: [1, 2] }
 */
export function parseJsonGuarded(text: string, limits: JsonLimits = DEFAULT_JSON_LIMITS): unknown {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return readJsonGuarded(text, limits)
  }
  // A colon escaped as \u003a would count in a string's value and not in the text: such a text
  // takes the reader.
  if (text.includes('\\u003a') || text.includes('\\u003A')) return readJsonGuarded(text, limits)
  if (limits.maxDepth > 1000) return readJsonGuarded(text, limits)
  const colons = colonsWithin(value, 0, limits, { values: 0 })
  if (colons < 0 || colons !== colonsIn(text)) return readJsonGuarded(text, limits)
  return value
}

function colonsIn(s: string): number {
  let count = 0
  for (let i = s.indexOf(':'); i !== -1; i = s.indexOf(':', i + 1)) count++
  return count
}

/**
 * The colons a JSON text of `v` has when no member name repeats: one per member, plus those
 * inside its names and strings (the text writes a colon in a string as it is, unless as
 * \u003a, which parseJsonGuarded leaves to the reader). Repeated names make JSON.parse drop
 * members (and the strings of the values it overwrote), so their text has more colons than this
 * count: the counts are equal only without them. -1 when the value breaks a rule of the guarded
 * reader (a limit, a forbidden or NUL-bearing name, a NUL in a string, a number out of range).
 * Recursive: its depth is bounded by `limits.maxDepth` (parseJsonGuarded calls it up to 1,000).
 */
function colonsWithin(v: unknown, depth: number, limits: JsonLimits, seen: { values: number }): number {
  if (++seen.values > limits.maxTotalValues) return -1
  if (typeof v === 'string') {
    if (v.length > limits.maxStringLength || (!limits.allowNul && v.includes('\0'))) return -1
    return colonsIn(v)
  }
  if (typeof v === 'number') return Number.isFinite(v) ? 0 : -1
  if (v === null || typeof v !== 'object') return 0
  if (depth >= limits.maxDepth) return -1
  let colons = 0
  if (Array.isArray(v)) {
    if (v.length > limits.maxArrayLength) return -1
    for (let i = 0; i < v.length; i++) {
      const c = colonsWithin(v[i], depth + 1, limits, seen)
      if (c < 0) return -1
      colons += c
    }
    return colons
  }
  let keys = 0
  for (const k in v) {
    if (++keys > limits.maxKeys) return -1
    if (FORBIDDEN_KEYS.has(k) || k.length > limits.maxStringLength || (!limits.allowNul && k.includes('\0')))
      return -1
    const c = colonsWithin((v as Record<string, unknown>)[k], depth + 1, limits, seen)
    if (c < 0) return -1
    colons += 1 + colonsIn(k) + c
  }
  return colons
}

/**
 * The guarded reader: reads `text` within `limits`, failing at the first rule broken, with where.
 * parseJsonGuarded gives the same answers faster; this is its reference (and its fallback).
 */
export function readJsonGuarded(text: string, limits: JsonLimits): unknown {
  const n = text.length
  let i = 0
  let total = 0
  const stack: Frame[] = []
  const pointer = (): string =>
    stack
      .map((f) => `/${(f.isArray ? String(f.count) : f.key).replace(/~/g, '~0').replace(/\//g, '~1')}`)
      .join('')
  const fail = (msg: string): never => {
    throw new JsonGuardError(msg, i, pointer())
  }
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++
      else break
    }
  }
  const str = (): string => {
    // at the opening quote
    i++
    const start = i
    let out = ''
    let chunk = start
    for (;;) {
      // Jump to the next quote, backslash or control character (a native regex scan).
      SPECIAL.lastIndex = i
      const m = SPECIAL.exec(text)
      if (!m) {
        i = n
        fail('unterminated string')
      }
      i = (m as RegExpExecArray).index
      if (i - chunk + out.length > limits.maxStringLength)
        fail(`string longer than ${limits.maxStringLength}`)
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        out += text.slice(chunk, i)
        i++
        break
      }
      if (c < 0x20) fail(c === 0 ? 'NUL byte in a string' : 'control character in a string')
      if (c === 0x5c) {
        out += text.slice(chunk, i)
        const e = text.charCodeAt(i + 1)
        i += 2
        switch (e) {
          case 0x22:
            out += '"'
            break
          case 0x5c:
            out += '\\'
            break
          case 0x2f:
            out += '/'
            break
          case 0x62:
            out += '\b'
            break
          case 0x66:
            out += '\f'
            break
          case 0x6e:
            out += '\n'
            break
          case 0x72:
            out += '\r'
            break
          case 0x74:
            out += '\t'
            break
          case 0x75: {
            const hex = text.slice(i, i + 4)
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape')
            const code = Number.parseInt(hex, 16)
            if (code === 0 && !limits.allowNul) fail('NUL character in a string')
            out += String.fromCharCode(code)
            i += 4
            break
          }
          default:
            i--
            fail('invalid escape')
        }
        chunk = i
        if (out.length > limits.maxStringLength) fail(`string longer than ${limits.maxStringLength}`)
      }
    }
    return out
  }
  const NUM = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
  const num = (): number => {
    NUM.lastIndex = i
    const m = NUM.exec(text)
    if (!m || m[0] === '' || m[0] === '-') fail('invalid number')
    const s = (m as RegExpExecArray)[0]
    i += s.length
    const v = Number(s)
    if (!Number.isFinite(v)) fail('number out of range')
    return v
  }
  if (text.charCodeAt(0) === 0xfeff) fail('byte order mark')
  let result: unknown
  let haveResult = false
  ws()
  for (;;) {
    // Read one value (or open a container).
    let value: unknown
    let opened = false
    if (i >= n) fail('unexpected end of input')
    const c = text.charCodeAt(i)
    if (++total > limits.maxTotalValues) fail(`more than ${limits.maxTotalValues} values`)
    if (c === 0x7b || c === 0x5b) {
      if (stack.length >= limits.maxDepth) fail(`nested deeper than ${limits.maxDepth}`)
      const isArray = c === 0x5b
      i++
      ws()
      const frame: Frame = {
        container: isArray ? [] : {},
        isArray,
        key: '',
        keys: isArray ? undefined : new Set(),
        count: 0,
      }
      const close = isArray ? 0x5d : 0x7d
      if (text.charCodeAt(i) === close) {
        i++
        value = frame.container
      } else {
        stack.push(frame)
        if (!isArray) readKey(frame)
        opened = true
      }
    } else if (c === 0x22) value = str()
    else if (c === 0x74 && text.startsWith('true', i)) {
      i += 4
      value = true
    } else if (c === 0x66 && text.startsWith('false', i)) {
      i += 5
      value = false
    } else if (c === 0x6e && text.startsWith('null', i)) {
      i += 4
      value = null
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) value = num()
    else fail(c === 0 ? 'NUL byte' : 'unexpected character')
    if (opened) continue
    // Place the value, then close as many containers as end here.
    for (;;) {
      const top = stack[stack.length - 1]
      if (!top) {
        result = value
        haveResult = true
        break
      }
      if (top.isArray) (top.container as unknown[]).push(value)
      else (top.container as Record<string, unknown>)[top.key] = value
      top.count++
      ws()
      const d = text.charCodeAt(i)
      if (d === 0x2c) {
        i++
        ws()
        if (top.isArray) {
          if (top.count >= limits.maxArrayLength) fail(`array longer than ${limits.maxArrayLength}`)
        } else {
          if (top.count >= limits.maxKeys) fail(`object with more than ${limits.maxKeys} keys`)
          readKey(top)
        }
        break
      }
      if (d === (top.isArray ? 0x5d : 0x7d)) {
        i++
        stack.pop()
        value = top.container
        continue
      }
      fail(i >= n ? 'unexpected end of input' : top.isArray ? 'expected "," or "]"' : 'expected "," or "}"')
    }
    if (haveResult) break
  }
  ws()
  if (i < n) fail('unexpected data after the JSON value')
  return result

  function readKey(frame: Frame): void {
    if (text.charCodeAt(i) !== 0x22) fail('expected a string key')
    const k = str()
    if (FORBIDDEN_KEYS.has(k)) fail(`forbidden key "${k}"`)
    if ((frame.keys as Set<string>).has(k)) fail('duplicate key')
    ;(frame.keys as Set<string>).add(k)
    frame.key = k
    ws()
    if (text.charCodeAt(i) !== 0x3a) fail('expected ":"')
    i++
    ws()
  }
}
