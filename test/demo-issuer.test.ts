/**
 * The demo's token steps, end to end: the demo token issuer (examples/token-issuer/issuer.mjs) as
 * a real process, the real `portcullis serve` with examples/demo/portcullis-jwt.yaml (the JWT
 * variant of the demo config; only its ports and upstream/issuer addresses rewritten to free ones),
 * and the demo API. Runs the README's JWT steps and asserts the statuses the docs claim; then the
 * issuer's own hostile inputs.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  generateKeyPair,
  type JWK,
  jwtVerify,
  SignJWT,
} from 'jose'
import { startDemoApi } from '../examples/demo/api.js'
import { request } from './helpers/http.js'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'

const ROOT = new URL('../../', import.meta.url).pathname
const ISSUER_SCRIPT = join(ROOT, 'examples/token-issuer/issuer.mjs')
const DEMO_CONFIG = join(ROOT, 'examples/demo/portcullis-jwt.yaml')
const FORM = 'application/x-www-form-urlencoded'
const BASIC = `Basic ${Buffer.from('demo-client:demo-secret').toString('base64')}`

interface IssuerProcess {
  child: ChildProcess
  url: string
  stdout(): string
  stderr(): string
  stop(): Promise<number | null>
}

/** `node issuer.mjs serve --port 0`; resolves once it printed its URL (10 s deadline). */
async function spawnIssuer(): Promise<IssuerProcess> {
  const child = spawn(process.execPath, [ISSUER_SCRIPT, 'serve', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  const deadline = Date.now() + 10000
  let url: string | undefined
  while (Date.now() < deadline && child.exitCode === null) {
    url = /token issuer on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
    if (url) break
    await new Promise((r) => setTimeout(r, 25))
  }
  if (!url) {
    child.kill('SIGKILL')
    throw new Error(`issuer did not start:\n${out}\n${err}`)
  }
  return {
    child,
    url,
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 10000)
      const code = await exited
      clearTimeout(t)
      return code
    },
  }
}

/** Replaces every `from` in `text`, insisting that there is at least one. */
function replaceAll(text: string, from: string, to: string): string {
  assert.ok(text.includes(from), `the demo config no longer contains ${from}`)
  return text.split(from).join(to)
}

/** POST /token as a form; `headers` (default: the demo client's Basic credentials) are added to the content-type. */
function tokenRequest(
  url: string,
  form: Record<string, string> | string,
  headers: Record<string, string> = { authorization: BASIC },
) {
  const body = typeof form === 'string' ? form : new URLSearchParams(form).toString()
  return request(url, { method: 'POST', path: '/token', headers: { 'content-type': FORM, ...headers }, body })
}

/** The README tour's tamper step, the same one-liner: payload character 9 changed (A ↔ B). */
function tamper(token: string): string {
  const t = token.split('.') as [string, string, string]
  t[1] = t[1].slice(0, 9) + (t[1][9] === 'A' ? 'B' : 'A') + t[1].slice(10)
  return t.join('.')
}

const json = (body: string) => JSON.parse(body) as Record<string, unknown>

describe('the demo tour with the demo token issuer', () => {
  let issuer: IssuerProcess
  let api: Awaited<ReturnType<typeof startDemoApi>>
  let gw: GatewayProcess
  let gwStdout = ''
  const tokens: string[] = []

  /** The tour's `curl -u demo-client:demo-secret -d grant_type=client_credentials ...`. */
  async function mint(form: Record<string, string>): Promise<string> {
    const r = await tokenRequest(issuer.url, { grant_type: 'client_credentials', ...form })
    assert.equal(r.status, 200, r.body)
    const token = json(r.body).access_token as string
    tokens.push(token)
    return token
  }
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` })
  const gwGet = (path: string, headers: Record<string, string> = {}) => request(gw.url, { path, headers })

  before(async () => {
    issuer = await spawnIssuer()
    api = await startDemoApi({ host: '127.0.0.1', port: 0 })
    let yaml = readFileSync(DEMO_CONFIG, 'utf8')
    yaml = replaceAll(yaml, 'http://127.0.0.1:8082', issuer.url)
    yaml = replaceAll(yaml, 'http://127.0.0.1:8081', api.url)
    yaml = replaceAll(yaml, 'port: 8080', 'port: 0')
    yaml = replaceAll(yaml, 'port: 9901', 'port: 0')
    gw = await spawnGateway(yaml)
    gw.child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      gwStdout += d
    })
  })

  after(async () => {
    await gw?.stop()
    await api?.close()
    await issuer?.stop()
  })

  test('portcullis config check passes on examples/demo/portcullis-jwt.yaml', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'config', 'check', DEMO_CONFIG], {
      encoding: 'utf8',
    })
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /valid/)
  })

  test('the issuer listens on 127.0.0.1 and publishes discovery and one RS256 key', async () => {
    assert.match(issuer.url, /^http:\/\/127\.0\.0\.1:\d+$/)
    const d = await request(issuer.url, { path: '/.well-known/openid-configuration' })
    assert.equal(d.status, 200)
    const doc = json(d.body)
    assert.equal(doc.issuer, issuer.url)
    assert.equal(doc.jwks_uri, `${issuer.url}/jwks.json`)
    assert.equal(doc.token_endpoint, `${issuer.url}/token`)
    const j = await request(issuer.url, { path: '/jwks.json' })
    assert.equal(j.status, 200)
    const keys = (json(j.body) as { keys: JWK[] }).keys
    assert.equal(keys.length, 1)
    assert.equal(keys[0]?.kty, 'RSA')
    assert.equal(keys[0]?.alg, 'RS256')
    assert.equal(keys[0]?.d, undefined, 'the private part is never published')
  })

  test('a token: 200 JSON with an RS256 at+jwt carrying the documented claims, verifiable by the JWKS', async () => {
    const r = await tokenRequest(issuer.url, {
      grant_type: 'client_credentials',
      sub: 'alice',
      scope: 'orders:read users:read',
    })
    assert.equal(r.status, 200)
    assert.equal(r.headers['cache-control'], 'no-store')
    const body = json(r.body)
    assert.equal(body.token_type, 'Bearer')
    assert.equal(body.expires_in, 300)
    assert.equal(body.scope, 'orders:read users:read')
    const token = body.access_token as string
    tokens.push(token)
    const header = decodeProtectedHeader(token)
    assert.equal(header.alg, 'RS256')
    assert.equal(header.typ, 'at+jwt')
    const jwks = createLocalJWKSet(
      json((await request(issuer.url, { path: '/jwks.json' })).body) as { keys: JWK[] },
    )
    const { payload } = await jwtVerify(token, jwks, { issuer: issuer.url, audience: 'portcullis-demo' })
    assert.equal(payload.sub, 'alice')
    assert.equal(payload.client_id, 'demo-client')
    assert.equal(payload.scope, 'orders:read users:read')
    assert.deepEqual(payload.amr, ['pwd'])
    assert.equal((payload.exp as number) - (payload.iat as number), 300)
    assert.match(payload.jti as string, /^[0-9a-f-]{36}$/)

    const mfa = decodeJwt(await mint({ sub: 'bob', mfa: 'true' }))
    assert.deepEqual(mfa.amr, ['pwd', 'mfa'])
    assert.equal(mfa.scope, 'orders:read', 'the default scope')
    const service = decodeJwt(await mint({}))
    assert.equal(service.sub, 'demo-client', 'without sub: the client’s own token')
    assert.equal(service.amr, undefined)
  })

  test('tour: no token → 401 with a Bearer challenge; with a token → 200', async () => {
    const none = await gwGet('/api/v1/users/1')
    assert.equal(none.status, 401)
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="portcullis"')
    assert.equal(json(none.body).code, 'GW_ERR_AUTH_MISSING')

    const token = await mint({ sub: 'alice', scope: 'users:read' })
    const ok = await gwGet('/api/v1/users/1', bearer(token))
    assert.equal(ok.status, 200, ok.body)
    assert.equal(json(ok.body).username, 'alice')
    // The same token again (served from the verified-token cache).
    assert.equal((await gwGet('/api/v1/users/2', bearer(token))).status, 200)
  })

  test('tour: one character of the token changed → 401 invalid_token', async () => {
    const token = await mint({ sub: 'alice' })
    const bad = tamper(token)
    assert.notEqual(bad, token)
    assert.equal(bad.length, token.length)
    const r = await gwGet('/api/v1/users/1', bearer(bad))
    assert.equal(r.status, 401)
    assert.equal(json(r.body).code, 'GW_ERR_AUTH_INVALID')
    assert.match(r.headers['www-authenticate'] ?? '', /^Bearer realm="portcullis", error="invalid_token"/)
    // The untouched token still passes.
    assert.equal((await gwGet('/api/v1/users/1', bearer(token))).status, 200)
  })

  test('tour: step-up route: no token 401, pwd token 401 insufficient_user_authentication, mfa token 200', async () => {
    const none = await gwGet('/api/v2/debug/config')
    assert.equal(none.status, 401)
    assert.equal(json(none.body).code, 'GW_ERR_AUTH_MISSING')

    const pwd = await gwGet('/api/v2/debug/config', bearer(await mint({ sub: 'admin' })))
    assert.equal(pwd.status, 401)
    assert.equal(json(pwd.body).code, 'GW_ERR_STEP_UP_REQUIRED')
    assert.match(pwd.headers['www-authenticate'] ?? '', /error="insufficient_user_authentication"/)

    const mfa = await gwGet('/api/v2/debug/config', bearer(await mint({ sub: 'admin', mfa: 'true' })))
    assert.equal(mfa.status, 200, mfa.body)
    assert.equal(json(mfa.body).service, 'demo-api')
  })

  test('a token signed by another key with the same kid and claims is refused', async () => {
    const genuine = await mint({ sub: 'alice', mfa: 'true' })
    const evil = await generateKeyPair('RS256')
    const forged = await new SignJWT(decodeJwt(genuine))
      .setProtectedHeader(decodeProtectedHeader(genuine) as { alg: string })
      .sign(evil.privateKey)
    const r = await gwGet('/api/v2/debug/config', bearer(forged))
    assert.equal(r.status, 401)
    assert.equal(json(r.body).code, 'GW_ERR_AUTH_INVALID')
  })

  test('the protected routes cannot be reached under another spelling without a token', async () => {
    for (const path of [
      '/api/v2/debug/config/',
      '/api/v2//debug/config',
      '/api/v2/%64ebug/config',
      '/api/v2/x/../debug/config',
      '/api/v2/DEBUG/config',
      '/API/v1/users/1',
      '/api/v1%2fusers/1',
    ]) {
      const r = await gwGet(path)
      assert.notEqual(r.status, 200, `${path} → ${r.status} ${r.body}`)
      assert.ok(!r.body.includes('passwordHash') && !r.body.includes('secretAccessKey'), path)
    }
  })

  test('the tour’s other steps still answer as documented', async () => {
    const health = await gwGet('/healthz')
    assert.equal(health.status, 200)
    assert.equal(health.headers.server, undefined)
    assert.ok(health.headers['x-request-id'])
    const login = await request(gw.url, {
      method: 'POST',
      path: '/api/v2/login',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'alice-password-1' }),
    })
    assert.equal(login.status, 200)
    assert.equal(typeof json(login.body).token, 'string')
    assert.equal((await gwGet('/api/v2/../../admin')).status, 404)
    assert.equal((await gwGet('/api/v2%2fusers')).status, 400)
    assert.equal((await gwGet('/api/v2/..;/admin')).status, 400)
    const big = await request(gw.url, { method: 'POST', path: '/api/v2/orders', body: Buffer.alloc(70000) })
    assert.equal(big.status, 413)
  })

  test('the issuer refuses bad client credentials and bad requests (RFC 6749 errors)', async () => {
    const cases: [string, () => ReturnType<typeof request>, number, string][] = [
      [
        'wrong secret',
        () =>
          tokenRequest(
            issuer.url,
            { grant_type: 'client_credentials' },
            { authorization: `Basic ${Buffer.from('demo-client:demo-secreT').toString('base64')}` },
          ),
        401,
        'invalid_client',
      ],
      [
        'wrong client id',
        () =>
          tokenRequest(
            issuer.url,
            { grant_type: 'client_credentials' },
            { authorization: `Basic ${Buffer.from('other:demo-secret').toString('base64')}` },
          ),
        401,
        'invalid_client',
      ],
      [
        'no credentials',
        () => tokenRequest(issuer.url, { grant_type: 'client_credentials' }, {}),
        401,
        'invalid_client',
      ],
      [
        'Basic without a colon',
        () =>
          tokenRequest(
            issuer.url,
            { grant_type: 'client_credentials' },
            { authorization: `Basic ${Buffer.from('demo-client').toString('base64')}` },
          ),
        401,
        'invalid_client',
      ],
      [
        'Basic not base64',
        () => tokenRequest(issuer.url, { grant_type: 'client_credentials' }, { authorization: 'Basic !!!:' }),
        401,
        'invalid_client',
      ],
      [
        'Bearer instead of Basic',
        () => tokenRequest(issuer.url, { grant_type: 'client_credentials' }, { authorization: 'Bearer x' }),
        401,
        'invalid_client',
      ],
      [
        'credentials twice (Basic and body)',
        () =>
          tokenRequest(issuer.url, {
            grant_type: 'client_credentials',
            client_id: 'demo-client',
            client_secret: 'demo-secret',
          }),
        400,
        'invalid_request',
      ],
      ['no grant_type', () => tokenRequest(issuer.url, { sub: 'alice' }), 400, 'invalid_request'],
      [
        'password grant',
        () =>
          tokenRequest(issuer.url, {
            grant_type: 'password',
            username: 'alice',
            password: 'alice-password-1',
          }),
        400,
        'unsupported_grant_type',
      ],
      [
        'unknown user',
        () => tokenRequest(issuer.url, { grant_type: 'client_credentials', sub: 'mallory' }),
        400,
        'invalid_request',
      ],
      [
        'unknown scope',
        () => tokenRequest(issuer.url, { grant_type: 'client_credentials', scope: 'orders:read root' }),
        400,
        'invalid_scope',
      ],
      [
        'empty scope',
        () => tokenRequest(issuer.url, { grant_type: 'client_credentials', scope: '' }),
        400,
        'invalid_scope',
      ],
      [
        'a parameter twice',
        () => tokenRequest(issuer.url, 'grant_type=client_credentials&sub=alice&sub=admin'),
        400,
        'invalid_request',
      ],
      [
        'mfa without a user',
        () => tokenRequest(issuer.url, { grant_type: 'client_credentials', mfa: 'true' }),
        400,
        'invalid_request',
      ],
      [
        'mfa not a boolean',
        () => tokenRequest(issuer.url, { grant_type: 'client_credentials', sub: 'alice', mfa: 'yes' }),
        400,
        'invalid_request',
      ],
      [
        'JSON body',
        () =>
          tokenRequest(issuer.url, '{"grant_type":"client_credentials"}', {
            authorization: BASIC,
            'content-type': 'application/json',
          }),
        415,
        'invalid_request',
      ],
      [
        'body over 8 KiB (Content-Length)',
        () => tokenRequest(issuer.url, `grant_type=client_credentials&pad=${'x'.repeat(8200)}`),
        413,
        'invalid_request',
      ],
      [
        'body over 8 KiB (chunked)',
        () =>
          tokenRequest(issuer.url, `grant_type=client_credentials&pad=${'x'.repeat(20000)}`, {
            authorization: BASIC,
            'transfer-encoding': 'chunked',
          }),
        413,
        'invalid_request',
      ],
    ]
    for (const [name, send, status, error] of cases) {
      const r = await send()
      assert.equal(r.status, status, `${name}: ${r.status} ${r.body}`)
      assert.equal(json(r.body).error, error, name)
      assert.ok(!r.body.includes('eyJ'), `${name}: no token in a refusal`)
      if (status === 401) assert.match(r.headers['www-authenticate'] ?? '', /^Basic /, name)
    }
    // client_secret_post (credentials in the body, no Authorization header) is accepted.
    const post = await tokenRequest(
      issuer.url,
      { grant_type: 'client_credentials', client_id: 'demo-client', client_secret: 'demo-secret' },
      {},
    )
    assert.equal(post.status, 200, post.body)
    tokens.push(json(post.body).access_token as string)
  })

  test('the issuer answers only its own paths and methods', async () => {
    const getToken = await request(issuer.url, { path: '/token' })
    assert.equal(getToken.status, 405)
    assert.equal(getToken.headers.allow, 'POST')
    const postJwks = await request(issuer.url, { method: 'POST', path: '/jwks.json', body: '{}' })
    assert.equal(postJwks.status, 405)
    assert.equal(postJwks.headers.allow, 'GET, HEAD')
    assert.equal((await request(issuer.url, { path: '/admin' })).status, 404)
    assert.equal((await request(issuer.url, { path: '/jwks.json/' })).status, 404)
    const head = await request(issuer.url, { method: 'HEAD', path: '/jwks.json' })
    assert.equal(head.status, 200)
    assert.equal(head.body, '')
    const hugeHeader = await request(issuer.url, {
      path: '/jwks.json',
      headers: { 'x-big': 'a'.repeat(20000) },
    })
    assert.equal(hugeHeader.status, 431)
  })

  test('the mint command prints a token from the running issuer; bad input exits 1 or 2', () => {
    const r = spawnSync(
      process.execPath,
      [
        ISSUER_SCRIPT,
        'mint',
        '--url',
        issuer.url,
        '--sub',
        'bob',
        '--scope',
        'orders:read users:read',
        '--mfa',
      ],
      { encoding: 'utf8' },
    )
    assert.equal(r.status, 0, r.stderr)
    const token = r.stdout.trim()
    tokens.push(token)
    const claims = decodeJwt(token)
    assert.equal(claims.sub, 'bob')
    assert.equal(claims.scope, 'orders:read users:read')
    assert.deepEqual(claims.amr, ['pwd', 'mfa'])
    const refused = spawnSync(
      process.execPath,
      [ISSUER_SCRIPT, 'mint', '--url', issuer.url, '--sub', 'mallory'],
      {
        encoding: 'utf8',
      },
    )
    assert.equal(refused.status, 1)
    assert.equal(refused.stdout, '')
    assert.match(refused.stderr, /invalid_request/)
    const usage = spawnSync(process.execPath, [ISSUER_SCRIPT, 'serve', '--host', '0.0.0.0'], {
      encoding: 'utf8',
    })
    assert.equal(usage.status, 2, 'there is no --host: the issuer only listens on 127.0.0.1')
    assert.match(usage.stderr, /unknown argument: --host/)
  })

  test('no token reaches any log; the issuer logs one line per token', async () => {
    assert.ok(tokens.length >= 8)
    // Log lines travel through pipes and may arrive after the responses: wait for the last ones
    // (bounded), then check everything that was logged.
    const minted = () => (issuer.stderr().match(/^issuer: token for /gm) ?? []).length
    const arrived = () =>
      gwStdout.includes('/api/v2/orders') &&
      gw.stderr().includes('bad signature') &&
      minted() >= tokens.length
    const deadline = Date.now() + 5000
    while (!arrived() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
    assert.match(gwStdout, /\/api\/v1\/users\/1/, 'the access log was captured')
    assert.match(gw.stderr(), /"reason":"bad signature"/, 'the tampered token’s refusal was logged')
    assert.ok(minted() >= tokens.length, `${minted()} log lines for ${tokens.length} tokens`)
    const logs = gw.stderr() + gwStdout + issuer.stderr()
    for (const t of tokens) {
      const signature = t.split('.')[2] as string
      assert.ok(!logs.includes(signature), 'a token signature reached a log')
    }
    assert.ok(!issuer.stderr().includes('demo-secret'), 'the client secret reached the issuer log')
  })

  test('the issuer stops on SIGTERM with exit code 0', async () => {
    assert.equal(await issuer.stop(), 0)
  })
})
