import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { OpenApiSpec, Operation } from '../openapi/index.js'
import { originVariants } from './checks/cors-misconfig.js'
import { escalate } from './checks/jwt-weaknesses.js'
import { fillByType } from './checks/targets.js'
import { retryAfterMs } from './context.js'
import { excludedOperations, matchesOperation } from './engine.js'
import { fingerprint, operationPositions, restsOnNoAnswer } from './findings.js'
import { discoverLogins, findSignup } from './logins.js'
import { rankOf } from './roles.js'
import { adminReason } from './resources.js'
import { destructiveReason, words } from './safety.js'
import type { Finding } from './types.js'

function op(
  method: string,
  path: string,
  raw: Record<string, unknown> = {},
  operationId?: string,
): Operation {
  return {
    id: operationId ?? `${method} ${path}`,
    operationId,
    method,
    path,
    parameters: [],
    requestBody: undefined,
    responses: [],
    security: undefined,
    tags: [],
    deprecated: false,
    raw,
    location: { file: 'x', pointer: '' },
  }
}

describe('safe mode: destructive-looking operations', () => {
  it('DELETE, and destruction or reset words in the path, operationId, summary or a sentence start', () => {
    assert.equal(destructiveReason(op('DELETE', '/orders/{id}')), 'DELETE')
    assert.match(destructiveReason(op('GET', '/createdb')) ?? '', /createdb/)
    assert.match(destructiveReason(op('POST', '/api/maintenance/reset')) ?? '', /reset/)
    assert.match(destructiveReason(op('POST', '/v2/gift-cards/redeem')) ?? '', /redeem/)
    assert.match(destructiveReason(op('POST', '/x', {}, 'purgeCache')) ?? '', /purge/)
    assert.match(destructiveReason(op('POST', '/x', { summary: 'Wipe the tenant' })) ?? '', /Wipe/)
    assert.match(
      destructiveReason(op('POST', '/x', { description: 'Loads data. Drops every table first.' })) ?? '',
      /Drops/,
    )
    assert.match(destructiveReason(op('POST', '/accounts/{id}/freeze')) ?? '', /freeze/)
    // Irreversible business actions count for writes only: reading a list of transfers is fine.
    assert.match(destructiveReason(op('POST', '/transfers')) ?? '', /transfers/)
    assert.equal(destructiveReason(op('GET', '/transfers')), undefined)
    // A description that merely mentions deletion is not a destructive operation.
    assert.equal(
      destructiveReason(op('GET', '/orders/{id}', { description: 'An order. Deleted orders answer 404.' })),
      undefined,
    )
    assert.equal(destructiveReason(op('POST', '/orders')), undefined)
    assert.equal(destructiveReason(op('POST', '/login')), undefined)
    assert.deepEqual(words('/api/resetPassword/{id}/do_it'), ['api', 'reset', 'Password', 'do', 'it'])
  })

  it('admin-looking operations without markers: names and descriptions', () => {
    assert.ok(adminReason(op('GET', '/api/audit-events')))
    assert.ok(adminReason(op('PUT', '/api/users/{id}/role')))
    assert.equal(
      adminReason(op('GET', '/api/users/{id}/roles')),
      undefined,
      'reading roles is no admin function',
    )
    assert.ok(adminReason(op('POST', '/x', { description: 'Support desk: freeze an account.' })))
    assert.ok(adminReason(op('GET', '/x', { summary: 'Member counts (admins)' })))
    assert.equal(adminReason(op('GET', '/api/orders')), undefined)
    assert.equal(rankOf(['support'], false), 2)
    assert.equal(rankOf(['customer'], false), 1)
    assert.equal(rankOf([], true), 0)
  })

  it('include/exclude patterns: operationId, METHOD /path, /path, globs', () => {
    const ops = [
      op('GET', '/a', {}, 'getA'),
      op('POST', '/a/wipe', {}, 'wipeA'),
      op('GET', '/b/{id}', {}, 'getB'),
    ]
    assert.ok(matchesOperation(ops[1] as Operation, 'wipeA'))
    assert.ok(matchesOperation(ops[1] as Operation, 'POST /a/*'))
    assert.ok(!matchesOperation(ops[0] as Operation, 'POST /a*'))
    assert.ok(matchesOperation(ops[2] as Operation, '/b/*'))
    assert.deepEqual(
      excludedOperations(ops, ['/a*'], ['wipe*']).map((o) => o.operationId),
      ['wipeA', 'getB'],
    )
  })
})

describe('scan helpers', () => {
  it('Retry-After: seconds, HTTP dates, and a backoff without one', () => {
    assert.equal(retryAfterMs('2', 0), 2000)
    assert.equal(retryAfterMs(undefined, 0), 1000)
    assert.equal(retryAfterMs(undefined, 2), 4000)
    assert.equal(retryAfterMs('0', 0), 250)
    const at = retryAfterMs(new Date(Date.now() + 5000).toUTCString(), 0)
    assert.ok(at > 3000 && at <= 5000, String(at))
  })

  it('fingerprints ignore ids and throwaway names; a finding on a timeout rests on no answer', () => {
    const base: Finding = {
      checkId: 'shadow-endpoints',
      title: 'Undocumented endpoint /api/v1/users/17',
      severity: 'medium',
      owasp: 'API9:2023',
      identity: 'throwaway-pcl1234abcd',
      summary: 's',
      evidence: [],
    }
    assert.equal(
      fingerprint(base),
      fingerprint({
        ...base,
        title: 'Undocumented endpoint /api/v1/users/18',
        identity: 'throwaway-pclffff',
      }),
    )
    assert.notEqual(fingerprint(base), fingerprint({ ...base, checkId: 'bola' }))
    const exchange = { request: { method: 'GET', url: 'http://x/', headers: {} } }
    assert.ok(
      restsOnNoAnswer({
        ...base,
        evidence: [{ note: 'n', exchanges: [{ ...exchange, error: 'timeout after 10 ms' }] }],
      }),
    )
    assert.ok(
      !restsOnNoAnswer({
        ...base,
        evidence: [
          { note: 'n', exchanges: [{ ...exchange, response: { status: 200, headers: {}, durationMs: 1 } }] },
        ],
      }),
    )
  })

  it('operation positions in YAML and JSON specs', () => {
    const yaml = 'openapi: 3.1.0\npaths:\n  /a:\n    get:\n      responses: {}\n    post: {}\n'
    assert.deepEqual(operationPositions(yaml).get('GET /a'), { line: 4, column: 5 })
    assert.deepEqual(operationPositions(yaml).get('POST /a'), { line: 6, column: 5 })
    const json = JSON.stringify({ openapi: '3.1.0', paths: { '/b': { delete: {} } } }, null, 2)
    assert.equal(operationPositions(json).get('DELETE /b')?.line, 5)
    assert.equal(operationPositions(': : :').size, 0)
  })

  it('CORS look-alike origins of the target; admin claims for chaining; filling a path by type', () => {
    const v = originVariants(new URL('http://api.example.com:8080/v1'))
    assert.deepEqual(
      v.map((x) => x.origin),
      [
        'https://evil.portcullis-scan.invalid',
        'null',
        'http://pcl-evilapi.example.com:8080',
        'http://api.example.com.pcl-evil.invalid:8080',
        'http://pcl-evil.api.example.com:8080',
        'https://api.example.com:8080',
      ],
    )
    assert.deepEqual(escalate({ sub: 'a', role: 'user', admin: false }), {
      sub: 'a',
      role: 'admin',
      admin: true,
    })
    assert.deepEqual(escalate({ sub: 'a', roles: ['user'] }).roles, ['user', 'admin', 'ROLE_ADMIN'])
    assert.equal(escalate({ sub: 'a' }).admin, true)
    assert.deepEqual(
      fillByType('/api/v2/admin/users/{id}/role', [
        { type: 'users', id: '7', owner: 'a', path: '/api/v2/users/7', createdByScanner: false },
      ]),
      { id: '7' },
    )
  })
})

describe('logins and sign-ups', () => {
  it('auth.yaml logins first (their user names known), then OAuth2 password and client-credentials token URLs', () => {
    const spec = {
      documents: {
        root: {
          components: {
            securitySchemes: {
              oauth: {
                type: 'oauth2',
                flows: {
                  password: { tokenUrl: '/oauth/token', scopes: {} },
                  clientCredentials: { tokenUrl: 'http://api.example.com/base/cc/token', scopes: {} },
                },
              },
              elsewhere: {
                type: 'oauth2',
                flows: { password: { tokenUrl: 'https://idp.example.org/token' } },
              },
            },
          },
        },
      },
      operations: [],
    } as unknown as OpenApiSpec
    const auth = {
      identities: {
        alice: {
          login: { path: '/auth/login', form: { email: 'alice@x.test', password: 'p1' }, tokenPointer: '/t' },
        },
        bob: {
          login: { path: '/auth/login', form: { email: 'bob@x.test', password: 'p2' }, tokenPointer: '/t' },
        },
      },
    }
    const logins = discoverLogins(spec, auth, new URL('http://api.example.com/base'))
    assert.deepEqual(
      logins.map((l) => [l.source, l.path, l.encoding, l.userField, l.passwordField]),
      [
        ['auth.yaml', '/auth/login', 'form', 'email', 'password'],
        ['security-scheme', '/oauth/token', 'form', 'username', 'password'],
        ['security-scheme', '/cc/token', 'form', 'client_id', 'client_secret'],
      ],
      'a token URL on another origin is never used',
    )
    assert.deepEqual(logins[0]?.knownUsers, ['alice@x.test', 'bob@x.test'])
    assert.deepEqual(logins[1]?.base, { grant_type: 'password' })
    assert.equal(findSignup(spec, logins), undefined)
  })
})
