/** Mutual TLS: client certificates verified by the listener, required per route by the mtls policy. */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type GatewayProcess, spawnGateway, tempDir } from './helpers/process.js'
import { startUpstream, type TestUpstream } from './helpers/upstream.js'

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })

/** A CA, a server certificate and client certificates (one from another CA) in `dir`. */
function makePki(dir: string): void {
  for (const ca of ['ca', 'rogue-ca']) {
    openssl(dir, [
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
      `/CN=${ca}`,
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.pem`,
    ])
  }
  const leaf = (name: string, ca: string, san: string) => {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`)
    openssl(dir, [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    ])
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.pem`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    ])
  }
  leaf('server', 'ca', 'DNS:localhost,IP:127.0.0.1')
  leaf('billing-service', 'ca', 'URI:spiffe://example.org/billing')
  leaf('reports-service', 'ca', 'URI:spiffe://example.org/reports')
  leaf('intruder', 'rogue-ca', 'URI:spiffe://example.org/billing')
}

function get(
  url: string,
  dir: string,
  client?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(
        url,
        {
          ca: readFileSync(join(dir, 'ca.pem')),
          ...(client
            ? {
                cert: readFileSync(join(dir, `${client}.pem`)),
                key: readFileSync(join(dir, `${client}.key`)),
              }
            : {}),
          headers,
          agent: false,
        },
        (res) => {
          let body = ''
          res.on('data', (c: Buffer) => {
            body += c
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        },
      )
      .on('error', reject)
  })
}

describe('mtls', () => {
  let up: TestUpstream
  let gw: GatewayProcess
  let dir: string
  before(async () => {
    dir = tempDir()
    makePki(dir)
    up = await startUpstream()
    gw = await spawnGateway(
      `
listeners:
  - name: tls
    host: 127.0.0.1
    port: 0
    tls: { cert: server.pem, key: server.key, clientAuth: { ca: ca.pem, mode: optional } }
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: public
    match: { pathPrefix: /public }
    upstream: up
  - name: internal
    match: { pathPrefix: /internal }
    upstream: up
    stripPrefix: true
    policies:
      mtls: { principalFrom: san-uri, allowedPrincipals: ["spiffe://example.org/billing"], forwardHeader: x-client-id }
accessLog: { enabled: false }
`,
      dir,
    )
  })
  after(async () => {
    await gw?.stop()
    await up?.close()
  })

  test('routes without the policy serve clients without a certificate', async () => {
    assert.equal((await get(`${gw.url}/public/x`, dir)).status, 200)
  })

  test('no certificate → 401 GW_ERR_AUTH_MISSING', async () => {
    const r = await get(`${gw.url}/internal/echo`, dir)
    assert.equal(r.status, 401)
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'GW_ERR_AUTH_MISSING')
  })

  test('a certificate from another CA → 401 GW_ERR_AUTH_INVALID, even with an allowed SAN', async () => {
    const r = await get(`${gw.url}/internal/echo`, dir, 'intruder')
    assert.equal(r.status, 401)
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'GW_ERR_AUTH_INVALID')
  })

  test('a verified certificate whose principal is not allowed → 403', async () => {
    const r = await get(`${gw.url}/internal/echo`, dir, 'reports-service')
    assert.equal(r.status, 403)
  })

  test('the allowed principal passes and the upstream learns who it is; a spoofed header is replaced', async () => {
    const r = await get(`${gw.url}/internal/echo`, dir, 'billing-service', {
      'x-client-id': 'spiffe://example.org/admin',
    })
    assert.equal(r.status, 200)
    const seen = JSON.parse(r.body) as { headers: Record<string, string> }
    assert.equal(seen.headers['x-client-id'], 'spiffe://example.org/billing')
  })
})

describe('mtls required at the handshake', () => {
  test('clientAuth mode required: a client without a certificate cannot connect', async () => {
    const dir = tempDir()
    makePki(dir)
    const up = await startUpstream()
    const gw = await spawnGateway(
      `
listeners:
  - { name: tls, host: 127.0.0.1, port: 0, tls: { cert: server.pem, key: server.key, clientAuth: { ca: ca.pem, mode: required } } }
admin: { enabled: false }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes: [ { name: all, match: { pathPrefix: / }, upstream: up } ]
accessLog: { enabled: false }
`,
      dir,
    )
    try {
      await assert.rejects(get(`${gw.url}/x`, dir), /certificate|alert|ECONNRESET|socket hang up/i)
      assert.equal((await get(`${gw.url}/x`, dir, 'billing-service')).status, 200)
      await assert.rejects(
        get(`${gw.url}/x`, dir, 'intruder'),
        /certificate|alert|ECONNRESET|socket hang up|unknown ca/i,
      )
    } finally {
      await gw.stop()
      await up.close()
    }
  })
})
