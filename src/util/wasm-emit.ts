/**
 * A tiny WebAssembly binary emitter: just enough to write small modules of i32 functions from
 * TypeScript (no toolchain, no dependency). Opcodes are written as bytes with the helpers below;
 * `wasmModule` lays out the sections. See https://webassembly.github.io/spec/core/binary/.
 */

/** Unsigned LEB128 of a non-negative integer below 2^32. */
export function uleb(n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`uleb: ${n}`)
  const out: number[] = []
  do {
    let b = n & 0x7f
    n = Math.floor(n / 128)
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}

/** Signed LEB128 of an integer in the i32 range. */
export function sleb(n: number): number[] {
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) throw new RangeError(`sleb: ${n}`)
  const out: number[] = []
  for (;;) {
    const b = n & 0x7f
    n >>= 7
    const done = (n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)
    out.push(done ? b : b | 0x80)
    if (done) return out
  }
}

/** A name or byte string: its length, then its bytes (names are ASCII here). */
function vecBytes(bytes: readonly number[]): number[] {
  return [...uleb(bytes.length), ...bytes]
}
function name(s: string): number[] {
  return vecBytes([...Buffer.from(s, 'utf8')])
}
function section(id: number, body: readonly number[]): number[] {
  return [id, ...uleb(body.length), ...body]
}

export const I32 = 0x7f

/** The instructions used by the modules of this project (opcode bytes). */
export const op = {
  block: (type = 0x40) => [0x02, type],
  loop: (type = 0x40) => [0x03, type],
  if: (type = 0x40) => [0x04, type],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  return: [0x0f],
  /** Calls function `f` (its index in the module's function list). */
  call: (f: number) => [0x10, ...uleb(f)],
  localGet: (i: number) => [0x20, ...uleb(i)],
  localSet: (i: number) => [0x21, ...uleb(i)],
  localTee: (i: number) => [0x22, ...uleb(i)],
  globalGet: (i: number) => [0x23, ...uleb(i)],
  globalSet: (i: number) => [0x24, ...uleb(i)],
  /** i32.load (align exponent 0: any address), with a constant offset. */
  i32Load: (offset = 0) => [0x28, 0, ...uleb(offset)],
  i32Load8u: (offset = 0) => [0x2d, 0, ...uleb(offset)],
  i32Load16u: (offset = 0) => [0x2f, 0, ...uleb(offset)],
  i32Store: (offset = 0) => [0x36, 0, ...uleb(offset)],
  i32Const: (n: number) => [0x41, ...sleb(n)],
  i32Eqz: [0x45],
  i32Eq: [0x46],
  i32LtU: [0x49],
  i32GtU: [0x4b],
  i32LeU: [0x4d],
  i32GeU: [0x4f],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32And: [0x71],
  i32Or: [0x72],
  i32Xor: [0x73],
  i32Shl: [0x74],
  i32ShrU: [0x76],
} as const

export interface WasmFunction {
  /** Exported under this name. */
  name: string
  params: number
  /** Extra i32 locals (numbered after the parameters). */
  locals: number
  /** i32 results (0 or 1). */
  results: 0 | 1
  /** The body's instructions, without the final `end`. */
  body: readonly (readonly number[])[]
}

export interface WasmModuleSpec {
  /** The memory is imported as `env.mem` (the caller sizes it). */
  memory: { minPages: number }
  /** Mutable i32 globals, exported under these names, starting at 0. */
  globals: readonly string[]
  functions: readonly WasmFunction[]
}

/**
 * The bytes of a module with an imported memory (`env.mem`), exported mutable i32 globals and
 * exported functions whose parameters, locals and results are all i32.
 */
export function wasmModule(spec: WasmModuleSpec): Uint8Array {
  const types: string[] = []
  const typeOf = (f: WasmFunction): number => {
    const key = `${f.params}:${f.results}`
    let i = types.indexOf(key)
    if (i === -1) i = types.push(key) - 1
    return i
  }
  const funcTypes = spec.functions.map(typeOf)
  const typeSec = vecOf(
    types.map((k) => {
      const [p, r] = k.split(':').map(Number) as [number, number]
      return [0x60, ...vecBytes(new Array<number>(p).fill(I32)), ...vecBytes(new Array<number>(r).fill(I32))]
    }),
  )
  const importSec = vecOf([[...name('env'), ...name('mem'), 0x02, 0x00, ...uleb(spec.memory.minPages)]])
  const funcSec = vecOf(funcTypes.map((t) => uleb(t)))
  const globalSec = vecOf(spec.globals.map(() => [I32, 0x01, ...op.i32Const(0), ...op.end]))
  const exportSec = vecOf([
    ...spec.functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]),
    ...spec.globals.map((g, i) => [...name(g), 0x03, ...uleb(i)]),
  ])
  const codeSec = vecOf(
    spec.functions.map((f) => {
      const locals = f.locals > 0 ? [...uleb(1), ...uleb(f.locals), I32] : uleb(0)
      const body = [...locals, ...f.body.flat(), ...op.end]
      return [...uleb(body.length), ...body]
    }),
  )
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, typeSec),
    ...section(2, importSec),
    ...section(3, funcSec),
    ...(spec.globals.length > 0 ? section(6, globalSec) : []),
    ...section(7, exportSec),
    ...section(10, codeSec),
  ])
}

function vecOf(items: readonly (readonly number[])[]): number[] {
  return [...uleb(items.length), ...items.flat()]
}
