/**
 * The observability examples (examples/observability/): the alert rules pass `promtool check
 * rules` and their unit tests (`promtool test rules`), every Grafana dashboard query is valid
 * PromQL (checked by promtool as a recording rule), and rules and dashboard use only metrics the
 * gateway exposes (docs/metrics.md, itself checked against a live scrape in metrics.test.ts).
 * promtool is Debian's `prometheus` package (scripts/test-deps.sh installs it).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { stringify } from 'yaml'

const ROOT = new URL('../../', import.meta.url).pathname
const DIR = join(ROOT, 'examples/observability')
const RULES = join(DIR, 'prometheus-alerts.yaml')
const probe = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
const missing = probe.error
  ? 'promtool is not installed (Debian package prometheus; scripts/test-deps.sh)'
  : false

function promtool(args: string[], cwd = DIR): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 120_000 })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

/** Metric names an expression reads (histogram sample suffixes folded into their family). */
function metricsIn(expr: string): string[] {
  const names = expr.match(/\b(portcullis|process|nodejs)_[a-z0-9_]+/g) ?? []
  return names.map((n) => n.replace(/_(bucket|sum|count)$/, ''))
}

/** Every metric name docs/metrics.md lists (table rows and the process list). */
function documented(): Set<string> {
  const doc = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8')
  const out = new Set<string>()
  for (const m of doc.matchAll(/`((?:portcullis|process|nodejs)_[a-z0-9_]+)`/g)) out.add(m[1] as string)
  for (const m of doc.matchAll(/`nodejs_eventloop_lag_\{([a-z0-9,]+)\}_seconds`/g))
    for (const v of (m[1] as string).split(',')) out.add(`nodejs_eventloop_lag_${v}_seconds`)
  return out
}

interface Panel {
  title: string
  type: string
  targets?: { expr: string }[]
  panels?: Panel[]
}

describe('observability examples', () => {
  // A missing tool fails the suite (never a silent skip): `npm run test:deps` installs it.
  before(() => assert.equal(missing, false, String(missing)))

  test('promtool check rules: the alert rules', () => {
    const r = promtool(['check', 'rules', RULES])
    assert.equal(r.status, 0, r.out)
    assert.match(r.out, /SUCCESS: \d+ rules found/)
  })

  test('promtool test rules: the alerts fire when they should and only then', () => {
    const r = promtool(['test', 'rules', 'prometheus-alerts.test.yaml'])
    assert.equal(r.status, 0, r.out)
    assert.match(r.out, /SUCCESS/)
  })

  test('the check can fail: a broken expression and a wrong expectation are refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-promtool-'))
    try {
      const bad = readFileSync(RULES, 'utf8').replace('up{job="portcullis"} == 0', 'up{job="portcullis" == 0')
      writeFileSync(join(dir, 'bad.yaml'), bad)
      assert.notEqual(promtool(['check', 'rules', join(dir, 'bad.yaml')], dir).status, 0)
      writeFileSync(join(dir, 'prometheus-alerts.yaml'), readFileSync(RULES, 'utf8'))
      const tests = readFileSync(join(DIR, 'prometheus-alerts.test.yaml'), 'utf8').replace(
        'eval_time: 4m\n        alertname: PortcullisDown',
        'eval_time: 1m\n        alertname: PortcullisDown\n        exp_alerts: [{ exp_labels: { severity: critical } }]\n      - eval_time: 4m\n        alertname: PortcullisDown',
      )
      writeFileSync(join(dir, 't.yaml'), tests)
      assert.notEqual(promtool(['test', 'rules', 't.yaml'], dir).status, 0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('every dashboard query is valid PromQL over metrics the gateway exposes', () => {
    const dash = JSON.parse(readFileSync(join(DIR, 'grafana-dashboard.json'), 'utf8')) as {
      panels: Panel[]
      templating: { list: { name: string }[] }
      uid: string
    }
    assert.equal(dash.uid, 'portcullis-gateway')
    const exprs: { title: string; expr: string }[] = []
    const walk = (ps: Panel[]) => {
      for (const p of ps) {
        for (const t of p.targets ?? []) exprs.push({ title: p.title, expr: t.expr })
        if (p.panels) walk(p.panels)
      }
    }
    walk(dash.panels)
    assert.ok(exprs.length >= 20, `${exprs.length} queries`)
    const vars = new Set(dash.templating.list.map((v) => v.name))
    // Grafana's variables, as Grafana would substitute them.
    const concrete = exprs.map((e, i) => {
      for (const v of e.expr.matchAll(/\$(\w+)/g))
        if (!['__rate_interval', '__range'].includes(v[1] as string))
          assert.ok(vars.has(v[1] as string), `${e.title}: unknown variable $${v[1]}`)
      return {
        record: `dashboard:query_${i}`,
        expr: e.expr.replace(/\$__rate_interval|\$__range/g, '5m').replace(/\$(job|instance|route)/g, '.*'),
      }
    })
    const dir = mkdtempSync(join(tmpdir(), 'pc-promtool-'))
    try {
      writeFileSync(
        join(dir, 'dashboard-rules.yaml'),
        stringify({ groups: [{ name: 'dashboard', rules: concrete }] }),
      )
      const r = promtool(['check', 'rules', join(dir, 'dashboard-rules.yaml')], dir)
      assert.equal(r.status, 0, r.out)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    const known = documented()
    const rules = readFileSync(RULES, 'utf8')
    const unknown = [...exprs.map((e) => e.expr), rules].flatMap(metricsIn).filter((n) => !known.has(n))
    assert.deepEqual([...new Set(unknown)], [])
  })
})
