import assert from 'node:assert/strict'
import { test } from 'node:test'
import { prng } from '../util/prng.js'
import { KeywordAutomaton } from './prefilter.js'

/** Every (keyword, start) of `keywords` in `text`, case-insensitively (ASCII), by brute force. */
function naive(keywords: readonly string[], text: string): string[] {
  const lower = text.toLowerCase()
  const out: string[] = []
  keywords.forEach((k, ki) => {
    for (let i = lower.indexOf(k); i !== -1; i = lower.indexOf(k, i + 1)) out.push(`${ki}@${i}`)
  })
  return out.sort()
}

test('keyword pass: every occurrence once, across the middle of the range, in any case', () => {
  const keywords = ['ghp_', 'token', 'tok', 'oken', 'https://', 'aa', 'aaa', 'key-', 'k']
  const a = new KeywordAutomaton(keywords)
  const rand = prng(99)
  const alphabet = 'aAkKtToOeEnNhgp_-:/sS x'
  for (let round = 0; round < 400; round++) {
    // Lengths around the two-walk threshold (256) and odd ones; keywords planted at the middle.
    const len = round < 200 ? round * 3 : 256 + Math.floor(rand() * 3000)
    let text = ''
    for (let i = 0; i < len; i++) text += alphabet[Math.floor(rand() * alphabet.length)]
    if (len > 20) {
      const mid = len >> 1
      const k = keywords[Math.floor(rand() * keywords.length)] as string
      const at = Math.max(0, mid - Math.floor(rand() * k.length))
      text = text.slice(0, at) + k.toUpperCase() + text.slice(at + k.length)
    }
    const buf = Buffer.from(text, 'latin1')
    const got: string[] = []
    a.scan(buf, 0, buf.length, (k, start) => {
      got.push(`${k}@${start}`)
      return true
    })
    assert.deepEqual(got.slice().sort(), naive(keywords, text), `round ${round}, length ${len}`)
    assert.equal(new Set(got).size, got.length, 'each occurrence once')
    assert.ok(a.any(buf) === got.length > 0 && a.any(text) === got.length > 0)
    // The string walk: the same occurrences, in order of their end, with no copy of the text.
    const fromString: string[] = []
    a.scanString(text, (k, start) => {
      fromString.push(`${k}@${start}`)
      return true
    })
    assert.deepEqual(fromString.slice().sort(), got.slice().sort(), `scanString, round ${round}`)
  }
})

test('keyword pass on a string: a unit above 0xFF reads as NUL (as the bytes the scanner makes)', () => {
  const a = new KeywordAutomaton(['ghp_', 'k'])
  const hits: string[] = []
  // U+016B (ū) would read as 'k' (0x6B) if it were cut to its low byte.
  a.scanString('\u016bghp_x\u{1F600}ghp_', (k, start) => {
    hits.push(`${k}@${start}`)
    return true
  })
  assert.deepEqual(hits, ['0@1', '0@8'])
  let n = 0
  assert.equal(
    a.scanString('ab'.repeat(10).replace(/b/g, 'k'), () => ++n < 3),
    false,
  )
  assert.equal(n, 3)
})

test('keyword pass: a callback returning false stops it', () => {
  const a = new KeywordAutomaton(['ab'])
  const buf = Buffer.from('ab'.repeat(1000))
  let n = 0
  assert.equal(
    a.scan(buf, 0, buf.length, () => ++n < 5),
    false,
  )
  assert.equal(n, 5)
})
