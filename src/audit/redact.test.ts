import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { AuditEvent } from './event.js'
import { checkRedactPaths, compileRedactor, REDACTED } from './redact.js'

describe('audit redaction', () => {
  test('replaces the configured members, wildcards included, without touching the input', () => {
    const e: AuditEvent = {
      type: 'lockout',
      clientIp: '10.0.0.1',
      path: '/users/alice@example.com',
      data: { subject: 'acct:xyz', users: [{ email: 'a@x' }, { email: 'b@x', id: 7 }], keep: 1 },
    }
    const before = JSON.stringify(e)
    const r = compileRedactor([
      'path',
      'data.subject',
      'data.users.*.email',
      'principal',
      'data.nothing.here',
    ])
    assert.ok(r)
    const out = r(e)
    assert.equal(JSON.stringify(e), before, 'the input is not modified')
    assert.equal(out.path, REDACTED)
    assert.equal(out.clientIp, '10.0.0.1')
    assert.equal(out.principal, undefined, 'absent members stay absent')
    assert.deepEqual(out.data, {
      subject: REDACTED,
      users: [{ email: REDACTED }, { email: REDACTED, id: 7 }],
      keep: 1,
    })
    assert.equal(compileRedactor([]), undefined)
  })

  test('refuses paths into the chain members, malformed paths and too many paths', () => {
    assert.deepEqual(checkRedactPaths(['path', 'data.*.x']), [])
    for (const bad of ['mac', 'seq', 'prev.x', 'type', 'time', 'a..b', '*.x', 'a.b c', '']) {
      assert.equal(checkRedactPaths([bad]).length, 1, bad)
    }
    assert.equal(checkRedactPaths(Array(65).fill('path')).length, 1)
  })
})
