/**
 * The keyword pass at native speed: the same DFA table as `KeywordAutomaton` (state × byte →
 * state, states at or above `firstOut` end a keyword), walked by a small WebAssembly module that
 * this file writes with the byte emitter (src/util/wasm-emit.ts). The JS walks in prefilter.ts
 * stay as the fallback (no WebAssembly) and as the oracle its tests compare this one with.
 *
 * Memory of one walker (its own, imported by the module): the table at address 0 (so a
 * transition is one load with no base to add), then an input window of `CHUNK` bytes, then the
 * hit buffer (`CHUNK` pairs of i32: the address of the byte where a keyword ends, the state). The
 * input is copied into the window once, a chunk at a time; the walks carry their state from one
 * chunk to the next, so the hits and their order are exactly those of the JS walks.
 */
import { op, wasmModule } from '../util/wasm-emit.js'

/** Walks of `walkMany` (independent chains of loads in one loop). */
export const WALKS = 4
/** Bytes of input per call (the window); a `WALKS`th of it per walk of `walkMany`. */
export const CHUNK = 64 * 1024
/** The input of each walk of `walkMany` per call. */
const PART = CHUNK / WALKS
const PAGE = 64 * 1024

/** The parts of the WebAssembly JS API used here (the project's `lib` has no DOM types). */
interface WasmGlobal {
  value: number
}
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

/**
 * One DFA step: `s = table[(s << 8) | mem[i]]` (local `s`, byte address in local `i`), the table
 * of 2-byte (`wide` false) or 4-byte entries at address 0.
 */
function step(s: number, i: number, wide: boolean, offset = 0): (readonly number[])[] {
  return [
    // (s << (8 + w)) | (byte << w) with w = log2(entry size): the byte's shift is off the chain
    // of dependent loads (state → address → state), which is what limits the walk.
    op.localGet(s),
    op.i32Const(wide ? 10 : 9),
    op.i32Shl,
    op.localGet(i),
    op.i32Load8u(offset),
    op.i32Const(wide ? 2 : 1),
    op.i32Shl,
    op.i32Or,
    wide ? op.i32Load() : op.i32Load16u(),
    op.localSet(s),
  ]
}

/** `if (s >= firstOut) { store (i + add, s) at *hits; hits += 8 }`. */
function record(s: number, i: number, firstOut: number, hits: number, add = 0): (readonly number[])[] {
  return [
    op.localGet(s),
    op.localGet(firstOut),
    op.i32GeU,
    op.if(),
    op.localGet(hits),
    op.localGet(i),
    ...(add === 0 ? [] : [op.i32Const(add), op.i32Add]),
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

/** `i += 1; if (i < to) continue the loop` (the loop is the innermost label). */
function next(i: number, to: number): (readonly number[])[] {
  return [op.localGet(i), op.i32Const(1), op.i32Add, op.localTee(i), op.localGet(to), op.i32LtU, op.brIf(0)]
}

/**
 * `walkMany(from, to, s0..s{n-1}, firstOut, hits) → hitsEnd`: n walks in one loop, walk k over
 * [from + k·PART, to + k·PART) from state `sk` (the input's offset is the load's constant, so the
 * walks share one address); the hits of all walks in one list, in order of their byte's address
 * within each walk. Params: 0 from (i), 1 to, 2..n+1 states, n+2 firstOut, n+3 hit pointer.
 */
function walkManyFunction(n: number, wide: boolean) {
  const state = (k: number) => 2 + k
  const firstOut = n + 2
  const hits = n + 3
  const body: (readonly number[])[] = [
    op.block(),
    op.localGet(0),
    op.localGet(1),
    op.i32GeU,
    op.brIf(0),
    op.loop(),
  ]
  for (let k = 0; k < n; k++) body.push(...step(state(k), 0, wide, k * PART))
  for (let k = 0; k < n; k++) body.push(...record(state(k), 0, firstOut, hits, k * PART))
  body.push(...next(0, 1), op.end, op.end)
  for (let k = 0; k < n; k++) body.push(op.localGet(state(k)), op.globalSet(k))
  body.push(op.localGet(hits))
  return { name: 'walkMany', params: n + 4, locals: 0, results: 1 as const, body }
}

/**
 * `runs(from, to, cls, out, minRun, need) → outEnd`: the maximal runs of bytes whose class
 * (`mem[cls + byte]`) is not 0, at least `minRun` long, whose classes OR-ed together have all the
 * bits of `need`, as pairs (start, end) at `out`. A skip loop (the one of `base64Spans` in
 * decode.ts): a run long enough must cover the byte `minRun - 1` ahead, so the bytes before it
 * are not looked at when that one is not in the class. Params: 0 i, 1 to, 2 cls, 3 out,
 * 4 minRun, 5 need; locals 6 j, 7 e, 8 s, 9 f (the OR of the classes), 10 c.
 */
function runsFunction() {
  const classOf = (addr: (readonly number[])[]) => [
    ...addr,
    op.i32Load8u(),
    op.localGet(2),
    op.i32Add,
    op.i32Load8u(),
  ]
  /** `c = class of the byte at addr; if (c == 0) break out of the enclosing block; f |= c`. */
  const take = (addr: (readonly number[])[]) => [
    ...classOf(addr),
    op.localTee(10),
    op.i32Eqz,
    op.brIf(1),
    op.localGet(9),
    op.localGet(10),
    op.i32Or,
    op.localSet(9),
  ]
  const body: (readonly number[])[] = [
    op.block(),
    op.loop(),
    // j = i + minRun - 1; done when j >= to
    op.localGet(0),
    op.localGet(4),
    op.i32Add,
    op.i32Const(1),
    op.i32Sub,
    op.localTee(6),
    op.localGet(1),
    op.i32GeU,
    op.brIf(1),
    // not in the class: no run of minRun starts at or before j
    ...classOf([op.localGet(6)]),
    op.localTee(9),
    op.i32Eqz,
    op.if(),
    op.localGet(6),
    op.i32Const(1),
    op.i32Add,
    op.localSet(0),
    op.br(1),
    op.end,
    // e: the end of the run holding j
    op.localGet(6),
    op.i32Const(1),
    op.i32Add,
    op.localSet(7),
    op.block(),
    op.loop(),
    op.localGet(7),
    op.localGet(1),
    op.i32GeU,
    op.brIf(1),
    ...take([op.localGet(7)]),
    op.localGet(7),
    op.i32Const(1),
    op.i32Add,
    op.localSet(7),
    op.br(0),
    op.end,
    op.end,
    // shorter than minRun even if it started at i: go on after it
    op.localGet(7),
    op.localGet(0),
    op.i32Sub,
    op.localGet(4),
    op.i32LtU,
    op.if(),
    op.localGet(7),
    op.i32Const(1),
    op.i32Add,
    op.localSet(0),
    op.br(1),
    op.end,
    // s: its start (not before i)
    op.localGet(6),
    op.localSet(8),
    op.block(),
    op.loop(),
    op.localGet(8),
    op.localGet(0),
    op.i32LeU,
    op.brIf(1),
    ...take([op.localGet(8), op.i32Const(1), op.i32Sub]),
    op.localGet(8),
    op.i32Const(1),
    op.i32Sub,
    op.localSet(8),
    op.br(0),
    op.end,
    op.end,
    // record (s, e) when (f & need) == need; i = e + 1
    op.localGet(9),
    op.localGet(5),
    op.i32And,
    op.localGet(5),
    op.i32Eq,
    op.if(),
    op.localGet(3),
    op.localGet(8),
    op.i32Store(0),
    op.localGet(3),
    op.localGet(7),
    op.i32Store(4),
    op.localGet(3),
    op.i32Const(8),
    op.i32Add,
    op.localSet(3),
    op.end,
    op.localGet(7),
    op.i32Const(1),
    op.i32Add,
    op.localSet(0),
    op.br(0),
    op.end,
    op.end,
    op.localGet(3),
  ]
  return { name: 'runs', params: 6, locals: 5, results: 1 as const, body }
}

/**
 * The module's bytes. Exports:
 * - `walk(from, to, s, firstOut, hits) → hitsEnd`: one walk over the bytes at [from, to) from
 *   state `s`; the end state in `s0`.
 * - `walkMany(...)`: `WALKS` walks in one loop (see `walkManyFunction`); their end states in the
 *   globals `s0`... Each hit is recorded with the address of its own byte.
 * - `runs(...)`: runs of bytes of a class (see `runsFunction`): the base64 finder's first stage.
 */
export function keywordWalkerBytes(wide: boolean): Uint8Array {
  // walk: params 0 from(i) 1 to 2 s 3 firstOut 4 hits
  const walk = {
    name: 'walk',
    params: 5,
    locals: 0,
    results: 1 as const,
    body: [
      op.block(),
      op.localGet(0),
      op.localGet(1),
      op.i32GeU,
      op.brIf(0),
      op.loop(),
      ...step(2, 0, wide),
      ...record(2, 0, 3, 4),
      ...next(0, 1),
      op.end,
      op.end,
      op.localGet(2),
      op.globalSet(0),
      op.localGet(4),
    ],
  }
  const walkMany = walkManyFunction(WALKS, wide)
  return wasmModule({
    memory: { minPages: 1 },
    globals: Array.from({ length: WALKS }, (_, k) => `s${k}`),
    functions: [walk, walkMany, runsFunction()],
  })
}

interface WalkerExports {
  walk(from: number, to: number, s: number, firstOut: number, hits: number): number
  walkMany(...args: number[]): number
  runs(from: number, to: number, cls: number, out: number, minRun: number, need: number): number
  [global: string]: unknown
}

const modules: (object | null | undefined)[] = [undefined, undefined]

/** The compiled module for 2-byte (0) or 4-byte (1) table entries; null without WebAssembly. */
function moduleFor(wide: boolean): object | null {
  const k = wide ? 1 : 0
  let m = modules[k]
  if (m === undefined) {
    try {
      m = wasmApi === undefined ? null : new wasmApi.Module(keywordWalkerBytes(wide))
    } catch {
      m = null
    }
    modules[k] = m
  }
  return m
}

/**
 * A DFA walker in WebAssembly over a copy of `delta` (see `KeywordAutomaton`). Its `walk` and
 * `walkMany` have the contract of the JS functions of the same names in prefilter.ts: the ends of
 * keyword occurrences are pushed to `hits` as pairs (index of the last byte, state), in the same
 * order. Not reentrant (one shared window): its owner makes sure no two walks overlap.
 */
export class WasmKeywordWalker {
  private readonly x: WalkerExports
  private readonly mem: Uint8Array
  private readonly i32: Int32Array
  private readonly input: number
  private readonly hits: number
  /** Address of the byte-class table of `runs`, and the table last copied there. */
  private readonly cls: number
  private clsTable: Uint8Array | undefined
  /** The globals with the walks' end states. */
  private readonly endState: WasmGlobal[]
  private readonly args: number[] = new Array<number>(WALKS + 4).fill(0)

  private constructor(x: WalkerExports, memory: WasmMemory, input: number) {
    this.x = x
    this.endState = Array.from({ length: WALKS }, (_, k) => x[`s${k}`] as WasmGlobal)
    this.mem = new Uint8Array(memory.buffer)
    this.i32 = new Int32Array(memory.buffer)
    this.input = input
    this.hits = input + CHUNK
    this.cls = this.hits + CHUNK * 8
  }

  /** A walker for this table, or undefined when WebAssembly is not available. */
  static create(delta: Uint16Array | Int32Array): WasmKeywordWalker | undefined {
    const wide = delta instanceof Int32Array
    const mod = moduleFor(wide)
    if (mod === null || wasmApi === undefined) return undefined
    const tableBytes = delta.byteLength
    const input = Math.ceil(tableBytes / 8) * 8
    const pages = Math.ceil((input + CHUNK + CHUNK * 8 + 256) / PAGE)
    try {
      const memory = new wasmApi.Memory({ initial: pages, maximum: pages })
      const inst = new wasmApi.Instance(mod, { env: { mem: memory } })
      if (wide) new Int32Array(memory.buffer, 0, delta.length).set(delta)
      else new Uint16Array(memory.buffer, 0, delta.length).set(delta)
      return new WasmKeywordWalker(inst.exports as unknown as WalkerExports, memory, input)
    } catch {
      return undefined
    }
  }

  /** Same contract as `walk` in prefilter.ts, but returns the end state. */
  walk(firstOut: number, input: Uint8Array, from: number, to: number, s: number, hits: number[]): number {
    const x = this.x
    const base = this.input
    const h0 = this.hits
    const i32 = this.i32
    for (let c = from; c < to; c += CHUNK) {
      const end = Math.min(to, c + CHUNK)
      this.mem.set(input.subarray(c, end), base)
      const hEnd = x.walk(base, base + (end - c), s, firstOut, h0)
      s = this.endState[0]!.value
      for (let p = h0 >> 2, q = hEnd >> 2; p < q; p += 2)
        hits.push((i32[p] as number) - base + c, i32[p + 1] as number)
    }
    return s
  }

  /**
   * Same contract as `walkMany` in prefilter.ts: `WALKS` walks, walk k over `input[from + k·d,
   * from + (k+1)·d)` from the start state, hits to `hits[k]`; the end states in `states`.
   */
  walkMany(
    firstOut: number,
    input: Uint8Array,
    from: number,
    d: number,
    hits: readonly number[][],
    states: Int32Array,
  ): void {
    const x = this.x
    const base = this.input
    const i32 = this.i32
    const mem = this.mem
    const h = this.hits
    // The arguments: from, to, the states, firstOut, the hit pointer.
    const args = this.args
    args.fill(0, 2, 2 + WALKS)
    args[2 + WALKS] = firstOut
    args[3 + WALKS] = h
    for (let k = 0; k < d; k += PART) {
      const p = Math.min(PART, d - k)
      for (let w = 0; w < WALKS; w++) {
        const at = from + w * d + k
        mem.set(input.subarray(at, at + p), base + w * PART)
      }
      args[0] = base
      args[1] = base + p
      const end = x.walkMany(...args)
      for (let w = 0; w < WALKS; w++) args[2 + w] = (this.endState[w] as WasmGlobal).value
      for (let q = h >> 2, e = end >> 2; q < e; q += 2) {
        const rel = (i32[q] as number) - base
        const w = (rel / PART) | 0
        ;(hits[w] as number[]).push(rel - w * PART + from + w * d + k, i32[q + 1] as number)
      }
    }
    for (let w = 0; w < WALKS; w++) states[w] = args[2 + w] as number
  }

  /**
   * The maximal runs of bytes of `input` whose `cls` entry is not 0, at least `minRun` long and
   * whose entries OR-ed together have all the bits of `need`, as pairs (start, end) pushed to
   * `out`; false (nothing pushed) when `input` is longer than the window (the caller runs its JS
   * loop).
   */
  runs(input: Uint8Array, cls: Uint8Array, minRun: number, need: number, out: number[]): boolean {
    if (input.length > CHUNK || minRun < 1) return false
    if (this.clsTable !== cls) {
      this.mem.set(cls.subarray(0, 256), this.cls)
      this.clsTable = cls
    }
    const base = this.input
    this.mem.set(input, base)
    const end = this.x.runs(base, base + input.length, this.cls, this.hits, minRun, need)
    const i32 = this.i32
    for (let q = this.hits >> 2, e = end >> 2; q < e; q++) out.push((i32[q] as number) - base)
    return true
  }
}
