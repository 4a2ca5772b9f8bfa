/** Slow clients (slowloris): a head or body that trickles in is cut off by the listener timeouts. */
import assert from 'node:assert/strict'
import net from 'node:net'
import { test } from 'node:test'
import { spawnGateway } from './helpers/process.js'
import { startUpstream } from './helpers/upstream.js'

/** Opens a socket, runs `send`, resolves what came back and how long until the gateway closed it. */
function exchange(url: string, send: (s: net.Socket) => void): Promise<{ data: string; ms: number }> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const s = net.connect(Number(u.port), u.hostname, () => send(s))
    let data = ''
    s.on('data', (d) => {
      data += d
    })
    s.on('close', () => resolve({ data, ms: Date.now() - started }))
    s.on('error', reject)
    setTimeout(() => {
      s.destroy()
      reject(new Error('the gateway kept a slow connection open for 8 s'))
    }, 8000).unref()
  })
}

test('a request head sent too slowly gets 408 and a closed connection', async () => {
  const up = await startUpstream()
  const gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0, headersTimeout: 1s, requestTimeout: 2s } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up } ]
accessLog: { enabled: false }
`)
  try {
    const head = await exchange(gw.url, (s) => {
      s.write('GET /x HTTP/1.1\r\nHost: a\r\n')
      const t = setInterval(() => {
        if (!s.destroyed) s.write('X-Slow: 1\r\n')
      }, 300)
      s.on('close', () => clearInterval(t))
    })
    assert.match(head.data, /^HTTP\/1\.1 408 /)
    assert.ok(head.ms < 4000, `closed after ${head.ms} ms`)

    const body = await exchange(gw.url, (s) => {
      s.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n')
      const t = setInterval(() => {
        if (!s.destroyed) s.write('x')
      }, 300)
      s.on('close', () => clearInterval(t))
    })
    assert.ok(body.ms < 6000, `a trickled body is cut after ${body.ms} ms`)
    assert.equal(up.received.includes('/upload') && body.data.includes('"size":1000'), false)
  } finally {
    await gw.stop()
    await up.close()
  }
})
