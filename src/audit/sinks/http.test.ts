import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { HttpSink, lingerLeft } from './http.js'
import { Spool } from './spool.js'

const line = (seq: number) => `{"instance":"gw-h","seq":${seq},"type":"x"}`
const batch = (from: number, n: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => `${line(from + i)}\n`).join(''))

describe('http sink', () => {
  test('linger: the rest of lingerMs since the first unsent record, none once a batch is full', () => {
    const o = { lingerMs: 200, maxBytes: 1000 }
    assert.equal(lingerLeft(10, 1000, 1000, o), 200)
    assert.equal(lingerLeft(10, 1000, 1150, o), 50)
    assert.equal(lingerLeft(10, 1000, 1300, o), 0)
    assert.equal(lingerLeft(1000, 1000, 1000, o), 0)
    assert.equal(lingerLeft(10, 1000, 1000, { lingerMs: 0, maxBytes: 1000 }), 0)
  })

  test('retries a refused batch until 2xx, then the next, in order, one in flight; headers; no secret in errors', async () => {
    const token = 'sekret-token-value'
    const got: { range: string; auth: string; type: string; body: string }[] = []
    let inFlight = 0
    let maxInFlight = 0
    let answers = [503, 500, 429] // then 204
    const server = http.createServer((req, res) => {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      let body = ''
      req.on('data', (c) => {
        body += c
      })
      req.on('end', () => {
        const status = answers.shift() ?? 204
        got.push({
          range: String(req.headers['x-portcullis-audit-range']),
          auth: String(req.headers.authorization),
          type: String(req.headers['content-type']),
          body: status === 204 ? body : '',
        })
        setTimeout(() => {
          inFlight--
          res.writeHead(status).end()
        }, 5)
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as AddressInfo).port
    const errors: string[] = []
    const dir = mkdtempSync(join(tmpdir(), 'pc-http-sink-'))
    const spool = await Spool.open({
      dir,
      prefix: 'audit',
      instance: 'gw-h',
      firstFile: 1,
      fsync: 'always',
      fsyncIntervalMs: 1000,
      maxBytes: 1 << 20,
      onError: () => undefined,
    })
    const sink = new HttpSink({
      spool,
      url: new URL(`http://127.0.0.1:${port}/in`),
      instance: 'gw-h',
      token,
      tokenHeader: 'authorization',
      timeoutMs: 2000,
      maxRecords: 4,
      maxBytes: 1 << 20,
      lingerMs: 0,
      retryMinMs: 10,
      retryMaxMs: 40,
      onError: (err, op) => errors.push(`${op} ${err.code} ${err.message}`),
    })
    await sink.write(batch(0, 6))
    await sink.write(batch(6, 2))
    const deadline = Date.now() + 10_000
    while (spool.pending > 0 && Date.now() < deadline) await spool.wait(50)
    assert.equal(spool.pending, 0)
    await sink.close(500)
    server.close()
    const ok = got.filter((g) => g.body !== '')
    assert.deepEqual(
      got.map((g) => g.range),
      ['gw-h:0-3', 'gw-h:0-3', 'gw-h:0-3', 'gw-h:0-3', 'gw-h:4-7'],
    )
    assert.equal(ok.map((g) => g.body).join(''), batch(0, 8).toString())
    assert.ok(got.every((g) => g.auth === `Bearer ${token}` && g.type === 'application/x-ndjson'))
    assert.equal(maxInFlight, 1)
    assert.deepEqual(
      errors.map((e) => e.split(' ').slice(0, 2).join(' ')),
      ['deliver HTTP_503', 'deliver HTTP_500', 'deliver HTTP_429'],
    )
    assert.ok(errors.every((e) => !e.includes(token) && !e.includes('127.0.0.1')))
    assert.equal(sink.stats.records, 8)
    answers = []
  })

  test('a collector that is not there: connection errors are reported by code and retried; nothing is acknowledged', async () => {
    const probe = http.createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()))
    const port = (probe.address() as AddressInfo).port
    await new Promise((r) => probe.close(r))
    const errors: string[] = []
    const spool = await Spool.open({
      dir: mkdtempSync(join(tmpdir(), 'pc-http-sink-')),
      prefix: 'audit',
      instance: 'gw-h',
      firstFile: 1,
      fsync: 'always',
      fsyncIntervalMs: 1000,
      maxBytes: 1 << 20,
      onError: () => undefined,
    })
    const sink = new HttpSink({
      spool,
      url: new URL(`http://127.0.0.1:${port}/in`),
      instance: 'gw-h',
      tokenHeader: 'authorization',
      timeoutMs: 1000,
      maxRecords: 100,
      maxBytes: 1 << 20,
      lingerMs: 0,
      retryMinMs: 10,
      retryMaxMs: 20,
      onError: (err, op) => errors.push(`${op} ${err.code}`),
    })
    await sink.write(batch(0, 3))
    const deadline = Date.now() + 5000
    while (errors.length < 3 && Date.now() < deadline) await spool.wait(20)
    assert.ok(errors.length >= 3)
    assert.ok(
      errors.every((e) => e === 'deliver ECONNREFUSED'),
      errors.join(),
    )
    assert.equal(spool.pending, batch(0, 3).length)
    await sink.close(50)
  })
})

describe('http sink over https', () => {
  test('trusts the configured CA (and only it): delivered with `ca`, refused and retried without', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-http-sink-tls-'))
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    )
    let bodies = ''
    const server = https.createServer(
      { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) },
      (req, res) => {
        req.on('data', (c) => {
          bodies += c
        })
        req.on('end', () => res.writeHead(200).end('ok'))
      },
    )
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as AddressInfo).port
    const run = async (ca: Buffer | undefined, sub: string) => {
      const errors: string[] = []
      const spool = await Spool.open({
        dir: join(dir, sub),
        prefix: 'audit',
        instance: 'gw-h',
        firstFile: 1,
        fsync: 'always',
        fsyncIntervalMs: 1000,
        maxBytes: 1 << 20,
        onError: () => undefined,
      })
      const sink = new HttpSink({
        spool,
        url: new URL(`https://localhost:${port}/in`),
        instance: 'gw-h',
        tokenHeader: 'authorization',
        ca,
        timeoutMs: 2000,
        maxRecords: 100,
        maxBytes: 1 << 20,
        lingerMs: 0,
        retryMinMs: 10,
        retryMaxMs: 20,
        onError: (err, op) => errors.push(`${op} ${err.code}`),
      })
      await sink.write(batch(0, 2))
      const deadline = Date.now() + 5000
      while (spool.pending > 0 && errors.length < 2 && Date.now() < deadline) await spool.wait(20)
      const pending = spool.pending
      await sink.close(50)
      return { pending, errors }
    }
    const trusted = await run(readFileSync(join(dir, 'cert.pem')), 'a')
    assert.deepEqual(trusted, { pending: 0, errors: [] })
    assert.equal(bodies, batch(0, 2).toString())
    bodies = ''
    const untrusted = await run(undefined, 'b')
    assert.ok(untrusted.pending > 0)
    assert.ok(untrusted.errors.length >= 2)
    assert.ok(
      untrusted.errors.every((e) => e === 'deliver DEPTH_ZERO_SELF_SIGNED_CERT'),
      untrusted.errors.join(),
    )
    assert.equal(bodies, '')
    server.close()
  })
})
