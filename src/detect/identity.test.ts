import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  accountHash,
  basicUser,
  DEFAULT_NORMALIZATION,
  MAX_ACCOUNT_CHARS,
  normalizeIdentity,
} from './identity.js'

test('normalizeIdentity: the variants an application treats as one account are one (issue 25, item 3)', () => {
  const variants = [
    'alice',
    'alice ',
    ' alice',
    '\talice',
    'alice\n',
    '\u00a0alice\u3000',
    'ALICE',
    'Alice',
    '\uff21\uff4c\uff49\uff43\uff45', // fullwidth
    ' \t\uff41lice \r\n',
  ]
  for (const v of variants) assert.equal(normalizeIdentity(v), 'alice', JSON.stringify(v))
  assert.equal(new Set(variants.map((v) => accountHash(normalizeIdentity(v) as string))).size, 1)
  // Full case folding and compatibility forms.
  assert.equal(normalizeIdentity('STRASSE'), normalizeIdentity('straße'))
  assert.equal(normalizeIdentity('\ufb01le'), 'file')
  assert.equal(normalizeIdentity('Bob@Example.COM'), 'bob@example.com')
  // Different accounts stay different.
  assert.notEqual(normalizeIdentity('alice'), normalizeIdentity('alice2'))
  assert.notEqual(normalizeIdentity('al ice'), normalizeIdentity('alice'), 'inner white space is kept')
})

test('normalizeIdentity: each step can be turned off', () => {
  assert.equal(normalizeIdentity(' Alice ', { trim: false, caseFold: true, unicode: 'NFKC' }), ' alice ')
  assert.equal(normalizeIdentity(' Alice ', { trim: true, caseFold: false, unicode: 'NFKC' }), 'Alice')
  assert.equal(normalizeIdentity('\uff41lice', { trim: true, caseFold: true, unicode: 'none' }), '\uff41lice')
  assert.equal(DEFAULT_NORMALIZATION.trim && DEFAULT_NORMALIZATION.caseFold, true)
})

test('normalizeIdentity: hostile input', () => {
  assert.equal(normalizeIdentity(''), undefined)
  assert.equal(normalizeIdentity('   \t\n'), undefined, 'white space only')
  assert.equal(normalizeIdentity('a'.repeat(MAX_ACCOUNT_CHARS + 1)), undefined, 'too long')
  // NFKC expands some characters 18-fold: the result is bounded too.
  assert.equal(normalizeIdentity('\ufdfa'.repeat(200)), undefined)
  assert.equal(typeof normalizeIdentity('\ud800x'), 'string', 'a lone surrogate does not throw')
  assert.equal(typeof normalizeIdentity('\u0000\u202e'), 'string')
  // Case folding that grows the string (İ → i̇) stays bounded.
  assert.equal(normalizeIdentity('\u0130'.repeat(200)), undefined)
})

test('basicUser: the user part of a Basic header only; anything else is undefined', () => {
  const b = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`
  assert.equal(basicUser(b('alice:secret')), 'alice')
  assert.equal(basicUser(b('alice:se:cret')), 'alice')
  assert.equal(basicUser(`basic ${Buffer.from('Bob:x').toString('base64')}`), 'Bob')
  assert.equal(basicUser(b(':nouser')), undefined)
  assert.equal(basicUser(b('nocolon')), undefined)
  assert.equal(basicUser('Bearer abc.def.ghi'), undefined)
  assert.equal(basicUser('Basic !!!'), undefined)
  assert.equal(basicUser(`Basic ${'A'.repeat(10_000)}`), undefined)
  assert.equal(basicUser('Basic'), undefined)
})
