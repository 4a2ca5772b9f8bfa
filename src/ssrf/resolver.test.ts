import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { startDnsServer } from '../../test/helpers/dns-server.js'
import { HostResolver, parseHosts } from './resolver.js'

test('parseHosts: comments, several names, IPv6 with zone, junk lines', () => {
  const m = parseHosts(
    [
      '# comment',
      '127.0.0.1 localhost LocalHost.Localdomain.',
      '10.0.0.9\tdb.example.com   db # trailing',
      'fe80::1%eth0 router.lan',
      'not-an-ip name.example',
      '',
      '   ',
      '10.0.0.9 db.example.com',
      '192.0.2.1',
    ].join('\n'),
  )
  assert.deepEqual(m.get('localhost'), ['127.0.0.1'])
  assert.deepEqual(m.get('localhost.localdomain'), ['127.0.0.1'])
  assert.deepEqual(m.get('db.example.com'), ['10.0.0.9'])
  assert.deepEqual(m.get('router.lan'), ['fe80::1%eth0'])
  assert.equal(m.get('name.example'), undefined)
  assert.equal(m.size, 5)
})

test('the hosts file answers first (as getaddrinfo does); DNS for the rest; answers cached by TTL', async () => {
  const dns = await startDnsServer({
    'db.example.com': { a: ['93.184.216.34'] },
    'www.example.com': { a: ['93.184.216.34'], ttl: 60 },
  })
  try {
    const dir = mkdtempSync(join(tmpdir(), 'hosts-'))
    const hostsFile = join(dir, 'hosts')
    writeFileSync(hostsFile, '10.0.0.9 db.example.com\n')
    const r = new HostResolver({ servers: [dns.server], hostsFile, timeoutMs: 500, tries: 1 })
    assert.deepEqual(await r.resolve('db.example.com'), { addresses: ['10.0.0.9'] })
    assert.deepEqual(r.cached('db.example.com'), { addresses: ['10.0.0.9'] })
    assert.deepEqual(await r.resolve('www.example.com'), { addresses: ['93.184.216.34'] })
    await r.resolve('www.example.com')
    assert.equal(r.queries, 1, 'the second answer came from the cache')
    assert.deepEqual(await r.resolve('nothing.example.com'), { addresses: [] }, 'NXDOMAIN: no addresses')
    assert.equal(dns.queries.filter((q) => q.name === 'db.example.com').length, 0)
    const none = new HostResolver({ servers: [dns.server], hostsFile: '', timeoutMs: 500, tries: 1 })
    assert.deepEqual(await none.resolve('db.example.com'), { addresses: ['93.184.216.34'] })
  } finally {
    await dns.close()
  }
})
