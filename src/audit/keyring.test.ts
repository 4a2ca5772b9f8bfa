import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { KeyringError, loadKeyring, parseKeyring } from './keyring.js'

const k32 = () => randomBytes(32).toString('base64')

describe('audit keyring', () => {
  test('parses JSON and YAML; the active key signs, every key verifies', () => {
    const a = k32()
    const b = randomBytes(48).toString('base64url')
    const j = parseKeyring(JSON.stringify({ active: 'k2', keys: { k1: a, k2: b } }), 'test')
    assert.equal(j.active, 'k2')
    assert.deepEqual([...j.keys.keys()], ['k1', 'k2'])
    assert.equal(j.keys.get('k1')?.toString('base64'), a)
    assert.equal(j.keys.get('k2')?.length, 48)
    const y = parseKeyring(`active: k1\nkeys:\n  k1: "${a}"\n`, 'test')
    assert.equal(y.keys.get('k1')?.toString('base64'), a)
  })

  test('refuses bad keyrings, naming the problem and never the key', () => {
    const short = randomBytes(16).toString('base64')
    const good = k32()
    const cases: [string, RegExp][] = [
      ['[]', /mapping/],
      ['null', /mapping/],
      ['not: [valid', /not valid JSON or YAML/],
      [JSON.stringify({ active: 'k1', keys: { k1: short } }), /16 bytes/],
      [JSON.stringify({ active: 'k1', keys: { k1: `${good}!!` } }), /not a base64/],
      [JSON.stringify({ active: 'k1', keys: { k1: `${good.slice(0, 20)}=${good.slice(21)}` } }), /base64/],
      [JSON.stringify({ active: 'k9', keys: { k1: good } }), /"active" must name one of the keys/],
      [JSON.stringify({ active: 'k1', keys: {} }), /empty/],
      [JSON.stringify({ active: 'k1', keys: { 'k/1': good } }), /key id/],
      [JSON.stringify({ active: 'k1', keys: { k1: 42 } }), /not a base64/],
      [JSON.stringify({ active: 'k1', keys: { k1: good }, extra: good }), /unknown field "extra"/],
      // A YAML alias bomb is refused outright (no aliases at all).
      ['a: &a [x, x]\nb: [*a, *a]\nactive: k1\nkeys: {}', /not valid JSON or YAML/],
    ]
    for (const [text, re] of cases) {
      assert.throws(
        () => parseKeyring(text, 'kr'),
        (err: Error) => {
          assert.ok(err instanceof KeyringError, err.message)
          assert.match(err.message, re)
          assert.equal(err.message.includes(good), false, 'a key in the message')
          assert.equal(err.message.includes(short), false, 'a key in the message')
          return true
        },
        text.slice(0, 60),
      )
    }
  })

  test('loads from a file (warning when others can read it) or an environment variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-kr-'))
    const text = JSON.stringify({ active: 'k1', keys: { k1: k32() } })
    writeFileSync(join(dir, 'kr.json'), text, { mode: 0o600 })
    const quiet = loadKeyring({ file: 'kr.json' }, { baseDir: dir })
    assert.equal(quiet.keyring.active, 'k1')
    assert.deepEqual(quiet.warnings, [])
    chmodSync(join(dir, 'kr.json'), 0o644)
    assert.match(loadKeyring({ file: join(dir, 'kr.json') }).warnings[0] ?? '', /readable by group or others/)
    assert.equal(loadKeyring({ env: 'KR' }, { env: { KR: text } }).keyring.active, 'k1')
    assert.throws(() => loadKeyring({ env: 'KR' }, { env: {} }), /KR .* is not set/)
    assert.throws(() => loadKeyring({ file: 'missing.json' }, { baseDir: dir }), /ENOENT/)
    assert.throws(() => loadKeyring({}), /exactly one/)
    assert.throws(() => loadKeyring({ file: 'a', env: 'B' }), /exactly one/)
  })
})
