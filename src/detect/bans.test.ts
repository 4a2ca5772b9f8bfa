import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseBanCreate } from '../admin/bans.js'
import { CidrBans, normalizeCidr, parseBanKey } from './bans.js'

test('normalizeCidr: canonical network form, host bits cleared; too broad or malformed refused', () => {
  const cases: [string, string | undefined][] = [
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['192.168.10.77/24', '192.168.10.0/24'],
    ['203.0.113.9/32', '203.0.113.9/32'],
    ['198.51.100.200/25', '198.51.100.128/25'],
    ['2001:db8:abcd:12::1/48', '2001:db8:abcd::/48'],
    ['2001:DB8::/32', '2001:db8::/32'],
    ['::ffff:192.0.2.1/120', '::ffff:c000:200/120'],
    ['fe80::1/128', 'fe80::1/128'],
    ['10.0.0.0/7', undefined],
    ['0.0.0.0/0', undefined],
    ['2001:db8::/15', undefined],
    ['10.0.0.0/33', undefined],
    ['10.0.0.0', undefined],
    ['10.0.0/8', undefined],
    ['10.0.0.0/08x', undefined],
    ['example.com/24', undefined],
    ['1.2.3.4/ 8', undefined],
    [`${'1'.repeat(100)}/8`, undefined],
  ]
  for (const [input, want] of cases) assert.equal(normalizeCidr(input), want, input)
  assert.deepEqual(parseBanKey('cidr:10.0.0.0/8'), { kind: 'cidr', subject: '10.0.0.0/8' })
  assert.equal(parseBanKey('cidr:10.1.0.0/8'), undefined, 'only canonical keys')
})

test('CidrBans: matches addresses inside banned networks, follows changes and expiry', () => {
  let t = 1_000_000
  const entries = new Map<string, { expiresAt?: number }>([
    ['cidr:198.51.100.0/24', { expiresAt: t + 60_000 }],
    ['cidr:2001:db8::/32', {}],
    ['ip:203.0.113.7', {}],
  ])
  const local = new Map<string, number>()
  const bans = new CidrBans(
    () => entries.entries(),
    local,
    () => t,
  )
  assert.equal(bans.matches('198.51.100.7'), true)
  assert.equal(bans.matches('198.51.101.7'), false)
  assert.equal(bans.matches('2001:db8:1::9'), true)
  assert.equal(bans.matches('2001:db9::1'), false)
  assert.equal(bans.matches('203.0.113.7'), false, 'exact IP bans are not this class’s business')
  assert.equal(bans.matches('not an ip'), false)
  t += 61_000
  assert.equal(bans.matches('198.51.100.7'), false, 'expired')
  entries.set('cidr:10.0.0.0/8', {})
  assert.equal(bans.matches('10.9.9.9'), false, 'stale until invalidated')
  bans.invalidate()
  assert.equal(bans.matches('10.9.9.9'), true)
})

test('POST /v1/bans body: cidr accepted and normalized; one subject only', () => {
  const now = 1_700_000_000_000
  const r = parseBanCreate({ cidr: '192.0.2.77/24', duration: '1m' }, 'admin token', now)
  assert.equal(r.key, 'cidr:192.0.2.0/24')
  assert.equal(r.record.until, now + 60_000)
  const field = (name: string, detail: RegExp) => (e: unknown) =>
    (e as { extensions?: { field?: string } }).extensions?.field === name &&
    detail.test(String((e as { detail?: string }).detail))
  assert.throws(
    () => parseBanCreate({ cidr: '0.0.0.0/0', duration: '1m' }, 'a', now),
    field('cidr', /IPv4 network/),
  )
  assert.throws(
    () => parseBanCreate({ cidr: '192.0.2.0/24', ip: '192.0.2.1', duration: '1m' }, 'a', now),
    field('ip', /exactly one/),
  )
})
