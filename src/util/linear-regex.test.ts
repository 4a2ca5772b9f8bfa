import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { ajvLinearRegExp, compileLinear, LinearRegExpError } from './linear-regex.js'

describe('compileLinear', () => {
  test('matches like RegExp on ordinary patterns and flags', () => {
    const cases: [string, string, string, boolean][] = [
      ['^[a-z0-9-]{1,64}$', '', 'order-42', true],
      ['^[a-z0-9-]{1,64}$', '', 'Order-42', false],
      ['^[a-z0-9-]{1,64}$', 'i', 'Order-42', true],
      ['^a.b$', '', 'a\nb', false],
      ['^a.b$', 's', 'a\nb', true],
      ['^b$', 'm', 'a\nb', true],
      ['\\d{3}', '', 'x123y', true],
      ['^\\p{L}+$', 'u', 'Grüße', true],
      ['^(?<year>\\d{4})-(\\d{2})$', '', '2026-11', true],
    ]
    for (const [source, flags, input, expected] of cases) {
      assert.equal(compileLinear(source, flags).test(input), expected, `/${source}/${flags} on ${input}`)
      assert.equal(new RegExp(source, flags).test(input), expected, 'the case itself is right')
    }
  })

  test('exec returns the groups of the first match', () => {
    assert.deepEqual(compileLinear('^(.+?)\\.(.+?)\\.json$', 's').exec('a.b.c.json'), [
      'a.b.c.json',
      'a',
      'b.c',
    ])
    assert.equal(compileLinear('^x$').exec('y'), null)
  })

  test('catastrophic patterns run in linear time on hostile input', () => {
    const hostile = `${'a'.repeat(50_000)}!`
    for (const source of ['^(a+)+$', '^(a|a)*$', '^(a|aa)+$', '^(.*a){20}$', '^(\\w+\\s?)*$']) {
      const t0 = performance.now()
      assert.equal(compileLinear(source).test(hostile), false, source)
      // Backtracking takes longer than the age of the universe here; a linear engine milliseconds.
      // The bound is loose on purpose (a loaded CI machine): it separates linear from exponential.
      assert.ok(performance.now() - t0 < 5000, `${source} took ${performance.now() - t0} ms`)
    }
  })

  test('backreferences, lookaround, unknown flags and malformed patterns are refused at compile time', () => {
    for (const [source, flags] of [
      ['(a)\\1', ''],
      ['a(?=b)', ''],
      ['a(?!b)', ''],
      ['(?<=a)b', ''],
      ['[a-', ''],
      ['a', 'g'],
      ['a', 'y'],
    ] as const) {
      assert.throws(() => compileLinear(source, flags), LinearRegExpError, `/${source}/${flags}`)
    }
  })

  test('ajv compiles schema patterns with it', () => {
    const ajv = new Ajv2020({ code: { regExp: ajvLinearRegExp }, unicodeRegExp: true })
    const validate = ajv.compile({
      type: 'object',
      properties: { name: { type: 'string', pattern: '^(a+)+$' } },
      patternProperties: { '^x-': { type: 'string' } },
    })
    assert.equal(validate({ name: 'aaa' }), true)
    assert.equal(validate({ name: `${'a'.repeat(50_000)}!` }), false)
    assert.equal(validate({ 'x-a': 1 }), false)
    assert.equal(validate({ 'x-a': 'ok' }), true)
    assert.throws(() => ajv.compile({ type: 'string', pattern: '(a)\\1' }), LinearRegExpError)
  })
})
