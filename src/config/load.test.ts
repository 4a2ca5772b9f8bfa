// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${env:} and ${file:} are config syntax here
import { ACCESS_LOG_FIELDS } from '../gateway/access-log-fields.js'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Ajv } from 'ajv'
import { parse } from 'yaml'
import {
  type ConfigProblem,
  formatProblem,
  type LoadResult,
  loadConfigFile,
  loadConfigText,
  MAX_CONFIG_BYTES,
  MAX_CONFIG_DEPTH,
} from './load.js'
import { BUILTIN_POLICIES } from '../policies/registry.js'

const root = new URL('../../../', import.meta.url).pathname

/** The smallest valid config; tests append to or edit it. */
const BASE = `listeners:
  - name: public
upstreams:
  api:
    targets:
      - url: http://127.0.0.1:3000
routes:
  - name: r
    upstream: api
`

let dir: string
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-load-'))
})
after(() => {
  rmSync(dir, { recursive: true, force: true })
})

function load(text: string, env: NodeJS.ProcessEnv = {}): LoadResult {
  return loadConfigText(text, join(dir, 'portcullis.yaml'), { env })
}

function ok(text: string, env: NodeJS.ProcessEnv = {}) {
  const r = load(text, env)
  assert.deepEqual(r.errors.map(formatProblem), [])
  assert.ok(r.config)
  return r.config
}

/** The errors, which must exist; the config must be absent. */
function errors(text: string, env: NodeJS.ProcessEnv = {}): ConfigProblem[] {
  const r = load(text, env)
  assert.equal(r.config, undefined, 'config should be refused')
  assert.ok(r.errors.length > 0)
  return r.errors
}

function only(text: string, env: NodeJS.ProcessEnv = {}): ConfigProblem {
  const errs = errors(text, env)
  assert.equal(errs.length, 1, `expected one error, got:\n${errs.map(formatProblem).join('\n')}`)
  return errs[0] as ConfigProblem
}

describe('loadConfigText: defaults and freezing', () => {
  it('fills every default', () => {
    const c = ok(BASE)
    assert.deepEqual(c.admin, {
      enabled: true,
      host: '127.0.0.1',
      port: 9901,
      revocationDefaultTtlSeconds: 86400,
    })
    assert.deepEqual(c.listeners[0], {
      name: 'public',
      host: '0.0.0.0',
      port: 8080,
      maxHeaderBytes: 16384,
      maxHeaderCount: 100,
      headersTimeoutMs: 10000,
      requestTimeoutMs: 60000,
      keepAliveTimeoutMs: 5000,
    })
    const u = c.upstreams.api
    assert.ok(u)
    assert.equal(u.connections, 128)
    assert.equal(u.retries, 1)
    assert.deepEqual(u.tls, { rejectUnauthorized: true })
    assert.deepEqual(u.passiveHealth, { failures: 5, ejectMs: 30000 })
    assert.equal(u.activeHealth, undefined)
    assert.deepEqual(c.routes[0]?.match, { pathPrefix: '/' })
    assert.equal(c.routes[0]?.stripPrefix, false)
    assert.equal(c.routes[0]?.policies, undefined)
    assert.deepEqual(c.proxy, {
      trustedProxies: [],
      requestIdHeader: 'x-request-id',
      allowSemicolonInPath: false,
      maxUrlLength: 8192,
      maxQueryParams: 1000,
      maxUpstreamRequestsPerClient: 64,
    })
    assert.deepEqual(c.accessLog, { enabled: true, destination: 'stdout', fields: [...ACCESS_LOG_FIELDS] })
    assert.equal(c.log.level, 'info')
    assert.equal(c.shutdown.drainTimeoutMs, 10000)
    assert.equal(c.reload.watch, true)
  })

  it('global policies default to request-size-limit, security-headers and the ban checks, with their defaults', () => {
    const c = ok(BASE)
    assert.deepEqual(Object.keys(c.policies), [
      'request-size-limit',
      'security-headers',
      'ban',
      'ban-principal',
    ])
    const rsl = c.policies['request-size-limit'] as Record<string, unknown>
    assert.equal(rsl.enabled, true)
    assert.equal(rsl.maxBodyBytes, 1048576)
    assert.deepEqual(rsl.contentTypes, {})
    const sh = c.policies['security-headers'] as Record<string, unknown>
    assert.equal(sh.frameOptions, 'DENY')
    assert.deepEqual(sh.hsts, { enabled: true, maxAge: 31536000, includeSubDomains: true, preload: false })
  })

  it('fills defaults inside a partially written object', () => {
    const c = ok(`${BASE}    match:\n      methods: [GET]\nadmin:\n  port: 9000\n`)
    assert.deepEqual(c.admin, {
      enabled: true,
      host: '127.0.0.1',
      port: 9000,
      revocationDefaultTtlSeconds: 86400,
    })
    assert.deepEqual(c.routes[0]?.match, { methods: ['GET'], pathPrefix: '/' })
  })

  it('returns a deeply frozen config (mutation throws in strict mode)', () => {
    const c = ok(BASE)
    assert.ok(Object.isFrozen(c))
    assert.throws(() => {
      ;(c.admin as { port: number }).port = 1
    }, TypeError)
    assert.throws(() => {
      ;(c.listeners as unknown[]).push({})
    }, TypeError)
    assert.throws(() => {
      ;(c.upstreams.api?.targets[0] as { url: string }).url = 'http://evil'
    }, TypeError)
    assert.throws(() => {
      ;(c.policies['security-headers'] as { removeHeaders: string[] }).removeHeaders.pop()
    }, TypeError)
    assert.equal(c.admin.port, 9901)
  })

  it('accepts the smallest config with no warnings', () => {
    const r = load(BASE)
    assert.deepEqual(r.warnings, [])
    assert.equal(r.secretPaths.size, 0)
  })
})

describe('loadConfigText: every error at once, located', () => {
  const FIVE = `listeners:
  - name: Public
    port: 70000
upstreams:
  api:
    targets:
      - url: http://127.0.0.1:3000
    retries: many
routes:
  - name: r
    upstream: nope
    stripprefix: true
`
  it('reports five distinct mistakes as five errors, with file, line, column and path', () => {
    const errs = errors(FIVE)
    const got = errs.map((e) => ({ path: e.path, line: e.line, column: e.column }))
    assert.deepEqual(got, [
      { path: 'listeners[0].name', line: 2, column: 11 },
      { path: 'listeners[0].port', line: 3, column: 11 },
      { path: 'upstreams.api.retries', line: 8, column: 14 },
      { path: 'routes[0].upstream', line: 11, column: 15 },
      { path: 'routes[0].stripprefix', line: 12, column: 5 },
    ])
    for (const e of errs) assert.equal(e.file, join(dir, 'portcullis.yaml'))
    assert.match(errs[0]?.message ?? '', /matching \^\[a-z0-9\]\[a-z0-9-\]\*\$, found string "Public"/)
    assert.match(errs[1]?.message ?? '', /<= 65535, found number 70000/)
    assert.match(errs[2]?.message ?? '', /expected integer, found string "many"/)
    assert.match(errs[3]?.message ?? '', /expected one of the upstreams \(api\), found "nope"/)
    assert.match(errs[4]?.message ?? '', /unknown field "stripprefix"/)
  })

  it('formats a problem as file:line:col path: message', () => {
    const e = errors(FIVE)[3] as ConfigProblem
    assert.equal(
      formatProblem(e),
      `${join(dir, 'portcullis.yaml')}:11:15 routes[0].upstream: expected one of the upstreams (api), found "nope"`,
    )
    assert.equal(formatProblem({ file: 'x.yaml', path: '', message: 'm' }), 'x.yaml: m')
  })

  it('lists errors in document order', () => {
    const errs = errors(FIVE)
    const keys = errs.map((e) => (e.line ?? 0) * 1000 + (e.column ?? 0))
    assert.deepEqual(
      keys,
      [...keys].sort((a, b) => a - b),
    )
  })

  it('names an unknown field at its key and lists the expected fields', () => {
    const e = only(BASE.replace('  - name: public\n', '  - name: public\n    hots: x\n'))
    assert.equal(e.path, 'listeners[0].hots')
    assert.equal(e.line, 3)
    assert.equal(e.column, 5)
    assert.equal(
      e.message,
      'unknown field "hots" (expected one of: name, host, port, tls, maxHeaderBytes, maxHeaderCount, ' +
        'headersTimeout, requestTimeout, keepAliveTimeout, http2)',
    )
  })

  it('names an unknown top-level section', () => {
    const e = only(`${BASE}logging:\n  level: debug\n`)
    assert.equal(e.path, 'logging')
    assert.equal(e.line, 10)
    assert.match(e.message, /expected one of: listeners, admin, upstreams, routes, policies, stores, proxy/)
  })

  it('says what type was found', () => {
    const cases: [string, string][] = [
      ['admin:\n  port: "9901"\n', 'expected integer, found string "9901"'],
      ['admin:\n  enabled: yes\n', 'expected boolean, found string "yes"'],
      ['admin:\n  port: 99.5\n', 'expected integer, found number 99.5'],
      ['admin:\n  port: [1]\n', 'expected integer, found a list of 1'],
      ['admin:\n  port: {a: 1}\n', 'expected integer, found a mapping'],
      ['admin:\n  port: null\n', 'expected integer, found null'],
      ['admin: 5\n', 'expected object, found number 5'],
    ]
    for (const [extra, message] of cases) {
      const e = only(BASE + extra)
      assert.equal(e.message, message, extra)
      assert.equal(e.line, extra.split('\n').length + 8, extra)
    }
  })

  it('names a missing required field', () => {
    const e = only(BASE.replace('    upstream: api\n', ''))
    assert.equal(e.path, 'routes[0]')
    assert.equal(e.message, 'missing required field "upstream"')
    assert.equal(e.line, 8)
    const top = errors('admin: {}\n')
    assert.deepEqual(
      top.map((x) => x.message),
      ['listeners', 'upstreams', 'routes'].map((f) => `missing required field "${f}"`),
    )
  })

  it('lists the allowed literals of a union once each', () => {
    const e = only(`${BASE}log:\n  level: verbose\n`)
    assert.equal(e.path, 'log.level')
    assert.equal(
      e.message,
      'expected "trace" or "debug" or "info" or "warn" or "error" or "fatal" or "silent", found string "verbose"',
    )
  })

  it('checks ranges and list sizes', () => {
    assert.match(only(`${BASE}admin:\n  port: -1\n`).message, />= 0, found number -1/)
    assert.match(
      only(BASE.replace('  - name: r\n    upstream: api\n', '  []\n')).message,
      /fewer than 1 items/,
    )
    const e = only(BASE.replace('      - url: http://127.0.0.1:3000\n', '      []\n'))
    assert.equal(e.path, 'upstreams.api.targets')
  })
})

describe('loadConfigText: cross-field rules', () => {
  it('refuses a route naming a missing upstream, listing the upstreams', () => {
    const e = only(BASE.replace('upstream: api', 'upstream: ap'))
    assert.equal(e.path, 'routes[0].upstream')
    assert.equal(e.line, 9)
    assert.equal(e.column, 15)
    assert.equal(e.message, 'expected one of the upstreams (api), found "ap"')
  })

  it('reports rule errors together with schema errors', () => {
    const errs = errors(`${BASE.replace('upstream: api', 'upstream: ap')}admin:\n  port: x\n`)
    assert.deepEqual(
      errs.map((e) => e.path),
      ['routes[0].upstream', 'admin.port'],
    )
  })

  it('refuses duplicate route names', () => {
    const e = only(`${BASE}  - name: r\n    upstream: api\n    match: { pathPrefix: /x }\n`)
    assert.equal(e.path, 'routes[1].name')
    assert.equal(e.line, 10)
    assert.equal(e.message, 'duplicate route name "r"')
  })

  it('refuses duplicate listener names and addresses, and an admin port used by a listener', () => {
    const errs = errors(
      BASE.replace('  - name: public\n', '  - name: public\n  - name: public\n    port: 9901\n  - name: b\n'),
    )
    assert.deepEqual(
      errs.map((e) => [e.path, e.message]),
      [
        // admin is not in the file: located at the top of the document
        ['admin.port', `port 9901 is also listener "public"'s`],
        ['listeners[1].name', 'duplicate listener name "public"'],
        ['listeners[2].port', '0.0.0.0:8080 is used twice'],
      ],
    )
  })

  it('refuses invalid target URLs', () => {
    const url = (u: string) => only(BASE.replace('http://127.0.0.1:3000', u))
    const e = url('not a url')
    assert.equal(e.path, 'upstreams.api.targets[0].url')
    assert.equal(e.line, 6)
    assert.equal(e.column, 14)
    assert.equal(e.message, 'expected an http(s) URL, found string "not a url"')
    assert.equal(url('ftp://host/').message, 'expected http: or https:, found ftp:')
    assert.equal(url('http://host/?debug=1').message, 'a target URL takes no query or fragment')
  })

  it('refuses credentials in a target URL without echoing them', () => {
    for (const u of ['http://admin:hunter2@host:3000', 'https://token@host']) {
      const e = only(BASE.replace('http://127.0.0.1:3000', u))
      assert.equal(e.message, 'credentials in a target URL are not allowed')
      assert.ok(!formatProblem(e).includes('hunter2'))
    }
  })

  it('refuses a non-canonical pathPrefix', () => {
    const prefix = (p: string) => only(`${BASE}    match:\n      pathPrefix: ${p}\n`)
    let e = prefix('/api/../x')
    assert.equal(e.path, 'routes[0].match.pathPrefix')
    assert.equal(e.line, 11)
    assert.equal(e.column, 19)
    assert.equal(e.message, 'expected a canonical path, found "/api/../x" (canonical: "/x")')
    e = prefix('/api//x')
    assert.equal(e.message, 'expected a canonical path, found "/api//x" (canonical: "/api/x")')
    assert.match(prefix('/api/./x').message, /canonical: "\/api\/x"/)
    assert.match(prefix('"/api?x=1"').message, /canonical/)
    assert.match(prefix('api').message, /matching \^\//)
    ok(`${BASE}    match:\n      pathPrefix: /api/v1\n`)
  })

  it('refuses a malformed host name', () => {
    const e = only(`${BASE}    match:\n      hosts: [API.example.com]\n`)
    assert.equal(e.path, 'routes[0].match.hosts[0]')
    ok(`${BASE}    match:\n      hosts: [api.example.com, "*.example.com"]\n`)
  })

  it('refuses an invalid trustedProxies entry and accepts addresses and CIDRs', () => {
    const errs = errors(
      `${BASE}proxy:\n  trustedProxies: [10.0.0.0/8, 10.0.0.0/33, not-an-ip, "::1/129", 1.2.3.4/x]\n`,
    )
    assert.deepEqual(
      errs.map((e) => e.path),
      [
        'proxy.trustedProxies[1]',
        'proxy.trustedProxies[2]',
        'proxy.trustedProxies[3]',
        'proxy.trustedProxies[4]',
      ],
    )
    assert.equal(errs[0]?.message, 'expected an IP address or CIDR, found "10.0.0.0/33"')
    assert.equal(errs[0]?.line, 11)
    ok(`${BASE}proxy:\n  trustedProxies: [10.0.0.0/8, 192.168.1.1, "::1", "2001:db8::/32", 0.0.0.0/0]\n`)
  })

  it('refuses unreadable TLS files, resolved relative to the config file', () => {
    writeFileSync(join(dir, 'key.pem'), 'not really a key')
    const tls = (cert: string) =>
      load(BASE.replace('  - name: public\n', `  - name: public\n    tls: { cert: ${cert}, key: key.pem }\n`))
    const r = tls('missing-cert.pem')
    assert.equal(r.config, undefined)
    assert.deepEqual(
      r.errors.map((e) => [e.path, e.line, e.message]),
      [['listeners[0].tls.cert', 3, 'cannot read missing-cert.pem: ENOENT']],
    )
    writeFileSync(join(dir, 'cert.pem'), 'not really a cert')
    assert.ok(tls('cert.pem').config, 'both files readable (relative to the config dir)')
    const e = only(BASE.replace('    targets:', '    tls: { ca: nope/ca.pem }\n    targets:'))
    assert.equal(e.path, 'upstreams.api.tls.ca')
    assert.equal(e.message, 'cannot read nope/ca.pem: ENOENT')
  })

  it('warns (without refusing) about a public admin address and unverified upstream TLS', () => {
    const r = load(
      `${BASE.replace('    targets:', '    tls: { rejectUnauthorized: false }\n    targets:')}admin:\n  host: 0.0.0.0\n`,
    )
    assert.ok(r.config)
    assert.deepEqual(
      r.warnings.map((w) => [w.path, w.message]),
      [
        ['upstreams.api.tls.rejectUnauthorized', 'upstream TLS is not verified'],
        ['admin.host', 'admin listener bound to 0.0.0.0, not loopback'],
      ],
    )
  })
})

describe('loadConfigText: YAML and JSON input', () => {
  it('reports a YAML syntax error with its line', () => {
    const e = only(`${BASE}proxy:\n  trustedProxies: [10.0.0.1\n`)
    assert.equal(e.path, '')
    assert.equal(typeof e.line, 'number')
    assert.ok((e.line ?? 0) >= 11, `line ${e.line}`)
    assert.match(e.message, /flow sequence|\]/i)
    const tab = only('listeners:\n\t- name: x\n')
    assert.equal(tab.line, 2)
  })

  it('rejects duplicate keys, at the second one', () => {
    const e = only(`${BASE}admin:\n  port: 1\n  port: 2\n`)
    assert.match(e.message, /unique/i)
    assert.equal(e.line, 12)
    const top = only(`${BASE}routes: []\n`)
    assert.equal(top.line, 10)
  })

  it('rejects a YAML alias bomb (billion laughs) quickly', () => {
    let bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    let prev = 'a'
    for (const n of 'bcdefghi') {
      bomb += `${n}: &${n} [${Array(9).fill(`*${prev}`).join(',')}]\n`
      prev = n
    }
    const t0 = performance.now()
    const e = only(bomb)
    assert.ok(performance.now() - t0 < 2000, 'took too long')
    assert.match(e.message, /alias/i)
  })

  it('accepts a few aliases, and expands each into its own copy', () => {
    const c = ok(`${BASE}  - name: r2
    upstream: api
    match: { pathPrefix: /b }
    policies: &strict
      request-size-limit: { maxBodyBytes: 10 }
  - name: r3
    upstream: api
    match: { pathPrefix: /c }
    policies: *strict
`)
    assert.deepEqual(c.routes[1]?.policies, c.routes[2]?.policies)
    assert.notEqual(c.routes[1]?.policies, c.routes[2]?.policies)
  })

  it('rejects an alias that contains itself, without recursing forever', () => {
    const e = only(`${BASE}admin: &a\n  port: *a\n`)
    assert.equal(e.path, 'admin.port')
    assert.match(e.message, /alias that contains itself/)
  })

  it('treats __proto__ as an unknown field, never as a prototype', () => {
    const e = only(`${BASE}__proto__:\n  admin: { port: 1 }\n`)
    assert.equal(e.path, '__proto__')
    assert.match(e.message, /unknown field "__proto__"/)
    const nested = only(`${BASE}admin:\n  __proto__: { port: 1 }\n`)
    assert.equal(nested.path, 'admin.__proto__')
    assert.equal(({} as Record<string, unknown>).admin, undefined)
  })

  it('accepts JSON, and locates errors in it', () => {
    const json = {
      listeners: [{ name: 'public', port: 8081 }],
      upstreams: { api: { targets: [{ url: 'http://127.0.0.1:3000' }] } },
      routes: [{ name: 'r', upstream: 'api' }],
    }
    const c = ok(JSON.stringify(json, null, 2))
    assert.equal(c.listeners[0]?.port, 8081)
    assert.equal(c.admin.port, 9901)
    const bad = JSON.stringify({ ...json, routes: [{ name: 'r', upstream: 'none' }] }, null, 2)
    const e = only(bad)
    assert.equal(e.path, 'routes[0].upstream')
    assert.equal(e.line, bad.split('\n').findIndex((l) => l.includes('"none"')) + 1)
    assert.match(only('{"a": 1, "a": 2}').message, /unique/i)
  })

  it('rejects a top-level scalar, list or empty document', () => {
    assert.equal(only('42').message, 'expected a mapping at the top level, found number 42')
    assert.equal(only('just text').message, 'expected a mapping at the top level, found string "just text"')
    assert.equal(only('- a\n- b\n').message, 'expected a mapping at the top level, found a list of 2')
    assert.equal(only('[]').message, 'expected a mapping at the top level, found a list of 0')
    assert.equal(only('').message, 'expected a mapping at the top level, found null')
    assert.equal(only('# only a comment\n').message, 'expected a mapping at the top level, found null')
  })

  it('rejects a stream of several documents', () => {
    assert.match(only(`${BASE}---\n${BASE}`).message, /multiple documents/i)
  })
})

describe('loadConfigText: ${env:} and ${file:} substitution', () => {
  it('substitutes ${env:NAME}, whole or inside a string', () => {
    const c = ok(BASE.replace('http://127.0.0.1:3000', 'http://${env:UP_HOST}:${env:UP_PORT}/v1'), {
      UP_HOST: 'orders.internal',
      UP_PORT: '8443',
    })
    assert.equal(c.upstreams.api?.targets[0]?.url, 'http://orders.internal:8443/v1')
    const r = load(BASE.replace('http://127.0.0.1:3000', '${env:UP}'), { UP: 'http://x:1' })
    assert.deepEqual([...r.secretPaths], ['upstreams.api.targets[0].url'])
  })

  it('leaves other ${...} text and keys alone', () => {
    const c = ok(`${BASE}accessLog:\n  destination: "/var/log/\${HOSTNAME}.log"\n`)
    assert.equal(c.accessLog.destination, '/var/log/${HOSTNAME}.log')
  })

  it('reports a missing environment variable once, at its value', () => {
    const e = only(BASE.replace('http://127.0.0.1:3000', '${env:NOT_SET_ANYWHERE}'))
    assert.equal(e.path, 'upstreams.api.targets[0].url')
    assert.equal(e.line, 6)
    assert.equal(e.column, 14)
    assert.equal(e.message, 'environment variable NOT_SET_ANYWHERE is not set')
  })

  it('uses process.env when no env is given', () => {
    process.env.PORTCULLIS_LOAD_TEST_URL = 'http://from-process-env:1'
    try {
      const r = loadConfigText(
        BASE.replace('http://127.0.0.1:3000', '${env:PORTCULLIS_LOAD_TEST_URL}'),
        'x.yaml',
      )
      assert.equal(r.config?.upstreams.api?.targets[0]?.url, 'http://from-process-env:1')
    } finally {
      delete process.env.PORTCULLIS_LOAD_TEST_URL
    }
  })

  it('never puts the value of a substituted secret in a message', () => {
    const SECRET = 's3cr3t-value'
    const env = { SECRET }
    const text = `listeners:
  - name: public
    port: \${env:SECRET}
    host: \${env:SECRET}
upstreams:
  api:
    targets:
      - url: \${env:SECRET}
      - url: http://\${env:SECRET}@host
routes:
  - name: r
    upstream: \${env:SECRET}
    match:
      pathPrefix: /\${env:SECRET}/..
      hosts: ["\${env:SECRET}"]
proxy:
  trustedProxies: ["\${env:SECRET}"]
  requestIdHeader: "\${env:SECRET}!"
`
    const r = load(text, env)
    assert.equal(r.config, undefined)
    const port = r.errors.find((e) => e.path === 'listeners[0].port')
    assert.ok(port)
    assert.equal(port.line, 3)
    assert.equal(port.message, 'expected integer, found a string (secret, not shown)')
    assert.ok(r.errors.length >= 7, r.errors.map(formatProblem).join('\n'))
    const everything = JSON.stringify([r.errors, r.warnings]) + r.errors.map(formatProblem).join('\n')
    assert.ok(!everything.includes(SECRET), everything)
    assert.ok(!everything.includes('s3cr3t'), everything)
    // Warnings too.
    const w = load(`${BASE}admin:\n  host: \${env:ADMIN_HOST}\n`, { ADMIN_HOST: '10.9.8.7' })
    assert.ok(w.config)
    assert.equal(w.warnings.length, 1)
    assert.ok(!formatProblem(w.warnings[0] as ConfigProblem).includes('10.9.8.7'))
  })

  it('warns about secrets written into the file, not about ${env:} references, never showing them', () => {
    const TOKEN = 'plain-admin-token-0123456789abcdefghijkl'
    const plain = load(
      `${BASE}admin:\n  token: ${TOKEN}\nstores:\n  redis:\n    url: redis://:hunter2-pw@127.0.0.1:6379\n`,
    )
    assert.ok(plain.config)
    assert.deepEqual(
      plain.warnings.map((w) => w.path),
      ['admin.token', 'stores.redis.url'],
    )
    const shown = plain.warnings.map(formatProblem).join('\n')
    assert.ok(!shown.includes(TOKEN) && !shown.includes('hunter2-pw'), shown)
    const referenced = load(
      `${BASE}admin:\n  token: \${env:ADMIN_TOKEN}\nstores:\n  redis:\n    url: redis://127.0.0.1:6379\n`,
      { ADMIN_TOKEN: TOKEN },
    )
    assert.ok(referenced.config)
    assert.deepEqual(referenced.warnings, [])
  })

  it('substitutes ${file:PATH} relative to the config file, without the trailing newline', () => {
    const sub = join(dir, 'file-subst')
    mkdirSync(join(sub, 'secrets'), { recursive: true })
    writeFileSync(join(sub, 'secrets', 'upstream-url'), 'http://from-file:9000\n')
    const file = join(sub, 'portcullis.yaml')
    writeFileSync(file, BASE.replace('http://127.0.0.1:3000', '${file:secrets/upstream-url}'))
    const r = loadConfigFile(file, { env: {} })
    assert.deepEqual(r.errors, [])
    assert.equal(r.config?.upstreams.api?.targets[0]?.url, 'http://from-file:9000')
    assert.ok(r.secretPaths.has('upstreams.api.targets[0].url'))
    // An absolute path works too.
    const abs = loadConfigText(
      BASE.replace('http://127.0.0.1:3000', `\${file:${join(sub, 'secrets', 'upstream-url')}}`),
      '/elsewhere/c.yaml',
      { env: {} },
    )
    assert.equal(abs.config?.upstreams.api?.targets[0]?.url, 'http://from-file:9000')
  })

  it('reports an unreadable ${file:PATH}', () => {
    const e = only(BASE.replace('http://127.0.0.1:3000', '${file:no/such/file}'))
    assert.equal(e.path, 'upstreams.api.targets[0].url')
    assert.equal(e.message, `cannot read ${join(dir, 'no/such/file')}: ENOENT`)
  })
})

describe('loadConfigText: policies', () => {
  it('refuses an unknown policy id, listing the known ids', () => {
    const known = BUILTIN_POLICIES.map((p) => p.id).join(', ')
    const e = only(`${BASE}policies:\n  no-such-policy: {}\n`)
    assert.equal(e.path, 'policies.no-such-policy')
    assert.equal(e.line, 11)
    assert.equal(e.column, 3)
    assert.equal(e.message, `unknown field "no-such-policy" (expected one of: ${known})`)
    assert.ok(known.includes('request-size-limit') && known.includes('security-headers'))
    const route = only(`${BASE}    policies:\n      no-such-policy: {}\n`)
    assert.equal(route.path, 'routes[0].policies.no-such-policy')
    assert.ok(route.message.includes(`expected one of: ${known}`))
  })

  it('`enabled: false` alone turns a policy off on a route; an enabled entry still needs its required fields', () => {
    // object-ownership requires `objects` when on.
    const global = `policies:\n  object-ownership:\n    objects:\n      - { type: order, access: [{ match: { path: '/o/{id}' }, ids: [path.id] }] }\n`
    const c = ok(`${BASE}    policies:\n      object-ownership: { enabled: false }\n${global}`)
    const policies = c.routes[0]?.policies as
      | Record<string, { enabled?: boolean; objects?: unknown }>
      | undefined
    const entry = policies?.['object-ownership']
    assert.equal(entry?.enabled, false)
    assert.equal(entry?.objects, undefined, 'the route entry replaces the global one and needs no objects')
    const e = only(`${BASE}    policies:\n      object-ownership: { allowRoles: [admin] }\n`)
    assert.equal(e.path, 'routes[0].policies.object-ownership')
    assert.equal(e.message, 'missing required field "objects"')
    const off = only(`${BASE}    policies:\n      object-ownership: { enabled: true }\n`)
    assert.equal(off.message, 'missing required field "objects"')
  })

  it('refuses a policy field of the wrong type', () => {
    const e = only(`${BASE}    policies:\n      request-size-limit:\n        maxBodyBytes: lots\n`)
    assert.equal(e.path, 'routes[0].policies.request-size-limit.maxBodyBytes')
    assert.equal(e.line, 12)
    assert.equal(e.column, 23)
    assert.equal(e.message, 'expected integer, found string "lots"')
    const ct = only(`${BASE}policies:\n  request-size-limit:\n    contentTypes: { application/json: big }\n`)
    assert.equal(ct.path, 'policies.request-size-limit.contentTypes["application/json"]')
  })

  it('refuses an unknown policy field, listing the policy fields', () => {
    const e = only(`${BASE}policies:\n  security-headers:\n    hst: {}\n`)
    assert.equal(e.path, 'policies.security-headers.hst')
    assert.match(e.message, /expected one of: enabled, hsts, noSniff, cacheControl/)
  })

  it('explains a union field: the allowed literals and types', () => {
    let e = only(`${BASE}policies:\n  security-headers:\n    frameOptions: ALLOW-FROM\n`)
    assert.equal(e.message, 'expected "DENY" or "SAMEORIGIN" or false, found string "ALLOW-FROM"')
    e = only(`${BASE}policies:\n  security-headers:\n    cacheControl: 5\n`)
    assert.equal(e.message, 'expected a string or false, found number 5')
    e = only(`${BASE}policies:\n  security-headers:\n    cacheControl: true\n`)
    assert.equal(e.message, 'expected a string or false, found boolean true')
  })

  it('accepts enabled: false on a route policy, and fills the route entry defaults', () => {
    const c = ok(
      `${BASE}    policies:\n      security-headers: { enabled: false }\n      request-size-limit: { maxBodyBytes: 10 }\n`,
    )
    const p = c.routes[0]?.policies as Record<string, Record<string, unknown>>
    assert.equal(p['security-headers']?.enabled, false)
    assert.equal(p['request-size-limit']?.maxBodyBytes, 10)
    assert.equal(p['request-size-limit']?.maxQueryLength, 4096)
    assert.equal(p['request-size-limit']?.enabled, true)
  })

  it('adds no policy that a route does not name (the global config stays in force)', () => {
    const c = ok(
      `${BASE}    policies:\n      security-headers: { enabled: false }\npolicies:\n  request-size-limit: { maxBodyBytes: 10 }\n`,
    )
    // A route entry replaces the global one of the same id: request-size-limit must not appear
    // here with its defaults, or this route would lose the global 10-byte limit.
    assert.deepEqual(Object.keys(c.routes[0]?.policies ?? {}), ['security-headers'])
    assert.equal((c.policies['request-size-limit'] as { maxBodyBytes: number }).maxBodyBytes, 10)
  })

  it('keeps the policies that are on by default when the section names others', () => {
    const c = ok(`${BASE}policies:\n  security-headers: { enabled: false }\n`)
    assert.deepEqual(Object.keys(c.policies).sort(), [
      'ban',
      'ban-principal',
      'request-size-limit',
      'security-headers',
    ])
    assert.equal((c.policies['security-headers'] as { enabled: boolean }).enabled, false)
    assert.equal((c.policies['request-size-limit'] as { enabled: boolean }).enabled, true)
  })
})

describe('loadConfigText: hostile input', () => {
  const never = (text: string): LoadResult => {
    let r: LoadResult | undefined
    assert.doesNotThrow(() => {
      r = load(text)
    })
    return r as LoadResult
  }

  it('refuses a 5 MB document quickly, without parsing it', () => {
    const big = `x:\n${'  - [1, 2, 3, 4, 5, 6, 7, 8]\n'.repeat(Math.ceil((5 * 1024 * 1024) / 29))}`
    const t0 = performance.now()
    const r = never(big)
    assert.ok(performance.now() - t0 < 1000)
    assert.equal(r.config, undefined)
    assert.equal(r.errors.length, 1)
    assert.match(r.errors[0]?.message ?? '', new RegExp(`the limit is ${MAX_CONFIG_BYTES} bytes`))
  })

  it('refuses 10,000 levels of nesting (flow, block and JSON) with a config error', () => {
    const deep = [
      '['.repeat(10000) + ']'.repeat(10000),
      `${'- '.repeat(10000)}x\n`,
      `${'? '.repeat(10000)}x\n`,
      `${'{"a":'.repeat(10000)}1${'}'.repeat(10000)}`,
      `a: ${'[1, '.repeat(10000)}${']'.repeat(10000)}\n`,
    ]
    for (const text of deep) {
      const r = never(text)
      assert.equal(r.errors.length, 1)
      assert.equal(r.errors[0]?.message, `the document nests deeper than ${MAX_CONFIG_DEPTH} levels`)
      assert.equal(r.errors[0]?.line, 1)
    }
  })

  it('refuses deep block nesting under the size limit, at the line where it gets too deep', () => {
    // 1,400 mappings, each indented one column more: just under 1 MB.
    let text = ''
    for (let i = 0; i < 1400; i++) text += `${' '.repeat(i)}a:\n`
    assert.ok(text.length < MAX_CONFIG_BYTES)
    const r = never(text)
    assert.equal(r.errors[0]?.message, `the document nests deeper than ${MAX_CONFIG_DEPTH} levels`)
    assert.equal(r.errors[0]?.line, 101)
    let seq = ''
    for (let i = 0; i < 700; i++) seq += `${' '.repeat(i * 2)}- a:\n`
    assert.match(never(seq).errors[0]?.message ?? '', /nests deeper/)
  })

  it('keeps working after hostile documents (the process is not damaged)', () => {
    for (let i = 0; i < 3; i++) {
      never('['.repeat(5000))
      never(`${'- '.repeat(5000)}x\n`)
    }
    ok(BASE)
  })

  it('accepts ordinary nesting and a large but sane config', () => {
    let list = ''
    for (let i = 0; i < 2000; i++) list += `    - 10.${i >> 8}.${i & 255}.0/24\n`
    const c = ok(`${BASE}proxy:\n  trustedProxies:\n${list}`)
    assert.equal(c.proxy.trustedProxies.length, 2000)
    // A deep block scalar is text, not nesting.
    const text = `${' '.repeat(150)}deep\n`.repeat(3)
    const c2 = ok(`${BASE}accessLog:\n  destination: |\n${text}`)
    assert.equal(c2.accessLog.destination, 'deep\n'.repeat(3))
  })
})

describe('loadConfigFile', () => {
  it('reports a missing file as one error, and never throws', () => {
    const r = loadConfigFile(join(dir, 'nope.yaml'))
    assert.equal(r.config, undefined)
    assert.equal(r.errors.length, 1)
    assert.equal(r.errors[0]?.path, '')
    assert.match(r.errors[0]?.message ?? '', /^cannot read the file: ENOENT: no such file or directory$/)
    assert.match(loadConfigFile(dir).errors[0]?.message ?? '', /EISDIR/)
  })
})

describe('examples/config', () => {
  for (const name of ['minimal.yaml', 'full.yaml']) {
    it(`${name} is valid, with no warnings`, () => {
      const r = loadConfigFile(join(root, 'examples/config', name), { env: {} })
      assert.deepEqual(r.errors.map(formatProblem), [])
      assert.deepEqual(r.warnings.map(formatProblem), [])
      assert.ok(r.config)
    })

    it(`${name} is valid against docs/config.schema.json (what editors use)`, () => {
      const schema = JSON.parse(readFileSync(join(root, 'docs/config.schema.json'), 'utf8'))
      const validate = new Ajv({ allErrors: true, strict: false }).compile(schema)
      const data = parse(readFileSync(join(root, 'examples/config', name), 'utf8')) as Record<string, unknown>
      assert.ok(validate(data), JSON.stringify(validate.errors))
      assert.equal(validate({ ...data, typo: 1 }), false)
      // durations: the editor flags the old form too
      assert.equal(validate({ ...data, shutdown: { drainTimeout: '5s' } }), true)
      assert.equal(validate({ ...data, shutdown: { drainTimeoutMs: 5000 } }), false, 'the old duration form')
    })
  }

  it('full.yaml uses every top-level section', () => {
    const data = parse(readFileSync(join(root, 'examples/config/full.yaml'), 'utf8'))
    const schema = JSON.parse(readFileSync(join(root, 'docs/config.schema.json'), 'utf8'))
    assert.deepEqual(Object.keys(data).sort(), Object.keys(schema.properties).sort())
  })
})

describe('loadConfigText: security warnings', () => {
  it('warns when API keys are accepted in the query string, not when disabled', () => {
    const cfg = (entry: string) => `listeners: [ { name: p } ]
upstreams: { u: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - name: r
    upstream: u
    policies: { api-key-auth: ${entry} }
`
    const on = loadConfigText(cfg('{ store: keys.json, queryParam: api_key }'), 'c.yaml')
    assert.equal(on.errors.length, 0)
    assert.equal(on.warnings.length, 1)
    assert.equal(on.warnings[0]?.path, 'routes[0].policies.api-key-auth.queryParam')
    assert.match(on.warnings[0]?.message ?? '', /query string/)
    const off = loadConfigText(cfg('{ store: keys.json, queryParam: api_key, enabled: false }'), 'c.yaml')
    assert.equal(off.warnings.length, 0)
    assert.equal(loadConfigText(cfg('{ store: keys.json }'), 'c.yaml').warnings.length, 0)
  })
})

it('a route that an earlier one shadows is an error (it could never be reached)', () => {
  const yaml = (routes: string) => `listeners: [ { name: public } ]
upstreams: { api: { targets: [ { url: "http://127.0.0.1:3000" } ] } }
routes:
${routes}
`
  const r = loadConfigText(
    yaml(`  - { name: a, upstream: api, match: { pathPrefix: /api } }
  - { name: b, upstream: api, match: { pathPrefix: /api, methods: [GET] } }`),
    'c.yaml',
  )
  assert.equal(r.config, undefined)
  assert.match(
    r.errors.map(formatProblem).join('\n'),
    /c\.yaml:5:\d+ routes\[1\]\.match: never reached: routes\[0\] \("a"\)/,
  )
  // not shadowed: other methods, another prefix, other hosts, or the narrower route first
  for (const routes of [
    `  - { name: a, upstream: api, match: { pathPrefix: /api, methods: [POST] } }
  - { name: b, upstream: api, match: { pathPrefix: /api, methods: [GET] } }`,
    `  - { name: a, upstream: api, match: { pathPrefix: /api } }
  - { name: b, upstream: api, match: { pathPrefix: /api/v2 } }`,
    `  - { name: a, upstream: api, match: { pathPrefix: /api, hosts: [a.example] } }
  - { name: b, upstream: api, match: { pathPrefix: /api } }`,
    `  - { name: b, upstream: api, match: { pathPrefix: /api, methods: [GET] } }
  - { name: a, upstream: api, match: { pathPrefix: /api } }`,
  ])
    assert.deepEqual(loadConfigText(yaml(routes), 'c.yaml').errors, [], routes)
})
