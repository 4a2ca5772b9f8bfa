import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MASK, Masker } from './mask.js'

describe('Masker', () => {
  it('masks known secrets anywhere, URL-encoded too, longest first', () => {
    const m = new Masker()
    m.addSecret('abc/def+ghi')
    m.addSecret('abc/def+ghi-longer')
    m.addSecret('xy') // too short to mask in free text
    assert.equal(m.text('a abc/def+ghi-longer b abc/def+ghi c'), `a ${MASK} b ${MASK} c`)
    assert.equal(m.text(`q=${encodeURIComponent('abc/def+ghi')}`), `q=${MASK}`)
    assert.equal(m.text('xy stays'), 'xy stays')
  })

  it('masks credential headers, keeping the scheme and cookie names', () => {
    const m = new Masker()
    assert.equal(m.headerValue('Authorization', 'Bearer eyJhbGciOi.x.y'), `Bearer ${MASK}`)
    assert.equal(m.headerValue('authorization', 'opaque'), MASK)
    assert.equal(m.headerValue('cookie', 'sid=123; theme=dark'), `sid=${MASK}; theme=${MASK}`)
    assert.equal(m.headerValue('set-cookie', 'sid=123; Path=/; HttpOnly'), `sid=${MASK}; Path=/; HttpOnly`)
    assert.equal(m.headerValue('x-api-key', 'k'), MASK)
    assert.equal(m.headerValue('content-type', 'application/json'), 'application/json')
  })

  it('masks credential query parameters', () => {
    const m = new Masker()
    assert.equal(m.url('http://h/a?access_token=t0k3n&page=2'), `http://h/a?access_token=${MASK}&page=2`)
    assert.equal(m.url('not a url t0k3n'), 'not a url t0k3n')
  })

  it('shortens sensitive JSON fields in bodies, so a leak shows without being repeated', () => {
    const m = new Masker()
    const body = m.body(
      '{"id":1,"passwordHash":"scrypt$16384$8$1$c2FsdA$a2V5a2V5a2V5","token":"abcdefgh","name":"x"}',
    )
    assert.match(body, /"passwordHash":"scry\*\*\*"/)
    assert.match(body, /"token":"ab\*\*\*"/)
    assert.match(body, /"name":"x"/)
    assert.ok(!body.includes('a2V5a2V5'))
  })

  it('cuts long bodies and masks a whole exchange', () => {
    const m = new Masker()
    m.addSecret('s3cret-token')
    const long = m.body('x'.repeat(5000), 100)
    assert.equal(long.length < 200, true)
    assert.match(long, /4900 more characters/)
    const e = m.exchange({
      request: {
        method: 'POST',
        url: 'http://h/login?token=s3cret-token',
        headers: { authorization: 'Bearer s3cret-token', 'x-trace': 's3cret-token' },
        body: '{"password":"hunter2-long"}',
      },
      response: {
        status: 200,
        headers: { 'set-cookie': 'sid=s3cret-token' },
        body: 'ok s3cret-token',
        durationMs: 1,
      },
      error: 'boom s3cret-token',
    })
    assert.ok(!JSON.stringify(e).includes('s3cret-token'))
    assert.ok(!JSON.stringify(e).includes('hunter2-long'))
  })

  it('hostile bodies: a huge unterminated string or many quotes do not stall the field regex', () => {
    const m = new Masker()
    const t0 = performance.now()
    m.body(`{"password":"${'\\"'.repeat(200_000)}`, 4096)
    m.body(`${'"token":'.repeat(100_000)}`, 4096)
    m.body(`"${'a'.repeat(1_000_000)}"`, 4096)
    m.body(`"${'password'.repeat(100_000)}`, 4096)
    assert.ok(performance.now() - t0 < 2000)
  })
})
