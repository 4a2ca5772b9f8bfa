import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEFAULT_JSON_LIMITS, JsonGuardError } from './json-guard.js'
import { forgetJson, guardedJsonOf, jsonOf, rememberJson } from './shared-json.js'

test('shared parse: one Buffer, one value; other bytes or other limits parse again', () => {
  const body = Buffer.from('{"a":{"b":[1,2,3]}}')
  const first = guardedJsonOf(body)
  assert.deepEqual(first, { a: { b: [1, 2, 3] } })
  assert.equal(guardedJsonOf(body), first, 'the second reader gets the same parse')
  assert.equal(guardedJsonOf(body, { ...DEFAULT_JSON_LIMITS }), first, 'equal limits are the same limits')
  // the same text in another Buffer is another body (a policy that replaced the body made a new one)
  const copy = Buffer.from(body)
  assert.notEqual(guardedJsonOf(copy), first)
  assert.deepEqual(guardedJsonOf(copy), first)
  // stricter limits are applied, not answered from a looser parse
  assert.throws(() => guardedJsonOf(body, { ...DEFAULT_JSON_LIMITS, maxDepth: 1 }), JsonGuardError)
  // JSON.parse of a response body is a parse of its own
  const r = Buffer.from('[{"x":1}]')
  assert.equal(jsonOf(r), jsonOf(r))
})

test('shared parse: forgetJson gives the next reader a fresh tree (a policy edited the old one)', () => {
  const body = Buffer.from('{"keep":1,"drop":2}')
  const v = guardedJsonOf(body) as Record<string, unknown>
  forgetJson(body)
  delete v.drop
  assert.deepEqual(guardedJsonOf(body), { keep: 1, drop: 2 })
  const resp = Buffer.from('{"keep":1,"drop":2}')
  const w = jsonOf(resp) as Record<string, unknown>
  forgetJson(resp)
  delete w.drop
  assert.deepEqual(jsonOf(resp), { keep: 1, drop: 2 })
})

test('shared parse: a malformed body fails every reader with the same error, parsed once', () => {
  const bad = Buffer.from('{"a":1,"a":2}')
  let first: unknown
  try {
    guardedJsonOf(bad)
  } catch (err) {
    first = err
  }
  assert.ok(first instanceof JsonGuardError, 'duplicate member names are refused by the guard')
  assert.throws(
    () => guardedJsonOf(bad),
    (err) => err === first,
  )
  const notJson = Buffer.from('{nope')
  assert.throws(() => jsonOf(notJson), SyntaxError)
  assert.throws(() => jsonOf(notJson), SyntaxError)
})

test('shared parse: rememberJson serves a body just serialised from a value to jsonOf, not to the guarded reader', () => {
  const original = Buffer.from(
    '{"id":"7","customer":{"id":"c1","email":"a@b.example","__proto__":{"x":1}},"n":-0,"s":"\\ud800"}',
  )
  const v = jsonOf(original) as Record<string, Record<string, unknown>>
  forgetJson(original)
  // what property-filter does: a copy without the removed member, the rest shared
  const customer = { ...v.customer } as Record<string, unknown>
  delete customer.email
  const filtered = { ...v, customer }
  const out = Buffer.from(JSON.stringify(filtered))
  rememberJson(out, filtered)
  assert.equal(jsonOf(out), filtered, 'the next response reader gets the value, no parse')
  // and it is what a parse of the bytes gives (an own __proto__ member, -0 written as 0, a lone surrogate)
  assert.deepEqual(JSON.parse(out.toString('utf8')), JSON.parse(JSON.stringify(filtered)))
  assert.deepEqual(Object.keys(JSON.parse(out.toString('utf8')).customer), ['id', '__proto__'])
  // request-side readers (the guards) read the bytes themselves: here they refuse the __proto__ member
  assert.throws(() => guardedJsonOf(out), JsonGuardError)
})
