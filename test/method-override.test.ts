/**
 * Method override through the real gateway (in-process, real listener, real recording upstream on
 * 127.0.0.1): `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` and `_method` are
 * refused (400 GW_ERR_METHOD_OVERRIDE) on every route by default — with no `authorize` policy, on
 * a plain route and on one validated by openapi-validation — and, on a route that opts in with
 * `methodOverride: true`, the overridden method is routed, validated, authorized and forwarded as
 * the real one.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { request } from './helpers/http.js'
import {
  type RecordingUpstream,
  startRecordingUpstream,
  startTestGateway,
  type TestGateway,
} from './helpers/servers.js'
import { tempDir } from './helpers/process.js'

const SPEC = `openapi: 3.1.0
info: { title: uploads, version: '1' }
paths:
  /upload:
    post:
      operationId: upload
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              properties: { name: { type: string }, _method: { type: string } }
      responses: { '200': { description: ok } }
  /notes:
    post:
      operationId: addNote
      requestBody:
        content:
          application/json:
            schema: { type: object, properties: { text: { type: string } } }
          multipart/form-data:
            schema: { type: object, properties: { text: { type: string } } }
      responses: { '200': { description: ok } }
  /items/{id}:
    parameters: [ { name: id, in: path, required: true, schema: { type: string } } ]
    post:
      operationId: updateItemForm
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema: { type: object, properties: { name: { type: string } }, additionalProperties: true }
      responses: { '200': { description: ok } }
    put:
      operationId: replaceItem
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema: { type: object, properties: { name: { type: string } }, additionalProperties: true }
      responses: { '200': { description: ok } }
    delete:
      operationId: deleteItem
      responses: { '204': { description: gone } }
`

function code(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { code?: string }).code
  } catch {
    return undefined
  }
}

const form = { 'content-type': 'application/x-www-form-urlencoded' }

describe('method override through the gateway', () => {
  let up: RecordingUpstream
  let gw: TestGateway

  before(async () => {
    up = await startRecordingUpstream()
    const dir = tempDir('pc-override-')
    const spec = join(dir, 'spec.yaml')
    writeFileSync(spec, SPEC)
    const validation = (basePath: string) => `
      openapi-validation: { spec: ${JSON.stringify(spec)}, basePath: ${basePath} }`
    gw = await startTestGateway(up.url, {
      configYaml: `listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: plain
    match: { pathPrefix: /plain }
    upstream: up
  - name: validated
    match: { pathPrefix: /v }
    upstream: up
    policies:${validation('/v')}
  - name: opt
    match: { pathPrefix: /opt }
    upstream: up
    methodOverride: true
    policies:${validation('/opt')}
      authorize:
        default: deny
        rules:
          - { match: { methods: [POST, PUT] }, anonymous: true }
accessLog: { enabled: false }
reload: { watch: false }
log: { level: silent }
`,
    })
  })
  after(async () => {
    await gw?.close()
    await up?.close()
  })

  test('an override header on a route without authorize is refused: 400 GW_ERR_METHOD_OVERRIDE, nothing forwarded', async () => {
    up.clear()
    const cases: [string, Record<string, string>][] = [
      ['/v/upload', { 'X-HTTP-Method-Override': 'DELETE' }],
      ['/v/upload', { 'X-HTTP-Method': 'DELETE' }],
      ['/v/upload', { 'X-Method-Override': 'DELETE' }],
      ['/v/upload', { 'x-http-method-override': 'delete' }],
      ['/v/upload', { X_HTTP_METHOD_OVERRIDE: 'DELETE' }], // CGI-style servers read it as the header above
      ['/plain/upload', { 'X-HTTP-Method-Override': 'DELETE' }],
      ['/plain/upload', { 'X-HTTP-Method-Override': 'POST' }],
    ]
    for (const [path, headers] of cases) {
      const r = await request(gw.url, {
        method: 'POST',
        path,
        headers: { ...form, ...headers },
        body: 'name=a',
      })
      assert.equal(r.status, 400, `${path} ${JSON.stringify(headers)}: ${r.body}`)
      assert.equal(code(r.body), 'GW_ERR_METHOD_OVERRIDE')
    }
    assert.equal(up.requests.length, 0)
  })

  test('_method in the query (any spelling a framework reads as _method) is refused on every route', async () => {
    up.clear()
    for (const q of [
      '_method=DELETE',
      '%5Fmethod=DELETE',
      '_METHOD=delete',
      'a=1&_method[]=DELETE',
      'a=1;_method=DELETE',
      '.method=DELETE',
      '+_method=DELETE', // PHP drops leading spaces
      '%20.method=PUT', // and turns a dot into _
    ]) {
      for (const prefix of ['/plain', '/v']) {
        const r = await request(gw.url, {
          method: 'POST',
          path: `${prefix}/upload?${q}`,
          headers: form,
          body: 'name=a',
        })
        assert.equal(code(r.body), 'GW_ERR_METHOD_OVERRIDE', `${prefix}?${q}: ${r.status} ${r.body}`)
      }
    }
    assert.equal(up.requests.length, 0)
  })

  test('_method in a form body that openapi-validation parses is refused', async () => {
    up.clear()
    const r = await request(gw.url, {
      method: 'POST',
      path: '/v/upload',
      headers: form,
      body: 'name=a&_method=DELETE',
    })
    assert.equal(code(r.body), 'GW_ERR_METHOD_OVERRIDE', r.body)
    assert.equal(up.requests.length, 0)
    // A JSON body's top-level _method (Laravel reads it) and a multipart field are refused too.
    const j = await request(gw.url, {
      method: 'POST',
      path: '/v/notes',
      headers: { 'content-type': 'application/json' },
      body: '{"text":"x","_method":"DELETE"}',
    })
    assert.equal(code(j.body), 'GW_ERR_METHOD_OVERRIDE', j.body)
    const mp = await request(gw.url, {
      method: 'POST',
      path: '/v/notes',
      headers: { 'content-type': 'multipart/form-data; boundary=b0' },
      body: '--b0\r\ncontent-disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b0--\r\n',
    })
    assert.equal(code(mp.body), 'GW_ERR_METHOD_OVERRIDE', mp.body)
    assert.equal(up.requests.length, 0)
    const ok = await request(gw.url, { method: 'POST', path: '/v/upload', headers: form, body: 'name=a' })
    assert.equal(ok.status, 200, ok.body)
  })

  test('opt-in route: the overridden method is validated, authorized and forwarded as the real one', async () => {
    up.clear()
    // PUT is declared and allowed: forwarded as PUT, without the override header.
    const put = await request(gw.url, {
      method: 'POST',
      path: '/opt/items/7',
      headers: { ...form, 'X-HTTP-Method-Override': 'put' },
      body: 'name=a',
    })
    assert.equal(put.status, 200, put.body)
    assert.equal(up.requests.at(-1)?.method, 'PUT')
    assert.equal(up.requests.at(-1)?.headers['x-http-method-override'], undefined)
    // The query parameter works the same way, and is removed from the forwarded target.
    const q = await request(gw.url, {
      method: 'POST',
      path: '/opt/items/8?_method=PUT',
      headers: form,
      body: 'name=b',
    })
    assert.equal(q.status, 200, q.body)
    assert.equal(up.requests.at(-1)?.method, 'PUT')
    assert.equal(up.requests.at(-1)?.url, '/opt/items/8')
    // DELETE is declared but authorize allows only POST and PUT: 403, as a real DELETE would get.
    const del = await request(gw.url, {
      method: 'POST',
      path: '/opt/items/7',
      headers: { 'X-HTTP-Method-Override': 'DELETE' },
    })
    assert.equal(del.status, 403, del.body)
    // PATCH is not in the spec: not an operation of this API.
    const patch = await request(gw.url, {
      method: 'POST',
      path: '/opt/items/7',
      headers: { ...form, 'X-HTTP-Method-Override': 'PATCH' },
      body: 'name=a',
    })
    assert.notEqual(patch.status, 200, patch.body)
    assert.equal(up.requests.filter((r) => r.method !== 'PUT').length, 0)
  })

  test('opt-in route: only POST may be overridden, to PUT, PATCH or DELETE, named once', async () => {
    up.clear()
    const bad: [string, Record<string, string>, string?][] = [
      ['GET', { 'X-HTTP-Method-Override': 'DELETE' }],
      ['POST', { 'X-HTTP-Method-Override': 'GET' }],
      ['POST', { 'X-HTTP-Method-Override': 'TRACE' }],
      ['POST', { 'X-HTTP-Method-Override': 'DEL ETE' }],
      ['POST', { 'X-HTTP-Method-Override': 'PUT, DELETE' }],
      ['POST', { 'X-HTTP-Method-Override': 'PUT', 'X-HTTP-Method': 'DELETE' }],
      ['POST', { 'X-HTTP-Method-Override': 'PUT' }, '_method=DELETE'],
    ]
    for (const [method, headers, query] of bad) {
      const r = await request(gw.url, {
        method,
        path: `/opt/items/7${query ? `?${query}` : ''}`,
        headers: { ...form, ...headers },
        body: 'name=a',
      })
      assert.equal(
        code(r.body),
        'GW_ERR_METHOD_OVERRIDE',
        `${method} ${JSON.stringify(headers)} ${query ?? ''}: ${r.body}`,
      )
    }
    // A form _method that names another method than the one validated is refused on an opt-in route too.
    const r = await request(gw.url, {
      method: 'POST',
      path: '/opt/items/7',
      headers: { ...form, 'X-HTTP-Method-Override': 'PUT' },
      body: 'name=a&_method=DELETE',
    })
    assert.equal(code(r.body), 'GW_ERR_METHOD_OVERRIDE', r.body)
    assert.equal(up.requests.length, 0)
  })
})
