/**
 * The keyword pass: one Aho-Corasick automaton over every detector's keywords, matched
 * case-insensitively (ASCII) in a single pass over the input. It is compiled to a dense DFA
 * (state × byte → state) whose states are numbered so that every state where a keyword ends comes
 * after all the others: the inner loop is one table load and one comparison per input byte, and
 * only positions where a keyword ends leave it. Characters above 0xFF (in strings) reset to the
 * start state: keywords are ASCII.
 *
 * The walks over bytes run in WebAssembly when it is available (prefilter-wasm.ts: the same
 * table, the same hits in the same order); the JS walks below are the fallback and the oracle.
 */
import { CHUNK, type RunsRequest, WALKS, WasmKeywordWalker } from './prefilter-wasm.js'

export type { RunsRequest }

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
  /** The WebAssembly walker, when it is used (see `wasm`). */
  private readonly native: WasmKeywordWalker | undefined
  /** True while `scan` walks with `native` (its window is shared: a nested scan walks in JS). */
  private nativeBusy = false

  /**
   * @param opts.wasm Walk in WebAssembly when available (default true); false: the JS walks.
   * @param opts.wideTable A table of 4-byte entries even when 2 would do (for tests: tables of
   *   more than 65,535 states have them).
   */
  constructor(keywords: readonly string[], opts: { wasm?: boolean; wideTable?: boolean } = {}) {
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
    const delta = n <= 0xffff && opts.wideTable !== true ? new Uint16Array(n * 256) : new Int32Array(n * 256)
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
    this.native = opts.wasm === false ? undefined : WasmKeywordWalker.create(delta, firstOut, this.maxLength)
  }

  /**
   * The maximal runs of bytes of `input` in the class `cls` (entry not 0), at least `minRun`
   * long, whose entries OR-ed together have all the bits of `need`, as pairs (start, end), found
   * in WebAssembly; undefined when it is not used (the caller has a JS loop for that).
   *
   * An input longer than the module's window is taken a window at a time, each cut just after a
   * byte out of the class, so that no run crosses a cut and every run found is maximal in the
   * whole input. A run that fills a whole window (64 KiB of base64: an embedded file) is followed
   * to its end here and reported whole.
   */
  runsOf(input: Uint8Array, cls: Uint8Array, minRun: number, need = 0): number[] | undefined {
    const native = this.native
    if (native === undefined || this.nativeBusy) return undefined
    const out: number[] = []
    this.nativeBusy = true
    try {
      const n = input.length
      if (n <= CHUNK) return native.runs(input, cls, minRun, need, out) ? out : undefined
      // Invariant: `pos` is 0 or the byte before it is out of the class.
      for (let pos = 0; pos < n; ) {
        let end = Math.min(n, pos + CHUNK)
        if (end < n) {
          let cut = end
          while (cut > pos && cls[input[cut - 1] as number] !== 0) cut--
          if (cut === pos) {
            // One run fills the window: find its end, report it as the WebAssembly loop would.
            while (end < n && cls[input[end] as number] !== 0) end++
            let f = 0
            for (let i = pos; i < end && (f & need) !== need; i++) f |= cls[input[i] as number] as number
            if (end - pos >= minRun && (f & need) === need) out.push(pos, end)
            pos = end
            continue
          }
          end = cut
        }
        const at = out.length
        if (!native.runs(input.subarray(pos, end), cls, minRun, need, out)) return undefined
        for (let k = at; k < out.length; k++) out[k] = (out[k] as number) + pos
        pos = end
      }
      return out
    } finally {
      this.nativeBusy = false
    }
  }

  /** True when the byte walks run in WebAssembly. */
  get usesWasm(): boolean {
    return this.native !== undefined
  }

  /**
   * Calls `onHit` for every keyword occurrence in `input[from, to)`: the range is cut in `WALKS`
   * (8) parts, and the occurrences that start in each part are reported part after part, each
   * part's in order of their end (so in order of their start from one part to the next). Returns
   * false when `onHit` returned false (stop).
   *
   * The pass runs one walk of the automaton per part, several in one loop (independent chains of
   * table loads keep the processor busy while each waits for its load: in WebAssembly, where a
   * step is three to four instructions, eight walks in one loop; the JS walks go four at a time).
   * Each walk but the last goes on past its part for the length of the longest keyword and keeps
   * there only the occurrences that start in its part; the next starts afresh at its part's
   * first byte. Each occurrence is reported once. Occurrences are collected, then reported.
   * Ranges under `MANY_WALKS` bytes are one walk (the tails would cost more than the walks save).
   *
   * With `runs` (the base64 finder's request), the walks in WebAssembly also find the runs of
   * `runsOf` in the copy of the input they made, when the range is all of `input` and fits their
   * window: `runs.out` is set then (one copy of the input per scan); else the caller finds them.
   */
  scan(
    input: Uint8Array,
    from: number,
    to: number,
    onHit: (keyword: number, start: number) => boolean | undefined,
    runs?: RunsRequest,
  ): boolean {
    // The loops are module functions of their own, so that each is optimized on its own from the
    // first call (in one function, V8 optimized the hot loop first and then threw that code away
    // at every other path it had not seen yet).
    const n = to - from
    const native = this.nativeBusy ? undefined : this.native
    const firstOut = this.firstOut
    if (n < MANY_WALKS) {
      const hits: number[] = []
      if (native !== undefined) {
        this.nativeBusy = true
        try {
          native.walk(input, from, to, 0, hits, runs)
        } finally {
          this.nativeBusy = false
        }
      } else walk(this.delta, firstOut, input, from, to, 0, hits)
      return this.report(hits, 0, onHit)
    }
    const d = Math.floor(n / WALKS)
    // The hit lists of the last scan, emptied, unless a callback of that scan is running this one.
    const reuse = !this.partHitsBusy
    const hits = reuse ? this.partHits : Array.from({ length: WALKS }, (): number[] => [])
    if (reuse) for (const h of hits) if (h.length > 0) h.length = 0
    if (native !== undefined) {
      // The parts and their tails in one call.
      this.nativeBusy = true
      try {
        native.walkParts(input, from, to, hits, runs)
      } finally {
        this.nativeBusy = false
      }
    } else {
      for (let k = 0; k < WALKS; k += 4) {
        walkFour(this.delta, firstOut, input, from + k * d, d, hits.slice(k, k + 4) as Four)
        ends.set(states.subarray(0, 4), k)
      }
      // Each walk's tail past its part (the last one's: the rest of the range, n % WALKS bytes).
      for (let k = 0; k < WALKS; k++) {
        const partEnd = from + (k + 1) * d
        const out = hits[k] as number[]
        const tailTo = k === WALKS - 1 ? to : Math.min(to, partEnd + this.maxLength - 1)
        walk(this.delta, firstOut, input, partEnd, tailTo, ends[k] as number, out)
      }
    }
    if (reuse) this.partHitsBusy = true
    try {
      for (let k = 0; k < WALKS; k++)
        if (!this.report(hits[k] as number[], k === WALKS - 1 ? 0 : from + (k + 1) * d, onHit)) return false
      return true
    } finally {
      if (reuse) this.partHitsBusy = false
    }
  }

  /** The per-part hit lists `scan` reuses from one call to the next (see `partHitsBusy`). */
  private readonly partHits: number[][] = Array.from({ length: WALKS }, () => [])
  /** True while `scan` reports from `partHits`. */
  private partHitsBusy = false

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

  /**
   * Calls `onHit` for every keyword occurrence in `text`, read one byte per UTF-16 unit (a unit
   * above 0xFF reads as NUL, as the scanner's bytes have it), in order of their end; stops when
   * `onHit` returns false (then returns false). One walk in JS over the string: no copy of it,
   * for the short texts of log lines.
   */
  scanString(text: string, onHit: (keyword: number, start: number) => boolean | undefined): boolean {
    const delta = this.delta
    const firstOut = this.firstOut
    let s = 0
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i)
      s = delta[(s << 8) | (c < 256 ? c : 0)] as number
      if (s >= firstOut && !this.emit(s, i, 0, onHit)) return false
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
    // Long inputs: the walks of `scan` (several chains of loads, in WebAssembly when available),
    // 16 KiB at a time so that an early keyword ends it early. A window starts the length of the
    // longest keyword before its 16 KiB: every occurrence ending in them is inside it.
    if (input.length >= MANY_WALKS) {
      const n = input.length
      for (let c = 0; c < n; c += ANY_WINDOW) {
        const lo = Math.max(0, c - (this.maxLength - 1))
        if (!this.scan(input, lo, Math.min(n, c + ANY_WINDOW), () => false)) return true
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

/** Shortest range walked in `WALKS` parts. */
const MANY_WALKS = 512
/** Bytes `any` looks at before it stops at a keyword found in them. */
const ANY_WINDOW = 16 * 1024

/** The states the walks ended in (`walkFour` sets four, `walk` the first). */
const states = new Int32Array(Math.max(4, WALKS))
/** The end states of the parts of one scan. */
const ends = new Int32Array(Math.max(4, WALKS))
type Four = [number[], number[], number[], number[]]

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
 * Four walks in one loop, walk k over `input[from + k·d, from + (k+1)·d)` from the start state,
 * its hits pushed to `hits[k]`. Sets `states[0..3]`.
 */
function walkFour(
  delta: Uint16Array | Int32Array,
  firstOut: number,
  input: Uint8Array,
  from: number,
  d: number,
  hits: Four,
): void {
  let a = 0
  let b = 0
  let c = 0
  let e = 0
  const [ha, hb, hc, he] = hits
  for (let i = from, end = from + d; i < end; i++) {
    const j = i + d
    const k = j + d
    const l = k + d
    a = delta[(a << 8) | (input[i] as number)] as number
    b = delta[(b << 8) | (input[j] as number)] as number
    c = delta[(c << 8) | (input[k] as number)] as number
    e = delta[(e << 8) | (input[l] as number)] as number
    if (a >= firstOut) ha.push(i, a)
    if (b >= firstOut) hb.push(j, b)
    if (c >= firstOut) hc.push(k, c)
    if (e >= firstOut) he.push(l, e)
  }
  states[0] = a
  states[1] = b
  states[2] = c
  states[3] = e
}
