/**
 * The canonical spelling of a JWS and a token's identity, with hostile input: every way a lenient
 * decoder lets a segment be respelled, malformed compact tokens, opaque tokens that look like a
 * JWS or not, and the ECDSA twins (checked against node:crypto for ES256 and ES384).
 */
import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto'
import { describe, test } from 'node:test'
import { otherS } from '../../test/helpers/jws-spellings.js'
import {
  canonicalJws,
  canonicalJwsSegments,
  decodeBase64urlStrict,
  isCanonicalBase64url,
  looksLikeJws,
  NOT_CANONICAL,
  type TokenIdentity,
  tokenIdentity,
} from './jws-canonical.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

describe('isCanonicalBase64url', () => {
  test('exactly what encoding the bytes gives, for every length and every last character', () => {
    for (let len = 0; len <= 7; len++) {
      for (let b = 0; b < 256; b++) {
        const bytes = Buffer.alloc(len, 0x5a)
        if (len > 0) bytes[len - 1] = b
        const enc = bytes.toString('base64url')
        assert.equal(isCanonicalBase64url(enc), true, enc)
        assert.deepEqual(decodeBase64urlStrict(enc), bytes)
      }
    }
    // Every string of 1 to 3 characters: canonical iff it re-encodes to itself.
    const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.'
    for (const a of A)
      for (const b of A) {
        const s = `QUJD${a}${b}`
        const expected = /^[A-Za-z0-9_-]*$/.test(s) && Buffer.from(s, 'base64url').toString('base64url') === s
        assert.equal(isCanonicalBase64url(s), expected, s)
      }
  })

  test('padding, unused bits, the standard alphabet, whitespace and non-ASCII are refused', () => {
    for (const s of [
      'YQ==',
      'YQ=',
      'YR',
      'YWI=',
      'YWJ',
      'a+b/',
      'YW Jj',
      'YWJj\n',
      'Y',
      'YWJjZ',
      'é',
      '\u0000',
    ]) {
      assert.equal(isCanonicalBase64url(s), false, JSON.stringify(s))
      assert.equal(decodeBase64urlStrict(s), undefined)
    }
    assert.equal(isCanonicalBase64url(''), true)
    assert.equal(isCanonicalBase64url('xxYQxx', 2, 4), true, 'a slice')
  })
})

describe('canonicalJwsSegments and looksLikeJws', () => {
  const h = b64({ alg: 'ES256', kid: 'k' })
  const p = b64({ sub: 'a' })
  test('three canonical segments with a header that names alg', () => {
    const seg = canonicalJwsSegments(`${h}.${p}.c2ln`)
    assert.deepEqual(seg, { dot1: h.length, dot2: h.length + p.length + 1, alg: 'ES256' })
    assert.ok(canonicalJwsSegments(`${h}..c2ln`), 'an empty payload is canonical (zero bytes)')
  })

  test('malformed compact tokens are not a canonical JWS', () => {
    const bad = [
      '',
      '.',
      '..',
      `${h}.${p}`,
      `${h}.${p}.`,
      `.${p}.c2ln`,
      `${h}.${p}.c2ln.`,
      `${h}.${p}.c2ln.x.y`,
      `${h}=.${p}.c2ln`,
      `${h}.${p}=.c2ln`,
      `${h}.${p}.c2ln=`,
      `${h}.${p}.c2m`, // unused bits
      `${b64('not an object')}.${p}.c2ln`,
      `${b64({ alg: 5 })}.${p}.c2ln`,
      `${b64([1])}.${p}.c2ln`,
      `bm90IGpzb24.${p}.c2ln`,
    ]
    for (const t of bad) assert.equal(canonicalJwsSegments(t), undefined, t)
  })

  test('looksLikeJws: two dots and a header naming alg, in any spelling; opaque tokens are not', () => {
    assert.equal(looksLikeJws(`${h}.${p}.c2ln==`), true)
    assert.equal(looksLikeJws(`${h}=.${p}.c2ln`), true)
    assert.equal(looksLikeJws('pcl_abc.def.ghi'), false)
    assert.equal(looksLikeJws('opaque-session-token'), false)
    assert.equal(looksLikeJws(`${h}.${p}`), false, 'two segments')
    assert.equal(looksLikeJws(`${h}.${p}.x.y.z`), false, 'JWE-like')
  })
})

describe('tokenIdentity', () => {
  test('an opaque token: the SHA-256 of the token itself', () => {
    assert.deepEqual(tokenIdentity('abc.def'), { id: sha('abc.def'), alt: undefined })
    assert.deepEqual(tokenIdentity('s3ss10n'), { id: sha('s3ss10n'), alt: undefined })
  })

  test('a JWS in a non-canonical spelling is NOT_CANONICAL', () => {
    const h = b64({ alg: 'RS256' })
    const p = b64({ sub: 'a' })
    assert.equal(tokenIdentity(`${h}.${p}.c2ln==`), NOT_CANONICAL)
    assert.equal(tokenIdentity(`${h}.${p}.c2l+`), NOT_CANONICAL)
    assert.deepEqual(tokenIdentity(`${h}.${p}.c2ln`), { id: sha(`${h}.${p}.c2ln`), alt: undefined })
  })

  for (const [alg, curve, size] of [
    ['ES256', 'P-256', 32],
    ['ES384', 'P-384', 48],
    ['ES512', 'P-521', 66],
  ] as const) {
    test(`${alg}: both signatures verify, both spellings have one identity (the low-s one) and each other as alt`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve })
      let highSeen = false
      let lowSeen = false
      for (let i = 0; i < 40 && !(highSeen && lowSeen); i++) {
        const input = `${b64({ alg })}.${b64({ i })}`
        const sig = sign(null, Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })
        assert.equal(sig.length, 2 * size)
        const t = `${input}.${sig.toString('base64url')}`
        const t2 = otherS(t, alg)
        const sig2 = Buffer.from(t2.split('.')[2] as string, 'base64url')
        assert.ok(verify(null, Buffer.from(input), { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig2))
        const a = tokenIdentity(t) as TokenIdentity
        const b = tokenIdentity(t2) as TokenIdentity
        assert.equal(a.id, b.id)
        assert.deepEqual(new Set([a.id, a.alt]), new Set([sha(t), sha(t2)]))
        const seg = canonicalJwsSegments(t)
        assert.ok(seg)
        const canon = canonicalJws(t, seg)
        assert.equal(sha(canon), a.id)
        const s = BigInt(`0x${Buffer.from(canon.split('.')[2] as string, 'base64url').toString('hex', size)}`)
        const sOrig = BigInt(`0x${sig.toString('hex', size)}`)
        if (canon === t) lowSeen = true
        else highSeen = true
        assert.ok(s <= sOrig, 'the canonical s is the smaller one')
      }
      assert.ok(highSeen && lowSeen, 'both a high-s and a low-s signature were produced')
    })
  }

  test('other algorithms: the identity is the token hash, no alt', () => {
    const t = `${b64({ alg: 'HS256' })}.${b64({ a: 1 })}.${Buffer.alloc(32, 9).toString('base64url')}`
    assert.deepEqual(tokenIdentity(t), { id: sha(t), alt: undefined })
    // A wrong-length "ECDSA" signature has no twin.
    const e = `${b64({ alg: 'ES256' })}.${b64({ a: 1 })}.${Buffer.alloc(63, 9).toString('base64url')}`
    assert.deepEqual(tokenIdentity(e), { id: sha(e), alt: undefined })
  })
})
