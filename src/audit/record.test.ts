import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { canonicalize } from './canonical.js'
import type { AuditEvent } from './event.js'
import { parseKeyring } from './keyring.js'
import { checkRecord, genesisHash, recordHash, sealGeneric, sealRecord } from './record.js'

const key = randomBytes(32)
const keyring = parseKeyring(JSON.stringify({ active: 'k1', keys: { k1: key.toString('base64') } }), 'test')
const at = { seq: 7, prev: genesisHash('gw-t'), instance: 'gw-t' }
const signer = { kid: 'k1', key }

describe('audit records', () => {
  test('the fast path seals exactly what the generic (sort-everything) path seals', () => {
    const events: AuditEvent[] = [
      { type: 'deny' },
      {
        type: 'auth.success',
        time: 1,
        requestId: 'r-1',
        clientIp: '::1',
        principal: 'alice "the admin"',
        authMethod: 'jwt',
        route: 'api',
        method: 'GET',
        path: '/a/é/\u2028',
        operation: 'getOrder',
        objects: ['order:42'],
        decision: 'allow',
        status: 200,
        code: 'GW_ERR_X',
        reason: 'line\nbreak',
        data: { z: 1, a: [null, true], '\ud83d\ude00': 'emoji' },
      },
      { type: 'lockout', data: { subject: 'ip:127.0.0.1' }, reason: undefined },
    ]
    for (const e of events) {
      const fast = sealRecord(e, at, 1767225600123, signer)
      assert.deepEqual(fast, sealGeneric(e, at, 1767225600123, signer))
      const parsed = JSON.parse(fast.line) as Record<string, unknown>
      assert.equal(canonicalize(parsed), fast.line, 'the line is canonical')
      const { mac, ...body } = parsed
      assert.equal(mac, createHmac('sha256', key).update(canonicalize(body)).digest('base64url'))
      assert.equal(fast.hash, recordHash(fast.line))
      assert.equal(parsed.time, '2026-01-01T00:00:00.123Z', 'the event time member is not the record time')
      const c = checkRecord(fast.line, keyring)
      assert.equal(c.ok, true)
    }
  })

  test('members the fast path does not know are sorted in; chain members in an event are ignored', () => {
    const e = {
      type: 'x',
      zeta: 1,
      alpha: 'a',
      seq: 999,
      mac: 'forged',
      prev: 'forged',
    } as unknown as AuditEvent
    const r = sealRecord(e, at, 0, signer)
    const parsed = JSON.parse(r.line) as Record<string, unknown>
    assert.equal(parsed.seq, 7)
    assert.equal(parsed.prev, at.prev)
    assert.notEqual(parsed.mac, 'forged')
    assert.deepEqual(Object.keys(parsed), [...Object.keys(parsed)].sort())
    assert.equal(checkRecord(r.line, keyring).ok, true)
  })

  test('checkRecord refuses what is not a well-formed, canonical, signed record', () => {
    const good = sealRecord({ type: 'deny', status: 403 }, at, 0, signer).line
    const cases: [string, string][] = [
      ['', 'malformed'],
      ['[]', 'malformed'],
      ['{"v":1}', 'malformed'],
      [good.replace('"v":1', '"v":2'), 'malformed'],
      [good.replace('"seq":7', '"seq":-7'), 'malformed'],
      [good.replace('"seq":7', '"seq":7.5'), 'malformed'],
      [good.replace(/"prev":"[0-9a-f]+"/, '"prev":"00"'), 'malformed'],
      [good.replace('"status":403', '"status":404'), 'altered'],
      [good.replace('"status":403', '"status": 403'), 'altered'],
      [good.replace('{', '{"status":403,'), 'altered'], // a duplicated member
      [good.replace('"kid":"k1"', '"kid":"k2"'), 'unknown-key'],
    ]
    for (const [line, kind] of cases) {
      const c = checkRecord(line, keyring)
      assert.equal(c.ok, false, line)
      if (!c.ok) assert.equal(c.kind, kind, line)
    }
  })
})
