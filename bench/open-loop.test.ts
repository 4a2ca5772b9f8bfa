import assert from 'node:assert/strict'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { luaString } from './loadgen.js'
import { ResponseReader, requestBytes, runOpenLoop } from './open-loop.js'

function statuses(chunks: string[]): number[] {
  const r = new ResponseReader()
  const out: number[] = []
  for (const c of chunks) r.push(Buffer.from(c, 'latin1'), (s) => out.push(s))
  return out
}

test('ResponseReader: content-length and chunked bodies, split anywhere, several per read', () => {
  const a = 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello'
  const b = 'HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'
  const c = 'HTTP/1.1 204 No Content\r\n\r\n'
  const all = a + b + c
  assert.deepEqual(statuses([all]), [200, 404, 204])
  // every split point gives the same answers
  for (let i = 1; i < all.length; i++)
    assert.deepEqual(statuses([all.slice(0, i), all.slice(i)]), [200, 404, 204])
  // a body that contains what looks like a response head is body, not a response
  const tricky = 'HTTP/1.1 200 OK\r\ncontent-length: 40\r\n\r\nHTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n'
  assert.deepEqual(statuses([tricky]), [200])
})

test('ResponseReader: hostile framing is an error, never a hang or a wrong count', () => {
  assert.throws(() => statuses(['HTTP/1.1 200 OK\r\nx: y\r\n\r\nbody']), /without a length/)
  assert.throws(
    () => statuses(['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n']),
    /bad chunk size/,
  )
  // an incomplete response is not counted
  assert.deepEqual(statuses(['HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort']), [])
})

test('requestBytes: head, headers, content-length of the UTF-8 body', () => {
  const bytes = requestBytes('http://127.0.0.1:9', {
    method: 'POST',
    path: '/a',
    headers: { 'content-type': 'application/json' },
    body: '{"é":1}',
  })
  assert.equal(
    bytes.toString('utf8'),
    'POST /a HTTP/1.1\r\nhost: 127.0.0.1:9\r\ncontent-type: application/json\r\ncontent-length: 8\r\n\r\n{"é":1}',
  )
})

test('luaString: escapes are three digits, so a digit after one is not read into it', () => {
  assert.equal(luaString('a"1'), '"a\\0341"')
  assert.equal(luaString('\n7'), '"\\0107"')
})

test('runOpenLoop sends at the scheduled rate and counts a stall in every request scheduled during it', async () => {
  // The server holds every response that arrives in the stall window until the window ends: a
  // closed-loop generator would send nothing meanwhile and record one slow request per
  // connection; an open-loop one records the wait of every request scheduled in the window.
  const STALL_FROM_MS = 300
  const STALL_MS = 400
  let t0 = 0
  const held: ServerResponse[] = []
  let seen = 0
  const server = createServer((req, res) => {
    seen++
    req.resume()
    const at = performance.now() - t0
    if (t0 > 0 && at >= STALL_FROM_MS && at < STALL_FROM_MS + STALL_MS) held.push(res)
    else res.end('ok')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const release = setInterval(() => {
    if (t0 > 0 && performance.now() - t0 >= STALL_FROM_MS + STALL_MS)
      for (const res of held.splice(0)) res.end('ok')
  }, 5)
  try {
    const { port } = server.address() as AddressInfo
    t0 = performance.now()
    const r = await runOpenLoop({
      origin: `http://127.0.0.1:${port}`,
      request: { method: 'GET', path: '/' },
      rate: 200,
      durationS: 1.5,
      warmupS: 0,
      connections: 4,
    })
    assert.equal(r.scheduled, 300)
    assert.equal(r.completed, 300)
    assert.equal(seen, 300)
    assert.equal(r.non2xx, 0)
    assert.equal(r.errors, 0)
    // ~80 of the 300 requests were scheduled in the 400 ms stall (4 connections only carry 4 of
    // them), each waiting for its end: on average 200 ms; well over 10% wait more than 100 ms
    assert.ok(r.p90_ms >= 100, `p90 ${r.p90_ms} ms: the stall is not in the latencies`)
  } finally {
    clearInterval(release)
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  }
})
