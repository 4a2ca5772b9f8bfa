/**
 * Method override detection and routing, with hostile spellings of the headers and of `_method`,
 * on the real router (buildRouter) and real request contexts.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { RouteConfig } from '../config/schema.js'
import { testContext } from '../policies/testing/context.js'
import { GatewayError } from './errors.js'
import {
  checkBodyFields,
  checkFormBody,
  checkJsonBody,
  findMethodOverride,
  isMethodParamName,
  overriddenFrom,
  routeWithOverride,
} from './method-override.js'
import { buildRouter } from './router.js'

const code = (fn: () => unknown): string | undefined => {
  try {
    fn()
    return undefined
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err))
    return err.code
  }
}

describe('findMethodOverride', () => {
  test('the three headers, any case, `_` for `-`; the value in any case', () => {
    for (const name of [
      'X-HTTP-Method-Override',
      'x-http-method',
      'X-Method-Override',
      'X_HTTP_METHOD_OVERRIDE',
      'x_method-override',
    ]) {
      assert.deepEqual(findMethodOverride([name, ' delete '], ''), {
        method: 'DELETE',
        headers: [name.toLowerCase()],
        query: false,
      })
    }
    assert.equal(findMethodOverride(['X-HTTP-Method-Overrides', 'DELETE', 'X-Method', 'PUT'], ''), undefined)
    assert.equal(findMethodOverride(['Host', 'x'], 'a=1&b=method'), undefined)
  })

  test('the query: every name a framework reads as _method', () => {
    for (const q of [
      '_method=PUT',
      '%5fmethod=PUT',
      '%5F%6D%65%74%68%6F%64=PUT',
      '_Method=put',
      'x=1&_method[]=PUT',
      'x=1;_method=PUT',
      '.method=PUT',
      '+_method=PUT',
      '[method=PUT',
      '_method%5B0%5D=PUT',
    ]) {
      assert.equal(findMethodOverride([], q)?.method, 'PUT', q)
      assert.equal(findMethodOverride([], q)?.query, true)
    }
    for (const q of ['method=PUT', '__method=PUT', '_methods=PUT', 'x_method=PUT', 'a=_method']) {
      assert.equal(findMethodOverride([], q), undefined, q)
    }
  })

  test('not one method: a list, junk, an empty value, two sources that disagree → 400', () => {
    for (const [raw, q] of [
      [['X-HTTP-Method-Override', 'PUT, DELETE'], ''],
      [['X-HTTP-Method-Override', 'DEL ETE'], ''],
      [['X-HTTP-Method-Override', ''], ''],
      [['X-HTTP-Method-Override', 'PUT', 'X-HTTP-Method', 'DELETE'], ''],
      [['X-HTTP-Method-Override', 'PUT'], '_method=DELETE'],
      [[], '_method=PUT&_method=DELETE'],
      [[], '_method'],
      [[], '_method=%E2%80%8BPUT'],
    ] as [string[], string][]) {
      assert.equal(
        code(() => findMethodOverride(raw, q)),
        'GW_ERR_METHOD_OVERRIDE',
        `${raw} ${q}`,
      )
    }
    // Two sources naming the same method are one override.
    const two = findMethodOverride(['X-HTTP-Method-Override', 'put', 'X-HTTP-Method', 'PUT'], '_method=Put')
    assert.deepEqual(two, {
      method: 'PUT',
      headers: ['x-http-method-override', 'x-http-method'],
      query: true,
    })
  })

  test('isMethodParamName: hostile names', () => {
    assert.equal(isMethodParamName('_method'), true)
    assert.equal(isMethodParamName('  _METHOD'), true)
    assert.equal(isMethodParamName('_method[a][b]'), true)
    assert.equal(isMethodParamName('x'.repeat(10000)), false)
    assert.equal(isMethodParamName('_method\u0000'), false)
  })
})

function route(name: string, methods: string[], methodOverride?: boolean) {
  const config = {
    name,
    match: { pathPrefix: `/${name}`, methods },
    upstream: 'u',
    stripPrefix: false,
    responseBodyLimit: 0,
    ...(methodOverride === undefined ? {} : { methodOverride }),
  } as RouteConfig
  return { config, route: { name, config }, resolve: undefined }
}

describe('routeWithOverride', () => {
  const router = buildRouter([
    route('plain', ['POST', 'DELETE']),
    route('opt', ['POST', 'PUT', 'DELETE'], true),
    route('split', ['POST']),
  ])
  const ctx = (method: string, path: string, headers: Record<string, string> = {}, query = '') => {
    const c = testContext({ method, path, headers, query })
    c.query = query
    return c
  }

  test('no override: the route of the request method, nothing changed', () => {
    const c = ctx('POST', '/plain/x')
    const m = routeWithOverride(c, router) as { name: string }
    assert.equal(m.name, 'plain')
    assert.equal(c.method, 'POST')
    assert.equal(overriddenFrom(c), undefined)
  })

  test('refused on a route that did not opt in, also when the method has no route', () => {
    for (const [path, method] of [
      ['/plain/x', 'DELETE'],
      ['/split/x', 'DELETE'],
      ['/nowhere', 'DELETE'],
    ] as const) {
      const c = ctx('POST', path, { 'X-HTTP-Method-Override': method })
      assert.equal(
        code(() => routeWithOverride(c, router)),
        'GW_ERR_METHOD_OVERRIDE',
        path,
      )
      assert.equal(c.method, 'POST')
    }
  })

  test('opt-in: a POST becomes PUT or DELETE; headers and _method are not forwarded', () => {
    const c = ctx('POST', '/opt/1', { 'X-HTTP-Method-Override': 'delete' }, 'a=1&_method=DELETE;b=2&c=3')
    const m = routeWithOverride(c, router) as { name: string }
    assert.equal(m.name, 'opt')
    assert.equal(c.method, 'DELETE')
    assert.equal(overriddenFrom(c), 'POST')
    assert.equal(c.query, 'a=1&b=2&c=3')
    // The header is removed from the upstream request (an edit to undefined).
    const q = ctx('POST', '/opt/1', {}, '_method=PUT')
    routeWithOverride(q, router)
    assert.equal(q.method, 'PUT')
    assert.equal(q.query, '')
  })

  test('opt-in: only a POST, only to PUT, PATCH or DELETE', () => {
    assert.equal(
      code(() => routeWithOverride(ctx('GET', '/opt/1', { 'X-HTTP-Method-Override': 'DELETE' }), router)),
      'GW_ERR_METHOD_OVERRIDE',
    )
    for (const to of ['GET', 'POST', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT']) {
      assert.equal(
        code(() => routeWithOverride(ctx('POST', '/opt/1', { 'X-HTTP-Method-Override': to }), router)),
        'GW_ERR_METHOD_OVERRIDE',
        to,
      )
    }
  })
})

describe('body fields', () => {
  test('without an applied override, any _method field is refused', () => {
    const c = testContext({ method: 'POST' })
    assert.equal(
      code(() => checkFormBody(c, 'name=a&_method=POST')),
      'GW_ERR_METHOD_OVERRIDE',
    )
    assert.equal(
      code(() => checkFormBody(c, 'name=a&%5Fmethod=DELETE')),
      'GW_ERR_METHOD_OVERRIDE',
    )
    assert.equal(
      code(() => checkJsonBody(c, { _method: 'DELETE' })),
      'GW_ERR_METHOD_OVERRIDE',
    )
    assert.equal(
      code(() => checkBodyFields(c, [['_method', undefined]])),
      'GW_ERR_METHOD_OVERRIDE',
    )
    assert.equal(
      code(() => checkFormBody(c, 'name=method&x=1')),
      undefined,
    )
    assert.equal(
      code(() => checkJsonBody(c, { nested: { _method: 'DELETE' } })),
      undefined,
      'top level only',
    )
    assert.equal(
      code(() => checkJsonBody(c, [{ _method: 'DELETE' }])),
      undefined,
    )
  })

  test('with an applied override, a _method field must name the method validated', () => {
    const router = buildRouter([route('opt', ['POST', 'PUT', 'DELETE'], true)])
    const c = testContext({ method: 'POST', path: '/opt/1', headers: { 'X-HTTP-Method-Override': 'PUT' } })
    routeWithOverride(c, router)
    assert.equal(
      code(() => checkFormBody(c, '_method=put&name=a')),
      undefined,
    )
    assert.equal(
      code(() => checkJsonBody(c, { _method: 'PUT' })),
      undefined,
    )
    assert.equal(
      code(() => checkFormBody(c, '_method=DELETE')),
      'GW_ERR_METHOD_OVERRIDE',
    )
    assert.equal(
      code(() => checkJsonBody(c, { _method: ['PUT'] })),
      'GW_ERR_METHOD_OVERRIDE',
    )
  })
})
