/**
 * Weak-key filtering on what a key is, not how it is encoded: RSA public exponents 1 and 3, a
 * 1024-bit modulus padded with zero bytes to 256 octets, a 2048-bit modulus with leading zero
 * bytes (accepted), EC coordinates of the wrong length, Ed25519 keys of small order. The keys
 * that allow forgery without any private key (e = 1, the Ed25519 identity) are also tried end to
 * end with a forged token. Each refused key of a JWKS is logged once, with its reason.
 */
import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { exportJWK, importPKCS8, SignJWT } from 'jose'
import pino from 'pino'
import { b64json, JwksIssuer, TEST_AUDIENCE } from '../../../test/helpers/jwks-issuer.js'
import type { GatewayError } from '../../gateway/errors.js'
import { testContext } from '../testing/context.js'
import { prepareJwk, prepareJwks } from './keys.js'
import { JwtAuth } from './policy.js'
import { JwtAuthConfig, type JwsAlgorithm } from './schema.js'

const ALL = new Set<JwsAlgorithm>(['RS256', 'ES256', 'EdDSA', 'Ed25519', 'HS256'])
const silent = pino({ level: 'silent' })
const open: JwtAuth[] = []
let dir: string

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-jwt-keys-'))
})
after(() => {
  for (const p of open) p.close()
  rmSync(dir, { recursive: true, force: true })
})

function rsa(bits: number): { priv: KeyObject; jwk: { kty: string; n: string; e: string } } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits })
  return {
    priv: privateKey,
    jwk: publicKey.export({ format: 'jwk' }) as { kty: string; n: string; e: string },
  }
}

/** `n` with `zeros` zero bytes in front (the same integer, a longer encoding). */
function zeroPadded(n: string, zeros: number): string {
  return Buffer.concat([Buffer.alloc(zeros), Buffer.from(n, 'base64url')]).toString('base64url')
}

/** The JWS signature an RSA key with e = 1 accepts for `input`: EMSA-PKCS1-v1_5(SHA-256(input)). */
function pkcs1Encoded(input: string, k: number): Buffer {
  const digestInfo = Buffer.from('3031300d060960864801650304020105000420', 'hex')
  const t = Buffer.concat([digestInfo, createHash('sha256').update(input).digest()])
  return Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(k - t.length - 3, 0xff), Buffer.from([0]), t])
}

const claims = () => {
  const now = Math.floor(Date.now() / 1000)
  return { iss: 'https://issuer.test', aud: TEST_AUDIENCE, sub: 'mallory', iat: now, exp: now + 300 }
}

function build(cfg: Record<string, unknown>, logger = silent): JwtAuth {
  const c = Value.Default(JwtAuthConfig, structuredClone(cfg)) as JwtAuthConfig
  assert.ok(Value.Check(JwtAuthConfig, c))
  const p = new JwtAuth(c, logger, Date.now, 'test')
  open.push(p)
  return p
}

async function code(p: JwtAuth, token: string): Promise<string | undefined> {
  try {
    const r = p.onRequest(testContext({ headers: { authorization: `Bearer ${token}` } }))
    if (r !== undefined) await r
    return undefined
  } catch (err) {
    return (err as GatewayError).code
  }
}

describe('RSA keys', () => {
  const good = rsa(2048)
  const small = rsa(1024)

  test('e = 1, e = 3, a zero-padded 1024-bit modulus are refused; a 2048-bit modulus with leading zero bytes is accepted', () => {
    const jwks = {
      keys: [
        { ...good.jwk, kid: 'e1', e: 'AQ' },
        { ...good.jwk, kid: 'e3', e: 'Aw' },
        { ...small.jwk, kid: 'padded-1024', n: zeroPadded(small.jwk.n, 128) },
        { ...good.jwk, kid: 'leading-zeros', n: zeroPadded(good.jwk.n, 2) },
        { ...good.jwk, kid: 'even-e', e: Buffer.from([1, 0, 0]).toString('base64url') },
        { ...good.jwk, kid: 'e-65537' },
      ],
    }
    const { keys, skipped } = prepareJwks(jwks, ALL, { allowSecrets: false })
    assert.deepEqual(
      keys.map((k) => k.kid),
      ['leading-zeros', 'e-65537'],
    )
    assert.equal(skipped.length, 4)
    assert.match(skipped[0] as string, /kid e1\).*exponent 1\b/)
    assert.match(skipped[1] as string, /kid e3\).*exponent 3\b/)
    assert.match(skipped[2] as string, /kid padded-1024\).*1024 bits/)
    assert.match(skipped[3] as string, /kid even-e\).*exponent 65536\b/)
  })

  test('the modulus and exponent must be base64url; a huge exponent is refused', () => {
    assert.match(prepareJwk({ ...good.jwk, n: `${good.jwk.n}!` }, ALL) as string, /base64url/)
    assert.match(prepareJwk({ ...good.jwk, e: 'AQ+B' }, ALL) as string, /base64url/)
    const bigE = Buffer.alloc(9, 0xff).toString('base64url') // 72 bits, odd
    assert.match(prepareJwk({ ...good.jwk, e: bigE }, ALL) as string, /exponent/)
    assert.match(
      prepareJwk({ ...good.jwk, n: zeroPadded(good.jwk.n, 0).replace(/.$/, 'A') }, ALL) as string,
      /odd|modulus/,
    )
  })

  test('a token forged for a JWKS key with e = 1 (no private key involved) is refused', async () => {
    const file = join(dir, 'e1.json')
    writeFileSync(
      file,
      JSON.stringify({
        keys: [
          { ...good.jwk, kid: 'e1', e: 'AQ' },
          { ...good.jwk, kid: 'ok' },
        ],
      }),
    )
    const p = build({ algorithms: ['RS256'], audience: TEST_AUDIENCE, jwksFile: file })
    const input = `${b64json({ alg: 'RS256', kid: 'e1' })}.${b64json(claims())}`
    const forged = `${input}.${pkcs1Encoded(input, 256).toString('base64url')}`
    assert.equal(await code(p, forged), 'GW_ERR_AUTH_INVALID')
  })

  test('a token signed by the key behind a 2048-bit modulus with leading zero bytes verifies', async () => {
    const file = join(dir, 'leading.json')
    writeFileSync(file, JSON.stringify({ keys: [{ ...good.jwk, kid: 'lz', n: zeroPadded(good.jwk.n, 3) }] }))
    const p = build({ algorithms: ['RS256'], audience: TEST_AUDIENCE, jwksFile: file })
    const priv = await importPKCS8(good.priv.export({ format: 'pem', type: 'pkcs8' }) as string, 'RS256')
    const t = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'lz' }).sign(priv)
    assert.equal(await code(p, t), undefined)
    // And a token signed by the 1024-bit key behind the padded modulus is not.
    const file2 = join(dir, 'padded.json')
    writeFileSync(
      file2,
      JSON.stringify({
        keys: [
          { ...small.jwk, kid: 'p1024', n: zeroPadded(small.jwk.n, 128) },
          { ...good.jwk, kid: 'ok' },
        ],
      }),
    )
    const p2 = build({ algorithms: ['RS256'], audience: TEST_AUDIENCE, jwksFile: file2 })
    // (jose will not sign with a 1024-bit key: node:crypto signs the JWS input directly.)
    const input = `${b64json({ alg: 'RS256', kid: 'p1024' })}.${b64json(claims())}`
    const weak = `${input}.${sign('sha256', Buffer.from(input), small.priv).toString('base64url')}`
    assert.equal(await code(p2, weak), 'GW_ERR_AUTH_INVALID')
  })

  test('static keys: a weak key is a config error naming the reason', () => {
    assert.throws(
      () =>
        build({
          algorithms: ['RS256'],
          keys: [{ jwk: JSON.stringify({ ...good.jwk, e: 'Aw' }) }],
        }),
      /keys\[0\].*exponent 3/,
    )
  })
})

describe('EC and OKP keys', () => {
  test('EC coordinates must have the curve’s length; a point off the curve is refused', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>
    const longX = Buffer.concat([Buffer.alloc(1), Buffer.from(jwk.x as string, 'base64url')]).toString(
      'base64url',
    )
    const shortY = Buffer.from(jwk.y as string, 'base64url')
      .subarray(1)
      .toString('base64url')
    assert.match(prepareJwk({ ...jwk, x: longX }, ALL) as string, /x.*32/)
    assert.match(prepareJwk({ ...jwk, y: shortY }, ALL) as string, /y.*32/)
    const y = Buffer.from(jwk.y as string, 'base64url')
    y[31] = (y[31] as number) ^ 1
    const { skipped } = prepareJwks({ keys: [{ ...jwk, y: y.toString('base64url') }] }, ALL, {
      allowSecrets: false,
    })
    assert.equal(skipped.length, 1)
    assert.equal(typeof prepareJwk(jwk, ALL), 'object', 'the real key passes')
  })

  test('Ed25519: small-order public keys and wrong lengths are refused', async () => {
    const { publicKey } = generateKeyPairSync('ed25519')
    const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>
    assert.equal(typeof prepareJwk(jwk, ALL), 'object', 'a real key passes')
    const hex = (h: string) => Buffer.from(h, 'hex').toString('base64url')
    const smallOrder = [
      '0100000000000000000000000000000000000000000000000000000000000000', // identity
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2
      '0000000000000000000000000000000000000000000000000000000000000000', // order 4
      '0000000000000000000000000000000000000000000000000000000000000080', // order 4
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // identity, y = p + 1
      '0100000000000000000000000000000000000000000000000000000000000080', // identity, x sign set
    ]
    for (const h of smallOrder) {
      assert.match(prepareJwk({ kty: 'OKP', crv: 'Ed25519', x: hex(h) }, ALL) as string, /Ed25519/, h)
    }
    assert.match(
      prepareJwk({ kty: 'OKP', crv: 'Ed25519', x: Buffer.alloc(31, 7).toString('base64url') }, ALL) as string,
      /32/,
    )
  })

  test('a token forged for the Ed25519 identity key (R = identity, S = 0) is refused', async () => {
    const id = Buffer.alloc(32)
    id[0] = 1
    const file = join(dir, 'ed-identity.json')
    const real = await exportJWK(generateKeyPairSync('ed25519').publicKey)
    writeFileSync(
      file,
      JSON.stringify({
        keys: [
          { kty: 'OKP', crv: 'Ed25519', kid: 'weak', x: id.toString('base64url') },
          { ...real, kid: 'real' },
        ],
      }),
    )
    const p = build({ algorithms: ['EdDSA'], audience: TEST_AUDIENCE, jwksFile: file })
    const input = `${b64json({ alg: 'EdDSA', kid: 'weak' })}.${b64json(claims())}`
    const forged = `${input}.${Buffer.concat([id, Buffer.alloc(32)]).toString('base64url')}`
    assert.equal(await code(p, forged), 'GW_ERR_AUTH_INVALID')
  })
})

describe('logging refused keys', () => {
  test('each refused JWKS key is logged once with its reason, not on every refresh', async () => {
    const issuer = await JwksIssuer.start(['RS256'])
    const good = rsa(2048)
    let doc: { keys: unknown[] } = {
      keys: [{ ...good.jwk, kid: 'e3', e: 'Aw' }, ...issuer.jwks().keys],
    }
    issuer.routes.set('/weak.json', (_req: IncomingMessage, res: ServerResponse) => {
      const b = JSON.stringify(doc)
      res.writeHead(200, { 'content-type': 'application/json' }).end(b)
    })
    const lines: Record<string, unknown>[] = []
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) })
    try {
      const p = build(
        {
          algorithms: ['RS256'],
          issuer: issuer.issuer,
          audience: TEST_AUDIENCE,
          jwksUrl: `${issuer.issuer}/weak.json`,
          remote: { unknownKidMinIntervalMs: 0, refreshIntervalMs: 60000, timeoutMs: 2000 },
        },
        logger,
      )
      assert.equal(await code(p, await issuer.mint()), undefined)
      // A new JWKS document (a key added), fetched for an unknown kid: the weak key is still there.
      const added = await issuer.addKey('RS256')
      doc = { keys: [{ ...good.jwk, kid: 'e3', e: 'Aw' }, ...issuer.jwks().keys] }
      assert.equal(await code(p, await issuer.mint({ key: added })), undefined)
      const refused = lines.filter((l) => /key refused/.test(String(l.msg)))
      assert.equal(refused.length, 1, JSON.stringify(lines.map((l) => l.msg)))
      assert.match(String(refused[0]?.reason), /exponent 3/)
      assert.match(String(refused[0]?.key), /kid e3/)
    } finally {
      await issuer.close()
    }
  })
})
