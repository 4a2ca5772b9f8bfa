/**
 * The admin API through the real `portcullis serve` process (memory store): authentication
 * (missing, wrong, malformed, doubled, too short in the config), body limits, media types, bad
 * JSON and fields, hostile ids, 404/405, the revocation endpoints end to end (a posted revocation
 * applies at once on this gateway's jwt-auth route), admin writes in the log, and neither the admin
 * token nor a posted token in anything the process wrote.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { stringify } from 'yaml'
import { request } from './helpers/http.js'
import { JwksIssuer, TEST_AUDIENCE } from './helpers/jwks-issuer.js'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'
import { rawRequest } from './helpers/raw-http.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const ADMIN_TOKEN = `adm-${randomBytes(24).toString('base64url')}`
/** Every secret a test sends: none may appear in the process's output. */
const secrets = new Set<string>([ADMIN_TOKEN])

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: Record<string, unknown>
}

function config(upstream: string, issuer: JwksIssuer, admin: Record<string, unknown>) {
  return stringify({
    listeners: [{ name: 'public', host: '127.0.0.1', port: 0 }],
    admin: { host: '127.0.0.1', port: 0, ...admin },
    log: { level: 'debug' },
    upstreams: { main: { targets: [{ url: upstream }] } },
    routes: [
      {
        name: 'api',
        match: { pathPrefix: '/api' },
        upstream: 'main',
        stripPrefix: true,
        policies: {
          'jwt-auth': {
            algorithms: ['RS256'],
            issuer: issuer.issuer,
            audience: TEST_AUDIENCE,
            jwksUrl: issuer.jwksUrl,
          },
        },
      },
    ],
    reload: { watch: false },
  })
}

describe('admin API', () => {
  let up: TestUpstream
  let issuer: JwksIssuer
  let gw: GatewayProcess
  let admin: string
  let adminPort: number

  const call = async (
    method: string,
    path: string,
    o: { token?: string | null; headers?: Record<string, string>; body?: string | Buffer } = {},
  ): Promise<Answer> => {
    const headers: Record<string, string> = { ...o.headers }
    const token = o.token === undefined ? ADMIN_TOKEN : o.token
    if (token !== null) headers.authorization = `Bearer ${token}`
    if (o.body !== undefined && headers['content-type'] === undefined)
      headers['content-type'] = 'application/json'
    const r = await request(admin, {
      method,
      path,
      headers,
      ...(o.body !== undefined ? { body: o.body } : {}),
    })
    let json: Record<string, unknown> = {}
    try {
      json = JSON.parse(r.body) as Record<string, unknown>
    } catch {}
    return { status: r.status, headers: r.headers, text: r.body, json }
  }
  const post = (body: unknown, o: { headers?: Record<string, string> } = {}) =>
    call('POST', '/v1/revocations', { body: JSON.stringify(body), ...o })
  const api = (token: string) =>
    request(gw.url, { path: '/api/x', headers: { authorization: `Bearer ${token}` } })

  before(async () => {
    up = await startUpstream('api')
    issuer = await JwksIssuer.start(['RS256'])
    const dir = tempDir('pc-admin-')
    writeFileSync(join(dir, 'admin-token.txt'), `${ADMIN_TOKEN}\n`)
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ${file:} is config syntax
    gw = await spawnGateway(config(up.url, issuer, { token: '${file:admin-token.txt}' }), dir, {
      captureStdout: true,
    })
    admin = gw.adminUrl as string
    adminPort = Number(new URL(admin).port)
  })

  after(async () => {
    await gw?.stop()
    await up?.close()
    await issuer?.close()
  })

  test('health endpoints need no token; the API says it is on', async () => {
    for (const p of ['/healthz', '/readyz', '/metrics']) {
      const r = await call('GET', p, { token: null })
      assert.equal(r.status, 200, p)
    }
    assert.match(gw.stderr(), /"msg":"admin API enabled \(bearer token\)"/)
  })

  test('401 without, with a wrong, a malformed or a doubled token', async () => {
    const missing = await call('GET', '/v1/revocations', { token: null })
    assert.equal(missing.status, 401)
    assert.equal(missing.json.code, 'GW_ERR_AUTH_MISSING')
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="portcullis-admin"')
    assert.equal(missing.headers['content-type'], 'application/problem+json')

    const wrongToken = `${ADMIN_TOKEN.slice(0, -1)}${ADMIN_TOKEN.endsWith('A') ? 'B' : 'A'}`
    secrets.add(wrongToken)
    for (const t of [wrongToken, ADMIN_TOKEN.slice(0, 10), `${ADMIN_TOKEN}x`, ADMIN_TOKEN.toUpperCase()]) {
      secrets.add(t)
      const r = await call('GET', '/v1/revocations', { token: t })
      assert.equal(r.status, 401)
      assert.equal(r.json.code, 'GW_ERR_AUTH_INVALID')
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="portcullis-admin", error="invalid_token"')
    }
    const basic = await call('GET', '/v1/revocations', {
      token: null,
      headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` },
    })
    assert.equal(basic.status, 401)
    const bare = await call('GET', '/v1/revocations', { token: null, headers: { authorization: 'Bearer' } })
    assert.equal(bare.status, 401)
    // Two Authorization headers, the right one among them: ambiguous, refused.
    const doubled = await rawRequest(
      adminPort,
      `GET /v1/revocations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN_TOKEN}\r\nauthorization: Bearer nope\r\nconnection: close\r\n\r\n`,
    )
    assert.equal(doubled.status, 401)
    // Unknown paths and wrong methods do not reveal anything without the token.
    assert.equal((await call('GET', '/v1/nothing-here', { token: null })).status, 401)
    assert.equal((await call('PUT', '/v1/revocations', { token: null })).status, 401)
  })

  test('404 for unknown paths, 405 with Allow for wrong methods', async () => {
    for (const p of [
      '/v1',
      '/v1/',
      '/v1/nothing',
      '/v1/revocations/',
      '/v1/revocations/jti:a/b',
      '/v1/%72evocations',
    ]) {
      const r = await call('GET', p)
      assert.equal(r.status, 404, p)
      assert.equal(r.json.code, 'GW_ERR_ROUTE_NOT_FOUND', p)
      assert.match(String(r.json.instance), /^urn:portcullis:request:/)
      assert.equal(r.headers['x-request-id'], String(r.json.instance).split(':').pop())
    }
    const put = await call('PUT', '/v1/revocations', { body: '{}' })
    assert.equal(put.status, 405)
    assert.equal(put.json.code, 'GW_ERR_METHOD_NOT_ALLOWED')
    assert.equal(put.headers.allow, 'GET, HEAD, POST')
    const patch = await call('PATCH', '/v1/revocations/jti:x', { body: '{}' })
    assert.equal(patch.status, 405)
    assert.equal(patch.headers.allow, 'DELETE, GET, HEAD')
    // Outside /v1 the listener is as before: read-only health endpoints.
    assert.equal((await call('POST', '/healthz', { token: null })).status, 405)
  })

  test('bodies: application/json only (415), at most 64 KiB (413)', async () => {
    const body = JSON.stringify({ jti: 'media-1' })
    for (const ct of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
      'application/jsonx',
    ]) {
      const r = await call('POST', '/v1/revocations', { body, headers: { 'content-type': ct } })
      assert.equal(r.status, 415, ct)
      assert.equal(r.json.code, 'GW_ERR_UNSUPPORTED_MEDIA_TYPE', ct)
    }
    const none = await rawRequest(
      adminPort,
      `POST /v1/revocations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN_TOKEN}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    )
    assert.equal(none.status, 415)
    const ok = await call('POST', '/v1/revocations', {
      body,
      headers: { 'content-type': 'Application/JSON; charset="UTF-8"' },
    })
    assert.equal(ok.status, 201, ok.text)

    // Exactly 64 KiB is accepted (padding is JSON whitespace)…
    const small = JSON.stringify({ jti: 'size-ok' })
    const exact = small + ' '.repeat(64 * 1024 - small.length)
    assert.equal((await call('POST', '/v1/revocations', { body: exact })).status, 201)
    // …one byte more is not, whether declared up front or streamed in chunks.
    const over = await call('POST', '/v1/revocations', { body: `${exact} ` })
    assert.equal(over.status, 413)
    assert.equal(over.json.code, 'GW_ERR_BODY_TOO_LARGE')
    const declared = await rawRequest(
      adminPort,
      `POST /v1/revocations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n{"jti":`,
    )
    assert.equal(declared.status, 413)
    assert.ok(declared.closed && !declared.timedOut, 'the connection is closed, the body never read')
    const chunk = `4000\r\n${' '.repeat(0x4000)}\r\n`
    const streamed = await rawRequest(adminPort, '', {
      pieces: [
        `POST /v1/revocations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN_TOKEN}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`,
        ...Array.from({ length: 6 }, () => chunk),
      ],
      pauseMs: 5,
    })
    assert.equal(streamed.status, 413)
    assert.ok(streamed.closed && !streamed.timedOut)
  })

  test('400 for bad JSON and bad fields, naming the field, never echoing the value', async () => {
    const secretish = `eyJ${randomBytes(30).toString('base64url')}.e30.sig`
    secrets.add(secretish)
    const cases: [string, string | Buffer, string, string | undefined][] = [
      ['not JSON', `{"token": "${secretish}"`, 'GW_ERR_BAD_REQUEST', undefined],
      ['empty', '', 'GW_ERR_BAD_REQUEST', undefined],
      ['not UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'GW_ERR_BAD_REQUEST', undefined],
      ['array', '[]', 'GW_ERR_VALIDATION', undefined],
      ['null', 'null', 'GW_ERR_VALIDATION', undefined],
      ['nothing to revoke', '{}', 'GW_ERR_VALIDATION', 'jti'],
      ['unknown field', '{"jti":"a","expires":1}', 'GW_ERR_VALIDATION', 'expires'],
      ['__proto__', '{"jti":"a","__proto__":{"x":1}}', 'GW_ERR_VALIDATION', '__proto__'],
      ['two forms', `{"jti":"a","token":"${secretish}"}`, 'GW_ERR_VALIDATION', 'token'],
      ['jti type', '{"jti":42}', 'GW_ERR_VALIDATION', 'jti'],
      ['jti empty', '{"jti":""}', 'GW_ERR_VALIDATION', 'jti'],
      ['jti too long', JSON.stringify({ jti: 'j'.repeat(1025) }), 'GW_ERR_VALIDATION', 'jti'],
      ['jti lone surrogate', '{"jti":"a\\ud800"}', 'GW_ERR_VALIDATION', 'jti'],
      ['hash short', `{"tokenSha256":"${'a'.repeat(63)}"}`, 'GW_ERR_VALIDATION', 'tokenSha256'],
      ['hash not hex', `{"tokenSha256":"${'g'.repeat(64)}"}`, 'GW_ERR_VALIDATION', 'tokenSha256'],
      ['token with scheme', `{"token":"Bearer ${secretish}"}`, 'GW_ERR_VALIDATION', 'token'],
      ['token object', '{"token":{"a":1}}', 'GW_ERR_VALIDATION', 'token'],
      ['expiresAt past', '{"jti":"a","expiresAt":1000}', 'GW_ERR_VALIDATION', 'expiresAt'],
      [
        'expiresAt far',
        `{"jti":"a","expiresAt":${Math.floor(Date.now() / 1000) + 400 * 86400}}`,
        'GW_ERR_VALIDATION',
        'expiresAt',
      ],
      ['expiresAt text', '{"jti":"a","expiresAt":"tomorrow"}', 'GW_ERR_VALIDATION', 'expiresAt'],
      [
        'expiresAt NaN date',
        '{"jti":"a","expiresAt":"2030-13-45T99:00:00Z"}',
        'GW_ERR_VALIDATION',
        'expiresAt',
      ],
      ['reason control', '{"jti":"a","reason":"x\\u0000y"}', 'GW_ERR_VALIDATION', 'reason'],
      ['reason long', JSON.stringify({ jti: 'a', reason: 'r'.repeat(501) }), 'GW_ERR_VALIDATION', 'reason'],
    ]
    for (const [name, body, code, field] of cases) {
      const r = await call('POST', '/v1/revocations', { body })
      assert.equal(r.status, 400, `${name}: ${r.text}`)
      assert.equal(r.json.code, code, name)
      if (field !== undefined) {
        assert.equal(r.json.field, field, name)
        assert.ok(String(r.json.detail).includes(JSON.stringify(field)), `${name}: ${r.json.detail}`)
      }
      assert.ok(!r.text.includes(secretish), `${name}: value echoed`)
    }
    const q = await call('GET', '/v1/revocations?limit=0')
    assert.equal(q.status, 400)
    assert.equal(q.json.field, 'limit')
    for (const p of ['limit=1001', 'limit=abc', 'limit=1&limit=2', 'cursor=%%%', 'cursor=', 'sort=id']) {
      assert.equal((await call('GET', `/v1/revocations?${p}`)).status, 400, p)
    }
  })

  test('hostile ids in the path', async () => {
    const bad = [
      '%E0%A4%A', // truncated percent-encoding
      '%ZZ',
      'nope',
      'jti%3A', // empty jti
      `sha256%3A${'a'.repeat(63)}`,
      `sha256%3A${'a'.repeat(65)}`,
      `jti%3A${'x'.repeat(1025)}`,
      'jti%3A%ED%A0%80', // a lone surrogate, UTF-8 encoded (decodeURIComponent refuses it)
    ]
    for (const id of bad) {
      for (const method of ['GET', 'DELETE']) {
        const r = await call(method, `/v1/revocations/${id}`)
        assert.equal(r.status, 400, `${method} ${id}: ${r.text}`)
        assert.equal(r.json.field, 'id')
      }
    }
    // Well-formed ids of nothing: 404, whatever they contain.
    for (const id of [
      'jti%3A..%2F..%2Fetc%2Fpasswd',
      'jti%3A%00',
      "jti%3A'%20OR%201%3D1%20--",
      `sha256%3A${'A'.repeat(64)}`,
    ]) {
      const r = await call('DELETE', `/v1/revocations/${id}`)
      assert.equal(r.status, 404, id)
      assert.equal(r.json.detail, 'no such revocation')
    }
    // Paths that only look like the API are not it.
    const dotted = await rawRequest(
      adminPort,
      `GET /v1/revocations/../revocations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN_TOKEN}\r\nconnection: close\r\n\r\n`,
    )
    assert.equal(dotted.status, 404)
  })

  test('create, read, list (paginated), delete; a revoked jti is refused at once', async () => {
    const token = await issuer.mint()
    secrets.add(token)
    assert.equal((await api(token)).status, 200)
    const jti = (
      JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { jti: string }
    ).jti
    const created = await post({ jti, reason: 'laptop stolen' })
    assert.equal(created.status, 201, created.text)
    assert.equal(created.json.id, `jti:${jti}`)
    assert.equal(created.json.type, 'jti')
    assert.equal(created.json.reason, 'laptop stolen')
    assert.equal(created.headers.location, `/v1/revocations/${encodeURIComponent(`jti:${jti}`)}`)
    const expiresAt = Date.parse(String(created.json.expiresAt))
    // Default TTL (24 h) plus the 10-minute skew margin.
    assert.ok(
      Math.abs(expiresAt - (Date.now() + 86400_000 + 600_000)) < 60_000,
      String(created.json.expiresAt),
    )
    // The same gateway applies it to the very next request (the cached token included).
    const refused = await api(token)
    assert.equal(refused.status, 401)
    assert.equal(JSON.parse(refused.body).code, 'GW_ERR_AUTH_INVALID')

    const one = await call('GET', created.headers.location as string)
    assert.equal(one.status, 200)
    const { expiresAt: oneExpires, ...oneRest } = one.json
    const { expiresAt: createdExpires, ...createdRest } = created.json
    assert.deepEqual(oneRest, createdRest)
    // The store sets the TTL a moment after the answer computed it.
    assert.ok(Math.abs(Date.parse(String(oneExpires)) - Date.parse(String(createdExpires))) < 1000)
    const head = await call('HEAD', created.headers.location as string)
    assert.equal(head.status, 200)
    assert.equal(head.text, '')

    const removed = await call('DELETE', created.headers.location as string)
    assert.equal(removed.status, 204)
    assert.equal(removed.text, '')
    assert.equal((await api(token)).status, 200)
    assert.equal((await call('DELETE', created.headers.location as string)).status, 404)
    assert.equal((await call('GET', created.headers.location as string)).status, 404)

    // By token: the gateway stores only its hash, with the token's own exp (+ margin) as expiry.
    const t2 = await issuer.mint({ expiresInSec: 120 })
    secrets.add(t2)
    assert.equal((await api(t2)).status, 200)
    const byToken = await post({ token: t2 })
    assert.equal(byToken.status, 201, byToken.text)
    const hash = createHash('sha256').update(t2).digest('hex')
    assert.equal(byToken.json.id, `sha256:${hash}`)
    assert.equal(byToken.json.tokenSha256, hash)
    const exp = (
      JSON.parse(Buffer.from(t2.split('.')[1] as string, 'base64url').toString()) as { exp: number }
    ).exp
    assert.equal(Date.parse(String(byToken.json.expiresAt)), exp * 1000 + 600_000)
    assert.equal((await api(t2)).status, 401)
    // The upper-case form of the hash names the same entry.
    assert.equal((await call('DELETE', `/v1/revocations/sha256%3A${hash.toUpperCase()}`)).status, 204)
    assert.equal((await api(t2)).status, 200)

    // expiresAt as RFC 3339 and as epoch seconds.
    const inAnHour = new Date(Date.now() + 3600_000)
    const r1 = await post({ tokenSha256: 'ab'.repeat(32), expiresAt: inAnHour.toISOString() })
    assert.equal(r1.status, 201, r1.text)
    assert.equal(Date.parse(String(r1.json.expiresAt)), Math.ceil(inAnHour.getTime()) + 600_000)
    const r2 = await post({ jti: 'epoch', expiresAt: Math.floor(inAnHour.getTime() / 1000) })
    assert.equal(r2.status, 201, r2.text)

    // Pagination: every entry once, in id order.
    for (let i = 0; i < 7; i++) assert.equal((await post({ jti: `page-${i}` })).status, 201)
    const all = await call('GET', '/v1/revocations?limit=1000')
    const ids = (all.json.items as { id: string }[]).map((x) => x.id)
    assert.deepEqual(ids, [...ids].sort())
    assert.ok(ids.includes('jti:page-6') && ids.includes(`sha256:${'ab'.repeat(32)}`))
    const seen: string[] = []
    let cursor: string | undefined
    for (let pages = 0; pages < 100; pages++) {
      const r = await call('GET', `/v1/revocations?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
      assert.equal(r.status, 200)
      const items = r.json.items as { id: string }[]
      assert.ok(items.length <= 3)
      seen.push(...items.map((x) => x.id))
      cursor = r.json.nextCursor as string | undefined
      if (cursor === undefined) break
    }
    assert.deepEqual(seen, ids)
  })

  test('a config reload keeps the shared list: revoked stays revoked, others pass at once', async () => {
    const revoked = await issuer.mint()
    const fine = await issuer.mint()
    secrets.add(revoked)
    secrets.add(fine)
    assert.equal((await post({ token: revoked })).status, 201)
    const reloads = () => gw.stderr().split('"msg":"config reloaded"').length - 1
    const before = reloads()
    gw.child.kill('SIGHUP')
    const deadline = Date.now() + 5000
    while (reloads() === before) {
      assert.ok(Date.now() < deadline, 'no reload in 5 s')
      await new Promise((r) => setTimeout(r, 20))
    }
    // New policy instances on the same mirror: no first-snapshot wait, no 503.
    const t0 = performance.now()
    assert.equal((await api(fine)).status, 200)
    assert.ok(performance.now() - t0 < 500)
    assert.equal((await api(revoked)).status, 401)
  })

  test('admin writes are logged with who, what and the request id', async () => {
    const r = await post({ jti: 'audited', reason: 'incident 42' })
    assert.equal(r.status, 201)
    const id = r.headers['x-request-id'] as string
    const isWrite = (l: string) => l.includes('"admin write"') && l.includes(id)
    const line = (await gw.waitForLog((t) => t.split('\n').some(isWrite))).split('\n').find(isWrite)
    assert.ok(line, 'no admin write line')
    const rec = JSON.parse(line) as { admin: Record<string, unknown>; requestId: string }
    assert.equal(rec.requestId, id)
    assert.equal(rec.admin.actor, 'admin token')
    assert.equal(rec.admin.action, 'revocation.create')
    assert.equal(rec.admin.target, 'jti:audited')
    assert.equal(rec.admin.outcome, 'ok')
  })

  test('neither the admin token nor any posted or presented token is in the output', () => {
    const out = gw.stdout() + gw.stderr()
    assert.ok(out.length > 0)
    for (const s of secrets) assert.ok(!out.includes(s), `a secret (${s.slice(0, 6)}…) is in the output`)
  })
})

describe('admin API configuration', () => {
  test('without admin.token every /v1/ path is 404 and the log says how to turn it on', async () => {
    const up = await startUpstream('api')
    const issuer = await JwksIssuer.start(['RS256'])
    const gw = await spawnGateway(config(up.url, issuer, {}))
    try {
      const admin = gw.adminUrl as string
      for (const [method, path] of [
        ['GET', '/v1/revocations'],
        ['POST', '/v1/revocations'],
        ['DELETE', '/v1/revocations/jti:x'],
        ['GET', '/v1/anything'],
      ] as const) {
        const r = await request(admin, { method, path, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
        assert.equal(r.status, 404, `${method} ${path}`)
      }
      assert.equal((await request(admin, { path: '/healthz' })).status, 200)
      assert.match(gw.stderr(), /admin API disabled: set admin\.token/)
    } finally {
      await gw.stop()
      await up.close()
      await issuer.close()
    }
  })

  test('a token shorter than 32 characters is a config error, and is not printed', async () => {
    const up = await startUpstream('api')
    const issuer = await JwksIssuer.start(['RS256'])
    const dir = tempDir('pc-admin-short-')
    const short = 'short-but-secret-token-value'
    writeFileSync(join(dir, 'admin-token.txt'), short)
    try {
      await assert.rejects(
        // biome-ignore lint/suspicious/noTemplateCurlyInString: ${file:} is config syntax
        spawnGateway(config(up.url, issuer, { token: '${file:admin-token.txt}' }), dir),
        (err: Error) => {
          assert.match(err.message, /admin\.token/)
          assert.match(err.message, /32/)
          assert.ok(!err.message.includes(short), 'the token is printed')
          return true
        },
      )
    } finally {
      await up.close()
      await issuer.close()
    }
  })
})
