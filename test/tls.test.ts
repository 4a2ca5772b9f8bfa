/** HTTPS listener: certificate, minimum TLS version, HSTS on TLS responses only. */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import https from 'node:https'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { SecureVersion } from 'node:tls'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

function get(
  url: string,
  maxVersion: SecureVersion,
): Promise<{ status: number; headers: Record<string, unknown>; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { rejectUnauthorized: false, maxVersion, agent: false }, (res) => {
      res.resume()
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          protocol: (res.socket as import('node:tls').TLSSocket).getProtocol?.() ?? null,
        }),
      )
    })
    req.on('error', reject)
  })
}

describe('https listener', () => {
  let up: TestUpstream
  let gw: GatewayProcess
  before(async () => {
    up = await startUpstream()
    const dir = tempDir()
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
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    )
    gw = await spawnGateway(
      `
listeners:
  - { name: tls, host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem, minVersion: TLSv1.3 } }
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up } ]
accessLog: { enabled: false }
`,
      dir,
    )
  })
  after(async () => {
    await gw?.stop()
    await up?.close()
  })

  test('serves TLSv1.3 with HSTS', async () => {
    assert.match(gw.url, /^https:/)
    const r = await get(`${gw.url}/x`, 'TLSv1.3')
    assert.equal(r.status, 200)
    assert.equal(r.protocol, 'TLSv1.3')
    assert.equal(r.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains')
  })

  test('refuses a client limited to TLSv1.2 when minVersion is TLSv1.3', async () => {
    await assert.rejects(get(`${gw.url}/x`, 'TLSv1.2'), /alert|protocol|version|ECONNRESET/i)
  })

  test('the upstream learns the client used https', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(`${gw.url}/echo`, { rejectUnauthorized: false, agent: false }, (res) => {
          let b = ''
          res.on('data', (c: Buffer) => {
            b += c
          })
          res.on('end', () => resolve(b))
        })
        .on('error', reject)
    })
    assert.equal(
      (JSON.parse(body) as { headers: Record<string, string> }).headers['x-forwarded-proto'],
      'https',
    )
  })
})
