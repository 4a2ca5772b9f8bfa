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
  const a = parseBanCreate({ ip: '192.0.2.1', duration: '1m', reason: 'scan' }, 'admin token', 1000)
  assert.deepEqual(a, { key: 'ip:192.0.2.1', record: { reason: 'scan', by: 'admin token', until: 61_000 } })
  const b = parseBanCreate({ principal: 'user-42', duration: '1s' }, 'admin token', 0)
  assert.equal(b.key, 'principal:user-42')
  assert.equal(parseBanCreate({ ip: '2001:DB8::1', duration: '5s' }, 'x', 0).key, 'ip:2001:db8::1')
})

test('parseBanCreate: hostile bodies are 400 GW_ERR_VALIDATION', () => {
  const bad: unknown[] = [
    null,
    [],
    'x',
    42,
    {},
    { ip: '1.2.3.4', principal: 'a', duration: '1s' },
    { ip: '1.2.3.4' },
    { ip: 'not-an-ip', duration: '1s' },
    { ip: '1.2.3.4/24', duration: '1s' },
    { ip: 1234, duration: '1s' },
    { principal: '', duration: '1s' },
    { principal: 'a\nb', duration: '1s' },
    { principal: 'x'.repeat(513), duration: '1s' },
    { principal: '\uD800', duration: '1s' },
    { ip: '1.2.3.4', duration: '0' },
    { ip: '1.2.3.4', duration: '-5s' },
    { ip: '1.2.3.4', duration: '1.5s' },
    { ip: '1.2.3.4', duration: '60' },
    { ip: '1.2.3.4', duration: '1000000000000s' },
    { ip: '1.2.3.4', duration: '1s', reason: 'a\u0000b' },
    { ip: '1.2.3.4', duration: '1s', reason: 'x'.repeat(257) },
    { ip: '1.2.3.4', duration: '1s', reason: 5 },
    { ip: '1.2.3.4', duration: '1s', extra: true },
    { ip: '1.2.3.4', duration: '1s', __proto__: { admin: true }, constructor: 1 },
  ]
  for (const b of bad)
    assert.equal(
      err(() => parseBanCreate(b, 'x', 0)),
      'GW_ERR_VALIDATION',
      JSON.stringify(b),
    )
})

test('parseBanCreate: duration in the one grammar; seconds (the old form) and the ambiguous forms refused', () => {
  assert.equal(parseBanCreate({ ip: '192.0.2.1', duration: '10m' }, 'x', 0).record.until, 600_000)
  assert.equal(parseBanCreate({ ip: '192.0.2.1', duration: '1h' }, 'x', 0).record.until, 3_600_000)
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ ip: '192.0.2.1', duration: 600 }, /a duration needs its unit, e\.g\. "10m"/],
    [
      { ip: '192.0.2.1', seconds: 600 },
      /"seconds": the old form; write "duration": "10m" \(500ms, 30s, 5m, 1h, 7d\)$/,
    ],
    [{ ip: '192.0.2.1', seconds: 90 }, /"seconds": the old form; write "duration": "90s"/],
    [{ ip: '192.0.2.1', seconds: 86_400 }, /"seconds": the old form; write "duration": "1d"/],
    [{ ip: '192.0.2.1', seconds: '10m' }, /"seconds": the old form; write "duration": "10m"/],
    [{ ip: '192.0.2.1', duration: '10m', seconds: 600 }, /"seconds": the old form; write "duration"/],
    [{ ip: '192.0.2.1' }, /required, e\.g\. "10m"/],
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
