/**
 * TLS defaults of the HTTPS listener (issue 19), checked testssl-style with the openssl CLI against
 * the real `portcullis serve`: no TLS 1.0 or 1.1; of every TLS 1.2 suite OpenSSL knows for an RSA
 * certificate (anonymous ones included), only forward-secret AEAD suites are accepted (so no
 * non-PFS suite, no CBC suite at all); `minVersion: TLSv1.3` refuses TLS 1.2. The same probes run
 * first against a deliberately weak server in this process, so they are shown able to see what
 * they look for. Then: certificates chosen by SNI, and a certificate renewed on disk served
 * without a restart.
 */
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { copyFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import tls from 'node:tls'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'

interface Suite {
  name: string
  kx: string
  enc: string
}

/** Every TLS ≤ 1.2 suite OpenSSL knows that an RSA certificate (or none) can negotiate. */
function rsaSuites(): Suite[] {
  const out = execFileSync('openssl', ['ciphers', '-v', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'], {
    encoding: 'utf8',
  })
  const suites: Suite[] = []
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f.length < 5 || f[1] === 'TLSv1.3') continue
    const field = (k: string) => f.find((x) => x.startsWith(`${k}=`))?.slice(k.length + 1) ?? ''
    const au = field('Au')
    if (au !== 'RSA' && au !== 'None') continue
    suites.push({ name: f[0] as string, kx: field('Kx'), enc: field('Enc') })
  }
  return suites
}

/** One openssl s_client handshake; the negotiated protocol and suite, or undefined when refused. */
function handshake(
  port: number,
  args: string[],
  servername = 'localhost',
): Promise<{ protocol: string; cipher: string } | undefined> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername, '-brief', ...args],
      { timeout: 10_000, encoding: 'utf8' },
      (_err, stdout, stderr) => {
        const text = `${stdout}\n${stderr}`
        const protocol = /Protocol version: (\S+)/.exec(text)?.[1]
        const cipher = /Ciphersuite: (\S+)/.exec(text)?.[1]
        resolve(protocol && cipher ? { protocol, cipher } : undefined)
      },
    )
    child.stdin?.end()
  })
}

/** Runs `fn` over `items`, `n` at a time (bounded: the machine is shared). */
async function pool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i] as T)
      }
    }),
  )
  return out
}

/** The suites a server at `port` accepts over TLS 1.2 (each offered alone). */
async function accepted(port: number, suites: Suite[]): Promise<Suite[]> {
  const r = await pool(suites, 3, (s) => handshake(port, ['-tls1_2', '-cipher', `${s.name}:@SECLEVEL=0`]))
  return suites.filter((_s, i) => r[i] !== undefined)
}

const isPfs = (s: Suite) => /^(ECDH|DH)$/.test(s.kx)
const isAead = (s: Suite) => /GCM|CHACHA20|CCM/.test(s.enc)

function makeCert(dir: string, name: string, cn: string, san?: string): void {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      ...(san ? ['-addext', `subjectAltName=${san}`] : []),
      '-keyout',
      join(dir, `${name}.key`),
      '-out',
      join(dir, `${name}.pem`),
    ],
    { stdio: 'ignore' },
  )
}

/** The CN of the certificate the server presents for `servername`. */
function presented(port: number, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      { host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername ? { servername } : {}) },
      () => {
        const cn = s.getPeerCertificate().subject?.CN
        s.end()
        resolve(String(cn))
      },
    )
    s.on('error', reject)
  })
}

describe('TLS defaults (openssl probes)', () => {
  let dir: string
  let gw: GatewayProcess
  let weak: tls.Server
  let port = 0
  let port13 = 0
  let suites: Suite[]

  before(async () => {
    dir = tempDir('pc-tls-')
    makeCert(dir, 'default', 'default.test')
    makeCert(dir, 'a', 'a.test', 'DNS:a.test')
    makeCert(dir, 'wild', 'wild.b.test', 'DNS:*.b.test')
    makeCert(dir, 'renewed', 'renewed.test')
    gw = await spawnGateway(
      `
listeners:
  - name: tls
    host: 127.0.0.1
    port: 0
    tls:
      cert: default.pem
      key: default.key
      certificates:
        - { cert: a.pem, key: a.key }
        - { cert: wild.pem, key: wild.key }
      reloadInterval: 1s
  - { name: tls13, host: 127.0.0.1, port: 0, tls: { cert: default.pem, key: default.key, minVersion: TLSv1.3 } }
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up } ]
accessLog: { enabled: false }
reload: { watch: false }
`,
      dir,
    )
    const log = await gw.waitForLog(/"listener":"tls13"/, 20_000)
    const urls = [...log.matchAll(/"listener":"(tls|tls13)","url":"https:\/\/127\.0\.0\.1:(\d+)"/g)]
    port = Number(urls.find((m) => m[1] === 'tls')?.[2])
    port13 = Number(urls.find((m) => m[1] === 'tls13')?.[2])
    assert.ok(port > 0 && port13 > 0, gw.stderr())
    // The control: a server that accepts everything old and weak.
    const { readFileSync } = await import('node:fs')
    weak = tls.createServer({
      cert: readFileSync(join(dir, 'default.pem')),
      key: readFileSync(join(dir, 'default.key')),
      minVersion: 'TLSv1',
      ciphers: 'ALL:@SECLEVEL=0',
    })
    weak.on('secureConnection', (s) => s.end())
    await new Promise<void>((r) => weak.listen(0, '127.0.0.1', r))
    suites = rsaSuites()
  })
  after(async () => {
    await gw?.stop()
    await new Promise((r) => weak?.close(r))
  })

  it('the probes see TLS 1.0/1.1 and weak suites where they exist (control server)', async () => {
    const wp = (weak.address() as AddressInfo).port
    const old = await handshake(wp, ['-tls1', '-cipher', 'DEFAULT:@SECLEVEL=0'])
    // OpenSSL builds without TLS 1.0 would make this probe blind: then it must say so, not pass.
    assert.equal(
      old?.protocol,
      'TLSv1',
      'the local openssl can still speak TLS 1.0 to a server that allows it',
    )
    const list = await accepted(wp, suites)
    assert.ok(
      list.some((s) => !isPfs(s)),
      'the control accepts a non-forward-secret suite',
    )
    assert.ok(
      list.some((s) => !isAead(s)),
      'the control accepts a CBC suite',
    )
  })

  it('no TLS 1.0 or 1.1; TLS 1.2 and 1.3 work', async () => {
    assert.equal(await handshake(port, ['-tls1', '-cipher', 'DEFAULT:@SECLEVEL=0']), undefined)
    assert.equal(await handshake(port, ['-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0']), undefined)
    assert.equal((await handshake(port, ['-tls1_2']))?.protocol, 'TLSv1.2')
    assert.equal((await handshake(port, ['-tls1_3']))?.protocol, 'TLSv1.3')
  })

  it(`of the TLS 1.2 suites for RSA, only forward-secret AEAD ones are accepted`, async () => {
    assert.ok(suites.length > 40, `${suites.length} suites to probe`)
    const list = await accepted(port, suites)
    console.log(`TLS 1.2: ${suites.length} suites probed, accepted: ${list.map((s) => s.name).join(', ')}`)
    assert.ok(list.length >= 2)
    assert.deepEqual(
      list.filter((s) => !isPfs(s) || !isAead(s)).map((s) => s.name),
      [],
    )
  })

  it('minVersion: TLSv1.3 refuses TLS 1.2', async () => {
    assert.equal(await handshake(port13, ['-tls1_2']), undefined)
    assert.equal((await handshake(port13, ['-tls1_3']))?.protocol, 'TLSv1.3')
  })

  it('certificates by SNI: exact name, wildcard, the default otherwise', async () => {
    assert.equal(await presented(port, 'a.test'), 'a.test')
    assert.equal(await presented(port, 'A.TEST'), 'a.test')
    assert.equal(await presented(port, 'x.b.test'), 'wild.b.test')
    assert.equal(await presented(port, 'x.y.b.test'), 'default.test', 'a wildcard covers one level')
    assert.equal(await presented(port, 'other.test'), 'default.test')
    assert.equal(await presented(port), 'default.test')
  })

  it('a certificate renewed on disk is served without a restart', async () => {
    copyFileSync(join(dir, 'renewed.key'), join(dir, 'default.key'))
    copyFileSync(join(dir, 'renewed.pem'), join(dir, 'default.pem'))
    const deadline = Date.now() + 20_000
    let cn = await presented(port)
    while (cn !== 'renewed.test' && Date.now() < deadline) {
      await gw.waitForLog(/TLS certificates reloaded/, 20_000).catch(() => undefined)
      cn = await presented(port)
    }
    assert.equal(cn, 'renewed.test')
    assert.equal(await presented(port, 'a.test'), 'a.test', 'the SNI certificates stay')
  })
})
