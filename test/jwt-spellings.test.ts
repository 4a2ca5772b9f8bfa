/**
 * One token, one spelling, through the real `portcullis serve` process: an issuer with an ES256
 * key (JWKS over HTTP on 127.0.0.1), a real upstream, the admin API and a revocation file. A
 * revoked token is refused in its 4 other spellings (padded, unused bits set, standard alphabet,
 * ECDSA n − s), whether revoked through the admin API or the file; non-canonical spellings of a
 * valid token are refused and never reach the upstream; RFC 6750's 1*SP; a numeric jti; a
 * rate limit keyed on the Authorization header counts every accepted spelling in one bucket; a
 * JWKS key with e = 1 is refused (logged once) and a token forged for it does not pass.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync, createHash } from 'node:crypto'
import { appendFileSync, writeFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { request } from './helpers/http.js'
import { b64json, type IssuerKey, JwksIssuer, TEST_AUDIENCE } from './helpers/jwks-issuer.js'
import { otherS, padded, standardAlphabet, unusedBitsSet } from './helpers/jws-spellings.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const ADMIN_TOKEN = 'jwt-spellings-admin-token-0123456789abcdef'

describe('jwt-auth spellings through the gateway', () => {
  let issuer: JwksIssuer
  let es: IssuerKey
  let up: TestUpstream
  let gw: GatewayProcess
  let revoked: string
  /** A JWKS with a key of public exponent 1 next to the real one (served at /weak.json). */
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' })

  const call = async (path: string, authorization: string) => {
    const r = await request(gw.url, { path, headers: { authorization } })
    let code: string | undefined
    try {
      code = (JSON.parse(r.body) as { code?: string }).code
    } catch {}
    return { status: r.status, code, upstream: r.body.includes('"marker":"api"') }
  }
  const admin = (body: unknown) =>
    request(gw.adminUrl as string, {
      method: 'POST',
      path: '/v1/revocations',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })

  /** An ES256 token whose signature has `-` or `_` (so that it has a standard-alphabet spelling). */
  async function mint(claims: Record<string, unknown> = {}): Promise<string> {
    for (let i = 0; i < 50; i++) {
      const t = await issuer.mint({ key: es, claims })
      if (standardAlphabet(t) !== undefined) return t
    }
    throw new Error('no token with - or _ in its signature')
  }

  before(async () => {
    issuer = await JwksIssuer.start(['ES256'])
    es = issuer.keys[0] as IssuerKey
    issuer.routes.set('/weak.json', (_req: IncomingMessage, res: ServerResponse) => {
      const body = JSON.stringify({ keys: [{ ...rsa, kid: 'e1', e: 'AQ' }, es.publicJwk] })
      res.writeHead(200, { 'content-type': 'application/json' }).end(body)
    })
    up = await startUpstream('api')
    const dir = tempDir('pc-jwt-spell-')
    revoked = join(dir, 'revoked.txt')
    writeFileSync(revoked, '# revoked\n')
    writeFileSync(join(dir, 'admin-token.txt'), ADMIN_TOKEN)
    const jwt = {
      algorithms: ['ES256', 'RS256'],
      issuer: issuer.issuer,
      audience: TEST_AUDIENCE,
      jwksUrl: `${issuer.issuer}/weak.json`,
      revocation: { file: revoked },
    }
    const config = {
      listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
      admin: { host: '127.0.0.1', port: 0, token: `\${file:admin-token.txt}` },
      log: { level: 'info' },
      upstreams: { main: { targets: [{ url: up.url }] } },
      routes: [
        {
          name: 'api',
          match: { pathPrefix: '/api' },
          upstream: 'main',
          policies: { 'jwt-auth': jwt },
        },
        {
          name: 'limited',
          match: { pathPrefix: '/limited' },
          upstream: 'main',
          policies: {
            'jwt-auth': jwt,
            'rate-limit': { limits: [{ rate: 3, per: 'minute', key: [{ header: 'authorization' }] }] },
          },
        },
      ],
      accessLog: { enabled: false },
      reload: { watch: false },
    }
    gw = await spawnGateway(stringify(config), dir)
  })

  after(async () => {
    await gw?.stop()
    await up?.close()
    await issuer?.close()
  })

  test('non-canonical spellings of a valid token are refused and never reach the upstream', async () => {
    const t = await mint()
    for (const s of [padded(t), unusedBitsSet(t), standardAlphabet(t)]) {
      const r = await call('/api/x', `Bearer ${s}`)
      assert.equal(r.code, 'GW_ERR_AUTH_INVALID')
      assert.equal(r.upstream, false)
    }
    assert.equal((await call('/api/x', `Bearer ${t}`)).status, 200)
    assert.equal(
      (await call('/api/x', `Bearer ${otherS(t)}`)).status,
      200,
      'the ECDSA twin is the same token',
    )
  })

  test('RFC 6750: Bearer in any case, one or more spaces', async () => {
    const t = await mint()
    for (const v of [`Bearer  ${t}`, `bearer ${t}`, `BEARER   ${t}`]) {
      assert.equal((await call('/api/x', v)).status, 200, v.slice(0, 9))
    }
  })

  test('revoked through the admin API (token form): refused in 4 other spellings', async () => {
    const t = await mint()
    assert.equal((await call('/api/x', `Bearer ${t}`)).status, 200)
    const posted = await admin({ token: t })
    assert.equal(posted.status, 201, posted.body)
    for (const s of [t, padded(t), unusedBitsSet(t), standardAlphabet(t), otherS(t)]) {
      const r = await call('/api/x', `Bearer ${s as string}`)
      assert.equal(r.code, 'GW_ERR_AUTH_INVALID')
      assert.equal(r.upstream, false)
    }
    // A non-canonical spelling is not a token the admin API stores a hash of.
    assert.equal((await admin({ token: padded(await mint()) })).status, 400)
  })

  test('revoked by the sha256 of the other ECDSA spelling (admin API tokenSha256): both refused', async () => {
    const t = await mint()
    const twin = otherS(t)
    assert.equal((await call('/api/x', `Bearer ${t}`)).status, 200)
    const hash = createHash('sha256').update(twin).digest('hex')
    assert.equal((await admin({ tokenSha256: hash })).status, 201)
    assert.equal((await call('/api/x', `Bearer ${t}`)).code, 'GW_ERR_AUTH_INVALID')
    assert.equal((await call('/api/x', `Bearer ${twin}`)).code, 'GW_ERR_AUTH_INVALID')
  })

  test('revoked in the file, by hash and by a numeric jti', async () => {
    const t = await mint()
    const numeric = await mint({ jti: 4242 })
    assert.equal((await call('/api/x', `Bearer ${t}`)).status, 200)
    assert.equal(
      (await call('/api/x', `Bearer ${numeric}`)).code,
      'GW_ERR_AUTH_INVALID',
      'a numeric jti is refused while revocation is checked',
    )
    appendFileSync(revoked, `sha256:${createHash('sha256').update(t).digest('hex')}\njti:4242\n`)
    await gw.waitForLog(/revocation list reloaded/)
    for (const s of [t, padded(t), unusedBitsSet(t), standardAlphabet(t), otherS(t)]) {
      assert.equal((await call('/api/x', `Bearer ${s as string}`)).code, 'GW_ERR_AUTH_INVALID')
    }
  })

  test('a rate limit keyed on Authorization counts every accepted spelling of a token once', async () => {
    const t = await mint()
    const spellings = [`Bearer ${t}`, `bearer  ${t}`, `BEARER ${otherS(t)}`]
    for (const v of spellings) assert.equal((await call('/limited/x', v)).status, 200, v.slice(0, 9))
    const fourth = await call('/limited/x', `Bearer   ${otherS(t)}`)
    assert.equal(fourth.status, 429, 'the 4th request of the same token in any spelling is over the limit')
    // Another token has its own bucket.
    assert.equal((await call('/limited/x', `Bearer ${await mint()}`)).status, 200)
  })

  test('a JWKS key with e = 1 is refused and logged once; a token forged for it does not pass', async () => {
    const now = Math.floor(Date.now() / 1000)
    const input = `${b64json({ alg: 'RS256', kid: 'e1' })}.${b64json({
      iss: issuer.issuer,
      aud: TEST_AUDIENCE,
      sub: 'mallory',
      iat: now,
      exp: now + 300,
    })}`
    // EMSA-PKCS1-v1_5(SHA-256(input)) is its own signature under e = 1.
    const t = Buffer.concat([
      Buffer.from('3031300d060960864801650304020105000420', 'hex'),
      createHash('sha256').update(input).digest(),
    ])
    const em = Buffer.concat([
      Buffer.from([0, 1]),
      Buffer.alloc(256 - t.length - 3, 0xff),
      Buffer.from([0]),
      t,
    ])
    const forged = `${input}.${em.toString('base64url')}`
    assert.equal((await call('/api/x', `Bearer ${forged}`)).code, 'GW_ERR_AUTH_INVALID')
    const log = await gw.waitForLog(/JWKS key refused/)
    const lines = log.split('\n').filter((l) => l.includes('JWKS key refused'))
    // Two routes share one key source (same keys config): one line for the key.
    assert.equal(lines.length, 1, lines.join('\n'))
    assert.match(lines[0] as string, /kid e1/)
    assert.match(lines[0] as string, /RSA public exponent 1 \(at least 65537\)/)
  })
})
