import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { formatDuration, parseDuration } from '../util/duration.js'
import { loadConfigText } from './load.js'

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

  test('the old unit-named number form still loads (the unit is in its name)', () => {
    const r = loadConfigText(upstream('connectTimeoutMs: 2000'), 'c.yaml')
    assert.deepEqual(r.errors, [])
    assert.equal(r.config?.upstreams.api?.connectTimeoutMs, 2000)
  })

  test('ambiguous forms are refused, the duration form in the message', () => {
    const cases: [string, RegExp][] = [
      ['connectTimeout: 2000', /a duration needs its unit: write `connectTimeout: 2000ms`/],
      ['connectTimeoutMs: 2s', /`connectTimeoutMs` takes a number of milliseconds.*`connectTimeout: 2s`/],
      ['connectTimeout: 2s\n    connectTimeoutMs: 2000', /same setting: keep `connectTimeout`/],
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
