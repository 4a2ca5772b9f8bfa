import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { startDnsServer, type TestDnsServer } from '../../../test/helpers/dns-server.js'
import { memoryAudit } from '../../audit/event.js'
import type { GatewayError } from '../../gateway/errors.js'
import type { PolicyInstance } from '../../gateway/pipeline/policy.js'
import { type TestRequest, testContext, testDeps } from '../testing/context.js'
import { ssrfGuard } from './policy.js'
import { SsrfGuardConfig } from './schema.js'

const SPEC = `
openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /hooks:
    post:
      operationId: createHook
      requestBody:
        content:
          application/json:
            schema: { $ref: '#/components/schemas/Hook' }
      responses: { '201': { description: ok } }
  /fetch:
    get:
      operationId: fetchIt
      parameters:
        - { name: target, in: query, schema: { type: string, format: uri } }
        - { name: list, in: query, explode: false, schema: { type: array, items: { type: string, format: url } } }
        - { name: X-Callback, in: header, schema: { type: string, format: uri } }
        - { name: page, in: query, schema: { type: integer } }
      responses: { '200': { description: ok } }
  /form:
    post:
      operationId: postForm
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema: { type: object, properties: { site: { type: string, format: uri }, name: { type: string } } }
      responses: { '200': { description: ok } }
components:
  schemas:
    Hook:
      type: object
      properties:
        callback: { type: string, format: uri }
        links:
          type: array
          items: { type: object, properties: { href: { type: string, format: uri-reference } } }
        meta: { type: object, additionalProperties: { type: string, format: url } }
        self: { $ref: '#/components/schemas/Hook' }
        title: { type: string }
`

interface Req extends TestRequest {
  body?: string
}

function ctxOf(r: Req) {
  const headers = { ...(r.headers ?? {}) }
  if (r.body !== undefined) headers['content-length'] = String(Buffer.byteLength(r.body))
  const ctx = testContext({ ...r, headers })
  const body = Buffer.from(r.body ?? '')
  return Object.assign(ctx, { readBody: () => Promise.resolve(body) })
}

async function verdict(p: PolicyInstance, r: Req): Promise<string> {
  try {
    await p.onRequest?.(ctxOf(r))
    return 'pass'
  } catch (err) {
    const e = err as GatewayError
    const f = e.extensions?.field as { in: string; name: string } | undefined
    return f ? `${e.code} ${f.in} ${f.name}` : e.code
  }
}

const json = { 'content-type': 'application/json' }

describe('ssrf-guard policy', () => {
  let dns: TestDnsServer
  let dir: string
  before(async () => {
    dns = await startDnsServer({
      'cdn.example.com': { a: ['151.101.1.69'] },
      'intranet.example.com': { a: ['10.1.2.3'] },
    })
    dir = mkdtempSync(join(tmpdir(), 'ssrf-guard-'))
    writeFileSync(join(dir, 'api.yaml'), SPEC)
  })
  after(async () => dns?.close())

  const build = (cfg: object, audit = memoryAudit()) =>
    ssrfGuard.create(
      Value.Default(SsrfGuardConfig, {
        dns: { servers: [dns.server], timeoutMs: 500, tries: 1 },
        ...cfg,
      }) as never,
      testDeps({ audit, baseDir: dir }),
    )

  it('spec: URL properties of JSON bodies at any depth ($ref, arrays, maps)', async () => {
    const p = build({ spec: 'api.yaml' })
    const post = (body: unknown) =>
      verdict(p, { method: 'POST', path: '/hooks', headers: json, body: JSON.stringify(body) })
    assert.equal(await post({ callback: 'https://cdn.example.com/x', title: 'http://127.0.0.1/' }), 'pass')
    assert.equal(await post({ callback: 'http://127.0.0.1/' }), 'GW_ERR_SSRF_BLOCKED body /callback')
    // Case-insensitive JSON binders (ASP.NET Core, Jackson) read CALLBACK as callback.
    assert.equal(await post({ CALLBACK: 'http://127.0.0.1/' }), 'GW_ERR_SSRF_BLOCKED body /CALLBACK')
    assert.equal(
      await post({ links: [{ href: '/relative/ok' }, { href: 'http://[::1]/' }] }),
      'GW_ERR_SSRF_BLOCKED body /links/1/href',
    )
    assert.equal(
      await post({ meta: { a: 'https://cdn.example.com/', b: 'http://intranet.example.com/' } }),
      'GW_ERR_SSRF_BLOCKED body /meta/b',
    )
    assert.equal(
      await post({ self: { self: { callback: 'http://169.254.169.254/' } } }),
      'GW_ERR_SSRF_BLOCKED body /self/self/callback',
    )
    // text/plain does not hide a JSON body from an upstream that parses it anyway
    assert.equal(
      await verdict(p, {
        method: 'POST',
        path: '/hooks',
        headers: { 'content-type': 'text/plain' },
        body: '{"callback":"http://10.0.0.1/"}',
      }),
      'GW_ERR_SSRF_BLOCKED body /callback',
    )
  })

  it('spec: query (lists split when not exploded) and header parameters', async () => {
    const p = build({ spec: 'api.yaml' })
    const get = (query: string, headers: Record<string, string> = {}) =>
      verdict(p, { path: '/fetch', query, headers })
    assert.equal(await get('target=https%3A%2F%2Fcdn.example.com%2Fa&page=1'), 'pass')
    assert.equal(await get('target=http%3A%2F%2F0x7f.1%2F'), 'GW_ERR_SSRF_BLOCKED query target')
    assert.equal(
      await get('target=https://cdn.example.com/&target=http://10.0.0.1/'),
      'GW_ERR_SSRF_BLOCKED query target',
    )
    assert.equal(
      await get('list=https://cdn.example.com/,http://192.168.0.1/'),
      'GW_ERR_SSRF_BLOCKED query list',
    )
    // The gateway's one query reader: malformed escapes and other spellings of a URL parameter
    // (which some servers read as the same one) are refused, never half-checked.
    assert.equal(await get('target=%E0%A4%A'), 'GW_ERR_BAD_REQUEST')
    assert.equal(await get('TARGET=http://127.0.0.1/'), 'GW_ERR_PARAMETER_POLLUTION')
    assert.equal(await get('target[]=http://127.0.0.1/'), 'GW_ERR_PARAMETER_POLLUTION')
    assert.equal(await get('x=1;target=http://127.0.0.1/'), 'GW_ERR_PARAMETER_POLLUTION')
    assert.equal(
      await get('', { 'x-callback': 'http://metadata.google.internal/' }),
      'GW_ERR_SSRF_BLOCKED header x-callback',
    )
    assert.equal(await get('page=http://127.0.0.1/'), 'pass', 'page is an integer, not a URL')
  })

  it('spec: form fields', async () => {
    const p = build({ spec: 'api.yaml' })
    const form = { 'content-type': 'application/x-www-form-urlencoded' }
    assert.equal(
      await verdict(p, {
        method: 'POST',
        path: '/form',
        headers: form,
        body: 'site=https%3A%2F%2Fcdn.example.com%2F&name=x',
      }),
      'pass',
    )
    assert.equal(
      await verdict(p, {
        method: 'POST',
        path: '/form',
        headers: form,
        body: 'name=x&site=http%3A%2F%2F127.1%2F',
      }),
      'GW_ERR_SSRF_BLOCKED form site',
    )
  })

  it('config: names anywhere, pointers with wildcards, query, headers, form and multipart fields', async () => {
    const p = build({
      fields: {
        names: ['imageUrl'],
        jsonPointers: ['/hooks/*/target'],
        query: ['next'],
        headers: ['x-forward-to'],
        form: ['avatar'],
      },
    })
    const post = (body: unknown) =>
      verdict(p, { method: 'POST', path: '/any', headers: json, body: JSON.stringify(body) })
    assert.equal(await post({ a: { b: [{ imageUrl: 'https://cdn.example.com/1.png' }] } }), 'pass')
    assert.equal(
      await post({ a: { b: [{ imageUrl: 'http://127.0.0.1/' }] } }),
      'GW_ERR_SSRF_BLOCKED body /a/b/0/imageUrl',
    )
    assert.equal(await post({ ImageURL: 'http://127.0.0.1/' }), 'GW_ERR_SSRF_BLOCKED body /ImageURL')
    assert.equal(
      await post({ hooks: { x: { target: 'gopher://cdn.example.com/' } } }),
      'GW_ERR_SSRF_BLOCKED body /hooks/x/target',
    )
    assert.equal(
      await verdict(p, { path: '/any', query: 'next=http://10.9.9.9/' }),
      'GW_ERR_SSRF_BLOCKED query next',
    )
    assert.equal(
      await verdict(p, { path: '/any', query: 'imageUrl=http://10.9.9.9/' }),
      'GW_ERR_SSRF_BLOCKED query imageUrl',
    )
    assert.equal(
      await verdict(p, { path: '/any', headers: { 'x-forward-to': 'http://[fd00::1]/' } }),
      'GW_ERR_SSRF_BLOCKED header x-forward-to',
    )
    const boundary = 'XyZ'
    const mp = [
      `--${boundary}`,
      'Content-Disposition: form-data; name="avatar"',
      '',
      'http://127.0.0.1:6379/',
      `--${boundary}--`,
      '',
    ].join('\r\n')
    assert.equal(
      await verdict(p, {
        method: 'POST',
        path: '/any',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        body: mp,
      }),
      'GW_ERR_SSRF_BLOCKED form avatar',
    )
  })

  it('bodies parsers would read differently are refused; other bodies pass unread', async () => {
    const p = build({ fields: { names: ['url'] } })
    const dup = '{"url":"https://cdn.example.com/","url":"http://127.0.0.1/"}'
    assert.equal(
      await verdict(p, { method: 'POST', path: '/x', headers: json, body: dup }),
      'GW_ERR_MALFORMED_BODY',
    )
    assert.equal(await verdict(p, { method: 'POST', path: '/x', headers: json, body: 'not json {' }), 'pass')
    assert.equal(
      await verdict(p, {
        method: 'POST',
        path: '/x',
        headers: { 'content-type': 'image/png' },
        body: '\u0089PNG',
      }),
      'pass',
    )
  })

  it('more URLs than maxUrls is refused; the client never learns the reason, the audit log does', async () => {
    const audit = memoryAudit()
    const p = build({ fields: { names: ['u'] }, maxUrls: 3 }, audit)
    const many = { list: [1, 2, 3, 4].map(() => ({ u: 'https://cdn.example.com/' })) }
    assert.equal(
      await verdict(p, { method: 'POST', path: '/x', headers: json, body: JSON.stringify(many) }),
      'GW_ERR_SSRF_BLOCKED body /list/3/u',
    )
    let err: GatewayError | undefined
    try {
      await p.onRequest?.(
        ctxOf({ method: 'POST', path: '/x', headers: json, body: '{"u":"http://169.254.169.254/"}' }),
      )
    } catch (e) {
      err = e as GatewayError
    }
    assert.equal(err?.status, 400)
    assert.doesNotMatch(String(err?.detail), /metadata|169\.254/)
    const ev = audit.events.at(-1)
    assert.equal(ev?.type, 'ssrf.blocked')
    assert.equal(ev?.reason, 'metadata')
    assert.deepEqual(ev?.data, {
      in: 'body',
      field: '/u',
      host: '169.254.169.254',
      address: '169.254.169.254',
    })
  })

  it('nothing to check: synchronous and no body read', () => {
    const p = build({ spec: 'api.yaml' })
    const ctx = testContext({ path: '/fetch', query: 'page=2' })
    assert.equal(p.onRequest?.(ctx), undefined)
    assert.equal(
      p.onRequest?.(
        testContext({ path: '/not-in-spec', method: 'POST', headers: { 'content-length': '5' } }),
      ),
      undefined,
    )
  })

  it('config errors: bad ranges, a spec that does not load', () => {
    assert.throws(() => build({ allowAddresses: ['10.0.0.0/33'] }), /allowAddresses\[0\]/)
    assert.throws(
      () => build({ spec: 'missing.yaml' }),
      (e: Error) => e.name === 'ConfigError',
    )
  })
})
