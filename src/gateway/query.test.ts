import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseParams, withoutParams } from './query.js'

/**
 * The query corpus: each form with what a policy reading `id` gets. `single` is the value of
 * `single('id')` ('!pollution' / '!bad' when refused), `values` that of `values('id')`.
 * Written from the rules in query.ts' module comment, before the parser.
 */
type Want = string | undefined | '!pollution' | '!bad'
export const QUERY_CORPUS: readonly { q: string; single: Want; values: string[] | '!pollution' | '!bad' }[] =
  [
    { q: '', single: undefined, values: [] },
    { q: 'id=1', single: '1', values: ['1'] },
    { q: 'id=', single: '', values: [''] },
    { q: 'id', single: '', values: [''] },
    { q: 'x=1', single: undefined, values: [] },
    { q: 'id=a+b', single: 'a b', values: ['a b'] },
    { q: 'id=a%2Bb', single: 'a+b', values: ['a+b'] },
    { q: 'id=a%20b', single: 'a b', values: ['a b'] },
    { q: 'id=%', single: '!bad', values: '!bad' },
    { q: 'id=%zz', single: '!bad', values: '!bad' },
    { q: 'id=%4', single: '!bad', values: '!bad' },
    { q: 'id=%FF', single: '!bad', values: '!bad' },
    { q: 'id=%C0%AE', single: '!bad', values: '!bad' },
    { q: 'id=%E0%A4%A', single: '!bad', values: '!bad' },
    { q: 'x=%zz&id=1', single: '!bad', values: '!bad' },
    { q: 'id=%C3%A9', single: 'é', values: ['é'] },
    { q: 'id=1&id=2', single: '!pollution', values: ['1', '2'] },
    { q: 'id=1&id=1', single: '!pollution', values: ['1', '1'] },
    { q: 'id=1&ID=2', single: '!pollution', values: '!pollution' },
    { q: 'ID=2', single: '!pollution', values: '!pollution' },
    { q: 'Id=2', single: '!pollution', values: '!pollution' },
    { q: 'id[]=1', single: '!pollution', values: '!pollution' },
    { q: 'id=1&id[]=2', single: '!pollution', values: '!pollution' },
    { q: 'id[0]=1', single: '!pollution', values: '!pollution' },
    { q: 'id[a]=1', single: '!pollution', values: '!pollution' },
    { q: 'id%5B%5D=1', single: '!pollution', values: '!pollution' },
    { q: '%69d=1', single: '1', values: ['1'] },
    { q: '%69d=1&id=2', single: '!pollution', values: ['1', '2'] },
    { q: 'i+d=1', single: undefined, values: [] },
    { q: 'x=1;id=2', single: '!pollution', values: '!pollution' },
    { q: 'id=1;id=2', single: '!pollution', values: '!pollution' },
    { q: 'x=1%3Bid=2', single: undefined, values: [] },
    { q: 'x=a;b', single: undefined, values: [] },
    { q: '=1&id=2', single: '2', values: ['2'] },
    { q: '&&id=2&&', single: '2', values: ['2'] },
    { q: '&', single: undefined, values: [] },
    { q: 'id==1', single: '=1', values: ['=1'] },
    { q: 'id=1=2', single: '1=2', values: ['1=2'] },
    { q: 'idx=1', single: undefined, values: [] },
    { q: 'xid=1', single: undefined, values: [] },
    { q: 'id.x=1', single: undefined, values: [] },
    { q: 'id%00=1', single: undefined, values: [] },
    { q: 'id=%00', single: '\0', values: ['\0'] },
    { q: 'id=\u00e9', single: '\u00e9', values: ['\u00e9'] },
    { q: `${'x=1&'.repeat(1000)}id=1`, single: '!bad', values: '!bad' },
    { q: `${'x=1&'.repeat(999)}id=1`, single: '1', values: ['1'] },
    { q: `${'a=b&'.repeat(10_000)}id=1`, single: '!bad', values: '!bad' },
  ]

function outcome(fn: () => unknown): unknown {
  try {
    return fn()
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'GW_ERR_PARAMETER_POLLUTION') return '!pollution'
    if (code === 'GW_ERR_BAD_REQUEST') return '!bad'
    throw err
  }
}

describe('query parser (the one urlencoded reader)', () => {
  test(`corpus: ${QUERY_CORPUS.length} forms`, () => {
    assert.ok(QUERY_CORPUS.length >= 40)
    for (const c of QUERY_CORPUS) {
      const label = c.q.length > 60 ? `${c.q.slice(0, 60)}… (${c.q.length} chars)` : c.q
      assert.equal(
        outcome(() => parseParams(c.q).single('id')),
        c.single,
        `single: ${label}`,
      )
      assert.deepEqual(
        outcome(() => parseParams(c.q).values('id')),
        c.values,
        `values: ${label}`,
      )
    }
  })

  test('parameters in order, decoded; empty parts skipped; empty names kept', () => {
    assert.deepEqual(parseParams('a=1+2&&b&=x&c=%2B').list, [
      { name: 'a', value: '1 2' },
      { name: 'b', value: '' },
      { name: '', value: 'x' },
      { name: 'c', value: '+' },
    ])
    assert.deepEqual(parseParams('a=1&b=2&a=3').names(), ['a', 'b'])
  })

  test('limits: maxParams counts parameters, not characters', () => {
    assert.equal(parseParams('a=1&b=2', { maxParams: 2 }).size, 2)
    assert.throws(() => parseParams('a=1&b=2&c=3', { maxParams: 2 }), { code: 'GW_ERR_BAD_REQUEST' })
    assert.equal(parseParams('&&&&a=1&&&&', { maxParams: 1 }).size, 1)
    // 10,000 parameters within a raised limit: parsed, and looked up without quadratic work
    const big = parseParams(Array.from({ length: 10_000 }, (_, i) => `p${i}=${i}`).join('&'), {
      maxParams: 10_000,
    })
    assert.equal(big.size, 10_000)
    assert.equal(big.single('p9999'), '9999')
  })

  test('withoutParams drops a name and its other spellings, keeps the rest as sent', () => {
    const names = new Set(['api_key'])
    assert.equal(withoutParams('a=1&api_key=x&b=%20', names), 'a=1&b=%20')
    assert.equal(withoutParams('api%5Fkey=x&api_key=y', names), '')
    assert.equal(withoutParams('API_KEY=x&api_key[]=y&c', names), 'c')
    assert.equal(withoutParams('api_key', names), '')
    assert.equal(withoutParams('a=1', names), 'a=1')
    assert.equal(withoutParams('%zz=1&b=2', names), 'b=2')
  })
})
