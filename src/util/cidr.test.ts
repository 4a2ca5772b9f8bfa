import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CidrSet, cidrListProblems, ipv6ToWords, parseCidr, wordsToIpv6 } from './cidr.js'

test('parseCidr: canonical network, host bits cleared, both families', () => {
  assert.deepEqual(parseCidr('10.1.2.3/8'), { network: '10.0.0.0', prefix: 8, family: 'ipv4' })
  assert.deepEqual(parseCidr('192.0.2.7'), { network: '192.0.2.7', prefix: 32, family: 'ipv4' })
  assert.deepEqual(parseCidr('0.0.0.0/0'), { network: '0.0.0.0', prefix: 0, family: 'ipv4' })
  assert.deepEqual(parseCidr('2001:DB8:1:2::5/32'), { network: '2001:db8::', prefix: 32, family: 'ipv6' })
  assert.deepEqual(parseCidr('fe80::1/10'), { network: 'fe80::', prefix: 10, family: 'ipv6' })
  assert.deepEqual(parseCidr('::ffff:10.0.0.1/104'), { network: '::ffff:a00:0', prefix: 104, family: 'ipv6' })
  assert.deepEqual(parseCidr('::1'), { network: '::1', prefix: 128, family: 'ipv6' })
})

test('parseCidr: hostile and ambiguous input is refused', () => {
  for (const bad of [
    '',
    '/8',
    '10.0.0.0/',
    '10.0.0.0/33',
    '10.0.0.0/08',
    '10.0.0.0/-1',
    '010.0.0.1',
    '127.1',
    '0x7f.0.0.1',
    '2130706433',
    '10.0.0.0/8/8',
    '256.0.0.1',
    '1.2.3.4.5',
    'fe80::1%eth0',
    '::/129',
    'localhost',
    '10.0.0.0 /8',
    '１０.0.0.1',
    'a'.repeat(10_000),
  ]) {
    assert.equal(parseCidr(bad), undefined, bad)
  }
})

test('ipv6ToWords / wordsToIpv6 round trip, RFC 5952 text', () => {
  const cases: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::ffff:127.0.0.1', '::ffff:7f00:1'],
    ['64:ff9b::10.0.0.1', '64:ff9b::a00:1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1::', '1::'],
  ]
  for (const [input, want] of cases) {
    const w = ipv6ToWords(input)
    assert.ok(w, input)
    assert.equal(wordsToIpv6(w), want, input)
  }
  assert.equal(ipv6ToWords('1:2:3:4:5:6:7:8:9'), undefined)
  assert.equal(ipv6ToWords('::ffff:1.2.3'), undefined)
})

test('CidrSet: membership across families and IPv4-mapped IPv6', () => {
  const s = CidrSet.from(['10.0.0.0/8', '192.168.1.5', '2001:db8::/32'])
  assert.equal(s.size, 3)
  assert.equal(s.has('10.255.0.1'), true)
  assert.equal(s.has('11.0.0.1'), false)
  assert.equal(s.has('192.168.1.5'), true)
  assert.equal(s.has('192.168.1.6'), false)
  assert.equal(s.has('::ffff:10.0.0.1'), true)
  assert.equal(s.has('::ffff:a00:1'), true)
  assert.equal(s.has('2001:db8:ffff::1'), true)
  assert.equal(s.has('2001:db9::1'), false)
  assert.equal(s.has('not an ip'), false)
  assert.equal(s.has(''), false)
  assert.equal(CidrSet.empty.has('10.0.0.1'), false)
  assert.throws(() => CidrSet.from(['10.0.0.0/8', 'nope']), /"nope" is not an IP address or CIDR range/)
})

test('cidrListProblems names each bad entry', () => {
  assert.deepEqual(cidrListProblems('allow', ['10.0.0.0/8', '::1']), [])
  const p = cidrListProblems('deny', ['10.0.0.0/8', '10.0.0.0/40', 'x'])
  assert.equal(p.length, 2)
  assert.match(p[0] as string, /^deny\[1\]: /)
  assert.match(p[1] as string, /^deny\[2\]: .*found "x"/)
})
