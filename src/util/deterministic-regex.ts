/**
 * Which patterns V8's own regular expression engine may run without the risk of super-linear time,
 * so that linear-regex.ts can give them to it (6 to 25 times faster than RE2JS on the short values
 * of a JSON body: spec `pattern`s were ~3% of the whole-stack route's CPU).
 *
 * The class accepted is small and proved linear, not guessed: a pattern anchored at the start
 * (`^`), made of a flat sequence of atoms (a literal character, a character class, `.`, or one of
 * `\d \D \w \W \s \S`), each with an optional greedy quantifier (`?`, `*`, `+`, `{n}`, `{n,}`,
 * `{n,m}`), optionally ended by `$`; no group, no alternation, no lookaround, no backreference, no
 * `\b`, flags among `u` and `s`. And it must be deterministic: for every atom whose count can vary,
 * no character it matches can also start what may follow it (the atoms up to and including the
 * next mandatory one).
 *
 * Why that is linear for a backtracking engine: with one start position (`^`), the only choices
 * are "one more repetition or move on" at the variable atoms. Determinism makes the next character
 * decide each of them: the branch not taken fails on its first character, after at most a walk
 * over the optional atoms that follow (bounded by the pattern's length). A failed match gives back
 * repetitions one by one, each such give-back failing in that same bounded time, and every
 * repetition consumed one character: O(input × pattern) in all. RE2's "one-pass" property is not
 * enough here: RE2 tests it on its simplified program, where `(a|a)*` has become `a*`, while V8
 * runs the pattern as written (and takes exponential time on `^(a|a)*$`).
 */

/** Code point ranges [lo, hi], sorted and disjoint. */
export type Ranges = readonly (readonly [number, number])[]

const MAX_CP = 0x10ffff
const DIGIT: Ranges = [[0x30, 0x39]]
const WORD: Ranges = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
]
// JavaScript's \s: WhiteSpace and LineTerminator (ECMA-262).
const SPACE: Ranges = normalize([
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
])
const LINE_TERMINATORS: Ranges = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
]
const SYNTAX = '^$\\.*+?()[]{}|/'

function normalize(list: (readonly [number, number])[]): Ranges {
  const sorted = [...list].sort((a, b) => a[0] - b[0])
  const out: [number, number][] = []
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi)
    else out.push([lo, hi])
  }
  return out
}

function complement(r: Ranges): Ranges {
  const out: [number, number][] = []
  let next = 0
  for (const [lo, hi] of r) {
    if (lo > next) out.push([next, lo - 1])
    next = hi + 1
  }
  if (next <= MAX_CP) out.push([next, MAX_CP])
  return out
}

function overlaps(a: Ranges, b: Ranges): boolean {
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    const x = a[i] as readonly [number, number]
    const y = b[j] as readonly [number, number]
    if (x[1] < y[0]) i++
    else if (y[1] < x[0]) j++
    else return true
  }
  return false
}

export interface Atom {
  set: Ranges
  min: number
  max: number
}

/** Thrown inside the parser for anything outside the class; caught by isDeterministic. */
class Outside extends Error {}

function outside(): never {
  throw new Outside()
}

/** A scanner over the pattern's code points. */
class Reader {
  private readonly cps: number[]
  i = 0
  constructor(source: string) {
    this.cps = Array.from(source, (c) => c.codePointAt(0) as number)
  }
  get done(): boolean {
    return this.i >= this.cps.length
  }
  peek(): number {
    return this.cps[this.i] ?? -1
  }
  next(): number {
    if (this.done) outside()
    return this.cps[this.i++] as number
  }
  /** A run of decimal digits (bounded: repetition counts). */
  number(): number | undefined {
    let n = ''
    while (this.peek() >= 0x30 && this.peek() <= 0x39 && n.length < 6) n += String.fromCodePoint(this.next())
    return n === '' ? undefined : Number(n)
  }
}

/** The set of a class escape (`\d` …), or of an escaped character; `inClass`: inside `[...]`. */
function escapeSet(r: Reader, inClass: boolean): Ranges {
  const c = String.fromCodePoint(r.next())
  switch (c) {
    case 'd':
      return DIGIT
    case 'D':
      return complement(DIGIT)
    case 'w':
      return WORD
    case 'W':
      return complement(WORD)
    case 's':
      return SPACE
    case 'S':
      return complement(SPACE)
    case 't':
      return [[0x09, 0x09]]
    case 'n':
      return [[0x0a, 0x0a]]
    case 'r':
      return [[0x0d, 0x0d]]
    case 'f':
      return [[0x0c, 0x0c]]
    case 'v':
      return [[0x0b, 0x0b]]
    default:
      if (SYNTAX.includes(c) || (inClass && c === '-')) {
        const cp = c.codePointAt(0) as number
        return [[cp, cp]]
      }
      return outside() // \b, \B, \1, \k, \p, \u, \x, \c, …: not in the class
  }
}

/** One member of a class: a character (which may start a range) or a class escape such as `\d`. */
function classMember(r: Reader): { cp: number } | { set: Ranges } {
  const c = r.next()
  if (c === 0x5c /* \ */) {
    const letter = String.fromCodePoint(r.peek())
    const set = escapeSet(r, true)
    return 'dDwWsS'.includes(letter) ? { set } : { cp: (set[0] as readonly [number, number])[0] }
  }
  if (c === 0x5b /* [ */) return outside() // nested classes are `v`-flag syntax
  return { cp: c }
}

function charClass(r: Reader): Ranges {
  let negate = false
  if (r.peek() === 0x5e /* ^ */) {
    negate = true
    r.next()
  }
  const parts: (readonly [number, number])[] = []
  let first = true
  for (;;) {
    if (r.done) outside()
    if (r.peek() === 0x5d /* ] */ && !first) {
      r.next()
      break
    }
    if (r.peek() === 0x5d && first) outside() // `[]` / `[^]`: legal, but not worth the cases
    first = false
    const a = classMember(r)
    if ('set' in a) {
      parts.push(...a.set)
      continue
    }
    if (r.peek() === 0x2d /* - */) {
      r.next()
      if (r.peek() === 0x5d) {
        // a trailing `-` is a literal
        parts.push([a.cp, a.cp], [0x2d, 0x2d])
        continue
      }
      const b = classMember(r)
      if ('set' in b || b.cp < a.cp) outside()
      parts.push([a.cp, b.cp])
      continue
    }
    parts.push([a.cp, a.cp])
  }
  const set = normalize(parts)
  return negate ? complement(set) : set
}

function quantifier(r: Reader): { min: number; max: number } {
  const c = r.peek()
  let q: { min: number; max: number }
  if (c === 0x3f /* ? */) q = { min: 0, max: 1 }
  else if (c === 0x2a /* * */) q = { min: 0, max: Number.POSITIVE_INFINITY }
  else if (c === 0x2b /* + */) q = { min: 1, max: Number.POSITIVE_INFINITY }
  else if (c === 0x7b /* { */) {
    r.next()
    const min = r.number() ?? outside()
    let max = min
    if (r.peek() === 0x2c /* , */) {
      r.next()
      max = r.number() ?? Number.POSITIVE_INFINITY
    }
    if (r.next() !== 0x7d /* } */ || max < min) outside()
    if (r.peek() === 0x3f) outside() // lazy
    return { min, max }
  } else return { min: 1, max: 1 }
  r.next()
  if (r.peek() === 0x3f) outside() // lazy: the class is greedy quantifiers only
  return q
}

/** The atoms of a pattern in the class's syntax, or undefined (exported for the tests' model). */
export function flatAtoms(source: string, flags: string): Atom[] | undefined {
  try {
    return atoms(source, flags.includes('s'))
  } catch (err) {
    if (err instanceof Outside) return undefined
    throw err
  }
}

function atoms(source: string, dotAll: boolean): Atom[] {
  const r = new Reader(source)
  if (r.next() !== 0x5e /* ^ */) outside()
  const out: Atom[] = []
  while (!r.done) {
    const c = r.next()
    let set: Ranges
    if (c === 0x24 /* $ */) {
      if (!r.done) outside()
      break
    }
    if (c === 0x5c) set = escapeSet(r, false)
    else if (c === 0x5b) set = charClass(r)
    else if (c === 0x2e /* . */) set = dotAll ? [[0, MAX_CP]] : complement(LINE_TERMINATORS)
    else if ('^()|*+?{}]'.includes(String.fromCodePoint(c))) return outside()
    else set = [[c, c]]
    out.push({ set, ...quantifier(r) })
  }
  return out
}

/**
 * True when `source` (JavaScript syntax, with `flags`) is in the class described in the module
 * comment, so that a backtracking engine runs it in time linear in the input.
 */
export function isDeterministic(source: string, flags: string): boolean {
  for (const f of flags) if (f !== 'u' && f !== 's') return false
  // Without `u`, V8 reads the pattern in UTF-16 code units (a quantifier after 😀 repeats its
  // second half only), not the code points modelled here: such patterns are left to RE2.
  if (!flags.includes('u') && /[\ud800-\udfff]/.test(source)) return false
  const list = flatAtoms(source, flags)
  if (list === undefined) return false
  for (let i = 0; i < list.length; i++) {
    const a = list[i] as Atom
    if (a.min === a.max) continue
    for (let j = i + 1; j < list.length; j++) {
      const b = list[j] as Atom
      if (overlaps(a.set, b.set)) return false
      if (b.min > 0) break
    }
  }
  return true
}
