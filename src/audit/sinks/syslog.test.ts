import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { frame, headerField, paramValue, type SyslogHeader, syslogMessage } from './syslog.js'

const h: SyslogHeader = { facility: 'local0', hostname: 'gw1.example', appName: 'portcullis', procId: '4242' }
const rec = (over: Record<string, unknown>) =>
  JSON.stringify({ instance: 'gw-a', seq: 7, time: '2026-03-02T10:15:04.117Z', type: 'deny', ...over })

describe('syslog message (RFC 5424)', () => {
  test('header fields, structured data and the line as MSG', () => {
    const line = rec({ decision: 'deny' })
    assert.equal(
      syslogMessage(line, h),
      `<132>1 2026-03-02T10:15:04.117Z gw1.example portcullis 4242 deny [portcullis@32473 instance="gw-a" seq="7"] ${line}`,
    )
  })

  test('severity from the decision: deny → warning, error → err, otherwise info', () => {
    const pri = (d: unknown) => Number(/^<(\d+)>/.exec(syslogMessage(rec({ decision: d }), h))?.[1])
    assert.equal(pri('deny'), 16 * 8 + 4)
    assert.equal(pri('error'), 16 * 8 + 3)
    assert.equal(pri('allow'), 16 * 8 + 6)
    assert.equal(pri(undefined), 16 * 8 + 6)
    assert.equal(Number(/^<(\d+)>/.exec(syslogMessage(rec({}), { ...h, facility: 'kern' }))?.[1]), 6)
    assert.equal(Number(/^<(\d+)>/.exec(syslogMessage(rec({}), { ...h, facility: 'local7' }))?.[1]), 190)
  })

  test('hostile values: header fields are PRINTUSASCII and capped, SD values escaped, a bad time replaced', () => {
    assert.equal(headerField('a b\tc\u00e9\n', 255), 'a_b_c__')
    assert.equal(headerField('', 10), '-')
    assert.equal(headerField('x'.repeat(100), 32).length, 32)
    assert.equal(headerField('\u{1F600}z', 10), '_z')
    assert.equal(paramValue('a"b\\c]d'), 'a\\"b\\\\c\\]d')
    const m = syslogMessage(
      rec({
        type: 'weird type with spaces and a very long name beyond 32',
        instance: 'x"]y',
        time: 'yesterday',
      }),
      h,
      () => Date.UTC(2026, 0, 2, 3, 4, 5, 6),
    )
    assert.match(
      m,
      /^<134>1 2026-01-02T03:04:05\.006Z gw1\.example portcullis 4242 weird_type_with_spaces_and_a_ver \[portcullis@32473 instance="x\\"\\]y" seq="7"\] /,
    )
    // Not a record: nil MSGID and SD, the text as MSG.
    assert.match(
      syslogMessage('not json', h, () => 0),
      /^<134>1 1970-01-01T00:00:00\.000Z gw1\.example portcullis 4242 - - not json$/,
    )
  })

  test('octet counting: MSG-LEN is the byte length of the message (UTF-8)', () => {
    const f = frame('<134>1 - - - - - - h\u00e9llo \u{1F600}')
    const sp = f.indexOf(0x20)
    const len = Number(f.subarray(0, sp).toString('ascii'))
    assert.equal(len, f.length - sp - 1)
    assert.equal(len, Buffer.byteLength('<134>1 - - - - - - h\u00e9llo \u{1F600}'))
    assert.equal(f.subarray(sp + 1).toString('utf8'), '<134>1 - - - - - - h\u00e9llo \u{1F600}')
  })
})
