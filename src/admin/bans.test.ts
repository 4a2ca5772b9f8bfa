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

test('parseBanCreate: duration in the one grammar, seconds as a number, the ambiguous forms refused', () => {
  assert.equal(parseBanCreate({ ip: '192.0.2.1', duration: '10m' }, 'x', 0).record.until, 600_000)
  assert.equal(parseBanCreate({ ip: '192.0.2.1', duration: '1h' }, 'x', 0).record.until, 3_600_000)
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ ip: '192.0.2.1', duration: 600 }, /a duration needs its unit, e\.g\. "10m"/],
    [{ ip: '192.0.2.1', seconds: '10m' }, /for a duration write "duration", e\.g\. "duration": "10m"/],
    [{ ip: '192.0.2.1', duration: '10m', seconds: 600 }, /give one of duration/],
    [{ ip: '192.0.2.1', duration: '1500ms' }, /whole seconds/],
    [{ ip: '192.0.2.1', duration: '1.5h' }, /500ms, 30s, 5m, 1h, 7d/],
  ]
  for (const [body, message] of refused)
    assert.throws(
      () => parseBanCreate(body, 'x', 0),
      (e: { detail?: string }) => message.test(e.detail ?? ''),
      JSON.stringify(body),
    )
})
