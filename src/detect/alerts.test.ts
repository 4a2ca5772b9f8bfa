import assert from 'node:assert/strict'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import pino from 'pino'
import { type Alert, AlertList, signBody, Webhook } from './alerts.js'

const alert = (n: number): Alert => ({
  id: `a${n}`,
  time: new Date(0).toISOString(),
  detector: 'flood',
  subject: 'ip:10.0.0.1',
  summary: 's',
  action: 'alert',
  data: { n },
})

test('AlertList keeps the newest, newest first, and counts all', () => {
  const l = new AlertList(3)
  for (let i = 0; i < 10; i++) l.add(alert(i))
  assert.equal(l.size, 3)
  assert.equal(l.total, 10)
  assert.deepEqual(
    l.recent(10).map((a) => a.id),
    ['a9', 'a8', 'a7'],
  )
  assert.deepEqual(
    l.recent(1).map((a) => a.id),
    ['a9'],
  )
})

function read(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let s = ''
    req.setEncoding('utf8')
    req.on('data', (d: string) => {
      s += d
    })
    req.on('end', () => resolve(s))
  })
}

test('webhook: signed body (verifiable with the secret), in order, retried after failures', async () => {
  const secret = 'a-webhook-secret-of-some-length'
  const got: { body: string; sig: string }[] = []
  let failFirst = 2
  const server = createServer(async (req, res) => {
    const body = await read(req)
    if (failFirst-- > 0) {
      res.writeHead(503).end()
      return
    }
    got.push({ body, sig: String(req.headers['x-portcullis-signature']) })
    res.writeHead(204).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  const w = new Webhook({
    url,
    secret,
    timeoutMs: 2000,
    maxAttempts: 5,
    maxQueue: 10,
    logger: pino({ level: 'silent' }),
  })
  w.send(alert(1))
  w.send(alert(2))
  await w.flush(10_000)
  assert.equal(w.delivered, 2)
  assert.deepEqual(
    got.map((g) => (JSON.parse(g.body) as Alert).id),
    ['a1', 'a2'],
  )
  for (const g of got) {
    const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(g.body).digest('hex')}`)
    assert.equal(g.sig.length, expected.length)
    assert.ok(timingSafeEqual(Buffer.from(g.sig), expected))
    assert.equal(g.sig, signBody(secret, g.body))
    assert.equal(g.body.includes(secret), false)
  }
  w.close()
  server.closeAllConnections()
  server.close()
})

test('webhook: bounded queue drops the oldest; gives up after maxAttempts', async () => {
  let hits = 0
  const server = createServer((_req, res) => {
    hits++
    res.writeHead(500).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  const w = new Webhook({
    url,
    secret: 'x'.repeat(16),
    timeoutMs: 1000,
    maxAttempts: 2,
    maxQueue: 2,
    logger: pino({ level: 'silent' }),
  })
  for (let i = 0; i < 5; i++) w.send(alert(i))
  assert.ok(w.dropped >= 2, `dropped ${w.dropped}`)
  await w.flush(10_000)
  assert.equal(w.delivered, 0)
  assert.equal(w.failed + w.dropped, 5)
  assert.equal(hits, w.failed * 2)
  w.close()
  server.closeAllConnections()
  server.close()
})
