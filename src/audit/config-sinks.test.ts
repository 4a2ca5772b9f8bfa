import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkSinkConfig } from './config.js'

test('forwarding sink config: the combinations the schema cannot express', () => {
  assert.deepEqual(checkSinkConfig({ sink: 'file' }), [])
  assert.deepEqual(checkSinkConfig({ sink: 'http' }), [
    'audit.sink is http but audit.http (url, …) is missing',
  ])
  assert.deepEqual(checkSinkConfig({ sink: 'http', http: { url: 'https://collector.example/in' } }), [])
  for (const url of ['http://127.0.0.1:9/x', 'http://localhost/x', 'http://[::1]:80/', 'http://127.1.2.3/'])
    assert.deepEqual(checkSinkConfig({ sink: 'http', http: { url } }), [], url)
  for (const url of ['http://collector.example/in', 'http://10.0.0.1/', 'http://127.0.0.1.evil.example/'])
    assert.match(checkSinkConfig({ sink: 'http', http: { url } }).join(), /only to a loopback address/, url)
  assert.match(checkSinkConfig({ sink: 'http', http: { url: 'ftp://x/' } }).join(), /must be https/)
  assert.match(checkSinkConfig({ sink: 'http', http: { url: 'not a url' } }).join(), /not a URL/)
  assert.match(checkSinkConfig({ sink: 'http', http: { url: 'https://u:p@x/' } }).join(), /no credentials/)
  assert.deepEqual(checkSinkConfig({ sink: 'file', http: { url: 'https://x/' } }), [
    'audit.http is set but audit.sink is file',
  ])
  assert.deepEqual(checkSinkConfig({ sink: 'syslog' }), [
    'audit.sink is syslog but audit.syslog (host, port, …) is missing',
  ])
  assert.deepEqual(checkSinkConfig({ sink: 'syslog', syslog: { transport: 'tcp', tls: {} } }), [
    'audit.syslog.tls is set but audit.syslog.transport is tcp (set transport: tls)',
  ])
  assert.deepEqual(
    checkSinkConfig({ sink: 'syslog', syslog: { transport: 'tls', tls: { cert: 'c.pem' } } }),
    ['audit.syslog.tls: cert and key go together'],
  )
  assert.deepEqual(checkSinkConfig({ sink: 'stdout', syslog: { transport: 'tcp' } }), [
    'audit.syslog is set but audit.sink is stdout',
  ])
})
