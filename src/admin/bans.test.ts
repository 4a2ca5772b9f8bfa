import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { GatewayError } from '../gateway/errors.js'
import { parseBanCreate } from './bans.js'

const err = (f: () => unknown): string | undefined => {
  try {
    f()
    return undefined
  } catch (e) {
    return (e as GatewayError).code
  }
}

test('parseBanCreate: valid ip and principal bans', () => {
  const a = parseBanCreate({ ip: '192.0.2.1', seconds: 60, reason: 'scan' }, 'admin token', 1000)
  assert.deepEqual(a, { key: 'ip:192.0.2.1', record: { reason: 'scan', by: 'admin token', until: 61_000 } })
  const b = parseBanCreate({ principal: 'user-42', seconds: 1 }, 'admin token', 0)
  assert.equal(b.key, 'principal:user-42')
  assert.equal(parseBanCreate({ ip: '2001:DB8::1', seconds: 5 }, 'x', 0).key, 'ip:2001:db8::1')
})

test('parseBanCreate: hostile bodies are 400 GW_ERR_VALIDATION', () => {
  const bad: unknown[] = [
    null,
    [],
    'x',
    42,
    {},
    { ip: '1.2.3.4', principal: 'a', seconds: 1 },
    { ip: '1.2.3.4' },
    { ip: 'not-an-ip', seconds: 1 },
    { ip: '1.2.3.4/24', seconds: 1 },
    { ip: 1234, seconds: 1 },
    { principal: '', seconds: 1 },
    { principal: 'a\nb', seconds: 1 },
    { principal: 'x'.repeat(513), seconds: 1 },
    { principal: '\uD800', seconds: 1 },
    { ip: '1.2.3.4', seconds: 0 },
    { ip: '1.2.3.4', seconds: -5 },
    { ip: '1.2.3.4', seconds: 1.5 },
    { ip: '1.2.3.4', seconds: '60' },
    { ip: '1.2.3.4', seconds: 1e12 },
    { ip: '1.2.3.4', seconds: 1, reason: 'a\u0000b' },
    { ip: '1.2.3.4', seconds: 1, reason: 'x'.repeat(257) },
    { ip: '1.2.3.4', seconds: 1, reason: 5 },
    { ip: '1.2.3.4', seconds: 1, extra: true },
    { ip: '1.2.3.4', seconds: 1, __proto__: { admin: true }, constructor: 1 },
  ]
  for (const b of bad)
    assert.equal(
      err(() => parseBanCreate(b, 'x', 0)),
      'GW_ERR_VALIDATION',
      JSON.stringify(b),
    )
})
