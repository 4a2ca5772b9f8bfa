import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ERROR_CATALOGUE, GatewayError, toProblem } from './errors.js'

test('every code has a 4xx/5xx status and a title', () => {
  for (const [code, e] of Object.entries(ERROR_CATALOGUE)) {
    assert.match(code, /^GW_ERR_[A-Z_]+$/)
    assert.ok(e.status >= 400 && e.status < 600, code)
    assert.ok(e.title.length > 0, code)
  }
})

test('a GatewayError renders as RFC 9457 problem with its code, detail and extensions', () => {
  const { problem, error } = toProblem(
    new GatewayError('GW_ERR_BODY_TOO_LARGE', {
      detail: 'limit is 10 bytes',
      extensions: { limit: 10, status: 999 },
    }),
    'req-1',
  )
  assert.equal(error.code, 'GW_ERR_BODY_TOO_LARGE')
  assert.deepEqual(problem, {
    type: 'urn:portcullis:error:GW_ERR_BODY_TOO_LARGE',
    title: 'Request body too large',
    status: 413,
    code: 'GW_ERR_BODY_TOO_LARGE',
    detail: 'limit is 10 bytes',
    instance: 'urn:portcullis:request:req-1',
    limit: 10,
  })
})

test('the cause of an error never reaches the problem document', () => {
  const cause = new Error('connect ECONNREFUSED 10.0.0.7:5432 password=hunter2')
  const { problem } = toProblem(new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE', { cause }), undefined)
  assert.equal(JSON.stringify(problem).includes('ECONNREFUSED'), false)
  assert.equal(JSON.stringify(problem).includes('hunter2'), false)
})

test('unknown errors become GW_ERR_INTERNAL with no detail', () => {
  const { problem, error } = toProblem(new TypeError('x is undefined at /srv/app.js:12'), 'r')
  assert.equal(error.code, 'GW_ERR_INTERNAL')
  assert.equal(problem.status, 500)
  assert.equal(problem.detail, undefined)
  assert.equal(JSON.stringify(problem).includes('app.js'), false)
  assert.equal(toProblem('a string', undefined).error.code, 'GW_ERR_INTERNAL')
})

test('switch on code narrows (compile-time check) and statuses match the catalogue', () => {
  const e = new GatewayError('GW_ERR_RATE_LIMITED', { headers: { 'retry-after': '3' } })
  switch (e.code) {
    case 'GW_ERR_RATE_LIMITED':
      assert.equal(e.status, 429)
      assert.deepEqual(e.headers, { 'retry-after': '3' })
      break
    default:
      assert.fail('narrowing')
  }
})
