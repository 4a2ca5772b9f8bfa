import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { parse } from 'yaml'
import { formatDuration, parseDuration } from '../util/duration.js'
import { normalizeDurations } from './durations.js'
import { loadConfigText } from './load.js'
import type { Problem } from './messages.js'
import { loadGatewayConfig } from './policy-checks.js'
import { GatewayConfig } from './schema.js'

const base = (extra: string) => `listeners: [ { name: public, port: 0 } ]
upstreams:
  api:
    targets: [ { url: "http://127.0.0.1:3000" } ]
${extra}
routes: [ { name: api, upstream: api } ]
`
const upstream = (fields: string) =>
  base('').replace(
    'targets: [ { url: "http://127.0.0.1:3000" } ]',
    `targets: [ { url: "http://127.0.0.1:3000" } ]\n    ${fields}`,
  )

describe('the duration grammar', () => {
  test('parseDuration: every unit, 0, and what is not a duration', () => {
    assert.equal(parseDuration('500ms'), 500)
    assert.equal(parseDuration('30s'), 30_000)
    assert.equal(parseDuration('5m'), 300_000)
    assert.equal(parseDuration('1h'), 3_600_000)
    assert.equal(parseDuration('7d'), 604_800_000)
    assert.equal(parseDuration('2w'), 1_209_600_000)
    assert.equal(parseDuration('0'), 0)
    for (const bad of [
      '',
      '5',
      '1.5s',
      '-1s',
      ' 5s',
      '5s ',
      '5 s',
      '1h30m',
      '5S',
      'ms',
      '5sec',
      '0x10s',
      '１s',
      '5e3ms',
    ])
      assert.equal(parseDuration(bad), undefined, bad)
    assert.equal(parseDuration('99999999999999999999d'), undefined, 'too long')
    assert.equal(parseDuration(`${'9'.repeat(12)}d`), undefined, 'over 100 years')
    assert.equal(parseDuration('a'.repeat(100_000)), undefined, 'hostile length')
  })

  test('formatDuration: the largest exact unit', () => {
    assert.equal(formatDuration(90_000), '90s')
    assert.equal(formatDuration(3_600_000), '1h')
    assert.equal(formatDuration(1500), '1500ms')
    assert.equal(formatDuration(0), '0')
  })
})

describe('durations in the config', () => {
  test('unit-less names take durations and become the unit-named fields', () => {
    const r = loadConfigText(upstream('connectTimeout: 2s\n    headersTimeout: 500ms'), 'c.yaml')
    assert.deepEqual(r.errors, [])
    const up = r.config?.upstreams.api
    assert.equal(up?.connectTimeoutMs, 2000)
    assert.equal(up?.headersTimeoutMs, 500)
  })

  test('a seconds field and a days field', () => {
    const r = loadConfigText(
      `${base('reload: { watch: false }')}policies:\n  brute-force-lockout: { window: 5m, lockout: 1m }\ninventory: { enabled: true, retention: 30d }\n`,
      'c.yaml',
    )
    assert.deepEqual(r.errors, [])
    const bfl = r.config?.policies['brute-force-lockout'] as { windowSec: number; lockoutSec: number }
    assert.equal(bfl.windowSec, 300)
    assert.equal(bfl.lockoutSec, 60)
    assert.equal(r.config?.inventory.retentionDays, 30)
  })

  test('a config object from code keeps the unit-named form (programmatic)', () => {
    const r = loadConfigText(upstream('connectTimeoutMs: 2000'), 'c.yaml', { programmatic: true })
    assert.deepEqual(r.errors, [])
    assert.equal(r.config?.upstreams.api?.connectTimeoutMs, 2000)
    const json = JSON.stringify({
      listeners: [{ name: 'public' }],
      upstreams: { api: { targets: [{ url: 'http://127.0.0.1:3000' }] } },
      routes: [{ name: 'api', upstream: 'api' }],
      shutdown: { drainTimeoutMs: 3000 },
    })
    assert.equal(loadConfigText(json, 'c', { programmatic: true }).config?.shutdown.drainTimeoutMs, 3000)
    assert.equal(loadConfigText(json, 'c').config, undefined, 'the same document as a file is refused')
  })
  test('ambiguous forms are refused, the duration form in the message', () => {
    const cases: [string, RegExp][] = [
      ['connectTimeout: 2000', /a duration needs its unit: write `connectTimeout: 2000ms`/],
      ['connectTimeoutMs: 2s', /^the old form; write `connectTimeout: 2s`$/],
      [
        'connectTimeout: 2s\n    connectTimeoutMs: 2000',
        /`connectTimeoutMs` is the old form of `connectTimeout`, which is also set: remove `connectTimeoutMs`/,
      ],
      ['connectTimeout: soon', /expected a duration \(500ms, 30s, 5m, 1h, 7d\), found "soon"/],
      ['connectTimeout: 1.5s', /expected a duration/],
      ['connectTimeout: null', /expected a duration.*found null/],
    ]
    for (const [fields, message] of cases) {
      const r = loadConfigText(upstream(fields), 'c.yaml')
      assert.equal(r.config, undefined, fields)
      assert.ok(
        r.errors.some((e) => message.test(e.message) && e.path.startsWith('upstreams.api.connectTimeout')),
        `${fields}: ${JSON.stringify(r.errors)}`,
      )
      assert.ok(
        r.errors.every((e) => e.line !== undefined),
        'located in the document',
      )
    }
  })

  test('a seconds field refuses a duration that is not whole seconds', () => {
    const r = loadConfigText(`${base('')}policies:\n  brute-force-lockout: { window: 1500ms }\n`, 'c.yaml')
    assert.equal(r.config, undefined)
    assert.match(r.errors[0]?.message ?? '', /counted in whole seconds: 1500ms is not one/)
  })

  test('a rewritten value out of range is reported under the name written', () => {
    const r = loadConfigText(upstream('connectTimeout: 0'), 'c.yaml')
    assert.equal(r.config, undefined)
    const e = r.errors.find((x) => x.path.includes('connectTimeout'))
    assert.equal(e?.path, 'upstreams.api.connectTimeout', JSON.stringify(r.errors))
    assert.match(e?.message ?? '', /\(connectTimeout: 0\)/)
  })

  test('a route-level policy and an array member are reached', () => {
    const r = loadConfigText(
      base('').replace(
        'routes: [ { name: api, upstream: api } ]',
        'routes: [ { name: api, upstream: api, policies: { cors: { origins: ["https://a.example"], maxAge: 10m } } } ]',
      ),
      'c.yaml',
    )
    assert.deepEqual(r.errors, [])
    const cors = r.config?.routes[0]?.policies?.cors as { maxAgeSec: number }
    assert.equal(cors.maxAgeSec, 600)
  })
})

/** Line and column (1-based) of the first occurrence of `needle` in `text`. */
function at(text: string, needle: string): { line: number; column: number } {
  const i = text.indexOf(needle)
  assert.ok(i >= 0, needle)
  const before = text.slice(0, i).split('\n')
  return { line: before.length, column: (before[before.length - 1] ?? '').length + 1 }
}

const withListener = (extra: string) => `listeners:
  - name: public
    headersTimeoutMs: 10000
upstreams:
  api:
    targets: [ { url: "http://127.0.0.1:3000" } ]
routes:
  - name: api
    upstream: api
${extra}`

describe('the old form (a unit-named duration field in a config file) is refused', () => {
  // [the document, the old field as written, the new form the message must name]
  const cases: [string, string, string][] = [
    // Ms, in an array (listeners[0])
    [withListener(''), 'headersTimeoutMs: 10000', 'headersTimeout: 10s'],
    // Ms, in a record member (upstreams.api)
    [upstream('connectTimeoutMs: 2500'), 'connectTimeoutMs: 2500', 'connectTimeout: 2500ms'],
    // Sec, in a global policy
    [
      `${base('')}policies:\n  brute-force-lockout: { maxFailures: 5, windowSec: 300 }\n`,
      'windowSec: 300',
      'window: 5m',
    ],
    // Seconds, top-level section
    [
      `${base('')}admin: { revocationDefaultTtlSeconds: 3600 }\n`,
      'revocationDefaultTtlSeconds: 3600',
      'revocationDefaultTtl: 1h',
    ],
    // Seconds, in a route's policy (routes[0].policies)
    [
      base('').replace(
        'routes: [ { name: api, upstream: api } ]',
        'routes:\n  - name: api\n    upstream: api\n    policies:\n      api-key-auth: { store: keys.json, maxStaleSeconds: 90 }',
      ),
      'maxStaleSeconds: 90',
      'maxStale: 90s',
    ],
    // Days
    [`${base('')}inventory: { enabled: true, retentionDays: 14 }\n`, 'retentionDays: 14', 'retention: 14d'],
    // Ms, in an array inside a route policy (rate-limit limits[0].throttle)
    [
      base('').replace(
        'routes: [ { name: api, upstream: api } ]',
        'routes:\n  - name: api\n    upstream: api\n    policies:\n      rate-limit:\n        limits:\n          - { rate: 5, per: second, throttle: { maxQueue: 5, maxWaitMs: 60000 } }',
      ),
      'maxWaitMs: 60000',
      'maxWait: 1m',
    ],
    // the audit sinks
    [
      `${base('')}audit:\n  sink: http\n  http:\n    url: https://collector.example/v1\n    timeoutMs: 10000\n`,
      'timeoutMs: 10000',
      'timeout: 10s',
    ],
    [
      `${base('')}audit:\n  sink: http\n  http:\n    url: https://collector.example/v1\n    retry: { min: 200ms, maxMs: 30000 }\n`,
      'maxMs: 30000',
      'max: 30s',
    ],
    [
      `${base('')}audit:\n  sink: syslog\n  syslog: { host: logs.example, settleMs: 1000 }\n`,
      'settleMs: 1000',
      'settle: 1s',
    ],
    // the stores
    [
      `${base('')}stores:\n  backend: redis\n  redis: { url: "redis://127.0.0.1:6379", commandTimeoutMs: 2000 }\n`,
      'commandTimeoutMs: 2000',
      'commandTimeout: 2s',
    ],
    [`${base('')}stores:\n  memory: { sweepIntervalMs: 0 }\n`, 'sweepIntervalMs: 0', 'sweepInterval: 0'],
  ]

  for (const [doc, old, replacement] of cases) {
    test(`${old} → ${replacement}`, () => {
      const r = loadConfigText(doc, 'gw.yaml')
      assert.equal(r.config, undefined)
      const key = old.slice(0, old.indexOf(':'))
      const e = r.errors.find((x) => x.path.endsWith(key))
      assert.ok(e, JSON.stringify(r.errors))
      // located at the key, as written
      assert.deepEqual({ line: e.line, column: e.column }, at(doc, old))
      assert.match(e.message, /^the old form \(a number of (milliseconds|seconds|days)\); write `/)
      assert.ok(e.message.endsWith(`write \`${replacement}\``), e.message)
      // the one problem about that field (nothing else about it from the schema)
      assert.equal(r.errors.filter((x) => x.path === e.path).length, 1)
      // the replacement means the same: the new document normalizes to the old one
      const oldDoc = parse(doc) as unknown
      const newDoc = parse(doc.replace(old, replacement)) as unknown
      const problems: Problem[] = []
      normalizeDurations(newDoc, GatewayConfig, problems)
      // the old document read as a config object from code (where the old form is the form)
      normalizeDurations(oldDoc, GatewayConfig, problems, { programmatic: true })
      assert.deepEqual(problems, [])
      assert.deepEqual(newDoc, oldDoc)
    })
  }

  test('several old fields: one problem each, all at once, in document order', () => {
    const doc = `${withListener('shutdown: { drainTimeoutMs: 5000, idleGraceMs: 1000 }\n')}`
    const r = loadConfigText(doc, 'gw.yaml')
    assert.deepEqual(
      r.errors.map((e) => `${e.line}:${e.column} ${e.path}`),
      ['3:5 listeners[0].headersTimeoutMs', '10:13 shutdown.drainTimeoutMs', '10:35 shutdown.idleGraceMs'],
    )
  })

  test('a JSON config gets the suggestion in JSON', () => {
    const doc = JSON.stringify({
      listeners: [{ name: 'public' }],
      upstreams: { api: { targets: [{ url: 'http://127.0.0.1:3000' }], connectTimeoutMs: 2000 } },
      routes: [{ name: 'api', upstream: 'api' }],
      shutdown: { idleGraceMs: 0 },
    })
    const r = loadConfigText(doc, 'gw.json')
    assert.deepEqual(
      r.errors.map((e) => e.message),
      [
        'the old form (a number of milliseconds); write `"connectTimeout": "2s"`',
        'the old form (a number of milliseconds); write `"idleGrace": 0`',
      ],
    )
    assert.equal(r.errors[0]?.column, doc.indexOf('"connectTimeoutMs"') + 1)
  })

  test('a value with no exact duration: the field named, the grammar given', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ${env:} is config syntax
    for (const value of ['1.5', '-5', '1e300', 'null', '[1]', '"soon"', '"${env:T}"']) {
      const r = loadConfigText(upstream(`connectTimeoutMs: ${value}`), 'gw.yaml', { env: { T: '2000' } })
      assert.equal(r.config, undefined, value)
      const e = r.errors.find((x) => x.path === 'upstreams.api.connectTimeoutMs')
      assert.match(
        e?.message ?? '',
        /^the old form.*; write `connectTimeout` as a duration \(500ms, 30s, 5m, 1h, 7d\)$/,
        value,
      )
      assert.ok(!(e?.message ?? '').includes('2000'), 'a substituted value is not shown')
    }
  })

  test('old and new spelling of one field: the old one is to be removed', () => {
    const r = loadConfigText(upstream('connectTimeout: 2s\n    connectTimeoutMs: 2000'), 'gw.yaml')
    assert.deepEqual(
      r.errors.map((e) => [e.path, e.message]),
      [
        [
          'upstreams.api.connectTimeout',
          '`connectTimeoutMs` is the old form of `connectTimeout`, which is also set: remove `connectTimeoutMs` (a duration: 500ms, 30s, 5m, 1h, 7d)',
        ],
      ],
    )
  })

  test('names that merely end like a unit are not duration fields', () => {
    // `maxItems`-like names and unit-named fields that are not numbers are not touched: a config
    // without any duration loads
    const r = loadConfigText(base(''), 'gw.yaml')
    assert.deepEqual(r.errors, [])
  })
})

describe("a policy's check names a rewritten duration field as written", () => {
  test('remote.maxStale (written) rather than remote.maxStaleMs (the code reads), at its line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-durations-'))
    try {
      const jwks = join(dir, 'jwks.json')
      writeFileSync(jwks, JSON.stringify({ keys: [] }))
      const text = `${base('')}policies:
  jwt-auth:
    algorithms: [ES256]
    jwksFile: ${jwks}
    remote:
      refreshInterval: 10m
      maxStale: 1m
`
      const r = await loadGatewayConfig(join(dir, 'gw.yaml'), { text })
      const e = r.errors.find((x) => x.message.startsWith('must be at least remote.refreshInterval'))
      assert.ok(e, JSON.stringify(r.errors))
      assert.equal(e.path, 'policies.jwt-auth.remote.maxStale')
      assert.equal(e.line, text.split('\n').findIndex((l) => l.includes('maxStale: 1m')) + 1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
