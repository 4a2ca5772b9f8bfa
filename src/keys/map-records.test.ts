/**
 * Records as stored in the replicated map: a stable encoding, and a strict decoder for what comes
 * back from Redis (which anyone with write access to it may have put there).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKey } from './format.js'
import { decodeRecord, encodeRecord, MAX_RECORD_CHARS, tombstoneKey } from './map-records.js'
import { hashFields, type KeyRecord, KeyStoreError } from './store.js'

function record(over: Partial<KeyRecord> = {}): KeyRecord {
  const g = generateKey()
  return {
    id: g.id,
    owner: 'svc',
    scopes: ['read'],
    createdAt: '2025-01-01T00:00:00.000Z',
    status: 'active',
    ...hashFields(g.key),
    ...over,
  }
}

test('encode → decode gives the record back, with a stable field order', () => {
  const r = record({ name: 'job', expiresAt: '2026-01-01T00:00:00.000Z', rotatedFrom: 'AbCd0123' })
  const shuffled = Object.fromEntries(Object.entries(r).reverse()) as KeyRecord
  assert.equal(encodeRecord(shuffled), encodeRecord(r))
  assert.deepEqual(decodeRecord(r.id, encodeRecord(r)), r)
  assert.ok(encodeRecord(r).startsWith(`{"id":"${r.id}","owner":"svc","name":"job"`))
  assert.equal(tombstoneKey(r.id), `revoked:${r.id}`)
})

test('hostile stored values are refused with a KeyStoreError that never quotes them', () => {
  const r = record()
  const secretish = 'SECRET-LOOKING-CONTENT'
  const cases: [string, string, RegExp][] = [
    [r.id, '', /is not valid JSON/],
    [r.id, `{"id":"${secretish}`, /is not valid JSON/],
    [r.id, 'null', /is invalid at \//],
    [r.id, '[]', /is invalid at \//],
    [r.id, `"${secretish}"`, /is invalid at \//],
    [r.id, JSON.stringify({ ...r, owner: `${secretish} with spaces` }), /is invalid at \/owner/],
    [r.id, JSON.stringify({ ...r, extra: secretish }), /is invalid at \/extra/],
    [r.id, JSON.stringify({ ...r, status: 'ACTIVE' }), /is invalid at \/status/],
    [r.id, JSON.stringify({ ...r, hash: secretish }), /is invalid at \/hash/],
    [r.id, JSON.stringify({ ...r, scopes: Array(257).fill('a') }), /is invalid at \/scopes/],
    [r.id, JSON.stringify({ ...r, expiresAt: '2025-13-45T99:99:99Z' }), /is invalid at \/expiresAt/],
    [r.id, `{"__proto__":{"status":"active"},${JSON.stringify(r).slice(1)}`, /is invalid at \/__proto__/],
    ['AAAAAAAA', JSON.stringify(r), /holds the id of another key/],
    [r.id, `${JSON.stringify(r)}${' '.repeat(MAX_RECORD_CHARS)}`, /is too large/],
  ]
  for (const [id, value, re] of cases) {
    assert.throws(
      () => decodeRecord(id, value),
      (e: Error) => {
        assert.ok(e instanceof KeyStoreError, `${value.slice(0, 40)}: ${e}`)
        assert.match(e.message, re)
        assert.equal(e.message.includes(secretish), false, 'the content is not quoted')
        assert.equal(e.message.includes(r.hash), false)
        return true
      },
      value.slice(0, 60),
    )
  }
  // A hostile map key is cut in the message.
  assert.throws(
    () => decodeRecord('x'.repeat(5000), '{}'),
    (e: Error) => e.message.length < 200,
  )
  assert.equal(Object.hasOwn({}, 'status'), false, 'no prototype pollution')
})
