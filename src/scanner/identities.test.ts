import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { AuthConfigError, Identity, type LoginSender, loadAuthConfig, parseAuthConfig } from './identities.js'
import { Masker } from './mask.js'

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseAuthConfig(text, 'auth.yaml', env)
  } catch (err) {
    assert.ok(err instanceof AuthConfigError, String(err))
    assert.equal(err.name, 'ConfigError') // the CLI maps it to exit 2
    return err.problems
  }
  assert.fail('expected an AuthConfigError')
}

describe('auth.yaml parsing', () => {
  it('accepts every identity kind, env references and seed ids', () => {
    const { config, envSecrets } = parseAuthConfig(
      `identities:
  alice:
    roles: [user]
    login:
      method: POST
      path: /login
      json: { username: alice, password: "\${env:ALICE_PW}" }
      tokenPointer: /token
      as: header X-Session
      refreshOnStatus: [401, 419]
      expiresInPointer: /expires_in
  bob: { roles: [user], bearer: "\${env:BOB_TOKEN}" }
  robot: { apiKey: { query: key, value: k-123456 } }
  guest: { anonymous: true }
seed:
  create: false
  ids: { alice: { accounts: [1, "2"] } }
`,
      'auth.yaml',
      { ALICE_PW: 'pw-from-env', BOB_TOKEN: 'tok-from-env' },
    )
    assert.equal(config.identities.alice?.login?.json?.password, 'pw-from-env')
    assert.equal(config.identities.bob?.bearer, 'tok-from-env')
    assert.deepEqual(envSecrets.sort(), ['pw-from-env', 'tok-from-env'])
    assert.deepEqual(config.seed?.ids?.alice?.accounts, [1, '2'])
  })

  it('names the field of every problem, all at once', () => {
    const p = problems(`identities:
  alice: { roles: [user], bearer: t, login: { path: /l, tokenPointer: /t } }
  bob: { roles: user, beerer: x }
  carol: { apiKey: { value: k } }
  dave: { login: { path: login, tokenPointer: token } }
`)
    assert.ok(
      p.some((m) => m === 'identities.bob: unknown field "beerer"'),
      p.join('\n'),
    )
    assert.ok(
      p.some((m) => m.startsWith('identities.bob.roles: ')),
      p.join('\n'),
    )
    assert.ok(
      p.some((m) => m.startsWith('identities.dave.login.path: invalid value')),
      p.join('\n'),
    )
    assert.ok(
      p.some((m) => m.startsWith('identities.dave.login.tokenPointer: invalid value')),
      p.join('\n'),
    )
  })

  it('cross-field rules: exactly one credential kind, header or query, known seed owners', () => {
    const p = problems(`identities:
  alice: { roles: [user], bearer: t, login: { path: /l, tokenPointer: /t } }
  nobody: { roles: [user] }
  carol: { apiKey: { value: k } }
  erin: { login: { path: /l, tokenPointer: /t, json: {}, form: {} } }
seed:
  ids: { zed: { orders: [1] } }
`)
    assert.deepEqual(p, [
      'identities.alice: give exactly one of bearer, apiKey, login or anonymous: true (found bearer, login)',
      'identities.nobody: give exactly one of bearer, apiKey, login or anonymous: true (found none)',
      'identities.carol.apiKey: give exactly one of header or query',
      'identities.erin.login: give json or form, not both',
      'seed.ids.zed: no identity named "zed"',
    ])
  })

  it('an unset env variable is named, its would-be value never printed', () => {
    const p = problems(`identities:\n  bob: { bearer: "\${env:NOPE_TOKEN}" }\n`)
    assert.deepEqual(p, ['identities.bob.bearer: environment variable NOPE_TOKEN is not set'])
  })

  it('never puts a credential value in a message', () => {
    const p = problems('identities:\n  bob: { bearer: 12345, extra: s3cr3t-value }\n')
    assert.ok(!p.join('\n').includes('s3cr3t-value'))
    assert.ok(!p.join('\n').includes('12345'))
  })

  it('hostile and malformed files: clear errors, no crash, no expansion', () => {
    assert.match(problems('identities: [unclosed\n')[0] ?? '', /line \d+:\d+/)
    assert.deepEqual(problems('just a string\n'), ['(top level): expected a mapping with "identities"'])
    assert.deepEqual(problems('- a\n- b\n'), ['(top level): expected a mapping with "identities"'])
    assert.ok(
      problems('identities:\n  a: { anonymous: true }\n  a: { anonymous: true }\n')[0]?.match(
        /unique|duplicate/i,
      ),
    )
    // Billion laughs: aliases are refused beyond a small count.
    let bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
    for (let i = 0; i < 8; i++)
      bomb += `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(97 + i)}`)
        .join(',')}]\n`
    assert.throws(() => parseAuthConfig(`${bomb}identities: {}\n`, 'auth.yaml', {}), AuthConfigError)
    assert.deepEqual(problems('identities: {}\n'), ['identities: declare at least one identity'])
  })

  it('loadAuthConfig: unreadable and oversized files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'auth-'))
    try {
      assert.throws(() => loadAuthConfig(join(dir, 'missing.yaml')), /cannot read the file \(ENOENT\)/)
      const big = join(dir, 'big.yaml')
      writeFileSync(big, `# ${'x'.repeat(1024 * 1024 + 10)}\n`)
      assert.throws(() => loadAuthConfig(big), /larger than 1 MiB/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('Identity (run time)', () => {
  const loginCfg = {
    roles: ['user'],
    login: {
      path: '/login',
      json: { username: 'alice', password: 'pw-123456' },
      tokenPointer: '/data/token',
      expiresInPointer: '/data/ttl',
    },
  }

  it('logs in, masks what it learns, re-logs in before expiry (fake clock) and on demand', async () => {
    let now = 1_000_000
    let n = 0
    const sent: { body?: string }[] = []
    const send: LoginSender = async (req) => {
      sent.push(req)
      n++
      return { status: 200, json: { data: { token: `token-number-${n}`, ttl: 60 } }, headers: {} }
    }
    const masker = new Masker()
    const id = new Identity('alice', loginCfg, masker, () => now)
    await id.ensure(send)
    assert.equal(id.credentials().headers.authorization, 'Bearer token-number-1')
    assert.equal(masker.text('x token-number-1 pw-123456'), 'x *** ***')
    await id.ensure(send)
    assert.equal(n, 1, 'still fresh: no second login')
    now += 51_000 // within 10 s of the 60 s expiry
    await id.ensure(send)
    assert.equal(n, 2)
    assert.equal(id.credentials().headers.authorization, 'Bearer token-number-2')
    assert.ok(id.shouldRefresh(401))
    assert.ok(!id.shouldRefresh(403))
    await Promise.all([id.relogin(send), id.relogin(send)])
    assert.equal(n, 3, 'concurrent re-logins share one')
    assert.deepEqual(JSON.parse(sent[0]?.body ?? ''), { username: 'alice', password: 'pw-123456' })
  })

  it('fails with a clear error when the login answer is not 2xx or has no token', async () => {
    const bad = new Identity('alice', loginCfg, new Masker())
    await assert.rejects(
      bad.ensure(async () => ({ status: 401, json: {}, headers: {} })),
      /identity "alice": login answered 401/,
    )
    await assert.rejects(
      bad.ensure(async () => ({ status: 200, json: { data: {} }, headers: {} })),
      /no token at \/data\/token/,
    )
  })

  it('static credentials: bearer, API key header or query; anonymous has none', () => {
    const masker = new Masker()
    assert.equal(
      new Identity('b', { bearer: 'tok-abcdef' }, masker).credentials().headers.authorization,
      'Bearer tok-abcdef',
    )
    assert.deepEqual(
      new Identity('k', { apiKey: { header: 'X-Key', value: 'key-abcdef' } }, masker).credentials().headers,
      {
        'x-key': 'key-abcdef',
      },
    )
    assert.deepEqual(
      new Identity('q', { apiKey: { query: 'api_key', value: 'key-qqqqqq' } }, masker).credentials().query,
      {
        api_key: 'key-qqqqqq',
      },
    )
    const anon = new Identity('guest', { anonymous: true }, masker)
    assert.deepEqual(anon.credentials(), { headers: {}, query: {} })
    assert.deepEqual(anon.info, { name: 'guest', roles: ['anonymous'], anonymous: true, rank: 0 })
    assert.equal(new Identity('s', { roles: ['support'], bearer: 'x-abcdef' }, masker).info.rank, 2)
    assert.equal(masker.headerValue('x-key', 'anything'), '***')
    assert.equal(masker.url('http://h/p?api_key=key-qqqqqq&x=1'), 'http://h/p?api_key=***&x=1')
  })
})
