/**
 * The shared bearer token extractor (RFC 6750 §2.1: `Bearer 1*SP b64token`, scheme
 * case-insensitive), with hostile header values, and the recorded token identity.
 */
import assert from 'node:assert/strict'
import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import { describe, test } from 'node:test'
import { testContext } from '../policies/testing/context.js'
import {
  compileTokenExtractor,
  setVerifiedTokenId,
  TOKEN_MALFORMED,
  TOKEN_MISSING,
  TOKEN_TOO_LARGE,
  tokenStateKey,
  verifiedTokenId,
} from './token.js'

function req(headers: [string, string][]): IncomingMessage {
  const r = new IncomingMessage(new Socket())
  r.rawHeaders = headers.flat()
  for (const [k, v] of headers) if (r.headers[k.toLowerCase()] === undefined) r.headers[k.toLowerCase()] = v
  return r
}

describe('compileTokenExtractor (Bearer)', () => {
  const extract = compileTokenExtractor({ header: 'authorization', scheme: 'Bearer', maxBytes: 16 })
  const one = (v: string) => extract(req([['Authorization', v]]))

  test('one or more spaces after the scheme, in any case', () => {
    for (const v of ['Bearer abc', 'Bearer  abc', 'bearer abc', 'BEARER     abc', 'bEArer abc']) {
      assert.equal(one(v), 'abc', JSON.stringify(v))
    }
  })

  test('another scheme is no credentials; a malformed Bearer attempt is malformed', () => {
    for (const v of ['Basic YWxpY2U6cHc=', 'Bearerx abc', 'Bear abc', 'Token abc', 'B']) {
      assert.equal(one(v), TOKEN_MISSING, v)
    }
    for (const v of ['Bearer', 'Bearer ', 'Bearer    ', 'Bearer\tabc', 'Bearer\u00a0abc', 'Bearer,abc']) {
      assert.equal(one(v), TOKEN_MALFORMED, JSON.stringify(v))
    }
    // The token's own syntax is the caller's to check (a space inside stays in the token).
    assert.equal(one('Bearer a b'), 'a b')
  })

  test('repeated header fields are malformed; the size limit applies to the token, not the spaces', () => {
    assert.equal(
      extract(
        req([
          ['Authorization', 'Bearer a'],
          ['authorization', 'Bearer b'],
        ]),
      ),
      TOKEN_MALFORMED,
    )
    assert.equal(one(`Bearer ${'x'.repeat(16)}`), 'x'.repeat(16))
    assert.equal(one(`Bearer ${' '.repeat(40)}${'x'.repeat(16)}`), 'x'.repeat(16))
    assert.equal(one(`Bearer ${'x'.repeat(17)}`), TOKEN_TOO_LARGE)
    assert.equal(extract(req([])), TOKEN_MISSING)
  })

  test('a bare-token header (no scheme) takes the value as it is', () => {
    const bare = compileTokenExtractor({ header: 'x-token', scheme: '', maxBytes: 8 })
    assert.equal(bare(req([['X-Token', 'abc']])), 'abc')
    assert.equal(bare(req([['X-Token', 'x'.repeat(9)]])), TOKEN_TOO_LARGE)
    assert.equal(bare(req([])), TOKEN_MISSING)
  })
})

describe('verified token identity', () => {
  test('recorded per header, read back by header name in any case', () => {
    const ctx = testContext()
    assert.equal(verifiedTokenId(ctx, 'Authorization'), undefined)
    setVerifiedTokenId(ctx, tokenStateKey('Authorization'), 'f00')
    assert.equal(verifiedTokenId(ctx, 'authorization'), 'f00')
    assert.equal(verifiedTokenId(ctx, 'x-other'), undefined)
  })
})
