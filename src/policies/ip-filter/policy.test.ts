import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Value } from '@sinclair/typebox/value'
import { memoryAudit } from '../../audit/event.js'
import type { GatewayError } from '../../gateway/errors.js'
import { testContext, testDeps } from '../testing/context.js'
import { ipFilter } from './policy.js'
import { IpFilterConfig } from './schema.js'

const build = (cfg: object, audit = memoryAudit()) =>
  ipFilter.create(Value.Default(IpFilterConfig, cfg) as never, testDeps({ audit }))

function verdict(p: ReturnType<typeof build>, ip: string): string {
  try {
    p.onRequest?.({ ...testContext(), clientIp: ip })
    return 'pass'
  } catch (err) {
    return (err as GatewayError).code
  }
}

test('allow list: only the listed ranges pass (IPv4, IPv6, IPv4-mapped)', () => {
  const p = build({ allow: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.10'] })
  assert.equal(verdict(p, '10.20.30.40'), 'pass')
  assert.equal(verdict(p, '::ffff:10.20.30.40'), 'pass')
  assert.equal(verdict(p, '2001:db8:1::9'), 'pass')
  assert.equal(verdict(p, '192.0.2.10'), 'pass')
  assert.equal(verdict(p, '192.0.2.11'), 'GW_ERR_IP_NOT_ALLOWED')
  assert.equal(verdict(p, '11.0.0.1'), 'GW_ERR_IP_NOT_ALLOWED')
  assert.equal(verdict(p, '2001:db9::1'), 'GW_ERR_IP_NOT_ALLOWED')
  // An address the gateway could not determine is not in any allow list: fail closed.
  assert.equal(verdict(p, ''), 'GW_ERR_IP_NOT_ALLOWED')
})

test('deny wins over allow; an empty allow list lets everyone else in', () => {
  const p = build({ allow: ['10.0.0.0/8'], deny: ['10.66.0.0/16'] })
  assert.equal(verdict(p, '10.1.1.1'), 'pass')
  assert.equal(verdict(p, '10.66.3.4'), 'GW_ERR_IP_NOT_ALLOWED')
  const d = build({ deny: ['203.0.113.0/24', 'fe80::/10'] })
  assert.equal(verdict(d, '8.8.8.8'), 'pass')
  assert.equal(verdict(d, '203.0.113.77'), 'GW_ERR_IP_NOT_ALLOWED')
  assert.equal(verdict(d, 'fe80::1234'), 'GW_ERR_IP_NOT_ALLOWED')
})

test('a refusal is audited with the reason, never more', () => {
  const audit = memoryAudit()
  const p = build({ deny: ['10.0.0.0/8'] }, audit)
  verdict(p, '10.0.0.1')
  assert.equal(audit.events.length, 1)
  assert.equal(audit.events[0]?.type, 'ip-filter.deny')
  assert.equal(audit.events[0]?.reason, 'deny-list')
  assert.equal(audit.events[0]?.clientIp, '10.0.0.1')
})

test('bad ranges are a config error naming each entry', () => {
  assert.throws(
    () => build({ allow: ['10.0.0.0/8', '10.0.0.0/33'], deny: ['127.1'] }),
    (err: Error) =>
      err.name === 'ConfigError' &&
      /allow\[1\]/.test(err.message) &&
      /deny\[0\]: .*"127\.1"/.test(err.message),
  )
})
