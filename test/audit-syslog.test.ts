/**
 * The audit log's syslog sink in the real `portcullis serve` process: a TCP and a TLS syslog
 * receiver on 127.0.0.1 parse the octet-counted RFC 5424 frames; records arrive in order, with the
 * expected header fields; a receiver restart under load loses nothing (deduplicated by seq); the
 * messages' MSG parts, stored as a file, verify with `portcullis audit verify`.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import tls from 'node:tls'
import { spawnGateway, tempDir } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const ROOT = new URL('../../', import.meta.url).pathname

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/portcullis.js'), ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Message {
  pri: number
  timestamp: string
  hostname: string
  app: string
  procId: string
  msgId: string
  sd: string
  msg: string
  seq: number
}

const HEADER_RE = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[(?:[^\]\\]|\\.)*\]) /

/** Octet-counting frames (RFC 6587 §3.4.1) from a byte stream; throws on a malformed frame. */
class FrameParser {
  private buf = Buffer.alloc(0)
  push(chunk: Buffer, out: (m: string) => void): void {
    this.buf = Buffer.concat([this.buf, chunk])
    for (;;) {
      const sp = this.buf.indexOf(0x20)
      if (sp < 0) {
        if (this.buf.length > 10) throw new Error('no MSG-LEN')
        return
      }
      const lenText = this.buf.toString('ascii', 0, sp)
      if (!/^[1-9]\d{0,7}$/.test(lenText)) throw new Error(`bad MSG-LEN ${JSON.stringify(lenText)}`)
      const len = Number(lenText)
      if (this.buf.length < sp + 1 + len) return
      out(this.buf.toString('utf8', sp + 1, sp + 1 + len))
      this.buf = this.buf.subarray(sp + 1 + len)
    }
  }
}

function parseMessage(m: string): Message {
  const h = HEADER_RE.exec(m)
  if (!h) throw new Error(`not RFC 5424: ${m.slice(0, 120)}`)
  const sd = h[7] as string
  const seq = /seq="(\d+)"/.exec(sd)
  return {
    pri: Number(h[1]),
    timestamp: h[2] as string,
    hostname: h[3] as string,
    app: h[4] as string,
    procId: h[5] as string,
    msgId: h[6] as string,
    sd,
    msg: m.slice(h[0].length),
    seq: seq ? Number(seq[1]) : -1,
  }
}

/** A syslog receiver (TCP or TLS) that keeps each seq once, in arrival order. */
class Receiver {
  port = 0
  private server: net.Server | undefined
  private readonly sockets = new Set<net.Socket>()
  readonly messages: Message[] = []
  readonly seen = new Set<number>()
  duplicates = 0
  outOfOrder = 0
  errors: string[] = []
  constructor(private readonly tlsOptions?: tls.TlsOptions) {}

  async up(): Promise<void> {
    const onSocket = (s: net.Socket) => {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
      s.on('error', () => undefined)
      const parser = new FrameParser()
      s.on('data', (d: Buffer) => {
        try {
          parser.push(d, (raw) => {
            const m = parseMessage(raw)
            if (this.seen.has(m.seq)) {
              this.duplicates++
              return
            }
            if (m.seq !== this.messages.length) this.outOfOrder++
            this.seen.add(m.seq)
            this.messages.push(m)
          })
        } catch (err) {
          this.errors.push((err as Error).message)
          s.destroy()
        }
      })
    }
    const server = this.tlsOptions ? tls.createServer(this.tlsOptions, onSocket) : net.createServer(onSocket)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => resolve())
    })
    this.port = (server.address() as net.AddressInfo).port
    this.server = server
  }

  async down(): Promise<void> {
    const s = this.server
    this.server = undefined
    if (!s) return
    for (const sock of this.sockets) sock.destroy()
    await new Promise((r) => s.close(r))
  }
}

async function steadyLoad(url: string, tag: string, rate: number, ms: number): Promise<string[]> {
  const answered: string[] = []
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
  const u = new URL(url)
  const inflight: Promise<void>[] = []
  const start = Date.now()
  for (let i = 0; Date.now() - start < ms; i++) {
    const id = `${tag}-${String(i).padStart(5, '0')}`
    inflight.push(
      new Promise<void>((resolve) => {
        http
          .get(
            { host: u.hostname, port: u.port, path: `/nope/${i}`, agent, headers: { 'x-request-id': id } },
            (res) => {
              res.resume()
              res.on('end', () => {
                if (res.statusCode === 404) answered.push(id)
                resolve()
              })
            },
          )
          .on('error', () => resolve())
      }),
    )
    await sleep(Math.max(0, start + ((i + 1) * 1000) / rate - Date.now()))
  }
  await Promise.all(inflight)
  agent.destroy()
  return answered
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

const config = (upUrl: string, syslog: string) => `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: false }
upstreams: { main: { targets: [ { url: "${upUrl}" } ] } }
routes:
  - { name: api, match: { pathPrefix: /api }, upstream: main }
accessLog: { destination: access.log }
reload: { watch: false }
audit:
  enabled: true
  instanceId: gw-syslog
  keyring: { file: audit-keys.json }
  sink: syslog
  file: { fsync: interval, fsyncInterval: 50ms }
  spool: { dir: spool }
  syslog: ${syslog}
`

/** Checks the messages of a stopped gateway: in order, once, the header fields, and the chain. */
function checkMessages(dir: string, r: Receiver, answered: string[]): void {
  assert.deepEqual(r.errors, [])
  assert.equal(r.outOfOrder, 0)
  assert.deepEqual(
    r.messages.map((m) => m.seq),
    r.messages.map((_, i) => i),
  )
  const recs = r.messages.map(
    (m) =>
      JSON.parse(m.msg) as { type: string; seq: number; requestId?: string; decision?: string; time: string },
  )
  const ids = new Set(recs.map((x) => x.requestId))
  assert.deepEqual(
    answered.filter((id) => !ids.has(id)),
    [],
  )
  for (const [i, m] of r.messages.entries()) {
    const rec = recs[i] as (typeof recs)[number]
    assert.equal(m.app, 'portcullis')
    assert.equal(m.msgId, rec.type)
    assert.equal(m.timestamp, rec.time)
    assert.match(m.procId, /^\d+$/)
    assert.equal(m.sd, `[portcullis@32473 instance="gw-syslog" seq="${rec.seq}"]`)
    // local3 (19): deny → warning (4), others → info (6).
    assert.equal(m.pri, 19 * 8 + (rec.decision === 'deny' ? 4 : 6), `${rec.type} ${m.pri}`)
  }
  const file = join(dir, 'received.jsonl')
  writeFileSync(file, r.messages.map((m) => `${m.msg}\n`).join(''))
  const v = cli(['audit', 'verify', '--keyring', join(dir, 'audit-keys.json'), '--require-closed', file])
  console.log(v.stdout.trim())
  assert.equal(v.code, 0, v.stdout + v.stderr)
}

describe('audit syslog sink', () => {
  let up: TestUpstream
  before(async () => {
    up = await startUpstream('audited')
  })
  after(async () => {
    await up?.close()
  })

  test('TCP: octet-counted RFC 5424 frames in order; a receiver restart under load loses nothing', async () => {
    const dir = tempDir('pc-audit-syslog-')
    assert.equal(cli(['audit', 'keygen', '--keyring', join(dir, 'audit-keys.json')]).code, 0)
    const r = new Receiver()
    await r.up()
    const gw = await spawnGateway(
      config(
        up.url,
        `{ host: 127.0.0.1, port: ${r.port}, facility: local3, hostname: gw.test, settle: 300ms, retry: { min: 50ms, max: 500ms } }`,
      ),
      dir,
    )
    let answered: string[] = []
    try {
      const load = steadyLoad(gw.url, 'tcp', 50, 6000)
      await sleep(1500)
      await r.down()
      const atDown = r.messages.length
      await sleep(2000)
      await r.up()
      answered = await load
      await waitFor(
        'every answered request at the receiver',
        () => {
          const ids = new Set(r.messages.map((m) => (JSON.parse(m.msg) as { requestId?: string }).requestId))
          return answered.every((id) => ids.has(id))
        },
        10_000,
      )
      console.log(
        `syslog tcp: ${answered.length} answered, ${atDown} messages before the receiver restart, ${r.messages.length} received, ${r.duplicates} raw duplicates (sent again after the restart)`,
      )
    } finally {
      assert.equal(await gw.stop(), 0)
    }
    assert.ok(answered.length >= 250)
    assert.equal(r.messages[0]?.hostname, 'gw.test')
    assert.equal(r.messages[r.messages.length - 1]?.msgId, 'audit.checkpoint')
    checkMessages(dir, r, answered)
    await r.down()
  })

  test('TLS (RFC 5425): a throw-away self-signed certificate as the CA, servername, minVersion TLSv1.3', async () => {
    const dir = tempDir('pc-audit-syslog-tls-')
    assert.equal(cli(['audit', 'keygen', '--keyring', join(dir, 'audit-keys.json')]).code, 0)
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
        '/CN=syslog.test',
        '-addext',
        'subjectAltName=DNS:syslog.test',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    )
    const r = new Receiver({
      cert: readFileSync(join(dir, 'cert.pem')),
      key: readFileSync(join(dir, 'key.pem')),
      minVersion: 'TLSv1.3',
    })
    await r.up()
    const gw = await spawnGateway(
      config(
        up.url,
        `{ host: 127.0.0.1, port: ${r.port}, transport: tls, tls: { ca: cert.pem, servername: syslog.test, minVersion: TLSv1.3 }, facility: local3, settle: 200ms, retry: { min: 50ms, max: 500ms } }`,
      ),
      dir,
    )
    let answered: string[] = []
    try {
      answered = await steadyLoad(gw.url, 'tls', 50, 1000)
      await waitFor(
        'every answered request at the receiver',
        () => {
          const ids = new Set(r.messages.map((m) => (JSON.parse(m.msg) as { requestId?: string }).requestId))
          return answered.every((id) => ids.has(id))
        },
        10_000,
      )
    } finally {
      assert.equal(await gw.stop(), 0)
    }
    assert.ok(answered.length >= 40)
    checkMessages(dir, r, answered)
    await r.down()
  })

  test('TLS: a receiver whose certificate does not match servername gets nothing, and the gateway says so', async () => {
    const dir = tempDir('pc-audit-syslog-badtls-')
    assert.equal(cli(['audit', 'keygen', '--keyring', join(dir, 'audit-keys.json')]).code, 0)
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
        '/CN=other.test',
        '-addext',
        'subjectAltName=DNS:other.test',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    )
    const r = new Receiver({
      cert: readFileSync(join(dir, 'cert.pem')),
      key: readFileSync(join(dir, 'key.pem')),
    })
    await r.up()
    const gw = await spawnGateway(
      config(
        up.url,
        `{ host: 127.0.0.1, port: ${r.port}, transport: tls, tls: { ca: cert.pem, servername: syslog.test }, retry: { min: 50ms, max: 200ms } }`,
      ),
      dir,
    )
    try {
      await steadyLoad(gw.url, 'bad', 20, 500)
      await gw.waitForLog(/AUDIT LOG CANNOT BE WRITTEN/, 5000)
      assert.equal(r.messages.length, 0)
      assert.match(gw.stderr(), /"op":"connect"/)
    } finally {
      await gw.stop()
    }
    await r.down()
  })
})
