/**
 * The keyword pass: one Aho-Corasick automaton over every detector's keywords, matched
 * case-insensitively (ASCII) in a single pass over the input. It is compiled to a dense DFA
 * (state × byte → state) whose states are numbered so that every state where a keyword ends comes
 * after all the others: the inner loop is one table load and one comparison per input byte, and
 * only positions where a keyword ends leave it. Characters above 0xFF (in strings) reset to the
 * start state: keywords are ASCII.
 */

export interface KeywordHit {
  /** Index of the keyword in the list the automaton was built from. */
  keyword: number
  /** Offset of the keyword's first unit. */
  start: number
}

export class KeywordAutomaton {
  /** Lower-cased keywords. */
  readonly keywords: readonly string[]
  /** Length of each keyword. */
  private readonly lengths: Int32Array
  /** `delta[(state << 8) | byte]`: the next state. */
  private readonly delta: Uint16Array | Int32Array
  /** States numbered `firstOut` and above end at least one keyword. */
  private readonly firstOut: number
  /** For state `firstOut + j`: its outputs are `outList[outStart[j] .. outStart[j + 1])`. */
  private readonly outStart: Int32Array
  private readonly outList: Int32Array
  /** Length of the longest keyword. */
  private readonly maxLength: number

  constructor(keywords: readonly string[]) {
    this.keywords = keywords.map((k) => k.toLowerCase())
    this.lengths = Int32Array.from(this.keywords, (k) => k.length)
    this.maxLength = Math.max(1, ...this.lengths)
    // The trie, in a flat table (state × byte → state, -1: no edge) that becomes the DFA in place.
    let cap = 1
    for (const k of this.keywords) cap += k.length
    const table = new Int32Array(cap * 256).fill(-1)
    const outs: number[][] = [[]]
    let n = 1
    this.keywords.forEach((kw, ki) => {
      if (kw.length === 0) throw new Error('empty keyword')
      let s = 0
      for (let i = 0; i < kw.length; i++) {
        const c = kw.charCodeAt(i)
        if (c > 0x7f) throw new Error(`keyword "${kw}" is not ASCII`)
        const at = s * 256 + c
        if ((table[at] as number) === -1) {
          table[at] = n++
          outs.push([])
        }
        s = table[at] as number
      }
      ;(outs[s] as number[]).push(ki)
    })
    // Breadth-first: failure links, outputs and the full DFA. Keywords are lower case: a row's
    // upper-case letters take the lower-case letters' transitions once the row is done.
    const fail = new Int32Array(n)
    const queue = new Int32Array(n)
    let qn = 1 // queue[0] = 0, the start state
    for (let qi = 0; qi < qn; qi++) {
      const s = queue[qi] as number
      const row = s * 256
      const failRow = (fail[s] as number) * 256
      if (s !== 0) (outs[s] as number[]).push(...(outs[fail[s] as number] as number[]))
      for (let c = 0; c < 256; c++) {
        if (c >= 65 && c <= 90) continue
        const t = table[row + c] as number
        if (t === -1) table[row + c] = s === 0 ? 0 : (table[failRow + c] as number)
        else {
          fail[t] = s === 0 ? 0 : (table[failRow + c] as number)
          queue[qn++] = t
        }
      }
      for (let c = 65; c <= 90; c++) table[row + c] = table[row + c + 32] as number
    }
    // Renumber: states without output first (the start state stays 0), then those with one.
    const id = new Int32Array(n)
    const order = new Int32Array(n)
    let next = 0
    const place = (s: number) => {
      id[s] = next
      order[next++] = s
    }
    for (let s = 0; s < n; s++) if ((outs[s] as number[]).length === 0) place(s)
    const firstOut = next
    for (let s = 0; s < n; s++) if ((outs[s] as number[]).length > 0) place(s)
    const delta = n <= 0xffff ? new Uint16Array(n * 256) : new Int32Array(n * 256)
    for (let s = 0; s < n; s++) {
      const from = s * 256
      const to = (id[s] as number) * 256
      for (let c = 0; c < 256; c++) delta[to + c] = id[table[from + c] as number] as number
    }
    const outStart = new Int32Array(n - firstOut + 1)
    const list: number[] = []
    for (let j = firstOut; j < n; j++) {
      outStart[j - firstOut] = list.length
      list.push(...(outs[order[j] as number] as number[]))
    }
    outStart[n - firstOut] = list.length
    this.delta = delta
    this.firstOut = firstOut
    this.outStart = outStart
    this.outList = Int32Array.from(list)
  }

  /**
   * Calls `onHit` for every keyword occurrence in `input[from, to)`: those that start in the first
   * half of the range in order of their end, then those of the second half in order of their end
   * (so in order of their start from one half to the next). Returns false when `onHit` returned
   * false (stop).
   *
   * The pass runs two walks of the automaton in one loop, over the first and the second half of
   * the range (two independent chains of table loads keep the processor busy while each waits for
   * its load). The first walk goes on past the middle for the length of the longest keyword and
   * keeps there only the occurrences that start before the middle; the second starts afresh at
   * the middle. Each occurrence is reported once. Occurrences are collected, then reported.
   */
  scan(
    input: Uint8Array,
    from: number,
    to: number,
    onHit: (keyword: number, start: number) => boolean | undefined,
  ): boolean {
    // The loops are module functions of their own, so that each is optimized on its own from the
    // first call (in one function, V8 optimized the hot loop first and then threw that code away
    // at every other path it had not seen yet).
    const hitsA: number[] = []
    const n = to - from
    if (n < 256) {
      walk(this.delta, this.firstOut, input, from, to, 0, hitsA)
      return this.report(hitsA, 0, onHit)
    }
    const mid = from + (n >> 1)
    const hitsB: number[] = []
    walkTwo(this.delta, this.firstOut, input, from, mid, hitsA, hitsB)
    // The first walk's tail, from its state at the middle; the second walk's rest (its range is
    // one longer than the first's when the length is odd).
    walk(
      this.delta,
      this.firstOut,
      input,
      mid,
      Math.min(to, mid + this.maxLength - 1),
      states[0] as number,
      hitsA,
    )
    walk(this.delta, this.firstOut, input, mid + (mid - from), to, states[1] as number, hitsB)
    return this.report(hitsA, mid, onHit) && this.report(hitsB, 0, onHit)
  }

  /** Reports the collected ends of occurrences (see `emit`). */
  private report(
    hits: readonly number[],
    below: number,
    onHit: (keyword: number, start: number) => boolean | undefined,
  ): boolean {
    for (let k = 0; k < hits.length; k += 2)
      if (!this.emit(hits[k + 1] as number, hits[k] as number, below, onHit)) return false
    return true
  }

  /**
   * Reports the keywords that end at `i` in state `s`; with `below` > 0 only those starting before
   * it (the first walk's tail: the others are the second walk's).
   */
  private emit(
    s: number,
    i: number,
    below: number,
    onHit: (keyword: number, start: number) => boolean | undefined,
  ): boolean {
    const j = s - this.firstOut
    const end = this.outStart[j + 1] as number
    for (let o = this.outStart[j] as number; o < end; o++) {
      const k = this.outList[o] as number
      const start = i + 1 - (this.lengths[k] as number)
      if (below > 0 && start >= below) continue
      if (onHit(k, start) === false) return false
    }
    return true
  }

  /** True when any keyword occurs in `input` (stops at the first). */
  any(input: string | Uint8Array): boolean {
    const delta = this.delta
    const firstOut = this.firstOut
    let s = 0
    if (typeof input === 'string') {
      for (let i = 0; i < input.length; i++) {
        const c = input.charCodeAt(i)
        s = c < 256 ? (delta[(s << 8) | c] as number) : 0
        if (s >= firstOut) return true
      }
      return false
    }
    for (let i = 0; i < input.length; i++) {
      s = delta[(s << 8) | (input[i] as number)] as number
      if (s >= firstOut) return true
    }
    return false
  }
}

/** The states the walks ended in (`walkTwo` sets both, `walk` the first). */
const states = new Int32Array(2)

/**
 * One walk over `input[from, to)` from state `s`: the ends of keyword occurrences are pushed to
 * `hits` as pairs (index of the last byte, state). Sets `states[0]`.
 */
function walk(
  delta: Uint16Array | Int32Array,
  firstOut: number,
  input: Uint8Array,
  from: number,
  to: number,
  s: number,
  hits: number[],
): void {
  for (let i = from; i < to; i++) {
    s = delta[(s << 8) | (input[i] as number)] as number
    if (s >= firstOut) hits.push(i, s)
  }
  states[0] = s
}

/**
 * Two walks in one loop, over `input[from, mid)` and `input[mid, 2 * mid - from)`, both from the
 * start state. Sets `states[0]` and `states[1]`.
 */
function walkTwo(
  delta: Uint16Array | Int32Array,
  firstOut: number,
  input: Uint8Array,
  from: number,
  mid: number,
  hitsA: number[],
  hitsB: number[],
): void {
  let a = 0
  let b = 0
  for (let i = from, j = mid; i < mid; i++, j++) {
    a = delta[(a << 8) | (input[i] as number)] as number
    b = delta[(b << 8) | (input[j] as number)] as number
    if (a >= firstOut) hitsA.push(i, a)
    if (b >= firstOut) hitsB.push(j, b)
  }
  states[0] = a
  states[1] = b
}
