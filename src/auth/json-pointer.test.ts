import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { compilePointer, pointerTokens } from './json-pointer.js'

describe('JSON Pointer (RFC 6901)', () => {
  const doc = JSON.parse(
    '{"a":{"b":[10,{"c":"x"}]},"m/n":1,"k~l":2,"":3,"__proto__":{"p":4},"n":null,"0":"zero"}',
  )

  test('RFC 6901 evaluation: escapes, arrays, the empty name, own members only', () => {
    assert.equal(compilePointer('')(doc), doc)
    assert.equal(compilePointer('/a/b/0')(doc), 10)
    assert.equal(compilePointer('/a/b/1/c')(doc), 'x')
    assert.equal(compilePointer('/m~1n')(doc), 1)
    assert.equal(compilePointer('/k~0l')(doc), 2)
    assert.equal(compilePointer('/')(doc), 3)
    assert.equal(compilePointer('/0')(doc), 'zero')
    assert.deepEqual(compilePointer('/__proto__/p')(doc), 4, 'an own __proto__ member is a plain member')
    assert.equal(compilePointer('/n')(doc), null)
  })

  test('hostile or missing paths give undefined, never throw, never reach inherited members', () => {
    for (const p of [
      '/a/b/2',
      '/a/b/-',
      '/a/b/01',
      '/a/b/1e0',
      '/a/b/ 1',
      '/a/b/99999999999',
      '/a/b/length',
      '/a/constructor',
      '/a/toString',
      '/n/x',
      '/a/b/0/x',
      '/missing/deep/path',
    ]) {
      assert.equal(compilePointer(p)(doc), undefined, p)
    }
    assert.equal(compilePointer('/constructor')({}), undefined)
    assert.equal(compilePointer('/__proto__')({}), undefined)
    for (const v of [null, 1, 'str', true, undefined]) assert.equal(compilePointer('/a')(v), undefined)
  })

  test('syntax: a pointer starts with / and escapes only ~0 and ~1', () => {
    assert.deepEqual(pointerTokens('/a~1b/~0~1'), ['a/b', '~/'])
    assert.deepEqual(pointerTokens('/~01'), ['~1'], '~01 is "~" then "1", not "/"')
    for (const bad of ['a', 'a/b', '/~', '/~2', '/a~'])
      assert.throws(() => pointerTokens(bad), /not a JSON Pointer/)
    const deep = `/${'x/'.repeat(10000)}x`
    assert.equal(compilePointer(deep)({}), undefined)
  })
})
