import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfigText } from '../../config/load.js'
import { testContext } from '../../policies/testing/context.js'
import { GatewayError } from '../errors.js'
import { allOfHook, anyOfHook, type Authenticator } from './authentication.js'
import type { Principal } from './context.js'

/** An authenticator keyed on a header: absent → undefined, 'bad' → invalid, else a principal. */
function byHeader(id: string, header: string, calls: string[]): Authenticator {
  return {
    id,
    instance: {
      challenge: `${id} realm="t"`,
      authenticate(ctx) {
        calls.push(id)
        const v = ctx.req.headers[header]
        if (v === undefined) return undefined
        if (v === 'bad') throw new GatewayError('GW_ERR_AUTH_INVALID')
        return {
          id: `${id}:${v}`,
          type: 'user',
          scopes: [],
          roles: [],
          claims: {},
          authMethod: id,
        } as Principal
      },
    },
  }
}

async function code(p: Promise<void>): Promise<string | undefined> {
  try {
    await p
    return undefined
  } catch (err) {
    return (err as GatewayError).code
  }
}

test('anyOf: the first credential present decides', async () => {
  const calls: string[] = []
  const hook = anyOfHook([byHeader('a', 'x-a', calls), byHeader('b', 'x-b', calls)])
  const ctx = testContext({ headers: { 'x-b': 'bob' } })
  await hook(ctx)
  assert.equal(ctx.principal?.id, 'b:bob')
  assert.deepEqual(calls, ['a', 'b'])
})

test('anyOf: an invalid credential is refused and never falls through to the next method', async () => {
  const calls: string[] = []
  const hook = anyOfHook([byHeader('a', 'x-a', calls), byHeader('b', 'x-b', calls)])
  assert.equal(
    await code(hook(testContext({ headers: { 'x-a': 'bad', 'x-b': 'bob' } }))),
    'GW_ERR_AUTH_INVALID',
  )
  assert.deepEqual(calls, ['a'])
})

test('anyOf: no credential at all → GW_ERR_AUTH_MISSING with every challenge', async () => {
  const hook = anyOfHook([byHeader('a', 'x-a', []), byHeader('b', 'x-b', [])])
  try {
    await hook(testContext())
    assert.fail('must throw')
  } catch (err) {
    assert.equal((err as GatewayError).code, 'GW_ERR_AUTH_MISSING')
    assert.equal((err as GatewayError).headers?.['www-authenticate'], 'a realm="t", b realm="t"')
  }
})

test('allOf: every method must authenticate; the first is the principal', async () => {
  const hook = allOfHook([byHeader('a', 'x-a', []), byHeader('b', 'x-b', [])])
  assert.equal(await code(hook(testContext({ headers: { 'x-a': 'key' } }))), 'GW_ERR_AUTH_MISSING')
  assert.equal(
    await code(hook(testContext({ headers: { 'x-a': 'key', 'x-b': 'bad' } }))),
    'GW_ERR_AUTH_INVALID',
  )
  const ctx = testContext({ headers: { 'x-a': 'key', 'x-b': 'alice' } })
  await hook(ctx)
  assert.equal(ctx.principal?.id, 'a:key')
  assert.equal((ctx.state.principals as Principal[]).length, 2)
})

const base = (auth: string, policies = 'policies: { mtls: {} }') => `
listeners: [ { name: p } ]
upstreams: { u: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - name: r
    upstream: u
    ${policies}
    authentication: ${auth}
`

test('config: authentication lists enabled authentication policies, exactly one of anyOf / allOf', () => {
  assert.equal(loadConfigText(base('{ anyOf: [mtls] }'), 'c.yaml').errors.length, 0)
  const both = loadConfigText(base('{ anyOf: [mtls], allOf: [mtls] }'), 'c.yaml').errors
  assert.match(both.map((e) => e.message).join('\n'), /exactly one of anyOf or allOf/)
  const notAuth = loadConfigText(base('{ anyOf: [security-headers] }'), 'c.yaml').errors
  assert.match(
    notAuth.map((e) => e.message).join('\n'),
    /expected an authentication policy \(.*mtls.*\), found "security-headers"/,
  )
  const notEnabled = loadConfigText(base('{ anyOf: [mtls] }', 'policies: {}'), 'c.yaml').errors
  assert.match(notEnabled.map((e) => e.message).join('\n'), /"mtls" is not enabled on this route/)
})
