/**
 * parseJsonGuarded (JSON.parse, then a check of the value) against the guarded reader it must
 * agree with: the same value, or the same error at the same offset and pointer.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { prng } from '../util/prng.js'
import {
  DEFAULT_JSON_LIMITS,
  JsonGuardError,
  type JsonLimits,
  parseJsonGuarded,
  readJsonGuarded,
} from './json-guard.js'

function outcome(f: () => unknown): unknown {
  try {
    return { value: f() }
  } catch (err) {
    if (!(err instanceof JsonGuardError)) throw err
    return { error: err.message, offset: err.offset, pointer: err.pointer }
  }
}

function same(text: string, limits: JsonLimits): void {
  assert.deepEqual(
    outcome(() => parseJsonGuarded(text, limits)),
    outcome(() => readJsonGuarded(text, limits)),
    JSON.stringify(text.slice(0, 120)),
  )
}

const NAMES = [
  'a',
  'b',
  'id',
  'x:y',
  'q"u',
  'b\\s',
  '__proto__',
  'constructor',
  'prototype',
  '\u0000',
  'é',
  '',
]

function gen(rnd: () => number, depth: number): string {
  const r = rnd()
  if (depth > 5 || r < 0.35) {
    const s = rnd()
    if (s < 0.2) return String(Math.floor(rnd() * 2000) - 1000)
    if (s < 0.3) return ['1e400', '-0', '2.5e-3', '1E2'][Math.floor(rnd() * 4)] as string
    if (s < 0.4) return ['true', 'false', 'null'][Math.floor(rnd() * 3)] as string
    if (s < 0.5) return JSON.stringify('x'.repeat(Math.floor(rnd() * 12)))
    if (s < 0.6) return '"a\\u0000b"'
    if (s < 0.7) return '"\\"\\\\:\\"{"'
    return JSON.stringify(NAMES[Math.floor(rnd() * NAMES.length)])
  }
  if (r < 0.65) {
    const n = Math.floor(rnd() * 6)
    return `[${Array.from({ length: n }, () => gen(rnd, depth + 1)).join(',')}]`
  }
  const n = Math.floor(rnd() * 6)
  const members: string[] = []
  for (let i = 0; i < n; i++) {
    // names repeat on purpose (a duplicate member), some spelled with escapes
    const name = NAMES[Math.floor(rnd() * NAMES.length)] as string
    const written =
      rnd() < 0.15
        ? `"${[...name].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`
        : JSON.stringify(name)
    members.push(`${written}:${gen(rnd, depth + 1)}`)
  }
  return `{${members.join(rnd() < 0.1 ? ' , ' : ',')}}`
}

test('guarded JSON: the fast path and the guarded reader agree on random documents, limits and mutations', () => {
  const rnd = prng(2207)
  const small: JsonLimits = {
    maxDepth: 3,
    maxKeys: 3,
    maxArrayLength: 3,
    maxStringLength: 5,
    maxTotalValues: 20,
    allowNul: false,
  }
  const alphabet = '{}[]",:\\u0123456789abcdeftrnl-+.eE _\u0000'
  let values = 0
  for (let k = 0; k < 4000; k++) {
    const text = gen(rnd, 0)
    for (const limits of [DEFAULT_JSON_LIMITS, small, { ...DEFAULT_JSON_LIMITS, allowNul: true }])
      same(text, limits)
    if (!(outcome(() => readJsonGuarded(text, DEFAULT_JSON_LIMITS)) as { error?: string }).error) values++
    const chars = [...text]
    for (let m = 0; m < 1 + Math.floor(rnd() * 3); m++)
      chars[Math.floor(rnd() * chars.length)] = alphabet[Math.floor(rnd() * alphabet.length)] as string
    same(chars.join(''), DEFAULT_JSON_LIMITS)
  }
  assert.ok(values > 500, `documents the reader accepted: ${values}`)
})

test('guarded JSON: repeated members are found however the text spells them', () => {
  for (const t of [
    '{"a":1,"a":2}',
    '{"a":1,"\\u0061":2}',
    '{"x":{"a":1,"b":{"c":[{"k":1,"k":1}]}}}',
    '{"a:":1,"a:":2}',
    '{"a\\\\":1,"a\\\\":2}',
    '{"a\\"":1,"a\\"":2}',
    // a colon spelled as an escape in one of them (the colon count alone would be fooled)
    '{"a:":1,"a\\u003a":2,"b":"x"}',
    '{"a:":"v:","a\\u003A":"w"}',
  ])
    assert.throws(() => parseJsonGuarded(t), /duplicate key/, t)
  assert.deepEqual(parseJsonGuarded('{"a:":1,"a\\\\":2,"a\\"":3,"a":"::"}'), {
    'a:': 1,
    'a\\': 2,
    'a"': 3,
    a: '::',
  })
})
