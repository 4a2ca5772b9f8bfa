/**
 * jwt-auth unit tests: the policy instance called directly with real request contexts, real keys
 * (jose) and a real JWKS issuer on 127.0.0.1. The attack cases here are repeated end to end
 * through the gateway process in test/jwt-auth.test.ts.
 */
import assert from 'node:assert/strict'
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose'
import pino from 'pino'
import {
  b64json,
  generateIssuerKey,
  type IssuerKey,
  JwksIssuer,
  TEST_AUDIENCE,
} from '../../../test/helpers/jwks-issuer.js'
import { REVOCATIONS_MAP, SharedRevocations } from '../../auth/revocation.js'
import { tokenHash } from '../../auth/token.js'
import type { GatewayError } from '../../gateway/errors.js'
import { createMemoryStore } from '../../stores/memory/memory-store.js'
import type { Store } from '../../stores/types.js'
import { testContext, testDeps } from '../testing/context.js'
import { JwtAuth, jwtAuth } from './policy.js'
import { JwtAuthConfig } from './schema.js'

const logger = pino({ level: 'silent' })
const open: JwtAuth[] = []
let dir: string

function build(cfg: Record<string, unknown>, now: () => number = Date.now): JwtAuth {
  const c = Value.Default(JwtAuthConfig, structuredClone(cfg)) as JwtAuthConfig
  assert.ok(
    Value.Check(JwtAuthConfig, c),
    [...Value.Errors(JwtAuthConfig, c)].map((e) => `${e.path} ${e.message}`).join('; '),
  )
  const p = new JwtAuth(c, logger, now, 'test')
  open.push(p)
  return p
}

interface Outcome {
  code: string | undefined
  status: number | undefined
  headers: Record<string, string> | undefined
  sync: boolean
  ctx: ReturnType<typeof testContext>
}

async function call(p: JwtAuth, headers: Record<string, string>, raw?: string[]): Promise<Outcome> {
  const ctx = testContext({ headers })
  if (raw) ctx.req.rawHeaders.push(...raw)
  let sync = true
  try {
    const r = p.onRequest(ctx)
    if (r !== undefined) {
      sync = false
      await r
    }
    return { code: undefined, status: 200, headers: undefined, sync, ctx }
  } catch (err) {
    const e = err as GatewayError
    return { code: e.code, status: e.status, headers: e.headers, sync, ctx }
  }
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn()) return
    await sleep(25)
  }
  assert.fail(`timed out waiting for ${what}`)
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pc-jwt-unit-'))
})
after(async () => {
  for (const p of open) p.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('static keys', () => {
  let rsa: IssuerKey
  let ec: IssuerKey
  let issuer: JwksIssuer
  let base: Record<string, unknown>

  before(async () => {
    issuer = await JwksIssuer.start(['RS256'])
    await issuer.down() // only its minting is used here
    rsa = issuer.signingKey as IssuerKey
    ec = await generateIssuerKey('ES256')
    base = {
      algorithms: ['RS256', 'ES256'],
      issuer: issuer.issuer,
      audience: TEST_AUDIENCE,
      keys: [{ kid: rsa.kid, pem: rsa.spki }, { jwk: JSON.stringify(ec.publicJwk) }],
    }
  })

  test('a valid RS256 token sets the principal; the same token again is a synchronous cache hit', async () => {
    const p = build(base)
    const token = await issuer.mint({
      claims: {
        sub: 'alice',
        scope: 'orders:read orders:write',
        scp: ['profile'],
        realm_access: { roles: ['admin'] },
        groups: ['ops', 'admin'],
      },
    })
    const first = await call(p, bearer(token))
    assert.equal(first.code, undefined)
    assert.equal(first.sync, false)
    const pr = first.ctx.principal
    assert.ok(pr)
    assert.equal(pr.id, 'alice')
    assert.equal(pr.type, 'user')
    assert.equal(pr.authMethod, 'jwt')
    assert.deepEqual([...pr.scopes].sort(), ['orders:read', 'orders:write', 'profile'])
    assert.deepEqual([...pr.roles].sort(), ['admin', 'ops'])
    assert.equal(pr.claims.iss, issuer.issuer)
    assert.equal(p.stats.verifications, 1)
    const second = await call(p, bearer(token))
    assert.equal(second.code, undefined)
    assert.equal(second.sync, true, 'a cache hit returns no promise')
    assert.equal(second.ctx.principal, pr)
    assert.equal(p.stats.verifications, 1, 'no second signature check')
    assert.equal(p.stats.cacheHits, 1)
  })

  test('ES256 with a static JWK; a client-credentials token is a service principal', async () => {
    const p = build(base)
    const token = await issuer.mint({ key: ec, claims: { sub: 'svc-1', client_id: 'svc-1' } })
    const r = await call(p, bearer(token))
    assert.equal(r.code, undefined)
    assert.equal(r.ctx.principal?.type, 'service')
  })

  test('cache off: every request verifies', async () => {
    const p = build({ ...base, cache: { enabled: false } })
    const token = await issuer.mint()
    for (let i = 0; i < 3; i++) assert.equal((await call(p, bearer(token))).code, undefined)
    assert.equal(p.stats.verifications, 3)
    assert.equal(p.stats.cacheHits, 0)
  })

  test('a cached entry ends at exp: an expired token is refused even after a hit', async () => {
    let clock = Date.now()
    const p = build(base, () => clock)
    const token = await issuer.mint({ expiresInSec: 10 })
    assert.equal((await call(p, bearer(token))).code, undefined)
    assert.equal((await call(p, bearer(token))).sync, true)
    clock += 11_000 + 30_000 // past exp and the clock skew
    const r = await call(p, bearer(token))
    assert.equal(r.code, 'GW_ERR_TOKEN_EXPIRED')
    assert.equal(
      r.headers?.['www-authenticate'],
      'Bearer realm="portcullis", error="invalid_token", error_description="The access token expired"',
    )
  })

  test('claims: exp, nbf, iat, iss, aud, typ, requiredClaims', async () => {
    const p = build({ ...base, requiredClaims: ['jti'] })
    const now = Math.floor(Date.now() / 1000)
    const cases: [string, Parameters<JwksIssuer['mint']>[0], string][] = [
      ['expired', { claims: { iat: now - 600, exp: now - 120 } }, 'GW_ERR_TOKEN_EXPIRED'],
      ['nbf in the future', { claims: { nbf: now + 600 } }, 'GW_ERR_AUTH_INVALID'],
      ['iat in the future', { claims: { iat: now + 600, exp: now + 900 } }, 'GW_ERR_AUTH_INVALID'],
      ['wrong iss', { claims: { iss: 'https://evil.example' } }, 'GW_ERR_AUTH_INVALID'],
      ['no iss', { claims: { iss: undefined } }, 'GW_ERR_AUTH_INVALID'],
      ['wrong aud', { claims: { aud: 'another-api' } }, 'GW_ERR_AUTH_INVALID'],
      ['no exp', { claims: { exp: undefined } }, 'GW_ERR_AUTH_INVALID'],
      ['no jti (requiredClaims)', { claims: { jti: undefined } }, 'GW_ERR_AUTH_INVALID'],
      ['exp not a number', { claims: { exp: 'tomorrow' } }, 'GW_ERR_AUTH_INVALID'],
      ['no sub', { claims: { sub: undefined } }, 'GW_ERR_AUTH_INVALID'],
      ['within the clock skew', { claims: { iat: now - 600, exp: now - 10 } }, 'ok'],
      ['aud list containing ours', { claims: { aud: ['x', TEST_AUDIENCE] } }, 'ok'],
    ]
    for (const [name, o, want] of cases) {
      const r = await call(p, bearer(await issuer.mint(o)))
      assert.equal(r.code ?? 'ok', want, name)
      if (want === 'GW_ERR_AUTH_INVALID') {
        assert.equal(
          r.headers?.['www-authenticate'],
          'Bearer realm="portcullis", error="invalid_token"',
          name,
        )
      }
    }
    const typed = build({ ...base, typ: 'at+jwt' })
    assert.equal((await call(typed, bearer(await issuer.mint()))).code, 'GW_ERR_AUTH_INVALID')
    assert.equal(
      (await call(typed, bearer(await issuer.mint({ header: { typ: 'at+jwt' } })))).code,
      undefined,
    )
    assert.equal(
      (await call(typed, bearer(await issuer.mint({ header: { typ: 'application/at+jwt' } })))).code,
      undefined,
    )
  })

  test('maxLifetimeSec: exp − iat over the limit, or no iat, is refused', async () => {
    const p = build({ ...base, maxLifetimeSec: 3600 })
    const now = Math.floor(Date.now() / 1000)
    assert.equal((await call(p, bearer(await issuer.mint({ expiresInSec: 3600 })))).code, undefined)
    assert.equal(
      (await call(p, bearer(await issuer.mint({ expiresInSec: 3601 })))).code,
      'GW_ERR_AUTH_INVALID',
    )
    assert.equal(
      (await call(p, bearer(await issuer.mint({ claims: { iat: undefined, exp: now + 60 } })))).code,
      'GW_ERR_AUTH_INVALID',
    )
  })

  test('attacks: alg none, key confusion, forged and stripped signatures, embedded keys', async () => {
    const p = build({ ...base, algorithms: ['RS256', 'ES256', 'HS256'] })
    const good = await issuer.mint()
    const [h, payload, sig] = good.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
    const attacker = await generateKeyPair('RS256', { extractable: true })
    const cases: [string, string][] = [
      ['alg none', new UnsecuredJWT(claims).encode()],
      ['alg none, signature kept', `${b64json({ alg: 'none', kid: rsa.kid })}.${payload}.${sig}`],
      [
        'HS256 signed with the RSA public key (key confusion)',
        await new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
          .sign(new TextEncoder().encode(rsa.spki)),
      ],
      ['tampered payload', `${h}.${b64json({ ...claims, sub: 'admin' })}.${sig}`],
      ['stripped signature', `${h}.${payload}.`],
      ['two segments', `${h}.${payload}`],
      ['kid path traversal', await issuer.mint({ kid: '../../../../etc/passwd' })],
      ['kid SQL', await issuer.mint({ kid: "' OR 1=1 --" })],
      [
        'jwk header with the attacker key',
        await new SignJWT(claims)
          .setProtectedHeader({
            alg: 'RS256',
            jwk: { ...(await (await import('jose')).exportJWK(attacker.publicKey)) },
          })
          .sign(attacker.privateKey),
      ],
      [
        'jku + kid of ours, signed by the attacker',
        await new SignJWT(claims)
          .setProtectedHeader({
            alg: 'RS256',
            kid: rsa.kid,
            jku: 'http://127.0.0.1:1/jwks.json',
            x5u: 'http://127.0.0.1:1/c.pem',
          })
          .sign(attacker.privateKey),
      ],
      ['garbage', 'not-a-jwt'],
    ]
    for (const [name, token] of cases) {
      const r = await call(p, bearer(token))
      assert.equal(r.code, 'GW_ERR_AUTH_INVALID', name)
      assert.equal(r.ctx.principal, undefined, name)
    }
    assert.equal((await call(p, bearer(good))).code, undefined, 'the genuine token still passes')
  })

  test('an HMAC algorithm is never used with an RSA key: config with only HS256 and a PEM key is refused', () => {
    assert.throws(
      () => build({ ...base, algorithms: ['HS256'], keys: [{ pem: rsa.spki }] }),
      /no allowed algorithm fits a RSA key/,
    )
    assert.throws(
      () => build({ ...base, keys: [{ jwk: '{"kty":"oct","k":"c2hvcnQ"}' }] }),
      /no allowed algorithm/,
    )
    assert.throws(() => build({ ...base, keys: [{ pem: 'nope' }] }), /keys\[0\]: not a PEM/)
    assert.throws(() => build({ ...base, keys: [{ pem: rsa.spki, jwk: '{}' }] }), /exactly one of pem or jwk/)
    assert.throws(
      () => build({ algorithms: ['RS256'] }),
      /exactly one of keys, jwksFile, jwksUrl or discovery/,
    )
  })

  test('HS256 with a static secret (kty oct) verifies; an RS256 token is not tried against it', async () => {
    const secret = Buffer.alloc(32, 7)
    const p = build({
      ...base,
      algorithms: ['HS256', 'RS256'],
      keys: [{ kid: 'shared', jwk: JSON.stringify({ kty: 'oct', k: secret.toString('base64url') }) }],
    })
    const now = Math.floor(Date.now() / 1000)
    const claims = { iss: issuer.issuer, aud: TEST_AUDIENCE, sub: 'bob', iat: now, exp: now + 60 }
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'shared' }).sign(secret)
    assert.equal((await call(p, bearer(hs))).code, undefined)
    const rs = await issuer.mint({ kid: 'shared' })
    assert.equal((await call(p, bearer(rs))).code, 'GW_ERR_AUTH_INVALID')
  })

  test('token source: missing, other scheme, malformed, repeated, oversized, custom header, cookie', async () => {
    const p = build(base)
    const token = await issuer.mint()
    const missing = await call(p, {})
    assert.equal(missing.code, 'GW_ERR_AUTH_MISSING')
    assert.equal(missing.headers?.['www-authenticate'], 'Bearer realm="portcullis"')
    assert.equal((await call(p, { authorization: 'Basic YWxpY2U6cHc=' })).code, 'GW_ERR_AUTH_MISSING')
    const bare = await call(p, { authorization: 'Bearer' })
    assert.equal(bare.code, 'GW_ERR_AUTH_INVALID')
    assert.equal(bare.headers?.['www-authenticate'], 'Bearer realm="portcullis", error="invalid_request"')
    assert.equal((await call(p, { authorization: `Bearer ${token} x` })).code, 'GW_ERR_AUTH_INVALID')
    assert.equal(
      (await call(p, { authorization: `bearer ${token}` })).code,
      undefined,
      'scheme is case-insensitive',
    )
    assert.equal(
      (await call(p, bearer(token), ['Authorization', 'Bearer other'])).code,
      'GW_ERR_AUTH_INVALID',
      'a second Authorization header is refused',
    )
    const big = await issuer.mint({ claims: { pad: 'x'.repeat(9000) } })
    const r = await call(p, bearer(big))
    assert.equal(r.code, 'GW_ERR_AUTH_INVALID')
    assert.equal(p.stats.verifications, 1, 'the oversized token never reached verification')

    const hdr = build({ ...base, token: { header: 'x-access-token', scheme: '' } })
    assert.equal((await call(hdr, { 'x-access-token': token })).code, undefined)
    assert.equal((await call(hdr, bearer(token))).code, 'GW_ERR_AUTH_MISSING')
    const cookie = build({ ...base, token: { cookie: 'at' } })
    assert.equal((await call(cookie, { cookie: `theme=dark; at=${token}; x=1` })).code, undefined)
    assert.equal((await call(cookie, { cookie: `at=${token}; at=${token}` })).code, 'GW_ERR_AUTH_INVALID')
    assert.equal((await call(cookie, { cookie: 'theme=dark' })).code, 'GW_ERR_AUTH_MISSING')
  })

  test('authenticate(): undefined without a token, a principal with one, throws for a bad one', async () => {
    const p = build(base)
    assert.equal(p.authenticate(testContext()), undefined)
    const pr = await p.authenticate(testContext({ headers: bearer(await issuer.mint()) }))
    assert.equal(pr?.id, 'alice')
    assert.throws(() => p.authenticate(testContext({ headers: { authorization: 'Bearer' } })))
    assert.equal(p.challenge, 'Bearer realm="portcullis"')
  })

  test('token.forward: false strips the token header upstream', () => {
    assert.deepEqual(build({ ...base, token: { forward: false } }).stripRequestHeaders, ['authorization'])
    assert.equal(build(base).stripRequestHeaders, undefined)
  })

  test('step-up: amr must contain mfa; acr at least a level → 401 insufficient_user_authentication', async () => {
    const mfa = build({ ...base, requireClaims: [{ claim: 'amr', allOf: ['mfa'] }] })
    const plain = await issuer.mint({ claims: { amr: ['pwd'] } })
    const r = await call(mfa, bearer(plain))
    assert.equal(r.code, 'GW_ERR_STEP_UP_REQUIRED')
    assert.equal(r.status, 401)
    assert.match(
      r.headers?.['www-authenticate'] ?? '',
      /^Bearer realm="portcullis", error="insufficient_user_authentication"/,
    )
    assert.equal(
      (await call(mfa, bearer(await issuer.mint()))).code,
      'GW_ERR_STEP_UP_REQUIRED',
      'no amr at all',
    )
    assert.equal(
      (await call(mfa, bearer(await issuer.mint({ claims: { amr: ['pwd', 'mfa'] } })))).code,
      undefined,
    )

    const acr = build({
      ...base,
      requireClaims: [{ claim: 'acr', atLeast: 'silver', levels: ['bronze', 'silver', 'gold'] }],
    })
    const low = await call(acr, bearer(await issuer.mint({ claims: { acr: 'bronze' } })))
    assert.equal(low.code, 'GW_ERR_STEP_UP_REQUIRED')
    assert.match(low.headers?.['www-authenticate'] ?? '', /acr_values="silver gold"$/)
    assert.equal((await call(acr, bearer(await issuer.mint({ claims: { acr: 'gold' } })))).code, undefined)
    const anyOf = build({ ...base, requireClaims: [{ claim: 'acr', anyOf: ['urn:mfa', 'urn:hwk'] }] })
    assert.equal(
      (await call(anyOf, bearer(await issuer.mint({ claims: { acr: 'urn:hwk' } })))).code,
      undefined,
    )
    assert.equal(
      (await call(anyOf, bearer(await issuer.mint({ claims: { acr: 'urn:pwd' } })))).code,
      'GW_ERR_STEP_UP_REQUIRED',
    )
    assert.throws(
      () => build({ ...base, requireClaims: [{ claim: 'acr', atLeast: 'x', levels: ['a'] }] }),
      /not one of levels/,
    )
    assert.throws(() => build({ ...base, requireClaims: [{ claim: 'acr' }] }), /exactly one of allOf/)
  })

  test('revocation: jti and token hash entries apply at once, also to cached tokens', async () => {
    const file = join(dir, 'revoked.txt')
    writeFileSync(file, '# revoked tokens\n')
    const p = build({ ...base, revocation: { file } })
    const t1 = await issuer.mint({ claims: { jti: 'jti-one' } })
    const t2 = await issuer.mint()
    assert.equal((await call(p, bearer(t1))).code, undefined)
    assert.equal((await call(p, bearer(t2))).code, undefined)
    assert.equal((await call(p, bearer(t1))).sync, true, 'cached')
    appendFileSync(file, `jti:jti-one\nsha256:${tokenHash(t2).toUpperCase()}\nnot an entry\n`)
    await until(
      'the revocation list to reload',
      async () => (await call(p, bearer(t1))).code === 'GW_ERR_AUTH_INVALID',
    )
    assert.equal((await call(p, bearer(t2))).code, 'GW_ERR_AUTH_INVALID')
    assert.equal((await call(p, bearer(await issuer.mint()))).code, undefined, 'others still pass')
    assert.throws(
      () => build({ ...base, revocation: { file: join(dir, 'missing.txt') } }),
      /revocation.file: ENOENT/,
    )
  })
})

describe('remote JWKS', () => {
  let issuer: JwksIssuer

  before(async () => {
    issuer = await JwksIssuer.start(['RS256', 'ES256'])
  })
  after(async () => {
    await issuer.close()
  })

  const remote = (extra: Record<string, unknown> = {}) => ({
    algorithms: ['RS256', 'ES256'],
    issuer: issuer.issuer,
    audience: TEST_AUDIENCE,
    jwksUrl: issuer.jwksUrl,
    ...extra,
  })

  test('the first request waits for the JWKS; an unknown kid refetches at most once per interval', async () => {
    const p = build(
      remote({ remote: { unknownKidMinIntervalMs: 60_000, refreshIntervalMs: 60_000, maxStaleMs: 60_000 } }),
    )
    assert.equal((await call(p, bearer(await issuer.mint()))).code, undefined)
    const before = issuer.jwksRequests
    for (const kid of ['../../etc/passwd', "' OR 1=1 --", 'nope-1', 'nope-2']) {
      assert.equal((await call(p, bearer(await issuer.mint({ kid })))).code, 'GW_ERR_AUTH_INVALID', kid)
    }
    assert.ok(issuer.jwksRequests - before <= 1, `${issuer.jwksRequests - before} refetches for unknown kids`)
  })

  test('key rotation: a new kid is fetched on first sight; a withdrawn key stops verifying', async () => {
    const p = build(
      remote({ remote: { unknownKidMinIntervalMs: 0, refreshIntervalMs: 60_000, maxStaleMs: 60_000 } }),
    )
    const old = issuer.signingKey as IssuerKey
    const oldToken = await issuer.mint()
    assert.equal((await call(p, bearer(oldToken))).code, undefined)
    const next = await issuer.addKey('RS256')
    issuer.useKey(next)
    assert.equal(
      (await call(p, bearer(await issuer.mint()))).code,
      undefined,
      'new kid verified after one refetch',
    )
    assert.equal(
      (await call(p, bearer(oldToken))).sync,
      true,
      'the old token stays cached while its key is published',
    )
    issuer.removeKey(old)
    // Any unknown kid triggers the refetch that drops the old key.
    await call(p, bearer(await issuer.mint({ kid: 'unknown' })))
    const r = await call(p, bearer(oldToken))
    assert.equal(r.code, 'GW_ERR_AUTH_INVALID', 'a token of a withdrawn key is refused, cached or not')
    issuer.keys.unshift(old)
    issuer.useKey(old)
  })

  test('JWKS down: verifies with the last keys up to maxStaleMs, then fails closed (503); recovers', async () => {
    const p = build(
      remote({
        remote: { refreshIntervalMs: 200, maxStaleMs: 1000, timeoutMs: 300, unknownKidMinIntervalMs: 100 },
      }),
    )
    const cached = await issuer.mint()
    assert.equal((await call(p, bearer(cached))).code, undefined)
    await issuer.down()
    await sleep(300)
    assert.equal((await call(p, bearer(await issuer.mint()))).code, undefined, 'within maxStaleMs')
    await sleep(1000)
    const r = await call(p, bearer(await issuer.mint()))
    assert.equal(r.code, 'GW_ERR_AUTH_UNAVAILABLE')
    assert.equal(r.status, 503)
    assert.equal(r.headers?.['retry-after'], '5')
    assert.equal(
      (await call(p, bearer(cached))).code,
      'GW_ERR_AUTH_UNAVAILABLE',
      'a cached token fails closed too',
    )
    await issuer.up()
    await until('recovery', async () => (await call(p, bearer(cached))).code === undefined)
  })

  test('keys never loaded (endpoint down from the start) → 503 within the fetch timeout', async () => {
    const dead = await JwksIssuer.start()
    const token = await dead.mint()
    const url = dead.jwksUrl
    await dead.down()
    const p = build({ ...remote(), jwksUrl: url, remote: { timeoutMs: 300 } })
    const t0 = Date.now()
    const r = await call(p, bearer(token))
    assert.equal(r.code, 'GW_ERR_AUTH_UNAVAILABLE')
    assert.ok(Date.now() - t0 < 2000)
  })

  test('OIDC discovery: jwks_uri from the issuer; an issuer mismatch in the document is refused', async () => {
    const p = build({
      algorithms: ['RS256', 'ES256'],
      issuer: issuer.issuer,
      audience: TEST_AUDIENCE,
      discovery: true,
    })
    const d0 = issuer.discoveryRequests
    assert.equal((await call(p, bearer(await issuer.mint()))).code, undefined)
    assert.ok(issuer.discoveryRequests > d0)

    const evil = await JwksIssuer.start()
    evil.discoveryIssuer = 'https://someone-else.example'
    const q = build({ algorithms: ['RS256'], issuer: evil.issuer, audience: TEST_AUDIENCE, discovery: true })
    assert.equal((await call(q, bearer(await evil.mint()))).code, 'GW_ERR_AUTH_UNAVAILABLE')
    await evil.close()
    assert.throws(() => build({ algorithms: ['RS256'], discovery: true }), /discovery needs issuer/)
  })

  test('fetching: same-origin redirect followed, cross-origin redirect and oversized JWKS refused', async () => {
    const other = await JwksIssuer.start()
    issuer.routes.set('/moved', (_req, res) => res.writeHead(302, { location: '/jwks.json' }).end())
    issuer.routes.set('/elsewhere', (_req, res) =>
      res.writeHead(302, { location: `http://localhost:${new URL(issuer.issuer).port}/jwks.json` }).end(),
    )
    issuer.routes.set('/huge', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: issuer.jwks().keys, pad: 'x'.repeat(4096) }))
    })
    const token = await issuer.mint()
    const moved = build({ ...remote(), jwksUrl: `${issuer.issuer}/moved` })
    assert.equal((await call(moved, bearer(token))).code, undefined)
    const elsewhere = build({ ...remote(), jwksUrl: `${issuer.issuer}/elsewhere` })
    assert.equal((await call(elsewhere, bearer(token))).code, 'GW_ERR_AUTH_UNAVAILABLE')
    const huge = build({ ...remote(), jwksUrl: `${issuer.issuer}/huge`, remote: { maxBytes: 2048 } })
    assert.equal((await call(huge, bearer(token))).code, 'GW_ERR_AUTH_UNAVAILABLE')
    await other.close()
    assert.throws(
      () => build({ ...remote(), jwksUrl: 'http://idp.example.com/jwks' }),
      /plain http is only allowed/,
    )
    assert.throws(() => build({ ...remote(), jwksUrl: 'https://u:p@idp.example.com/jwks' }), /credentials/)
  })
})

describe('JWKS file', () => {
  test('loaded at start, reloaded when the file changes; a broken file keeps the last keys', async () => {
    const issuer = await JwksIssuer.start()
    await issuer.down()
    const file = join(dir, 'jwks.json')
    writeFileSync(file, JSON.stringify(issuer.jwks()))
    const p = build({ algorithms: ['RS256'], issuer: issuer.issuer, audience: TEST_AUDIENCE, jwksFile: file })
    assert.equal((await call(p, bearer(await issuer.mint()))).code, undefined)
    const next = await issuer.addKey('RS256')
    issuer.useKey(next)
    const t = await issuer.mint()
    assert.equal((await call(p, bearer(t))).code, 'GW_ERR_AUTH_INVALID')
    writeFileSync(file, JSON.stringify(issuer.jwks()))
    await until('the JWKS file to reload', async () => (await call(p, bearer(t))).code === undefined)
    writeFileSync(file, '{ broken')
    await sleep(300)
    assert.equal((await call(p, bearer(await issuer.mint()))).code, undefined)
    assert.throws(() => build({ algorithms: ['RS256'], jwksFile: 'relative/jwks.json' }), /absolute path/)
    assert.throws(() => build({ algorithms: ['RS256'], jwksFile: join(dir, 'none.json') }), /ENOENT/)
  })
})

describe('relative paths', () => {
  test('jwksFile is resolved against the config file directory', async () => {
    const issuer = await JwksIssuer.start()
    await issuer.down()
    writeFileSync(join(dir, 'relative-jwks.json'), JSON.stringify(issuer.jwks()))
    const cfg = Value.Default(JwtAuthConfig, {
      algorithms: ['RS256'],
      issuer: issuer.issuer,
      audience: TEST_AUDIENCE,
      jwksFile: 'relative-jwks.json',
    }) as JwtAuthConfig
    const p = jwtAuth.create(cfg, testDeps({ baseDir: dir })) as JwtAuth
    try {
      assert.equal((await call(p, bearer(await issuer.mint()))).code, undefined)
    } finally {
      p.close()
    }
  })
})

describe('shared revocation list (memory store)', () => {
  let issuer: JwksIssuer
  let base: Record<string, unknown>
  const stores: Store[] = []

  before(async () => {
    issuer = await JwksIssuer.start(['RS256'])
    await issuer.down() // only its minting is used here
    const k = issuer.signingKey as IssuerKey
    base = {
      algorithms: ['RS256'],
      issuer: issuer.issuer,
      audience: TEST_AUDIENCE,
      keys: [{ kid: k.kid, pem: k.spki }],
    }
  })
  after(async () => {
    for (const s of stores) await s.close()
  })

  function buildWith(store: Store, cfg: Record<string, unknown>): JwtAuth {
    const c = Value.Default(JwtAuthConfig, structuredClone(cfg)) as JwtAuthConfig
    const p = new JwtAuth(c, logger, Date.now, 'test', store)
    open.push(p)
    return p
  }
  const newStore = () => {
    const s = createMemoryStore({})
    stores.push(s)
    return s
  }

  test('entries apply synchronously to cached tokens; a revoked hash costs no signature check', async () => {
    const store = newStore()
    const p = buildWith(store, base)
    const shared = new SharedRevocations(store, { logger })
    try {
      const t1 = await issuer.mint({ claims: { jti: 'shared-one' } })
      assert.equal((await call(p, bearer(t1))).code, undefined)
      assert.equal((await call(p, bearer(t1))).sync, true, 'cached')
      await store.maps.set(REVOCATIONS_MAP, 'jti:shared-one', '{}', 60_000)
      await shared.refresh()
      const refused = await call(p, bearer(t1))
      assert.equal(refused.code, 'GW_ERR_AUTH_INVALID')
      assert.equal(refused.sync, true, 'refused on the synchronous path')
      await store.maps.delete(REVOCATIONS_MAP, 'jti:shared-one')
      await shared.refresh()
      assert.equal((await call(p, bearer(t1))).code, undefined)

      const t2 = await issuer.mint()
      await store.maps.set(REVOCATIONS_MAP, `sha256:${tokenHash(t2)}`, '{}', 60_000)
      await shared.refresh()
      const before = p.stats.verifications
      const r2 = await call(p, bearer(t2))
      assert.equal(r2.code, 'GW_ERR_AUTH_INVALID')
      assert.equal(r2.sync, true)
      assert.equal(p.stats.verifications, before, 'no signature check for a revoked hash')
    } finally {
      shared.close()
    }
  })

  test('revocation.shared: false does not consult the store', async () => {
    const store = newStore()
    const p = buildWith(store, { ...base, revocation: { shared: false } })
    const t = await issuer.mint({ claims: { jti: 'not-shared' } })
    await store.maps.set(REVOCATIONS_MAP, 'jti:not-shared', '{}', 60_000)
    assert.equal((await call(p, bearer(t))).code, undefined)
  })

  test('a store that never answers: 503 GW_ERR_STATE_UNAVAILABLE with Retry-After, or accepted with failOpen', async () => {
    const store = newStore()
    await store.close()
    const t = await issuer.mint()
    const strict = await call(buildWith(store, base), bearer(t))
    assert.equal(strict.code, 'GW_ERR_STATE_UNAVAILABLE')
    assert.equal(strict.status, 503)
    assert.equal(strict.headers?.['retry-after'], '5')
    const open = await call(buildWith(store, { ...base, revocation: { failOpen: true } }), bearer(t))
    assert.equal(open.code, undefined)
  })
})
