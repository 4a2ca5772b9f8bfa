/**
 * The keyword pass at native speed: the DFA of `KeywordAutomaton` (state × byte → state, states
 * at or above `firstOut` end a keyword), walked by a small WebAssembly module that this file
 * writes with the byte emitter (src/util/wasm-emit.ts). The JS walks in prefilter.ts stay as the
 * fallback (no WebAssembly) and as the oracle its tests compare this one with.
 *
 * Memory of one walker (its own, imported by the module): the class table of `runs`, an input
 * window of `CHUNK` bytes (`WALKS` slots of `PART`, one per walk), the hit buffer (`CHUNK` pairs
 * of i32: the address of the byte where a keyword ends, the state), the walks' saved states, a
 * copy of the range being walked (the slots are filled from it), then the walker's own copy of
 * the table (see `WasmKeywordWalker`). The walks carry their state
 * from one piece of input to the next, so the hits and their order are exactly those of the JS
 * walks.
 */
import { op, wasmModule } from '../util/wasm-emit.js'

/** Walks of `walkMany` (independent chains of loads in one loop). */
export const WALKS = 8
/** Bytes of input per call (the window); a `WALKS`th of it per walk of `walkMany`. */
export const CHUNK = 64 * 1024
/** The input of each walk of `walkMany` per call. */
const PART = CHUNK / WALKS
const PAGE = 64 * 1024

/** The parts of the WebAssembly JS API used here (the project's `lib` has no DOM types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: object) => { exports: object }
  Memory: new (d: { initial: number; maximum?: number }) => WasmMemory
  validate(bytes: Uint8Array): boolean
}
/** `WebAssembly`, or undefined where the runtime has none. */
export const wasmApi: WasmApi | undefined = (globalThis as { WebAssembly?: WasmApi }).WebAssembly

/** Bytes of one block of `walkMany`: the walks test for a keyword end once per block. */
export const BLOCK = 16
/** Layout of a walker's memory: the byte-class table of `runs` (256 bytes). */
const RUN_CLS = 512
/** The input window (`CHUNK` bytes). */
const INPUT = 1024
/** The hit buffer (`CHUNK` pairs of i32). */
const HITS = INPUT + CHUNK
/** The states of the walks at the start of a block (`WALKS` i32). */
const SAVE = HITS + CHUNK * 8
/** The walks' states in and out of `walkMany` (`WALKS` i32). */
const STATES = SAVE + 64
/** The length of each walk's tail, walked by `walkMany` after its blocks (`WALKS` i32). */
const TAILS = SAVE + 128
/** The end state of `exact`. */
const EXACT_END = SAVE + 192
/** A copy of the input range of `walkParts` (`CHUNK` bytes), copied from to each walk's slot. */
const STAGE = SAVE + 1024
/** Bytes of a row of the table: 256 i32 entries. */
const ROW = 1024
/** The DFA table: rows of i32 entries, at a fixed address (the loads' constant offset). */
const TABLE = STAGE + CHUNK

/**
 * One DFA step of a walk: `s = table[s + 4 · byte]`, where a state is the byte offset of its row
 * in the table (256 i32 entries): one add and one load on the chain of dependent loads (state →
 * address → state), which is what limits the walk. `byte4` leaves 4 · byte on the stack (off
 * that chain).
 */
function step(s: number, byte4: (readonly number[])[]): (readonly number[])[] {
  return [op.localGet(s), ...byte4, op.i32Add, op.i32Load(TABLE), op.localSet(s)]
}

/** 4 · the byte at `p + offset`. */
function byteAt(p: number, offset = 0): (readonly number[])[] {
  return [op.localGet(p), op.i32Load8u(offset), op.i32Const(2), op.i32Shl]
}

/**
 * `if (s & flag) { s ^= flag; store (p, s) at *hits; hits += 8 }`: a keyword ends at the byte at
 * `p` (an exact walk starts from a state without the flag: a step sets it only on entering a
 * state where a keyword ends; it is cleared at once, so the walk stays on rows without it).
 */
function record(s: number, p: number, flag: number, hits: number): (readonly number[])[] {
  return [
    op.localGet(s),
    op.localGet(flag),
    op.i32And,
    op.if(),
    op.localGet(s),
    op.localGet(flag),
    op.i32Xor,
    op.localSet(s),
    op.localGet(hits),
    op.localGet(p),
    op.i32Store(0),
    op.localGet(hits),
    op.localGet(s),
    op.i32Store(4),
    op.localGet(hits),
    op.i32Const(8),
    op.i32Add,
    op.localSet(hits),
    op.end,
  ]
}

/** Index of `exact` in the module (`walkMany` calls it). */
const EXACT = 0

/**
 * `exact(p, n, s, flag, hits) → hitsEnd`: one walk over the bytes at [p, p + n) from state `s`
 * (without the flag), recording every byte where a keyword ends with its address and state; the
 * end state (without the flag) at `EXACT_END`. Params: 0 p, 1 n, 2 s, 3 flag, 4 hits; local 5
 * end.
 */
function exactFunction() {
  return {
    name: 'walk',
    params: 5,
    locals: 1,
    results: 1 as const,
    body: [
      op.localGet(0),
      op.localGet(1),
      op.i32Add,
      op.localSet(5),
      op.block(),
      op.localGet(0),
      op.localGet(5),
      op.i32GeU,
      op.brIf(0),
      op.loop(),
      ...step(2, byteAt(0)),
      ...record(2, 0, 3, 4),
      op.localGet(0),
      op.i32Const(1),
      op.i32Add,
      op.localTee(0),
      op.localGet(5),
      op.i32LtU,
      op.brIf(0),
      op.end,
      op.end,
      op.i32Const(0),
      op.localGet(2),
      op.i32Store(EXACT_END),
      op.localGet(4),
    ],
  }
}

/**
 * `walkMany(p, end, flag, hits) → hitsEnd`: n walks in one loop, walk k over the bytes at
 * [p + k·PART, end + k·PART) from the state at `STATES[k]` (`end - p` a multiple of `BLOCK`; the
 * walks share one pointer, their bytes are at constant offsets from it), then on over the next
 * `TAILS[k]` bytes one at a time (`exact`); the end states back at `STATES`. Per byte and walk
 * one step and nothing else: the flag is sticky (a walk that entered a state where a keyword
 * ends stays on flagged rows), so once per block of `BLOCK` bytes one test of the states' OR
 * tells whether any walk met a keyword end in it. Then each walk whose state has the flag walks
 * the block again with `exact` from its state saved at the block's start (at `SAVE`: registers
 * are short with eight walks), which records the hits and ends in the same state without the
 * flag. The hits of walk k are in order of address. `BLOCK` is even: the walks read their bytes
 * two at a time. Params: 0 p, 1 end, 2 flag, 3 hits; locals 4.. the states, then the 2-byte word.
 */
function walkManyFunction(n: number) {
  const p = 0
  const end = 1
  const flag = 2
  const hits = 3
  const state = (k: number) => 4 + k
  const word = 4 + n
  const exact = (k: number, bytes: (readonly number[])[], from: (readonly number[])[]) => [
    op.localGet(p),
    ...(k === 0 ? [] : [op.i32Const(k * PART), op.i32Add]),
    ...bytes,
    ...from,
    op.localGet(flag),
    op.localGet(hits),
    op.call(EXACT),
    op.localSet(hits),
    op.i32Const(0),
    op.i32Load(EXACT_END),
    op.localSet(state(k)),
  ]
  const body: (readonly number[])[] = []
  for (let k = 0; k < n; k++) body.push(op.i32Const(0), op.i32Load(STATES + 4 * k), op.localSet(state(k)))
  body.push(op.block(), op.localGet(p), op.localGet(end), op.i32GeU, op.brIf(0), op.loop())
  for (let k = 0; k < n; k++) body.push(op.i32Const(0), op.localGet(state(k)), op.i32Store(SAVE + 4 * k))
  // Two bytes of a walk per load (16 bits, taken apart with an AND and a shift): one load fewer
  // per two steps, the loads being what limits the loop. The word lives for two steps only.
  for (let u = 0; u < BLOCK; u += 2)
    for (let k = 0; k < n; k++)
      body.push(
        op.localGet(p),
        op.i32Load16u(k * PART + u),
        op.localSet(word),
        ...step(state(k), [op.localGet(word), op.i32Const(0xff), op.i32And, op.i32Const(2), op.i32Shl]),
        ...step(state(k), [op.localGet(word), op.i32Const(8), op.i32ShrU, op.i32Const(2), op.i32Shl]),
      )
  body.push(op.localGet(state(0)))
  for (let k = 1; k < n; k++) body.push(op.localGet(state(k)), op.i32Or)
  body.push(op.localGet(flag), op.i32And, op.if())
  // Only the walks that met a keyword end are walked again (the others' states are right).
  for (let k = 0; k < n; k++)
    body.push(
      op.localGet(state(k)),
      op.localGet(flag),
      op.i32And,
      op.if(),
      ...exact(k, [op.i32Const(BLOCK)], [op.i32Const(0), op.i32Load(SAVE + 4 * k)]),
      op.end,
    )
  body.push(op.end)
  body.push(
    op.localGet(p),
    op.i32Const(BLOCK),
    op.i32Add,
    op.localTee(p),
    op.localGet(end),
    op.i32LtU,
    op.brIf(0),
    op.end,
    op.end,
  )
  // The tails, then the end states.
  for (let k = 0; k < n; k++)
    body.push(...exact(k, [op.i32Const(0), op.i32Load(TAILS + 4 * k)], [op.localGet(state(k))]))
  for (let k = 0; k < n; k++) body.push(op.i32Const(0), op.localGet(state(k)), op.i32Store(STATES + 4 * k))
  body.push(op.localGet(hits))
  return { name: 'walkMany', params: 4, locals: n + 1, results: 1 as const, body }
}

/**
 * `runs(from, to, cls, out, minRun, need) → outEnd`: the maximal runs of bytes whose class
 * (`mem[cls + byte]`) is not 0, at least `minRun` long, whose classes OR-ed together have all the
 * bits of `need`, as pairs (start, end) at `out`. A skip loop with two probes (no run of
 * `minRun` starts at or after `i` and before a byte out of the class that it would have to
 * cover): a run long enough must cover the byte j = i + minRun - 1, so the bytes before it are
 * not looked at when j is not in the class; when it is, the run holding j starts at s (found
 * backwards, not before i) and must cover s + minRun - 1: when that byte is not in the class
 * either, the skip goes on after it, with no look at the bytes between. Only a run that passes
 * both probes is followed to its end. Invariant: the byte before i is out of the class (or i is
 * `from`). Params: 0 i, 1 to, 2 cls, 3 out, 4 minRun, 5 need; locals 6 j, 7 e, 8 s, 9 f (the OR
 * of the classes), 10 c, 11 k (the second probe).
 */
function runsFunction() {
  const [i, to, cls, out, minRun, need] = [0, 1, 2, 3, 4, 5]
  const [j, e, s, f, c, k] = [6, 7, 8, 9, 10, 11]
  const classOf = (addr: (readonly number[])[]) => [
    ...addr,
    op.i32Load8u(),
    op.localGet(cls),
    op.i32Add,
    op.i32Load8u(),
  ]
  /** `c = class of the byte at addr; if (c == 0) break out of the enclosing block; f |= c`. */
  const take = (addr: (readonly number[])[]) => [
    ...classOf(addr),
    op.localTee(c),
    op.i32Eqz,
    op.brIf(1),
    op.localGet(f),
    op.localGet(c),
    op.i32Or,
    op.localSet(f),
  ]
  /** `i = at + 1; continue` (the loop is the label `depth` out). */
  const skipPast = (at: number, depth: number) => [
    op.localGet(at),
    op.i32Const(1),
    op.i32Add,
    op.localSet(i),
    op.br(depth),
  ]
  const body: (readonly number[])[] = [
    op.block(),
    op.loop(),
    // j = i + minRun - 1; done when j >= to
    op.localGet(i),
    op.localGet(minRun),
    op.i32Add,
    op.i32Const(1),
    op.i32Sub,
    op.localTee(j),
    op.localGet(to),
    op.i32GeU,
    op.brIf(1),
    // j not in the class: no run of minRun starts at or before j
    ...classOf([op.localGet(j)]),
    op.localTee(f),
    op.i32Eqz,
    op.if(),
    ...skipPast(j, 1),
    op.end,
    // s: the start of the run holding j (not before i)
    op.localGet(j),
    op.localSet(s),
    op.block(),
    op.loop(),
    op.localGet(s),
    op.localGet(i),
    op.i32LeU,
    op.brIf(1),
    ...take([op.localGet(s), op.i32Const(1), op.i32Sub]),
    op.localGet(s),
    op.i32Const(1),
    op.i32Sub,
    op.localSet(s),
    op.br(0),
    op.end,
    op.end,
    // k = s + minRun - 1: a run from s must cover it; past the input, no run is long enough
    op.localGet(s),
    op.localGet(minRun),
    op.i32Add,
    op.i32Const(1),
    op.i32Sub,
    op.localTee(k),
    op.localGet(to),
    op.i32GeU,
    op.brIf(1),
    op.localGet(k),
    op.localGet(j),
    op.i32GtU,
    op.if(),
    ...classOf([op.localGet(k)]),
    op.i32Eqz,
    op.if(),
    ...skipPast(k, 2),
    op.end,
    op.end,
    // e: the end of the run holding j
    op.localGet(j),
    op.i32Const(1),
    op.i32Add,
    op.localSet(e),
    op.block(),
    op.loop(),
    op.localGet(e),
    op.localGet(to),
    op.i32GeU,
    op.brIf(1),
    ...take([op.localGet(e)]),
    op.localGet(e),
    op.i32Const(1),
    op.i32Add,
    op.localSet(e),
    op.br(0),
    op.end,
    op.end,
    // record (s, e) when it is at least minRun long and (f & need) == need; i = e + 1
    op.localGet(e),
    op.localGet(s),
    op.i32Sub,
    op.localGet(minRun),
    op.i32GeU,
    op.localGet(f),
    op.localGet(need),
    op.i32And,
    op.localGet(need),
    op.i32Eq,
    op.i32And,
    op.if(),
    op.localGet(out),
    op.localGet(s),
    op.i32Store(0),
    op.localGet(out),
    op.localGet(e),
    op.i32Store(4),
    op.localGet(out),
    op.i32Const(8),
    op.i32Add,
    op.localSet(out),
    op.end,
    ...skipPast(e, 0),
    op.end,
    op.end,
    op.localGet(out),
  ]
  return { name: 'runs', params: 6, locals: 6, results: 1 as const, body }
}

/**
 * The module's bytes. Exports:
 * - `walk(p, n, s, flag, hits) → hitsEnd`: one walk (see `exactFunction`); the end state at
 *   `EXACT_END`.
 * - `walkMany(...)`: `WALKS` walks in one loop (see `walkManyFunction`); their end states in the
 *   globals `s0`... Each hit is recorded with the address of its own byte.
 * - `runs(...)`: runs of bytes of a class (see `runsFunction`): the base64 finder's first stage.
 */
export function keywordWalkerBytes(): Uint8Array {
  return wasmModule({
    memory: { minPages: 1 },
    globals: [],
    functions: [exactFunction(), walkManyFunction(WALKS), runsFunction()],
  })
}

interface WalkerExports {
  walk(p: number, n: number, s: number, flag: number, hits: number): number
  walkMany(p: number, end: number, flag: number, hits: number): number
  runs(from: number, to: number, cls: number, out: number, minRun: number, need: number): number
  [global: string]: unknown
}

/** The compiled module (undefined: not yet; null: no WebAssembly). */
let compiled: object | null | undefined

function walkerModule(): object | null {
  if (compiled === undefined) {
    try {
      compiled = wasmApi === undefined ? null : new wasmApi.Module(keywordWalkerBytes())
    } catch {
      compiled = null
    }
  }
  return compiled
}

/**
 * Largest memory of a walker (its table grows with the automaton: 2 KiB per state): past it
 * (about 32,000 states), the JS walks.
 */
const MAX_BYTES = 64 * 1024 * 1024

/**
 * A request for the runs of a byte class (`WasmKeywordWalker.runs`) made with a walk, from the
 * walk's copy of the input (one copy per scan): `out` is set when they were found so.
 */
export interface RunsRequest {
  cls: Uint8Array
  minRun: number
  need: number
  out?: number[] | undefined
}

/**
 * A DFA walker in WebAssembly over a copy of a `KeywordAutomaton`'s table. Its `walk` and
 * `walkParts` have the contracts of the JS walks in prefilter.ts: the ends of keyword occurrences
 * are pushed to `hits` as pairs (index of the last byte, state), in the same order, with the
 * states numbered as in the JS table. Not reentrant (one shared window): its owner makes sure no
 * two walks overlap.
 *
 * Its table is laid out for the fewest instructions per byte: a state is the byte offset of its
 * row (256 i32 entries), so a step is `s = table[s + 4 · byte]`: an address `lea` and the table
 * load, the bytes read two at a time (x64, per two bytes of a walk: one 16-bit load, `movzx`,
 * `shr`, two `lea`, two table loads; little-endian memory, so the low byte comes first). Every
 * state has a second, flagged row at `high + s`
 * (`high` the power of two at or above the number of states): a step into a state where a
 * keyword ends goes to its flagged row, and flagged rows lead only to flagged rows. So a walk
 * that met a keyword end in a block of bytes ends the block with the bit `flag` = `high · ROW`
 * set, with no test per byte; the block is then walked again by `exact`, which records the hits
 * and clears the flag at each. The table takes 2 KiB per state (4 MiB for the built-in
 * detectors' 1,786 states), hence `MAX_BYTES`.
 */
export class WasmKeywordWalker {
  private readonly x: WalkerExports
  private readonly mem: Uint8Array
  private readonly i32: Int32Array
  /** The flag bit of the rows after a keyword end (see above). */
  private readonly flag: number
  /** The byte-class table of `runs` last copied in. */
  private clsTable: Uint8Array | undefined
  /** Bytes a walk goes on past its part: the longest keyword's length less one. */
  private readonly maxTail: number

  private constructor(x: WalkerExports, memory: WasmMemory, flag: number, maxTail: number) {
    this.x = x
    this.mem = new Uint8Array(memory.buffer)
    this.i32 = new Int32Array(memory.buffer)
    this.flag = flag
    this.maxTail = maxTail
  }

  /**
   * A walker for this table (`delta[(state << 8) | byte]`, states at `firstOut` and up end a
   * keyword, the longest `maxLength` bytes), or undefined when WebAssembly is not available, the
   * table would take more than `MAX_BYTES` or a keyword is longer than a quarter of a walk's
   * part of the window.
   */
  static create(
    delta: Uint16Array | Int32Array,
    firstOut: number,
    maxLength: number,
  ): WasmKeywordWalker | undefined {
    if (wasmApi === undefined || maxLength > PART / 4) return undefined
    const n = delta.length >> 8
    let high = 1
    while (high < n) high *= 2
    const bytes = TABLE + 2 * high * ROW
    if (bytes > MAX_BYTES) return undefined
    const mod = walkerModule()
    if (mod === null) return undefined
    const pages = Math.ceil(bytes / PAGE)
    try {
      const memory = new wasmApi.Memory({ initial: pages, maximum: pages })
      const inst = new wasmApi.Instance(mod, { env: { mem: memory } })
      const table = new Int32Array(memory.buffer, TABLE, 2 * high * 256)
      for (let s = 0; s < n; s++)
        for (let b = 0; b < 256; b++) {
          const t = delta[(s << 8) | b] as number
          // The row of state s, then its flagged copy at row high + s.
          table[(s << 8) | b] = (t >= firstOut ? high + t : t) * ROW
          table[((high + s) << 8) | b] = (high + t) * ROW
        }
      return new WasmKeywordWalker(
        inst.exports as unknown as WalkerExports,
        memory,
        high * ROW,
        maxLength - 1,
      )
    } catch {
      return undefined
    }
  }

  /** A state of the JS table as a state here (the byte offset of its row). */
  private toWasm(s: number): number {
    return s * ROW
  }

  /** A state here (without the flag) as a state of the JS table. */
  private toJs(v: number): number {
    return v / ROW
  }

  /** Pushes the hits recorded at [HITS, end) as (address - `base` + `origin`, JS state). */
  private collect(end: number, base: number, origin: number, hits: number[]): void {
    const i32 = this.i32
    for (let q = HITS >> 2, e = end >> 2; q < e; q += 2)
      hits.push((i32[q] as number) - base + origin, this.toJs(i32[q + 1] as number))
  }

  /**
   * Same contract as `walk` in prefilter.ts (from state `s`), but returns the end state. With
   * `runs`, also the runs it asks for when the walk was over all of `input` (see `RunsRequest`).
   */
  walk(input: Uint8Array, from: number, to: number, s: number, hits: number[], runs?: RunsRequest): number {
    const x = this.x
    let v = this.toWasm(s)
    for (let c = from; c < to; c += CHUNK) {
      const end = Math.min(to, c + CHUNK)
      this.mem.set(input.subarray(c, end), INPUT)
      const hEnd = x.walk(INPUT, end - c, v, this.flag, HITS)
      v = this.i32[EXACT_END >> 2] as number
      this.collect(hEnd, INPUT, c, hits)
    }
    if (runs !== undefined && to > from) this.runsOfCopy(INPUT, input, from, to, runs)
    return this.toJs(v)
  }

  /**
   * The walks of `KeywordAutomaton.scan` over `input[from, to)` (at least `WALKS` bytes): `WALKS`
   * walks, walk k over `input[from + k·d, from + (k+1)·d)` (d = ⌊(to - from) / WALKS⌋) from the
   * start state, then on over its tail: the next `maxLength - 1` bytes (the last walk: to `to`);
   * the hits of walk k (those of its tail included) pushed to `hits[k]`.
   *
   * A range that fits the window is copied into the module once (`STAGE`), and walk k's bytes
   * from there to its slot at `k · PART`, a piece of at most `PART - tail` bytes at a time (one
   * piece per walk up to about 64 KB); the last piece with the walk's tail after it. `walkMany`
   * walks the pieces' whole blocks, then the rest of each piece and its tail one byte at a time.
   * With `runs`, the runs it asks for are found in the same copy (see `RunsRequest`).
   */
  walkParts(
    input: Uint8Array,
    from: number,
    to: number,
    hits: readonly number[][],
    runs?: RunsRequest,
  ): void {
    const x = this.x
    const mem = this.mem
    const i32 = this.i32
    const n = to - from
    const d = Math.floor(n / WALKS)
    const room = PART - this.maxTail
    // A range that fits is copied once, then from there to the slots (no view per slot).
    const staged = n <= CHUNK
    if (staged) mem.set(from === 0 && to === input.length ? input : input.subarray(from, to), STAGE)
    i32.fill(0, STATES >> 2, (STATES >> 2) + WALKS)
    for (let k = 0; k < d; k += room) {
      const p = Math.min(room, d - k)
      const last = k + p === d
      const whole = p - (p % BLOCK)
      for (let w = 0; w < WALKS; w++) {
        const at = from + w * d + k
        const partEnd = from + (w + 1) * d
        // The walk's tail: to `to` for the last walk, else the longest keyword's length less one.
        const tail = !last
          ? 0
          : w === WALKS - 1
            ? to - partEnd
            : Math.min(to, partEnd + this.maxTail) - partEnd
        if (staged) mem.copyWithin(INPUT + w * PART, STAGE + at - from, STAGE + at - from + p + tail)
        else mem.set(input.subarray(at, at + p + tail), INPUT + w * PART)
        // `walkMany` walks the piece's whole blocks, then the rest of it and the tail.
        i32[(TAILS >> 2) + w] = p - whole + tail
      }
      const end = x.walkMany(INPUT, INPUT + whole, this.flag, HITS)
      // Each hit's walk is the slot of its address.
      for (let q = HITS >> 2, e = end >> 2; q < e; q += 2) {
        const rel = (i32[q] as number) - INPUT
        const w = (rel / PART) | 0
        ;(hits[w] as number[]).push(from + w * d + k + rel - w * PART, this.toJs(i32[q + 1] as number))
      }
    }
    if (runs !== undefined && staged) this.runsOfCopy(STAGE, input, from, to, runs)
  }

  /**
   * The maximal runs of bytes of `input` whose `cls` entry is not 0, at least `minRun` long and
   * whose entries OR-ed together have all the bits of `need`, as pairs (start, end) pushed to
   * `out`; false (nothing pushed) when `input` is longer than the window (the caller runs its JS
   * loop).
   */
  runs(input: Uint8Array, cls: Uint8Array, minRun: number, need: number, out: number[]): boolean {
    if (input.length > CHUNK || minRun < 1) return false
    this.mem.set(input, INPUT)
    this.runsAt(INPUT, input.length, cls, minRun, need, out)
    return true
  }

  /** `runs` over the `n` bytes at `base` of the memory (an input already copied there). */
  private runsAt(
    base: number,
    n: number,
    cls: Uint8Array,
    minRun: number,
    need: number,
    out: number[],
  ): void {
    if (this.clsTable !== cls) {
      this.mem.set(cls.subarray(0, 256), RUN_CLS)
      this.clsTable = cls
    }
    const end = this.x.runs(base, base + n, RUN_CLS, HITS, minRun, need)
    const i32 = this.i32
    for (let q = HITS >> 2, e = end >> 2; q < e; q++) out.push((i32[q] as number) - base)
  }

  /**
   * The runs `req` asks for (see `runs`), from the copy of `input` a walk just made, when that
   * walk was over all of it and it fits the window: `req.out` is set; else it is left unset.
   */
  private runsOfCopy(base: number, input: Uint8Array, from: number, to: number, req: RunsRequest): void {
    if (from !== 0 || to !== input.length || to > CHUNK || req.minRun < 1) return
    const out: number[] = []
    this.runsAt(base, to, req.cls, req.minRun, req.need, out)
    req.out = out
  }
}
