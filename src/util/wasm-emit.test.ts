import assert from 'node:assert/strict'
import { test } from 'node:test'
import { op, sleb, uleb, wasmModule } from './wasm-emit.js'

interface Wasm {
  Module: new (b: Uint8Array) => object
  Instance: new (m: object, i: object) => { exports: Record<string, unknown> }
  Memory: new (d: { initial: number }) => { buffer: ArrayBuffer }
  validate(b: Uint8Array): boolean
}
const W = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly

test('LEB128: the encodings of the spec examples and the edges', () => {
  assert.deepEqual(uleb(0), [0])
  assert.deepEqual(uleb(127), [0x7f])
  assert.deepEqual(uleb(128), [0x80, 0x01])
  assert.deepEqual(uleb(624485), [0xe5, 0x8e, 0x26])
  assert.deepEqual(uleb(0xffffffff), [0xff, 0xff, 0xff, 0xff, 0x0f])
  assert.deepEqual(sleb(0), [0])
  assert.deepEqual(sleb(-1), [0x7f])
  assert.deepEqual(sleb(63), [0x3f])
  assert.deepEqual(sleb(64), [0xc0, 0x00])
  assert.deepEqual(sleb(-64), [0x40])
  assert.deepEqual(sleb(-65), [0xbf, 0x7f])
  assert.deepEqual(sleb(-123456), [0xc0, 0xbb, 0x78])
  assert.deepEqual(sleb(0x7fffffff), [0xff, 0xff, 0xff, 0xff, 0x07])
  assert.deepEqual(sleb(-0x80000000), [0x80, 0x80, 0x80, 0x80, 0x78])
  assert.throws(() => uleb(-1), RangeError)
  assert.throws(() => uleb(2 ** 32), RangeError)
  assert.throws(() => sleb(2 ** 31), RangeError)
  assert.throws(() => uleb(1.5), RangeError)
})

test('a module with memory, globals, loops and branches validates and runs', () => {
  // sum(from, to): the bytes of memory at [from, to) added up, the last byte kept in global `last`.
  const bytes = wasmModule({
    memory: { minPages: 1 },
    globals: ['last'],
    functions: [
      {
        name: 'sum',
        params: 2,
        locals: 1,
        results: 1,
        body: [
          op.block(),
          op.localGet(0),
          op.localGet(1),
          op.i32GeU,
          op.brIf(0),
          op.loop(),
          op.localGet(0),
          op.i32Load8u(),
          op.globalSet(0),
          op.localGet(2),
          op.globalGet(0),
          op.i32Add,
          op.localSet(2),
          op.localGet(0),
          op.i32Const(1),
          op.i32Add,
          op.localTee(0),
          op.localGet(1),
          op.i32LtU,
          op.brIf(0),
          op.end,
          op.end,
          op.localGet(2),
        ],
      },
      // big(): a constant whose LEB128 takes five bytes, through i32.store / i32.load with offsets.
      {
        name: 'big',
        params: 0,
        locals: 0,
        results: 1,
        body: [op.i32Const(0), op.i32Const(-123456789), op.i32Store(300), op.i32Const(100), op.i32Load(200)],
      },
    ],
  })
  assert.ok(W.validate(bytes))
  const mem = new W.Memory({ initial: 1 })
  const { exports } = new W.Instance(new W.Module(bytes), { env: { mem } })
  const view = new Uint8Array(mem.buffer)
  for (let i = 0; i < 1000; i++) view[i] = (i * 7) & 0xff
  let want = 0
  for (let i = 10; i < 1000; i++) want += (i * 7) & 0xff
  assert.equal((exports.sum as (a: number, b: number) => number)(10, 1000), want)
  assert.equal((exports.last as { value: number }).value, (999 * 7) & 0xff)
  assert.equal((exports.sum as (a: number, b: number) => number)(5, 5), 0)
  assert.equal((exports.big as () => number)(), -123456789)
  // A broken body (an `end` short) does not validate: the emitter adds exactly one.
  const broken = wasmModule({
    memory: { minPages: 1 },
    globals: [],
    functions: [{ name: 'f', params: 0, locals: 0, results: 0, body: [op.block()] }],
  })
  assert.equal(W.validate(broken), false)
})

test('calls between functions, i32.xor, shifts, 16-bit loads and unsigned compares', () => {
  // f0 twice(x) = x + x; f1 mix(a, b) = twice(a) ^ b; f2 high(addr) = the 16-bit word at addr
  // shifted right by 8 (its second byte: memory is little-endian); f3 gt(a, b) = a >u b.
  const bytes = wasmModule({
    memory: { minPages: 1 },
    globals: [],
    functions: [
      { name: 'twice', params: 1, locals: 0, results: 1, body: [op.localGet(0), op.localGet(0), op.i32Add] },
      {
        name: 'mix',
        params: 2,
        locals: 0,
        results: 1,
        body: [op.localGet(0), op.call(0), op.localGet(1), op.i32Xor],
      },
      {
        name: 'high',
        params: 1,
        locals: 0,
        results: 1,
        body: [op.localGet(0), op.i32Load16u(), op.i32Const(8), op.i32ShrU],
      },
      { name: 'gt', params: 2, locals: 0, results: 1, body: [op.localGet(0), op.localGet(1), op.i32GtU] },
    ],
  })
  assert.ok(W.validate(bytes))
  const mem = new W.Memory({ initial: 1 })
  const { exports } = new W.Instance(new W.Module(bytes), { env: { mem } })
  assert.equal((exports.mix as (a: number, b: number) => number)(21, 0b1010), 42 ^ 0b1010)
  new Uint8Array(mem.buffer).set([0x12, 0x34, 0x56], 16)
  assert.equal((exports.high as (a: number) => number)(16), 0x34)
  const gt = exports.gt as (a: number, b: number) => number
  assert.equal(gt(-1, 1), 1) // 0xffffffff >u 1
  assert.equal(gt(1, 2), 0)
})
