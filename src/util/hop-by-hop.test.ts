import assert from 'node:assert/strict'
import { test } from 'node:test'
import { connectionTokens, REQUEST_HOP_BY_HOP, RESPONSE_HOP_BY_HOP, withoutHopByHop } from './hop-by-hop.js'

test('connectionTokens: the names a Connection header lists, none for keep-alive or close', () => {
  assert.equal(connectionTokens(undefined), undefined)
  assert.equal(connectionTokens('keep-alive'), undefined)
  assert.equal(connectionTokens('close'), undefined)
  assert.equal(connectionTokens(' , ,'), undefined)
  assert.deepEqual(
    [...(connectionTokens('Keep-Alive, X-Internal-Token ,te') ?? [])],
    ['x-internal-token', 'te'],
  )
  assert.deepEqual([...(connectionTokens(['x-a', 'X-B, close']) ?? [])], ['x-a', 'x-b'])
})

test('withoutHopByHop: drops the listed names and those Connection names, keeps the rest in order', () => {
  const h = {
    host: 'api.example.test',
    connection: 'x-debug-user',
    'x-debug-user': 'admin',
    'transfer-encoding': 'chunked',
    expect: '100-continue',
    'proxy-authorization': 'Basic Zm9vOmJhcg==',
    'content-type': 'application/json',
    authorization: 'Bearer t',
  }
  assert.deepEqual(Object.keys(withoutHopByHop(h, REQUEST_HOP_BY_HOP)), ['content-type', 'authorization'])
  // Responses: the default list (a response's Host or Expect header is not a proxy's business).
  assert.deepEqual(Object.keys(withoutHopByHop(h)), [
    'host',
    'expect',
    'proxy-authorization',
    'content-type',
    'authorization',
  ])
  assert.ok(RESPONSE_HOP_BY_HOP.has('proxy-authenticate'))
  // The input is not modified.
  assert.equal(h['x-debug-user'], 'admin')
})
