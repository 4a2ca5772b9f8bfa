import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { RouteConfig } from '../config/schema.js'
import { buildRouter } from './router.js'

function route(name: string, match: Partial<RouteConfig['match']>): { config: RouteConfig; route: string } {
  return {
    config: {
      name,
      match: { pathPrefix: '/', ...match },
      upstream: 'u',
      stripPrefix: false,
      responseBodyLimit: 0,
      requestBuffering: { maxBytes: 1048576, idleTimeoutMs: 10000 },
    },
    route: name,
  }
}

const router = buildRouter([
  route('any-root', {}),
  route('api', { pathPrefix: '/api' }),
  route('api-users', { pathPrefix: '/api/users' }),
  route('slash', { pathPrefix: '/files/' }),
  route('read-only', { pathPrefix: '/ro', methods: ['GET'] }),
  route('write', { pathPrefix: '/ro', methods: ['POST', 'PUT'] }),
  route('host-exact', { hosts: ['api.example.com'], pathPrefix: '/api' }),
  route('host-wild', { hosts: ['*.example.com'], pathPrefix: '/api' }),
])

test('longest prefix wins, on segment boundaries', () => {
  assert.equal(router.match('h', '/api/users/1', 'GET'), 'api-users')
  assert.equal(router.match('h', '/api/users', 'GET'), 'api-users')
  assert.equal(router.match('h', '/api/usersx', 'GET'), 'api')
  assert.equal(router.match('h', '/api', 'GET'), 'api')
  assert.equal(router.match('h', '/apix', 'GET'), 'any-root')
  assert.equal(router.match('h', '/files/a', 'GET'), 'slash')
  assert.equal(router.match('h', '/files', 'GET'), 'any-root', "'/files/' does not match '/files'")
})

test('exact hosts before wildcard hosts before any host; the wildcard needs a label', () => {
  assert.equal(router.match('api.example.com', '/api/x', 'GET'), 'host-exact')
  assert.equal(router.match('www.example.com', '/api/x', 'GET'), 'host-wild')
  assert.equal(router.match('example.com', '/api/x', 'GET'), 'api')
  assert.equal(router.match('evilexample.com', '/api/x', 'GET'), 'api')
})

test('methods: a match on path with another method gives the allowed list; HEAD follows GET', () => {
  assert.equal(router.match('h', '/ro/x', 'GET'), 'read-only')
  assert.equal(router.match('h', '/ro/x', 'HEAD'), 'read-only')
  assert.equal(router.match('h', '/ro/x', 'PUT'), 'write')
  const r = buildRouter([route('only-get', { pathPrefix: '/x', methods: ['GET'] })])
  assert.deepEqual(r.match('h', '/x', 'DELETE'), { allow: ['GET'] })
  assert.equal(r.match('h', '/y', 'GET'), undefined)
})

test('ties keep config order', () => {
  const r = buildRouter([route('first', { pathPrefix: '/a' }), route('second', { pathPrefix: '/a' })])
  assert.equal(r.match('h', '/a', 'GET'), 'first')
})
