import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CanonicalError, canonicalize, members, withStringMember } from './canonical.js'

describe('canonicalize (RFC 8785)', () => {
  test('sorts members by UTF-16 code units (the RFC 8785 §3.2.3 example)', () => {
    const o = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    }
    const order = Object.keys(JSON.parse(canonicalize(o)) as object)
    // JSON.parse puts integer-like keys first, so compare the text's order instead.
    const text = canonicalize(o)
    const positions = ['\\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) =>
      text.indexOf(`"${k}"`),
    )
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => a - b),
      text,
    )
    assert.equal(order.length, 7)
  })

  test('numbers as ECMAScript serializes them (the RFC 8785 §3.2.2.3 examples)', () => {
    assert.equal(
      // The RFC's first value, 333333333.33333329, is the double written here (biome flags the long form).
      canonicalize([333333333.3333333, 1e30, 4.5, 2e-3, 0.000000000000000000000000001]),
      '[333333333.3333333,1e+30,4.5,0.002,1e-27]',
    )
    assert.equal(canonicalize(-0), '0')
  })

  test('strings, literals, nesting, no whitespace; undefined members left out', () => {
    assert.equal(
      canonicalize({ b: [true, null, 'x\n"é'], a: { d: 1, c: undefined }, e: false }),
      '{"a":{"d":1},"b":[true,null,"x\\n\\"é"],"e":false}',
    )
    assert.equal(canonicalize([undefined]), '[null]')
  })

  test('hostile values are refused with CanonicalError, never serialized loosely', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    let deep: unknown = 'x'
    for (let i = 0; i < 40; i++) deep = { d: deep }
    class Thing {
      x = 1
    }
    for (const v of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      10n,
      Symbol('s'),
      () => 1,
      cyclic,
      deep,
      new Thing(),
      new Date(0),
    ]) {
      assert.throws(() => canonicalize(v), CanonicalError, String(typeof v))
    }
  })

  test('withStringMember puts the member where canonicalize would', () => {
    const o = { z: 1, a: 'x', mb: [1], ma: null }
    const m = members(o)
    assert.equal(withStringMember(m, 'mac', 'MAC'), canonicalize({ ...o, mac: 'MAC' }))
    assert.equal(withStringMember(members({}), 'mac', 'M'), '{"mac":"M"}')
    assert.equal(withStringMember(members({ zz: 1 }), 'mac', 'M'), '{"mac":"M","zz":1}')
    assert.throws(() => withStringMember(members({ mac: 'x' }), 'mac', 'y'), CanonicalError)
  })
})
