import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfigText } from './load.js'
import { REDACTED, redactConfig, secretLikeName } from './redact.js'

test('secret-like member names', () => {
  for (const n of [
    'token',
    'adminToken',
    'client_secret',
    'clientSecret',
    'password',
    'sentinelPassword',
    'webhookKey',
    'keys',
    'api-key',
    'privateKeyPem',
    'Authorization',
    'jwk',
    'cookie',
  ])
    assert.equal(secretLikeName(n), true, n)
  for (const n of ['url', 'host', 'port', 'file', 'keyring', 'header', 'store', 'name', 'enabled', 'routes'])
    assert.equal(secretLikeName(n), false, n)
})

test('the effective config: substituted values, secret-named members, URL credentials, JWK private parts and PEM are redacted', () => {
  const env = {
    ADMIN_TOKEN: 'adm-0123456789abcdef0123456789abcdef',
    REDIS_URL: 'redis://app:hunter2-redis@10.0.0.5:6379/0',
  }
  const text = `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { enabled: true, token: "\${env:ADMIN_TOKEN}" }
stores: { backend: memory, redis: { url: "\${env:REDIS_URL}" } }
upstreams: { main: { targets: [ { url: "http://127.0.0.1:9" } ] } }
routes:
  - name: api
    match: { pathPrefix: /api }
    upstream: main
    policies:
      api-key-auth: { store: keys.json }
`
  const loaded = loadConfigText(text, '/tmp/x/portcullis.yaml', { env })
  assert.ok(loaded.config, JSON.stringify(loaded.errors))
  const r = redactConfig(loaded.config, loaded.secretPaths)
  const body = JSON.stringify(r.config)
  for (const secret of [env.ADMIN_TOKEN, 'hunter2-redis', 'app:hunter2'])
    assert.ok(!body.includes(secret), secret)
  const c = r.config as {
    admin: { token: string }
    stores: { redis: { url: string } }
    upstreams: { main: { targets: { url: string }[] } }
    routes: { policies: Record<string, { store: string }> }[]
  }
  assert.equal(c.admin.token, REDACTED)
  assert.equal(c.stores.redis.url, REDACTED)
  assert.equal(c.upstreams.main.targets[0]?.url, 'http://127.0.0.1:9')
  // Not secrets: a policy's id and its store path stay.
  assert.equal(c.routes[0]?.policies['api-key-auth']?.store, 'keys.json')
  assert.ok(r.redacted.includes('admin.token'))
  assert.ok(r.redacted.includes('stores.redis.url'))

  // Arbitrary shapes (policies of later issues): fail closed.
  const odd = redactConfig(
    {
      x: { clientSecret: 'cs-1234567', nested: { tokens: ['t-aaaaaaa', 't-bbbbbbb'] }, n: 3 },
      jwk: { kty: 'oct', k: 'c2VjcmV0LWtleQ', kid: 'a' },
      verifier: { kty: 'RSA', n: 'modulus', e: 'AQAB', d: 'private-exp', p: 'pp-pp-pp', q: 'qq-qq-qq' },
      signingKey: { kty: 'RSA', e: 'AQAB' },
      pem: '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----',
      note: 'copy of cs-1234567 here',
      link: 'see https://ops:pw-in-url-9@example.test/x',
      hmacKey: { value: 'deep-secret-1' },
    },
    new Set(),
  )
  const s = JSON.stringify(odd.config)
  for (const secret of [
    'cs-1234567',
    't-aaaaaaa',
    't-bbbbbbb',
    'c2VjcmV0LWtleQ',
    'private-exp',
    'BEGIN',
    'deep-secret-1',
  ])
    assert.ok(!s.includes(secret), secret)
  assert.equal((odd.config as { x: { n: number } }).x.n, 3)
  // A JWK's public members stay; under a *Key name everything goes.
  assert.equal((odd.config as { verifier: { e: string } }).verifier.e, 'AQAB')
  assert.equal((odd.config as { signingKey: { e: string } }).signingKey.e, REDACTED)
})

test('members that hold no secret despite their names stay visible; the same names elsewhere still fail closed', () => {
  const r = redactConfig(
    {
      detect: { credentialStuffing: { action: 'alert', threshold: 20 } },
      jwt: { jwksUrl: 'https://idp.example.test/.well-known/jwks.json', tokenHeader: 'authorization' },
      limits: [{ name: 'per-user', key: ['ip', 'principal'], onMissingKey: 'deny' }],
      withCreds: { jwksUrl: 'https://u:pw-9876543@idp.example.test/jwks' },
      odd: { credentialStuff: 'cs-abcdefg', key: 'k-abcdefgh' },
    },
    new Set(),
  )
  const c = r.config as {
    detect: { credentialStuffing: { action: string } }
    jwt: { jwksUrl: string; tokenHeader: string }
    limits: { key: string[]; onMissingKey: string }[]
    withCreds: { jwksUrl: string }
    odd: { credentialStuff: string; key: string }
  }
  assert.equal(c.detect.credentialStuffing.action, 'alert')
  assert.equal(c.jwt.jwksUrl, 'https://idp.example.test/.well-known/jwks.json')
  assert.equal(c.jwt.tokenHeader, 'authorization')
  assert.deepEqual(c.limits[0]?.key, ['ip', 'principal'])
  assert.equal(c.limits[0]?.onMissingKey, 'deny')
  // URL credentials are stripped wherever they are (rule 4).
  assert.ok(!JSON.stringify(c.withCreds).includes('pw-9876543'))
  // An unknown member with a secret word, and a `key` that is a string, are still redacted.
  assert.equal(c.odd.credentialStuff, REDACTED)
  assert.equal(c.odd.key, REDACTED)
})
