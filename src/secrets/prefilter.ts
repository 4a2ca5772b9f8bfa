/**
 * The keyword pass: one Aho-Corasick automaton over every detector's keywords, matched
 * case-insensitively (ASCII) in a single pass over the input. It is compiled to a dense DFA
 * (state × byte → state) so the inner loop is one table load per input unit; only positions where
 * a keyword ends call back. Characters above 0xFF (in strings) reset to the start state: keywords
 * are ASCII.
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
  private readonly delta: Int32Array
  /** For each state: index into `outList` of its first output, -1 when it has none. */
  private readonly outHead: Int32Array
  /** Chains of outputs: pairs (keyword index, next pair index or -1). */
  private readonly outList: Int32Array

  constructor(keywords: readonly string[]) {
    this.keywords = keywords.map((k) => k.toLowerCase())
    // Trie.
    const goto: Map<number, number>[] = [new Map()]
    const outs: number[][] = [[]]
    this.keywords.forEach((kw, ki) => {
      if (kw.length === 0) throw new Error('empty keyword')
      let s = 0
      for (let i = 0; i < kw.length; i++) {
        const c = kw.charCodeAt(i)
        if (c > 0x7f) throw new Error(`keyword "${kw}" is not ASCII`)
        let next = (goto[s] as Map<number, number>).get(c)
        if (next === undefined) {
          next = goto.length
          goto.push(new Map())
          outs.push([])
          ;(goto[s] as Map<number, number>).set(c, next)
        }
        s = next
      }
      ;(outs[s] as number[]).push(ki)
    })
    const n = goto.length
    const delta = new Int32Array(n * 256)
    const fail = new Int32Array(n)
    // Breadth-first: failure links and the full DFA. Upper-case letters behave as lower-case.
    const queue: number[] = []
    for (let c = 0; c < 256; c++) {
      const lc = c >= 65 && c <= 90 ? c + 32 : c
      const t = (goto[0] as Map<number, number>).get(lc)
      if (t !== undefined) {
        delta[c] = t
        if (c === lc) queue.push(t)
      }
    }
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi] as number
      ;(outs[s] as number[]).push(...(outs[fail[s] as number] as number[]))
      for (let c = 0; c < 256; c++) {
        const lc = c >= 65 && c <= 90 ? c + 32 : c
        const t = (goto[s] as Map<number, number>).get(lc)
        if (t !== undefined) {
          delta[s * 256 + c] = t
          if (c === lc) {
            fail[t] = delta[(fail[s] as number) * 256 + c] as number
            queue.push(t)
          }
        } else {
          delta[s * 256 + c] = delta[(fail[s] as number) * 256 + c] as number
        }
      }
    }
    const outHead = new Int32Array(n).fill(-1)
    const list: number[] = []
    for (let s = 0; s < n; s++) {
      for (const k of outs[s] as number[]) {
        list.push(k, outHead[s] as number)
        outHead[s] = list.length - 2
      }
    }
    this.delta = delta
    this.outHead = outHead
    this.outList = Int32Array.from(list)
  }

  /**
   * Calls `onHit` for every keyword occurrence in `input[from, to)`, in order of their end.
   * Returns false when `onHit` returned false (stop).
   */
  scan(
    input: Uint8Array | string,
    from: number,
    to: number,
    onHit: (keyword: number, start: number) => boolean | undefined,
  ): boolean {
    const delta = this.delta
    const outHead = this.outHead
    const list = this.outList
    const kws = this.keywords
    let s = 0
    if (typeof input === 'string') {
      for (let i = from; i < to; i++) {
        const c = input.charCodeAt(i)
        s = c < 256 ? (delta[(s << 8) | c] as number) : 0
        let o = outHead[s] as number
        while (o !== -1) {
          const k = list[o] as number
          if (onHit(k, i + 1 - (kws[k] as string).length) === false) return false
          o = list[o + 1] as number
        }
      }
      return true
    }
    for (let i = from; i < to; i++) {
      s = delta[(s << 8) | (input[i] as number)] as number
      let o = outHead[s] as number
      while (o !== -1) {
        const k = list[o] as number
        if (onHit(k, i + 1 - (kws[k] as string).length) === false) return false
        o = list[o + 1] as number
      }
    }
    return true
  }

  /** True when any keyword occurs in `input` (stops at the first). */
  any(input: string): boolean {
    const delta = this.delta
    const outHead = this.outHead
    let s = 0
    for (let i = 0; i < input.length; i++) {
      const c = input.charCodeAt(i)
      s = c < 256 ? (delta[(s << 8) | c] as number) : 0
      if ((outHead[s] as number) !== -1) return true
    }
    return false
  }
}
