/**
 * Every answer the gateway makes itself is in the error catalogue (issue 23, item 3): a raw-socket
 * corpus of requests that Node or the listener answer before any route (Expect, Upgrade, CONNECT,
 * TRACE, bad versions, oversized lines, bad tokens): each gets application/problem+json with a
 * `code` and a request id, or a closed connection where HTTP demands it.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'
import { rawRequest } from './helpers/raw-http.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

let up: TestUpstream
let gw: GatewayProcess
before(async () => {
  up = await startUpstream()
  gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0, maxHeaderBytes: 4096 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up } ]
accessLog: { enabled: false }
`)
})
after(async () => {
  await gw?.stop()
  await up?.close()
})

const CORPUS: { name: string; raw: string; status: number; code: string }[] = [
  {
    name: 'Expect other than 100-continue',
    raw: 'POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 999-nope\r\nContent-Length: 2\r\n\r\nhi',
    status: 417,
    code: 'GW_ERR_EXPECTATION_FAILED',
  },
  {
    name: 'WebSocket upgrade',
    raw: 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    status: 501,
    code: 'GW_ERR_NOT_IMPLEMENTED',
  },
  {
    name: 'h2c upgrade',
    raw: 'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n',
    status: 501,
    code: 'GW_ERR_NOT_IMPLEMENTED',
  },
  {
    name: 'CONNECT',
    raw: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
    status: 405,
    code: 'GW_ERR_METHOD_NOT_ALLOWED',
  },
  {
    name: 'TRACE',
    raw: 'TRACE / HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 405,
    code: 'GW_ERR_METHOD_NOT_ALLOWED',
  },
  { name: 'HTTP/9.9', raw: 'GET / HTTP/9.9\r\nHost: x\r\n\r\n', status: 400, code: 'GW_ERR_BAD_REQUEST' },
  {
    name: 'HTTP/2.0 on an HTTP/1 listener',
    raw: 'GET / HTTP/2.0\r\nHost: x\r\n\r\n',
    status: 400,
    code: 'GW_ERR_BAD_REQUEST',
  },
  {
    name: 'oversized request line',
    raw: `GET /${'a'.repeat(8000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    status: 431,
    code: 'GW_ERR_HEADERS_TOO_LARGE',
  },
  {
    name: 'oversized header line',
    raw: `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(8000)}\r\n\r\n`,
    status: 431,
    code: 'GW_ERR_HEADERS_TOO_LARGE',
  },
  {
    name: 'space in a header name',
    raw: 'GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n',
    status: 400,
    code: 'GW_ERR_REQUEST_SMUGGLING',
  },
  {
    name: 'absolute-form target',
    raw: 'GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 400,
    code: 'GW_ERR_BAD_PATH',
  },
]

describe("the gateway's own answers", () => {
  for (const c of CORPUS) {
    test(`${c.name}: ${c.status} ${c.code}, problem+json with a request id`, async () => {
      const r = await rawRequest(Number(new URL(gw.url).port), c.raw, { timeoutMs: 10_000 })
      assert.equal(r.status, c.status, r.raw.toString('latin1').slice(0, 300))
      assert.equal(r.headers['content-type'], 'application/problem+json')
      assert.equal(r.code, c.code)
      assert.match(r.headers['x-request-id'] ?? '', /^[A-Za-z0-9._:-]{8,}$/)
      const problem = JSON.parse(r.body) as { instance?: string }
      assert.equal(problem.instance, `urn:portcullis:request:${r.headers['x-request-id']}`)
    })
  }

  test('Expect: 100-continue still works (100, then the answer)', async () => {
    const r = await rawRequest(
      Number(new URL(gw.url).port),
      'POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi',
      { timeoutMs: 10_000 },
    )
    assert.deepEqual(r.statuses, [100, 200])
  })
})
