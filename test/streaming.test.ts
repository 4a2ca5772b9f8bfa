/**
 * 50 MB up and down through the gateway process: bodies stream, the gateway's RSS stays flat.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'
import { type GatewayProcess, spawnGateway } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const MB = 1024 * 1024
const SIZE = 50 * MB

/** Samples the gateway's RSS every 20 ms while `work` runs; resolves the peak growth in bytes. */
async function peakGrowth(gw: GatewayProcess, work: () => Promise<void>): Promise<number> {
  const base = gw.rss()
  let peak = base
  const timer = setInterval(() => {
    peak = Math.max(peak, gw.rss())
  }, 20)
  try {
    await work()
  } finally {
    clearInterval(timer)
  }
  peak = Math.max(peak, gw.rss())
  return peak - base
}

describe('streaming 50 MB', () => {
  let up: TestUpstream
  let gw: GatewayProcess
  before(async () => {
    up = await startUpstream()
    gw = await spawnGateway(`
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: files
    match: { pathPrefix: / }
    upstream: up
    policies: { request-size-limit: { maxBodyBytes: ${64 * MB} } }
accessLog: { enabled: false }
reload: { watch: false }
`)
    // Warm up both directions so lazy allocations and the heap's first growth are not counted.
    await fetch(`${gw.url}/download?mb=8`).then((r) => r.arrayBuffer())
    await fetch(`${gw.url}/upload`, { method: 'POST', body: Buffer.alloc(8 * MB) }).then((r) => r.text())
  })
  after(async () => {
    await gw?.stop()
    await up?.close()
  })

  test('a 50 MB upload streams through with RSS growth under 64 MB', async () => {
    const chunk = Buffer.alloc(256 * 1024)
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff
    const expected = createHash('sha256')
    for (let i = 0; i < SIZE / chunk.length; i++) expected.update(chunk)
    let answer = ''
    const growth = await peakGrowth(gw, async () => {
      answer = await new Promise<string>((resolve, reject) => {
        const u = new URL(gw.url)
        const req = http.request(
          {
            host: u.hostname,
            port: u.port,
            method: 'POST',
            path: '/upload',
            headers: { 'content-length': SIZE },
            agent: false,
          },
          (res) => {
            let body = ''
            res.on('data', (c: Buffer) => {
              body += c
            })
            res.on('end', () => resolve(body))
          },
        )
        req.on('error', reject)
        let sent = 0
        const pump = () => {
          while (sent < SIZE) {
            sent += chunk.length
            if (!req.write(chunk)) {
              req.once('drain', pump)
              return
            }
          }
          req.end()
        }
        pump()
      })
    })
    assert.deepEqual(JSON.parse(answer), { size: SIZE, sha256: expected.digest('hex') })
    console.log(`upload 50 MB: gateway RSS growth ${(growth / MB).toFixed(1)} MB`)
    assert.ok(growth < 64 * MB, `RSS grew by ${(growth / MB).toFixed(1)} MB`)
  })

  test('a 50 MB download streams through with RSS growth under 64 MB', async () => {
    let received = 0
    const growth = await peakGrowth(gw, async () => {
      const res = await fetch(`${gw.url}/download?mb=50`)
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-length'), String(SIZE))
      const reader = (res.body as ReadableStream<Uint8Array>).getReader()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        received += value.length
        // A slow reader: the gateway must apply back-pressure, not buffer the rest.
        if (received % (8 * MB) < value.length) await new Promise((r) => setTimeout(r, 20))
      }
    })
    assert.equal(received, SIZE)
    console.log(`download 50 MB: gateway RSS growth ${(growth / MB).toFixed(1)} MB`)
    assert.ok(growth < 64 * MB, `RSS grew by ${(growth / MB).toFixed(1)} MB`)
  })
})
