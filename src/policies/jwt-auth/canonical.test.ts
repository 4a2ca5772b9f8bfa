/**
 * jwt-auth and the spellings of one token: a token is accepted only in its canonical base64url
 * spelling, and the two valid ECDSA signatures (r, s) and (r, n − s) are one token for the cache,
 * revocation and rate-limit keys. Revocation by `jti` also covers issuers that emit a numeric jti
 * (refused), and RFC 6750's 1*SP after the scheme. Real keys (jose), real request contexts.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import pino from 'pino'
import { type IssuerKey, JwksIssuer, TEST_AUDIENCE } from '../../../test/helpers/jwks-issuer.js'
import {
  isHighS,
  otherS,
  padded,
  standardAlphabet,
  unusedBitsSet,
} from '../../../test/helpers/jws-spellings.js'
import { tokenHash, verifiedTokenId } from '../../auth/token.js'
import type { GatewayError } from '../../gateway/errors.js'
import { testContext } from '../testing/context.js'
import { JwtAuth } from './policy.js'
import { JwtAuthConfig } from './schema.js'

const logger = pino({ level: 'silent' })
const open: JwtAuth[] = []
let dir: string

function build(cfg: Record<string, unknown>): JwtAuth {
  const c = Value.Default(JwtAuthConfig, structuredClone(cfg)) as JwtAuthConfig
  assert.ok(Value.Check(JwtAuthConfig, c))
  const p = new JwtAuth(c, logger, Date.now, 'test')
  open.push(p)
  return p
}

async function call(p: JwtAuth, headers: Record<string, string>) {
  const ctx = testContext({ headers })
  try {
    const r = p.onRequest(ctx)
    if (r !== undefined) await r
    return { code: undefined as string | undefined, ctx }
  } catch (err) {
    return { code: (err as GatewayError).code as string | undefined, ctx }
  }
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` })

async function until(what: string, fn: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn()) return
    await new Promise((r) => setTimeout(r, 25))
  }
  assert.fail(`timed out waiting for ${what}`)
}

describe('jwt-auth: one token, one spelling', () => {
  let issuer: JwksIssuer
  let es: IssuerKey
  let rs: IssuerKey
  let base: Record<string, unknown>

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-jwt-canon-'))
    issuer = await JwksIssuer.start(['ES256', 'RS256'])
    await issuer.down() // only its minting is used here
    es = issuer.keys[0] as IssuerKey
    rs = issuer.keys[1] as IssuerKey
    base = {
      algorithms: ['ES256', 'RS256'],
      issuer: issuer.issuer,
      audience: TEST_AUDIENCE,
      keys: [
        { kid: es.kid, jwk: JSON.stringify(es.publicJwk) },
        { kid: rs.kid, pem: rs.spki },
      ],
    }
  })
  after(() => {
    for (const p of open) p.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** A token whose signature has `-` or `_` (so that it has a standard-alphabet spelling). */
  async function mintSpellable(key: IssuerKey, claims: Record<string, unknown> = {}): Promise<string> {
    for (let i = 0; i < 50; i++) {
      const t = await issuer.mint({ key, claims })
      if (standardAlphabet(t) !== undefined) return t
    }
    throw new Error('no token with - or _ in its signature in 50 tries')
  }

  test('non-canonical base64url spellings are refused with GW_ERR_AUTH_INVALID', async () => {
    const p = build(base)
    for (const key of [es, rs]) {
      const t = await mintSpellable(key)
      const spellings = {
        padded: padded(t),
        'unused bits set': unusedBitsSet(t),
        'standard alphabet': standardAlphabet(t),
      }
      for (const [name, s] of Object.entries(spellings)) {
        assert.ok(s !== undefined && s !== t, `${key.alg} ${name}: a different spelling`)
        assert.equal((await call(p, bearer(s))).code, 'GW_ERR_AUTH_INVALID', `${key.alg} ${name}`)
      }
      // The canonical spelling itself passes, before and after the others were tried.
      assert.equal((await call(p, bearer(t))).code, undefined, `${key.alg} canonical`)
    }
    // Padding or junk in the header or payload segment is refused as well.
    const t = await issuer.mint({ key: rs })
    const [h, pl, s] = t.split('.') as [string, string, string]
    for (const bad of [`${h}=.${pl}.${s}`, `${h}.${pl}==.${s}`, `${h}.${pl}.${s}.`, `${h}..${s}`]) {
      assert.equal((await call(p, bearer(bad))).code, 'GW_ERR_AUTH_INVALID', bad.slice(-12))
    }
  })

  test('an RSA signature that is not exactly the modulus length (a leading zero byte added) is refused', async () => {
    const p = build(base)
    const t = await issuer.mint({ key: rs })
    const [h, pl, s] = t.split('.') as [string, string, string]
    const longer = Buffer.concat([Buffer.from([0]), Buffer.from(s, 'base64url')]).toString('base64url')
    assert.equal((await call(p, bearer(`${h}.${pl}.${longer}`))).code, 'GW_ERR_AUTH_INVALID')
    assert.equal((await call(p, bearer(t))).code, undefined)
  })

  test('a revoked token is refused in 4 other spellings (padded, unused bits, standard alphabet, ECDSA n − s)', async () => {
    const file = join(dir, 'revoked-spellings.txt')
    writeFileSync(file, '# revoked tokens\n')
    const p = build({ ...base, revocation: { file } })
    const t = await mintSpellable(es)
    const spellings = [padded(t), unusedBitsSet(t), standardAlphabet(t), otherS(t)]
    for (const s of spellings) assert.ok(s !== undefined && s !== t)
    // Before the revocation, the ECDSA twin is the same valid token.
    assert.equal((await call(p, bearer(t))).code, undefined)
    assert.equal((await call(p, bearer(otherS(t)))).code, undefined)
    // Revoked by the SHA-256 of the token as issued (whichever s the issuer's library chose).
    writeFileSync(file, `sha256:${tokenHash(t)}\n`)
    await until('the revocation to apply', async () => (await call(p, bearer(t))).code !== undefined)
    for (const [i, s] of spellings.entries()) {
      assert.equal((await call(p, bearer(s as string))).code, 'GW_ERR_AUTH_INVALID', `spelling ${i}`)
    }
    assert.equal((await call(p, bearer(t))).code, 'GW_ERR_AUTH_INVALID')
  })

  test('revoked by the hash of the other ECDSA spelling: both spellings are refused, also when cached', async () => {
    const file = join(dir, 'revoked-twin.txt')
    writeFileSync(file, '# revoked tokens\n')
    const p = build({ ...base, revocation: { file } })
    const t = await issuer.mint({ key: es })
    const twin = otherS(t)
    assert.equal((await call(p, bearer(t))).code, undefined)
    assert.equal((await call(p, bearer(twin))).code, undefined)
    writeFileSync(file, `sha256:${tokenHash(twin)}\n`)
    await until('the revocation to apply', async () => (await call(p, bearer(t))).code !== undefined)
    assert.equal((await call(p, bearer(t))).code, 'GW_ERR_AUTH_INVALID')
    assert.equal((await call(p, bearer(twin))).code, 'GW_ERR_AUTH_INVALID')
  })

  test('the two ECDSA spellings are one token: one cache entry, one identity for rate limits', async () => {
    const p = build(base)
    const t = await issuer.mint({ key: es })
    const twin = otherS(t)
    const low = isHighS(t) ? twin : t
    const a = await call(p, bearer(t))
    assert.equal(a.code, undefined)
    const verified = p.stats.verifications
    const b = await call(p, bearer(twin))
    assert.equal(b.code, undefined)
    assert.equal(p.stats.verifications, verified, 'the other spelling is a cache hit, not a new verification')
    assert.equal(b.ctx.principal, a.ctx.principal, 'the same cached principal')
    const idA = verifiedTokenId(a.ctx, 'authorization')
    assert.equal(idA, tokenHash(low), 'the identity is the SHA-256 of the low-s spelling')
    assert.equal(verifiedTokenId(b.ctx, 'authorization'), idA)
  })

  test('a numeric jti: revoked when its value is listed, refused anyway while revocation is configured', async () => {
    const file = join(dir, 'revoked-jti.txt')
    writeFileSync(file, 'jti:12345\n')
    const p = build({ ...base, revocation: { file } })
    assert.equal(
      (await call(p, bearer(await issuer.mint({ key: rs, claims: { jti: 12345 } })))).code,
      'GW_ERR_AUTH_INVALID',
      'revoked numeric jti',
    )
    assert.equal(
      (await call(p, bearer(await issuer.mint({ key: rs, claims: { jti: 777 } })))).code,
      'GW_ERR_AUTH_INVALID',
      'a jti that is not a string cannot be checked: refused',
    )
    assert.equal(
      (await call(p, bearer(await issuer.mint({ key: rs, claims: { jti: { id: 'x' } } })))).code,
      'GW_ERR_AUTH_INVALID',
    )
    assert.equal(
      (await call(p, bearer(await issuer.mint({ key: rs, claims: { jti: '12345' } })))).code,
      'GW_ERR_AUTH_INVALID',
      'the string jti is revoked',
    )
    assert.equal((await call(p, bearer(await issuer.mint({ key: rs })))).code, undefined)
    // Without revocation checks there is nothing a jti is compared with: accepted.
    const none = build({ ...base, revocation: { shared: false } })
    assert.equal(
      (await call(none, bearer(await issuer.mint({ key: rs, claims: { jti: 777 } })))).code,
      undefined,
    )
  })

  test('RFC 6750: one or more spaces after a case-insensitive Bearer', async () => {
    const p = build(base)
    const t = await issuer.mint({ key: rs })
    for (const v of [`Bearer ${t}`, `Bearer  ${t}`, `bearer    ${t}`, `BEARER ${t}`, `bEaReR  ${t}`]) {
      assert.equal((await call(p, { authorization: v })).code, undefined, JSON.stringify(v.slice(0, 10)))
    }
    for (const v of [`Bearer\t${t}`, `Bearer ${t} `, `Bearer ${t}\tx`, 'Bearer   ']) {
      assert.equal((await call(p, { authorization: v })).code, 'GW_ERR_AUTH_INVALID', JSON.stringify(v))
    }
    assert.equal((await call(p, { authorization: `Bearerx ${t}` })).code, 'GW_ERR_AUTH_MISSING')
  })
})
