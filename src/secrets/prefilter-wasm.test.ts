import assert from 'node:assert/strict'
import { test } from 'node:test'
import { prng } from '../util/prng.js'
import { B64_CLASS, B64_NEED, B64_RUN, base64Spans, type EncodedSpan } from './decode.js'
import { BUILTIN_DETECTORS } from './detectors/index.js'
import { SecretScanner } from './engine.js'
import { KeywordAutomaton, type RunsRequest } from './prefilter.js'
import { BLOCK, CHUNK, keywordWalkerBytes, WALKS, WasmKeywordWalker, wasmApi } from './prefilter-wasm.js'
import { Fakes } from './testing/fakes.js'

/** The built-in detectors' keywords, as the engine gives them to its automaton. */
const KEYWORDS = [...new Set(BUILTIN_DETECTORS.flatMap((d) => d.keywords.map((k) => k.toLowerCase())))]
const wasm = new KeywordAutomaton(KEYWORDS)
const js = new KeywordAutomaton(KEYWORDS, { wasm: false })

/** Every hit of `a` on `buf`, in the order reported: `keyword@start`. */
function hits(a: KeywordAutomaton, buf: Uint8Array, from = 0, to = buf.length): string[] {
  const out: string[] = []
  a.scan(buf, from, to, (k, start) => {
    out.push(`${k}@${start}`)
    return true
  })
  return out
}

/** Both walkers over `buf`: the same hits in the same order; returns how many. */
function same(buf: Uint8Array, what: string, from = 0, to = buf.length): number {
  const w = hits(wasm, buf, from, to)
  const j = hits(js, buf, from, to)
  assert.equal(w.length, j.length, `${what}: hit count`)
  assert.deepEqual(w, j, what)
  assert.equal(wasm.any(buf.subarray(from, to)), j.length > 0, `${what}: any`)
  return w.length
}

test('the walker module validates, and WebAssembly is used on this runtime', () => {
  assert.ok(wasmApi !== undefined)
  assert.ok(wasmApi.validate(keywordWalkerBytes()))
  assert.ok(wasmApi.validate(keywordWalkerBytes()))
  assert.equal(wasm.usesWasm, true)
  assert.equal(js.usesWasm, false)
  assert.equal(new SecretScanner(BUILTIN_DETECTORS.slice(0, 3)).usesWasm, true)
})

test('oracle: random bytes, keyword-alphabet text and planted keywords give the same hits', () => {
  const rand = prng(1616)
  const alphabet = Buffer.from(
    [...new Set(KEYWORDS.join(''))].join('') + 'ABCXYZ_-=:"{} \n\x00\xff\xe9',
    'latin1',
  )
  let total = 0
  // Lengths around the many-walk threshold, the walks' window parts (CHUNK / WALKS) and CHUNK.
  const part = CHUNK / WALKS
  const lengths = [0, 1, 2, 3, 255, 256, 511, 512, 513, 1023, 4096 + 3, part * WALKS - 1, part * WALKS + 7]
  for (let r = 0; r < 40; r++) lengths.push(Math.floor(rand() * 3 * CHUNK * WALKS))
  for (const [li, len] of lengths.entries()) {
    for (const style of ['bytes', 'alphabet'] as const) {
      const buf = Buffer.alloc(len)
      for (let i = 0; i < len; i++)
        buf[i] =
          style === 'bytes'
            ? Math.floor(rand() * 256)
            : (alphabet[Math.floor(rand() * alphabet.length)] as number)
      // Keywords in any case at the edges of the parts, of the windows and at random.
      const d = Math.floor(len / WALKS)
      const spots = [d, 2 * d, 3 * d, part, 2 * part, CHUNK, len >> 1]
      for (let k = 0; k < 20; k++) spots.push(Math.floor(rand() * len))
      for (const at of spots) {
        const kw = KEYWORDS[Math.floor(rand() * KEYWORDS.length)] as string
        const from = at - Math.floor(rand() * kw.length)
        const text = rand() < 0.5 ? kw.toUpperCase() : kw
        if (from >= 0 && from + kw.length <= len) buf.write(text, from, 'latin1')
      }
      total += same(buf, `${style} #${li}, length ${len}`)
      // A sub-range (offsets not at 0).
      if (len > 10) total += same(buf, `${style} #${li}, sub-range`, 3, len - 5)
    }
  }
  assert.ok(total > 1000, `the inputs have keyword hits (${total})`)
})

test("oracle: keywords across block edges, in a part's last partial block and across pieces", () => {
  // The WebAssembly walks test for keyword ends once per block of BLOCK bytes and walk the rest
  // of each piece one byte at a time: keywords ending on each side of every such edge.
  const rand = prng(1717)
  const room = CHUNK / WALKS - (Math.max(...KEYWORDS.map((k) => k.length)) - 1)
  let total = 0
  const lengths = [512, 512 + 7, WALKS * BLOCK * 5 + 3, 4099, 20_062, CHUNK - 1, CHUNK + 1, 3 * CHUNK + 17]
  for (const len of lengths) {
    const d = Math.floor(len / WALKS)
    for (const kw of ['ghp_', 'token', 'a', KEYWORDS[Math.floor(rand() * KEYWORDS.length)] as string]) {
      const buf = Buffer.alloc(len, 0x2e)
      const ends: number[] = []
      for (let w = 0; w < WALKS; w++) {
        const part = w * d
        // Ends around each of the first blocks' edges, around the part's last whole block and
        // in its partial block, and around the part's end (the tail).
        for (const e of [BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK - 1, 2 * BLOCK])
          if (e < d) ends.push(part + e)
        const whole = d - (d % BLOCK)
        for (const e of [whole - 1, whole, whole + 1, d - 1, d, d + 1]) if (e >= 0) ends.push(part + e)
        // A part longer than a walk's slot of the window is walked in pieces of `room` bytes.
        for (let r = room; r < d; r += room) ends.push(part + r - 1, part + r, part + r + 1)
      }
      let last = -1
      for (const e of ends.sort((a, b) => a - b)) {
        const start = e - kw.length + 1
        if (start <= last || start < 0 || e >= len) continue
        buf.write(kw, start, 'latin1')
        last = e
      }
      total += same(buf, `${kw} in ${len} bytes`)
    }
  }
  // A keyword at every offset of a block, and a block where several walks meet keywords.
  for (let off = 0; off < 2 * BLOCK; off++) {
    const buf = Buffer.alloc(4096, 0x20)
    for (let w = 0; w < WALKS; w++) buf.write('xoxb-', w * 512 + off, 'latin1')
    total += same(buf, `offset ${off}`)
  }
  assert.ok(total > 900, `the inputs have keyword hits (${total})`)
})

test('oracle: runs of keyword characters, non-ASCII, zero bytes and 10 MB', () => {
  const MB = 1 << 20
  const cases: [string, Buffer][] = [
    ['ghp_ run', Buffer.from('ghp_'.repeat(50_000))],
    ['mixed keyword run', Buffer.from('password=token=secret:AKIAeyJ-----BEGIN '.repeat(5_000))],
    ['A run', Buffer.alloc(300_000, 'A')],
    ['zero bytes', Buffer.alloc(200_000)],
    ['0xff bytes', Buffer.alloc(200_000, 0xff)],
    ['non-ASCII text', Buffer.from('clé=ünïcödé tøkën ☃ 密码 token '.repeat(4_000))],
    ['10 MB of keywords and text', Buffer.from('xoxb-1 api_key=AKIA npm_ '.repeat((10 * MB) / 25))],
  ]
  for (const [name, buf] of cases) {
    const n = same(buf, name)
    if (!/zero|0xff/.test(name)) assert.ok(n > 0, `${name}: has hits`)
  }
})

test('oracle: a callback returning false stops both walkers at the same hit', () => {
  const buf = Buffer.from('token '.repeat(20_000))
  for (const stopAt of [1, 7, 5_000]) {
    const seen: string[][] = []
    for (const a of [wasm, js]) {
      const got: string[] = []
      assert.equal(
        a.scan(buf, 0, buf.length, (k, s) => {
          got.push(`${k}@${s}`)
          return got.length < stopAt
        }),
        false,
      )
      seen.push(got)
    }
    assert.equal(seen[0]?.length, stopAt)
    assert.deepEqual(seen[0], seen[1])
  }
})

test('oracle: the 4-byte table (more than 65,535 states) walks the same', () => {
  const rand = prng(7)
  const kws = ['tok', 'token', 'ghp_', 'aa', 'a', 'key-', 'https://']
  const wide = new KeywordAutomaton(kws, { wideTable: true })
  const narrow = new KeywordAutomaton(kws, { wasm: false })
  assert.equal(wide.usesWasm, true)
  for (const len of [100, 700, 5_000, 3 * CHUNK + 11]) {
    let text = ''
    for (let i = 0; i < len; i++) text += 'atokenghp_-ks:/ Ah'[Math.floor(rand() * 18)]
    const buf = Buffer.from(text, 'latin1')
    assert.deepEqual(hits(wide, buf), hits(narrow, buf), `length ${len}`)
  }
})

test('oracle at the engine: the same matches with the WebAssembly and the JS keyword pass', () => {
  const fakes = new Fakes(31)
  const w = new SecretScanner(BUILTIN_DETECTORS)
  const j = new SecretScanner(BUILTIN_DETECTORS, { wasm: false })
  const rand = prng(3)
  const parts: string[] = []
  for (let i = 0; i < 3_000; i++) {
    const r = rand()
    if (r < 0.02) parts.push(`token=${fakes.crcToken('ghp_')}`)
    else if (r < 0.04) parts.push(`"aws_secret_access_key": "${fakes.chars('b', 40)}"`)
    else if (r < 0.05) parts.push(Buffer.from(`password=${fakes.chars('a', 20)}`).toString('base64'))
    else parts.push(`{"id": ${i}, "name": "item ${i}", "token": "none", "key": "k${i}"}`)
  }
  const text = parts.join('\n')
  const key = (m: { detector: { id: string }; start: number; end: number }) =>
    `${m.detector.id}@${m.start}-${m.end}`
  const a = w.scan(Buffer.from(text, 'latin1'))
  const b = j.scan(Buffer.from(text, 'latin1'))
  assert.ok(a.matches.length >= 60, `planted keys found (${a.matches.length})`)
  assert.deepEqual(a.matches.map(key), b.matches.map(key))
  assert.deepEqual(a.stats, b.stats)
  assert.equal(w.mask(text), j.mask(text))
})

test('oracle: the base64 runs found in WebAssembly give the same spans as the JS loop', () => {
  const rand = prng(64)
  const pieces = [
    'QUJD',
    'ZGVm',
    'Z2hp',
    'a2V5',
    'dG9r',
    'ZW4=',
    '==',
    '=',
    '-',
    '_',
    '+',
    '/',
    'abc',
    'XYZ',
    '0123',
  ]
  const seps = [' ', '"', ':', '\n', '.', ',', '\x00', '\xff']
  let spans = 0
  for (let round = 0; round < 300; round++) {
    const target = round < 200 ? Math.floor(rand() * 4000) : Math.floor(rand() * CHUNK)
    let text = ''
    while (text.length < target) {
      const r = rand()
      if (r < 0.1) text += seps[Math.floor(rand() * seps.length)]
      else if (r < 0.12) text += Buffer.from(`password=${rand()}`).toString('base64')
      else if (r < 0.13)
        text += 'f'.repeat(Math.floor(rand() * 60)) // one case: never a span
      else text += pieces[Math.floor(rand() * pieces.length)]
    }
    const buf = Buffer.from(text, 'latin1')
    const runs = wasm.runsOf(buf, B64_CLASS, B64_RUN, round % 2 === 0 ? B64_NEED : 0)
    assert.ok(runs !== undefined, 'runs in WebAssembly')
    // Only runs at least B64_RUN long, each a maximal run of base64 characters.
    for (let k = 0; k < runs.length; k += 2) {
      const [rs, re] = [runs[k] as number, runs[k + 1] as number]
      assert.ok(re - rs >= B64_RUN, `round ${round}: run [${rs}, ${re}) shorter than ${B64_RUN}`)
      assert.ok(rs === 0 || B64_CLASS[buf[rs - 1] as number] === 0, `round ${round}: run starts at ${rs}`)
      assert.ok(re === buf.length || B64_CLASS[buf[re] as number] === 0, `round ${round}: run ends at ${re}`)
    }
    const a: EncodedSpan[] = []
    const b: EncodedSpan[] = []
    base64Spans(buf, a, runs)
    base64Spans(buf, b)
    assert.deepEqual(a, b, `round ${round}, length ${buf.length}`)
    spans += a.length
  }
  assert.ok(spans > 500, `the inputs have spans (${spans})`)
  // Runs around minRun long, next to words of every length, at the start and the end of the
  // input (the second probe, s + minRun - 1, lands on each side of a run's end and past the end).
  const mixed = (n: number, at: number) => {
    let t = ''
    for (let q = 0; q < n; q++) t += 'aB0-_Zy9'[(q + at) % 8]
    return t
  }
  let checked = 0
  for (let len = B64_RUN - 3; len <= B64_RUN + 3; len++)
    for (let word = 0; word < B64_RUN + 2; word++)
      for (const sep of [' ', '"', '.']) {
        const text = `${mixed(len, word)}${sep}${mixed(word, 1)}${sep}${mixed(len, 2)}${sep}${mixed(word, 3)}${mixed(len, 4)}`
        const buf = Buffer.from(text, 'latin1')
        const runs = wasm.runsOf(buf, B64_CLASS, B64_RUN, 0) as number[]
        const want: number[] = []
        for (const m of text.matchAll(/[A-Za-z0-9_\-+/]+/g))
          if (m[0].length >= B64_RUN) want.push(m.index, m.index + m[0].length)
        assert.deepEqual(runs, want, `len ${len}, word ${word}, ${JSON.stringify(sep)}`)
        checked += want.length / 2
      }
  assert.ok(checked > 300, `runs checked (${checked})`)
  // The runs found with the keyword pass, from its copy of the input (the engine's path): the
  // same as `runsOf`, for a short input (one walk), a longer one (the parts) and a whole window;
  // not for a sub-range or an input longer than the window.
  const text = Array.from({ length: 3000 }, (_, i) =>
    i % 7 === 0 ? Buffer.from(`password=${i} and a longer value`).toString('base64') : `w${i}`,
  ).join(' ')
  for (const len of [40, 300, 511, 512, 5_000, 20_000, CHUNK]) {
    const buf = Buffer.from(text.slice(0, len).padEnd(len, ' Zm9vYmFyYmF6cXV4'), 'latin1')
    const req: RunsRequest = { cls: B64_CLASS, minRun: B64_RUN, need: B64_NEED }
    wasm.scan(buf, 0, buf.length, () => true, req)
    assert.ok(req.out !== undefined, `length ${len}: runs from the keyword pass`)
    assert.deepEqual(req.out, wasm.runsOf(buf, B64_CLASS, B64_RUN, B64_NEED), `length ${len}`)
    if (len >= 5_000) assert.ok(req.out.length > 0, `length ${len}: has runs`)
    const sub: RunsRequest = { cls: B64_CLASS, minRun: B64_RUN, need: B64_NEED }
    wasm.scan(buf, 1, buf.length, () => true, sub)
    assert.equal(sub.out, undefined, `length ${len}: a sub-range gives no runs`)
  }
  const big: RunsRequest = { cls: B64_CLASS, minRun: B64_RUN, need: B64_NEED }
  wasm.scan(Buffer.alloc(CHUNK + 1, 'A'), 0, CHUNK + 1, () => true, big)
  assert.equal(big.out, undefined)
  // Without WebAssembly, no runs: the JS loop does it.
  assert.equal(js.runsOf(Buffer.from('QUJD'), B64_CLASS, B64_RUN), undefined)
})

test('base64 runs of inputs longer than the window: a window at a time, the same spans as the JS loop', () => {
  const wasm = new KeywordAutomaton(['password'])
  let seed = 7
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed / 2 ** 32
  }
  const b64 = (n: number) => {
    let t = ''
    for (let i = 0; i < n; i++)
      t += 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'[Math.floor(rand() * 64)]
    return t
  }
  const same = (buf: Buffer, what: string) => {
    for (const need of [B64_NEED, 0]) {
      const runs = wasm.runsOf(buf, B64_CLASS, B64_RUN, need)
      assert.ok(runs !== undefined, `${what}: runs in WebAssembly`)
      for (let k = 0; k < runs.length; k += 2) {
        const [rs, re] = [runs[k] as number, runs[k + 1] as number]
        assert.ok(re - rs >= B64_RUN, `${what}: run [${rs}, ${re}) too short`)
        assert.ok(rs === 0 || B64_CLASS[buf[rs - 1] as number] === 0, `${what}: run at ${rs} not maximal`)
        assert.ok(
          re === buf.length || B64_CLASS[buf[re] as number] === 0,
          `${what}: run to ${re} not maximal`,
        )
      }
      if (need === B64_NEED) {
        const a: EncodedSpan[] = []
        const b: EncodedSpan[] = []
        base64Spans(buf, a, runs)
        base64Spans(buf, b)
        assert.deepEqual(a, b, what)
      }
    }
  }
  // Text with base64 runs of every length, some across each window edge.
  for (let round = 0; round < 6; round++) {
    let text = ''
    const target = CHUNK * (2 + round) + Math.floor(rand() * 1000)
    while (text.length < target) text += rand() < 0.2 ? `${b64(10 + Math.floor(rand() * 200))}== ` : 'word, '
    same(Buffer.from(text, 'latin1'), `round ${round}`)
  }
  // Runs that end just before, at and just after a window's end, and runs that fill a window:
  // exactly 64 KiB (a span: base64Span takes up to 64 KiB), longer (none), at the input's end.
  for (const before of [CHUNK - 30, CHUNK - 23, CHUNK - 22, CHUNK - 1, CHUNK, CHUNK + 1]) {
    const head = 'x '.repeat(Math.floor(before / 2)).slice(0, before - 1)
    same(Buffer.from(`${head} ${b64(40)} ${'y '.repeat(CHUNK)}`, 'latin1'), `run at ${before}`)
  }
  for (const len of [CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK]) {
    same(Buffer.from(`${b64(len)} tail ${b64(30)} `, 'latin1'), `giant run of ${len} first`)
    same(Buffer.from(`head ${b64(len)}`, 'latin1'), `giant run of ${len} last`)
    same(
      Buffer.from(`${'z '.repeat(CHUNK / 2 - 3)}ab ${b64(len)}= ${b64(50)}`, 'latin1'),
      `giant run of ${len} at a cut`,
    )
  }
  // An all-base64 input: one run, over 64 KiB, so no span; the work stays one pass.
  same(Buffer.alloc(4 * CHUNK + 5, 'A'), 'all A')
})

test('automata the walker cannot take walk in JS: a table over its memory cap, a keyword over a quarter of a part', () => {
  // 33,000 states: the walker's table (two rows of 1 KiB per state, rounded up to a power of two)
  // would take 128 MiB, over its 64 MiB cap.
  assert.equal(WasmKeywordWalker.create(new Uint16Array(33_000 * 256), 32_000, 10), undefined)
  assert.ok(WasmKeywordWalker.create(new Uint16Array(1_000 * 256), 900, 10) !== undefined)
  // A keyword longer than a quarter of a walk's slot of the window: the JS walks, same hits.
  const long = 'k'.repeat(CHUNK / WALKS / 4 + 1)
  const kws = ['token', long]
  const a = new KeywordAutomaton(kws)
  assert.equal(a.usesWasm, false)
  const buf = Buffer.from(`x token ${long} ${'token '.repeat(200)}`, 'latin1')
  const got: string[] = []
  a.scan(buf, 0, buf.length, (k, s) => {
    got.push(`${k}@${s}`)
    return true
  })
  assert.equal(got.length, 202)
  assert.equal(got[1], `1@8`)
})
