import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  compileSelector,
  extractIds,
  getPointer,
  IdSelectorError,
  type IdSources,
  idFromLocation,
  idString,
  parsePointer,
  TooManyIdsError,
} from './selectors.js'
import { parseParams } from '../../gateway/query.js'

const src = (over: Partial<IdSources> = {}): IdSources => ({
  params: {},
  query: '',
  headers: {},
  body: undefined,
  ...over,
})

function ids(sel: Parameters<typeof compileSelector>[0], s: IdSources, max = 100): string[] {
  const out = new Set<string>()
  extractIds(compileSelector(sel), s, out, max, () => parseParams(s.query))
  return [...out]
}

describe('object-ownership selectors', () => {
  test('query: every occurrence, decoded, split; empty parts skipped', () => {
    assert.deepEqual(ids({ from: 'query.ids', split: ',' }, src({ query: 'ids=1,2&ids=3&x=9' })), [
      '1',
      '2',
      '3',
    ])
    assert.deepEqual(ids({ from: 'query.ids', split: ',' }, src({ query: 'ids=1%2C2,,' })), ['1', '2'])
    assert.deepEqual(ids('query.id', src({ query: 'id=%32&id=a+b' })), ['2', 'a b'])
    // another spelling of the name (case-insensitive binders, bracket forms, ';'): refused, as
    // is text that does not decode (the one query parser's rules, src/gateway/query.ts)
    for (const query of ['ID=2&Id=3', 'ID=2', 'id=1&id[]=2', 'x=1;id=2'])
      assert.throws(() => ids('query.id', src({ query })), { code: 'GW_ERR_PARAMETER_POLLUTION' }, query)
    assert.throws(() => ids('query.id', src({ query: 'id=%E0%A4%A' })), { code: 'GW_ERR_BAD_REQUEST' })
  })

  test('headers: names case-insensitive, every value', () => {
    assert.deepEqual(ids('header.X-Account', src({ headers: { 'x-account': ['1', '2'] } })), ['1', '2'])
    assert.deepEqual(
      ids({ from: 'header.x-account', split: ',' }, src({ headers: { 'x-account': '1,2' } })),
      ['1', '2'],
    )
  })

  test('body: pointers, wildcards, escapes, numbers as strings; objects refused', () => {
    const body = {
      a: { 'b/c': 7, 'd~e': '8' },
      items: [{ id: 1 }, { id: '2' }, { other: 3 }, null],
      list: [4, 5],
      n: 2.0,
    }
    assert.deepEqual(ids('body./a/b~1c', src({ body })), ['7'])
    assert.deepEqual(ids('body./a/d~0e', src({ body })), ['8'])
    assert.deepEqual(ids('body./items/*/id', src({ body })), ['1', '2'])
    assert.deepEqual(ids('body./list', src({ body })), ['4', '5'])
    assert.deepEqual(ids('body./n', src({ body })), ['2'])
    assert.deepEqual(ids('body./items/1/id', src({ body })), ['2'])
    assert.deepEqual(ids('body./items/01/id', src({ body })), [])
    assert.deepEqual(ids('body./missing/*/id', src({ body })), [])
    assert.deepEqual(ids('body./a/*', src({ body })), []) // * walks arrays only
    assert.throws(() => ids('body./a', src({ body })), IdSelectorError)
    assert.throws(() => ids('body./x', src({ body: { x: [[1]] } })), IdSelectorError)
    // member names in any case; both spellings when both are present
    assert.deepEqual(ids('body./a/B~1C', src({ body })), ['7'])
    assert.deepEqual(ids('body./accountId', src({ body: { accountId: 1, AccountID: 2 } })), ['1', '2'])
    assert.deepEqual(ids('body./Items/*/ID', src({ body })), ['1', '2'])
    // inherited members are not read
    assert.deepEqual(ids('body./constructor', src({ body: {} })), [])
    assert.deepEqual(ids('body./__proto__', src({ body: {} })), [])
  })

  test('bounded: more ids than max throws, before walking a huge array', () => {
    const q = Array.from({ length: 10_000 }, (_x, i) => i).join(',')
    assert.throws(
      () => ids({ from: 'query.ids', split: ',' }, src({ query: `ids=${q}` }), 100),
      TooManyIdsError,
    )
    const body = { items: Array.from({ length: 100_000 }, () => ({ id: 1 })) }
    assert.throws(() => ids('body./items/*/id', src({ body }), 100), TooManyIdsError)
    // the same id many times counts once
    assert.deepEqual(ids({ from: 'query.ids', split: ',' }, src({ query: `ids=${'1,'.repeat(5000)}` }), 2), [
      '1',
    ])
  })

  test('bad selectors are config errors', () => {
    assert.throws(() => compileSelector('path.'), /give a name/)
    assert.throws(() => compileSelector('cookie.x'), /path, query, header or body/)
    assert.throws(() => compileSelector('body.x'), /JSON pointer/)
  })

  test('Location: the last path segment, decoded; hostile values give nothing', () => {
    assert.equal(idFromLocation('/api/v2/orders/4'), '4')
    assert.equal(idFromLocation('/api/v2/orders/4/'), '4')
    assert.equal(idFromLocation('https://api.example/orders/a%20b?x=1#f'), 'a b')
    assert.equal(idFromLocation('/orders/x/../5'), '5')
    assert.equal(idFromLocation('/orders/%E0%A4%A'), undefined)
    assert.equal(idFromLocation(''), undefined)
    assert.equal(idFromLocation('/'), undefined)
    assert.equal(idFromLocation(['/a/1', '/a/2']), undefined)
    assert.equal(idFromLocation(undefined), undefined)
    assert.equal(idFromLocation(`/${'a/'.repeat(50_000)}9`), '9')
  })

  test('pointers and id values', () => {
    assert.deepEqual(parsePointer('', false), [])
    assert.throws(() => parsePointer('a/b', false))
    assert.equal(getPointer({ a: [1, { b: 'x' }] }, parsePointer('/a/1/b', false)), 'x')
    assert.equal(getPointer({ a: 1 }, parsePointer('/a/b', false)), undefined)
    assert.equal(idString(3), '3')
    assert.equal(idString(''), undefined)
    assert.equal(idString(Number.NaN), undefined)
    assert.equal(idString({}), undefined)
  })
})
