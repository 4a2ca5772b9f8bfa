/**
 * A request refused for its framing in the middle of its body (issue 23, item 6): the access log
 * agrees with the client (400 GW_ERR_REQUEST_SMUGGLING, denied; not 499 "aborted", "allowed"),
 * and the upstream received nothing (the body was being buffered).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { spawnGateway } from './helpers/process.js'
import { rawRequest } from './helpers/raw-http.js'
import { startUpstream } from './helpers/upstream.js'

test('bad chunk size mid-body: 400 to the client, 400 denied in the access log, nothing upstream', async () => {
  const up = await startUpstream()
  const gw = await spawnGateway(
    `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up } ]
accessLog: { enabled: true, destination: stdout }
`,
    undefined,
    { captureStdout: true },
  )
  try {
    const r = await rawRequest(Number(new URL(gw.url).port), '', {
      pieces: [
        'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
        'zz\r\nbad\r\n0\r\n\r\n',
      ],
      pauseMs: 100,
      timeoutMs: 10_000,
    })
    assert.equal(r.status, 400)
    assert.equal(r.code, 'GW_ERR_REQUEST_SMUGGLING')
    const deadline = Date.now() + 10_000
    let line: { status?: number; code?: string; decision?: string; aborted?: boolean } | undefined
    while (line === undefined && Date.now() < deadline) {
      const found = gw
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"/upload"'))
      if (found.length > 0) line = JSON.parse(found[0] as string)
      else await new Promise((res) => setTimeout(res, 20))
    }
    assert.ok(line, gw.stdout())
    assert.equal(line.status, 400)
    assert.equal(line.code, 'GW_ERR_REQUEST_SMUGGLING')
    assert.equal(line.decision, 'denied')
    assert.notEqual(line.aborted, true)
    assert.deepEqual(
      up.received.filter((u) => u === '/upload'),
      [],
    )
  } finally {
    await gw.stop()
    await up.close()
  }
})
