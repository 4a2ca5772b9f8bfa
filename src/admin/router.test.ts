/**
 * The admin router: literal and parameter segments, 404 / 405 with Allow, HEAD for GET, hostile
 * paths (encodings, dot segments, empty segments, bad percent-encoding), and definition errors.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type AdminRoute, AdminRouter } from './router.js'

const handler = () => ({ status: 200 })
const route = (method: AdminRoute['method'], path: string): AdminRoute => ({ method, path, handler })

function router(): AdminRouter {
  return new AdminRouter()
    .add(route('GET', '/v1/things'))
    .add(route('POST', '/v1/things'))
    .add(route('GET', '/v1/things/:id'))
    .add(route('DELETE', '/v1/things/:id'))
    .add(route('GET', '/v1/things/:id/parts/:part'))
}

describe('admin router', () => {
  test('matches literal paths and decodes parameters once', () => {
    const r = router()
    const m = r.match('GET', '/v1/things')
    assert.equal(m.kind, 'found')
    const p = r.match('DELETE', '/v1/things/jti%3Aa%2Fb%25')
    assert.deepEqual(p.kind === 'found' ? p.params : undefined, { id: 'jti:a/b%' })
    const two = r.match('GET', '/v1/things/a/parts/b%20c')
    assert.deepEqual(two.kind === 'found' ? two.params : undefined, { id: 'a', part: 'b c' })
    const head = r.match('HEAD', '/v1/things/x')
    assert.equal(head.kind === 'found' ? head.route.method : undefined, 'GET')
  })

  test('405 lists the methods of the path (HEAD with GET), sorted', () => {
    const r = router()
    assert.deepEqual(r.match('PUT', '/v1/things'), { kind: 'method', allow: ['GET', 'HEAD', 'POST'] })
    assert.deepEqual(r.match('POST', '/v1/things/x'), { kind: 'method', allow: ['DELETE', 'GET', 'HEAD'] })
    assert.deepEqual(r.match('OPTIONS', '/v1/things/x/parts/y'), { kind: 'method', allow: ['GET', 'HEAD'] })
  })

  test('hostile paths match nothing or are refused as a bad parameter', () => {
    const r = router()
    for (const p of [
      '/',
      '/v1',
      '/v1/',
      '/v1/things/',
      '/v1//things',
      '/v1/things//',
      '/V1/things',
      '/v1/%74hings',
      '/v1/things/../things',
      '/v1/./things',
      '/v1/things/a/parts',
      '/v1/things/a/parts/',
      '/v1/things/a/b/c/d/e',
      `/v1/${'x'.repeat(10000)}`,
    ]) {
      assert.deepEqual(r.match('GET', p), { kind: 'none' }, p)
    }
    for (const p of ['/v1/things/%', '/v1/things/%E0%A4%A', '/v1/things/%ZZ', '/v1/things/%ED%A0%80']) {
      assert.deepEqual(r.match('GET', p), { kind: 'bad-param', name: 'id' }, p)
    }
    // A bad parameter on a path that has no route for the method is still a 405, not a 400.
    assert.deepEqual(r.match('PUT', '/v1/things/%'), { kind: 'method', allow: ['DELETE', 'GET', 'HEAD'] })
  })

  test('definition errors', () => {
    assert.throws(() => new AdminRouter().add(route('GET', 'v1/x')), /must start with/)
    assert.throws(() => new AdminRouter().add(route('GET', '/v1//x')), /empty segment/)
    assert.throws(
      () => new AdminRouter().add(route('GET', '/v1/x/:a')).add(route('GET', '/v1/x/:b')),
      /defined twice/,
    )
    const ok = new AdminRouter().add(route('GET', '/v1/x/:a')).add(route('DELETE', '/v1/x/:a'))
    assert.equal(ok.routes().length, 2)
  })
})
