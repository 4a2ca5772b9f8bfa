import assert from 'node:assert/strict'
import { createServer, type AddressInfo } from 'node:net'
import { test } from 'node:test'
import tls from 'node:tls'
import { prng } from '../util/prng.js'
import { parseClientHello } from './client-hello.js'

/** A real ClientHello, as Node's TLS client sends it, captured by a plain TCP server. */
async function captureHello(servername?: string): Promise<Buffer> {
  let resolveHello: (b: Buffer) => void = () => undefined
  const got = new Promise<Buffer>((r) => {
    resolveHello = r
  })
  const server = createServer((s) => {
    let buf = Buffer.alloc(0)
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c])
      if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
        resolveHello(buf)
        s.destroy()
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  const c = tls.connect({
    host: '127.0.0.1',
    port,
    ...(servername ? { servername } : {}),
    rejectUnauthorized: false,
  })
  c.on('error', () => undefined)
  const hello = await got
  c.destroy()
  await new Promise((r) => server.close(r))
  return hello
}

test('a real ClientHello: SNI read, every prefix incomplete, never throws', async () => {
  const hello = await captureHello('Api.Example.com')
  assert.deepEqual(parseClientHello(hello), { kind: 'hello', sni: 'api.example.com' })
  for (let n = 0; n < hello.length; n++)
    assert.equal(parseClientHello(hello.subarray(0, n)).kind, 'incomplete', `prefix ${n}`)
  const noSni = await captureHello()
  assert.deepEqual(parseClientHello(noSni), { kind: 'hello', sni: undefined })
})

test('not TLS: HTTP, other record types, a handshake that is not a ClientHello', () => {
  assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'not-tls')
  assert.equal(parseClientHello(Buffer.from([0x17, 0x03, 0x03, 0, 5, 1, 2, 3, 4, 5])).kind, 'not-tls')
  assert.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0, 4, 2, 0, 0, 0])).kind, 'not-tls')
  assert.equal(
    parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff])).kind,
    'not-tls',
    'record too long',
  )
})

test('hostile mutations of a real ClientHello never throw and never yield a bad name', async () => {
  const hello = await captureHello('api.example.com')
  const rand = prng(42)
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(hello)
    const flips = 1 + Math.floor(rand() * 4)
    for (let k = 0; k < flips; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256)
    const r = parseClientHello(b)
    if (r.kind === 'hello' && r.sni !== undefined) assert.match(r.sni, /^[a-z0-9.-]{1,253}$/)
  }
})
