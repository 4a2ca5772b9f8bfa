/**
 * `portcullis config check` end to end: the real CLI (bin/portcullis.js, after the build) in a
 * child process, so exit codes and output streams are exactly what a user or CI sees.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

const root = new URL('../../../../../', import.meta.url).pathname
const bin = join(root, 'bin/portcullis.js')

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH, ...env },
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** What `config check` prints for a valid config without `admin.token`. */
const ADMIN_NOTE =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${env:} is config syntax
  'note: admin API (/v1/) disabled: set admin.token (at least 32 characters, e.g. ${env:PORTCULLIS_ADMIN_TOKEN}) to enable it\n'

const GOOD = `listeners:
  - name: public
upstreams:
  api:
    targets:
      - url: http://127.0.0.1:3000
routes:
  - name: api
    upstream: api
`

/** Four mistakes, one per line 3, 7, 10 and 11. */
const BAD = `listeners:
  - name: public
    port: "8080"
upstreams:
  api:
    targets:
      - url: http://user:pass@127.0.0.1:3000
routes:
  - name: api
    upstream: apis
    stripprefix: true
`

let dir: string
let good: string
let bad: string
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-check-'))
  good = join(dir, 'good.yaml')
  bad = join(dir, 'bad.yaml')
  writeFileSync(good, GOOD)
  writeFileSync(bad, BAD)
})
after(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('portcullis config check', () => {
  it('exits 2 on a bad file and prints every error with file:line:col', () => {
    const r = cli(['config', 'check', bad])
    assert.equal(r.code, 2, r.stdout + r.stderr)
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('error: '))
    assert.deepEqual(errors, [
      `error: ${bad}:3:11 listeners[0].port: expected integer, found string "8080"`,
      `error: ${bad}:7:14 upstreams.api.targets[0].url: credentials in a target URL are not allowed`,
      `error: ${bad}:10:15 routes[0].upstream: expected one of the upstreams (api), found "apis"`,
      `error: ${bad}:11:5 routes[0].stripprefix: unknown field "stripprefix" (expected one of: name, match, upstream, stripPrefix, methodOverride, requestBuffering, websocket, responseBodyLimit, policies, authentication)`,
    ])
    assert.match(r.stdout, /bad\.yaml: 4 errors\n$/)
    assert.ok(!r.stdout.includes('user:pass'), 'credentials echoed')
  })

  it('exits 0 on a good file', () => {
    const r = cli(['config', 'check', good])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.equal(r.stdout, `${ADMIN_NOTE}${good}: valid\n`)
    assert.equal(r.stderr, '')
  })

  it('checks admin.token: at least 32 characters, never printed; no note once it is set', () => {
    const f = join(dir, 'admin-token.yaml')
    writeFileSync(f, `${GOOD}admin:\n  token: \${env:ADMIN_TOKEN}\n`)
    const short = 'short-admin-token-value'
    let r = cli(['config', 'check', f], { ADMIN_TOKEN: short })
    assert.equal(r.code, 2, r.stdout + r.stderr)
    assert.match(r.stdout, /admin\.token: .*32.*secret, not shown/)
    assert.ok(!(r.stdout + r.stderr).includes(short), 'token echoed')
    const long = 'a-long-enough-admin-token-0123456789abcdef'
    r = cli(['config', 'check', f], { ADMIN_TOKEN: long })
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.equal(r.stdout, `${f}: valid\n`)
  })

  it('exits 0 with warnings, and prints them', () => {
    const f = join(dir, 'warn.yaml')
    writeFileSync(f, `${GOOD}admin:\n  host: 0.0.0.0\n`)
    const r = cli(['config', 'check', f])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(
      r.stdout,
      /^warning: .*warn\.yaml:11:9 admin\.host: admin listener bound to 0\.0\.0\.0, not loopback$/m,
    )
    assert.match(r.stdout, /warn\.yaml: valid \(1 warning\)\n$/)
  })

  it('--format json prints one parseable document', () => {
    const b = cli(['config', 'check', '--format', 'json', bad])
    assert.equal(b.code, 2)
    const out = JSON.parse(b.stdout) as {
      valid: boolean
      errors: { file: string; path: string; line: number; column: number; message: string }[]
      warnings: unknown[]
    }
    assert.equal(out.valid, false)
    assert.equal(out.errors.length, 4)
    assert.deepEqual(out.errors[2], {
      file: bad,
      path: 'routes[0].upstream',
      line: 10,
      column: 15,
      message: 'expected one of the upstreams (api), found "apis"',
    })
    assert.deepEqual(out.warnings, [])
    const g = cli(['config', 'check', good, '--format=json'])
    assert.equal(g.code, 0)
    assert.deepEqual(JSON.parse(g.stdout), { valid: true, errors: [], warnings: [] })
  })

  it('never prints a substituted secret', () => {
    const f = join(dir, 'secret.yaml')
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ${env:} is config syntax
    writeFileSync(f, GOOD.replace('  - name: public\n', '  - name: public\n    port: ${env:SECRET_PORT}\n'))
    for (const format of ['text', 'json']) {
      const r = cli(['config', 'check', '--format', format, f], { SECRET_PORT: 's3cr3t-value' })
      assert.equal(r.code, 2)
      assert.match(r.stdout, /secret, not shown/)
      assert.ok(!(r.stdout + r.stderr).includes('s3cr3t-value'))
    }
  })

  it('exits 2 with a clear message for a missing file', () => {
    const missing = join(dir, 'does-not-exist.yaml')
    const r = cli(['config', 'check', missing])
    assert.equal(r.code, 2)
    assert.equal(
      r.stdout,
      `error: ${missing}: cannot read the file: ENOENT: no such file or directory\n${missing}: 1 error\n`,
    )
  })

  it('exits 2 on a YAML syntax error, with its line', () => {
    const f = join(dir, 'syntax.yaml')
    writeFileSync(f, `${GOOD}proxy:\n  trustedProxies: [10.0.0.1\n`)
    const r = cli(['config', 'check', f])
    assert.equal(r.code, 2)
    assert.match(r.stdout, new RegExp(`^error: ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `, 'm'))
  })

  it('without FILE: $PORTCULLIS_CONFIG, else ./portcullis.yaml; two files are a usage error', () => {
    const two = cli(['config', 'check', 'a.yaml', 'b.yaml'])
    assert.equal(two.code, 2)
    assert.equal(two.stdout, '')
    assert.match(two.stderr, /^portcullis: usage: portcullis config check \[FILE\]/)
    const fromEnv = cli(['config', 'check'], { PORTCULLIS_CONFIG: good })
    assert.equal(fromEnv.code, 0, fromEnv.stdout + fromEnv.stderr)
    assert.equal(fromEnv.stdout, `${ADMIN_NOTE}${good}: valid\n`)
    const fallback = cli(['config', 'check']) // the repository root has no portcullis.yaml
    assert.equal(fallback.code, 2)
    assert.match(fallback.stdout + fallback.stderr, /portcullis\.yaml/)
  })

  it('durations: a bare number, a duration under the unit-named field and the old form are refused, naming the duration form', () => {
    const file = join(dir, 'durations.yaml')
    writeFileSync(
      file,
      GOOD.replace(
        '      - url: http://127.0.0.1:3000',
        '      - url: http://127.0.0.1:3000\n    connectTimeout: 2000\n    headersTimeoutMs: 30s\n    bodyTimeoutMs: 120000',
      ),
    )
    const r = cli(['config', 'check', file])
    assert.equal(r.code, 2, r.stdout + r.stderr)
    assert.match(
      r.stdout,
      /:7:21 upstreams\.api\.connectTimeout: a duration needs its unit: write `connectTimeout: 2000ms`/,
    )
    // the old form: located at its key, the new form with the same value in the message
    assert.match(r.stdout, /:8:5 upstreams\.api\.headersTimeoutMs: the old form; write `headersTimeout: 30s`/)
    assert.match(
      r.stdout,
      /:9:5 upstreams\.api\.bodyTimeoutMs: the old form \(a number of milliseconds\); write `bodyTimeout: 2m`/,
    )
    writeFileSync(
      file,
      GOOD.replace(
        '      - url: http://127.0.0.1:3000',
        '      - url: http://127.0.0.1:3000\n    connectTimeout: 2s\n    bodyTimeout: 2m',
      ),
    )
    assert.equal(cli(['config', 'check', file]).code, 0)
  })

  it('the old duration form alone: exit 2, one problem per field, each with the new form', () => {
    const file = join(dir, 'old-durations.yaml')
    writeFileSync(
      file,
      `${GOOD}shutdown: { drainTimeoutMs: 10000 }\ninventory: { enabled: true, retentionDays: 30 }\n`,
    )
    const r = cli(['config', 'check', file, '--format', 'json'])
    assert.equal(r.code, 2, r.stdout + r.stderr)
    const out = JSON.parse(r.stdout) as {
      errors: { path: string; line: number; column: number; message: string }[]
    }
    assert.deepEqual(
      out.errors.map((e) => [e.path, e.line, e.column, e.message]),
      [
        [
          'shutdown.drainTimeoutMs',
          10,
          13,
          'the old form (a number of milliseconds); write `drainTimeout: 10s`',
        ],
        ['inventory.retentionDays', 11, 29, 'the old form (a number of days); write `retention: 30d`'],
      ],
    )
  })

  it('exits 2 on a bad option or subcommand', () => {
    let r = cli(['config', 'check', '--format', 'yaml', good])
    assert.equal(r.code, 2)
    assert.equal(r.stderr, 'portcullis: --format is text or json\n')
    r = cli(['config', 'check', '--strict', good])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /^portcullis: .*--strict/)
    r = cli(['config', 'lint', good])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /unknown config subcommand "lint"\nusage: portcullis config check \[FILE\]/)
  })

  for (const name of ['minimal.yaml', 'full.yaml']) {
    it(`passes examples/config/${name}`, () => {
      const r = cli(['config', 'check', `examples/config/${name}`])
      assert.equal(r.code, 0, r.stdout + r.stderr)
      assert.equal(r.stdout, `${ADMIN_NOTE}examples/config/${name}: valid\n`)
    })
  }
})
