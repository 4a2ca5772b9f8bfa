import assert from 'node:assert/strict'
import { test } from 'node:test'
import { prng } from '../util/prng.js'
import { base64Spans, decodeSpan, type EncodedSpan, jsonEscapeSpans, percentSpans } from './decode.js'

const B64 = /[A-Za-z0-9+/_-]/

/** The spans base64Spans must find, by the plain definition: maximal runs, up to two `=`. */
function naiveBase64(text: string): [number, number][] {
  const out: [number, number][] = []
  let i = 0
  while (i < text.length) {
    if (!B64.test(text[i] as string)) {
      i++
      continue
    }
    const s = i
    while (i < text.length && B64.test(text[i] as string)) i++
    let end = i
    while (end < text.length && end - i < 2 && text[end] === '=') end++
    const run = text.slice(s, i)
    if (end - s >= 24 && end - s <= 64 * 1024 && /[A-Z]/.test(run) && /[a-z]/.test(run)) out.push([s, end])
    i = end
  }
  return out
}

test('base64 spans: the skip loop finds exactly the maximal runs the definition names', () => {
  const rand = prng(7)
  const pieces = ['aB3', 'x', 'Q', '==', '=', ' ', '.', '-', '_', '/', '+', '"', '\n', 'zz', 'AAAA', '9']
  for (let round = 0; round < 500; round++) {
    let text = ''
    const n = Math.floor(rand() * 200)
    for (let k = 0; k < n; k++) {
      // Now and then a long run, around the 22–24 character threshold.
      if (rand() < 0.05) text += 'aB'.repeat(10 + Math.floor(rand() * 4))
      else text += pieces[Math.floor(rand() * pieces.length)]
    }
    const spans: EncodedSpan[] = []
    base64Spans(Buffer.from(text, 'latin1'), spans)
    assert.deepEqual(
      spans.map((s) => [s.start, s.end]),
      naiveBase64(text),
      JSON.stringify(text),
    )
  }
})

test('decoding: base64 (either alphabet) as Buffer.from, text only; percent and JSON escapes as the regex definitions', () => {
  const rand = prng(11)
  for (let round = 0; round < 300; round++) {
    const len = 12 + Math.floor(rand() * 80)
    const raw = Buffer.alloc(len)
    const binary = rand() < 0.5
    for (let i = 0; i < len; i++) raw[i] = binary ? Math.floor(rand() * 256) : 32 + Math.floor(rand() * 95)
    const std = raw.toString('base64').replace(/=+$/, '')
    const url = raw.toString('base64url')
    for (const enc of [std, url]) {
      const got = decodeSpan('base64', Buffer.from(enc), 0, enc.length)
      const want = Buffer.from(enc.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
      let bad = 0
      for (const c of want) if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13) || c > 0x7e) bad++
      if (bad * 20 <= want.length) assert.deepEqual(got, want)
      else assert.equal(got, undefined)
    }
  }
  const pct = 'a%2Fb%3Dc%zz%4'
  assert.equal(decodeSpan('percent', Buffer.from(pct), 0, pct.length)?.toString('latin1'), 'a/b=c%zz%4')
  assert.equal(decodeSpan('percent', Buffer.from('plain'), 0, 5), undefined)
  const esc = 'x\\"y\\\\z\\/w\\u0041\\u20ac\\n\\q'
  assert.equal(
    decodeSpan('json-escape', Buffer.from(esc), 0, esc.length)?.toString('latin1'),
    'x"y\\z/wA\u0000\n\\q',
  )
})

test('percent and escape spans: tokens around each mark, one span per token', () => {
  const text = Buffer.from('GET /cb?u=https%3A%2F%2Fx%40y z "a\\/b\\u0041" 100% done')
  const p: EncodedSpan[] = []
  percentSpans(text, p)
  assert.deepEqual(
    p.map((s) => text.toString('latin1', s.start, s.end)),
    ['/cb?u=https%3A%2F%2Fx%40y'],
  )
  const j: EncodedSpan[] = []
  jsonEscapeSpans(text, j)
  assert.deepEqual(
    j.map((s) => text.toString('latin1', s.start, s.end)),
    ['a\\/b\\u0041'],
  )
})
