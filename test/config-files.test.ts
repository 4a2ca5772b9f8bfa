/**
 * Every gateway config the project ships or shows loads: the YAML and JSON configs under
 * examples/ and deploy/ (the ConfigMap's document, the Helm chart's default `config`) through the
 * whole check (`portcullis config check`), and every config snippet of docs/ (fenced yaml/json
 * blocks whose top-level keys are gateway config sections; completed with a listener, an upstream
 * and a route where the snippet leaves them out) through the loader. A snippet that is not valid
 * on purpose (a placeholder, the invalid example of `config check`) is listed below with why, and
 * must still fail (the list cannot go stale). Then the old duration form (`timeoutMs: 5000`,
 * docs/config.md "Durations"): no config file, fixture or docs block (fragments included) writes
 * it; scripts/migrate-durations.ts, which finds it by the schema's field names, says so.
 * The bench scenarios' configs (bench/scenarios.ts, written to a file by the bench) pass the
 * whole check too.
 * (The deploy manifests are also loaded per rendered value set by test/deploy-kubernetes.test.ts,
 * and examples/config and examples/demo built by test/config-agreement.test.ts.)
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { after, describe, test } from 'node:test'
import { parse, parseAllDocuments, stringify } from 'yaml'
import { basePortcullisConfig, benchRedis, SCENARIOS } from '../bench/scenarios.js'
import { migrateText } from '../scripts/migrate-durations.js'
import { formatProblem, loadConfigText } from '../src/config/load.js'
import { loadGatewayConfig } from '../src/config/policy-checks.js'
import { GatewayConfig } from '../src/config/schema.js'

const ROOT = new URL('../../', import.meta.url).pathname
const TOP = new Set(Object.keys(GatewayConfig.properties))
const TOKEN = 'x'.repeat(40)

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(join(ROOT, dir))) {
    if (name === 'node_modules') continue
    const p = join(dir, name)
    if (statSync(join(ROOT, p)).isDirectory()) files(p, out)
    else out.push(p)
  }
  return out
}

/** A mapping whose keys are all gateway config sections, with routes or listeners among them. */
function isGatewayConfig(doc: unknown): doc is Record<string, unknown> {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return false
  const keys = Object.keys(doc)
  return (
    keys.length > 0 &&
    keys.every((k) => TOP.has(k)) &&
    (keys.includes('routes') || keys.includes('listeners'))
  )
}

/** A fenced block of a Markdown file. */
interface Block {
  file: string
  line: number
  lang: string
  text: string
}

function fencedBlocks(file: string): Block[] {
  const text = readFileSync(join(ROOT, file), 'utf8')
  const out: Block[] = []
  const fence = /^([ \t]*)(```+|~~~+)[ \t]*([\w-]*)[^\n]*\n([\s\S]*?)^\1\2[ \t]*$/gm
  for (let m = fence.exec(text); m !== null; m = fence.exec(text)) {
    const indent = m[1] ?? ''
    const body = (m[4] ?? '')
      .split('\n')
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
      .join('\n')
    out.push({
      file,
      line: text.slice(0, m.index).split('\n').length,
      lang: (m[3] ?? '').toLowerCase(),
      text: body,
    })
  }
  return out
}

const DOCS = files('docs').filter((f) => f.endsWith('.md'))
const BLOCKS = DOCS.flatMap(fencedBlocks).filter((b) => ['yaml', 'yml', 'json', 'jsonc'].includes(b.lang))

/** The docs config snippets: blocks that parse to a gateway config (or part of one). */
const SNIPPETS = BLOCKS.flatMap((b) => {
  let doc: unknown
  try {
    doc = parse(b.text)
  } catch {
    return []
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return []
  const keys = Object.keys(doc)
  return keys.length > 0 && keys.every((k) => TOP.has(k))
    ? [{ ...b, doc: doc as Record<string, unknown> }]
    : []
})

/**
 * Snippets invalid on purpose: [file, a line of the snippet, why]. Each must still be refused.
 */
const INVALID_ON_PURPOSE: [string, string, string][] = [
  ['docs/config.md', 'upstream: apis', 'the example of what `config check` reports'],
  ['docs/benchmarks.md', '<free port>', 'placeholders for the ports the bench picks'],
  ['docs/policies/README.md', '...', '`...` for the settings the page leaves out'],
  ['docs/policies/rate-limit.md', '...', '`...` for the settings the page leaves out'],
  ['docs/websocket.md', '...', '`...` for the settings the page leaves out'],
  ['docs/policies/ban.md', 'policies:', 'a route fragment (its match and policies only)'],
]

/** What `${env:NAME}` reads in a snippet: a value of the kind the name says. */
const SNIPPET_ENV = new Proxy({} as NodeJS.ProcessEnv, {
  get: (_, name) =>
    typeof name !== 'string'
      ? undefined
      : /REDIS_URL/.test(name)
        ? 'redis://127.0.0.1:6379'
        : /URL/.test(name)
          ? 'https://example.test/'
          : 'x'.repeat(48),
})

/** The snippet as a whole config: a listener, the upstreams its routes name, a route. */
function completed(s: (typeof SNIPPETS)[number]): string {
  const routes = Array.isArray(s.doc.routes) ? (s.doc.routes as { upstream?: unknown }[]) : []
  const upstreams = new Set(['api', ...routes.map((r) => r?.upstream).filter((u) => typeof u === 'string')])
  const extra: Record<string, unknown> = {}
  if (!('listeners' in s.doc)) extra.listeners = [{ name: 'public' }]
  if (!('upstreams' in s.doc))
    extra.upstreams = Object.fromEntries(
      [...upstreams].map((u) => [u, { targets: [{ url: 'http://127.0.0.1:3000' }] }]),
    )
  if (!('routes' in s.doc)) extra.routes = [{ name: 'api', upstream: 'api' }]
  const more = Object.entries(extra).map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
  return s.lang === 'yaml' || s.lang === 'yml'
    ? `${s.text}\n${more.join('\n')}\n`
    : JSON.stringify({ ...s.doc, ...extra })
}

describe('the configs the project ships and shows', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'pc-config-files-'))
  after(() => rmSync(tmp, { recursive: true, force: true }))

  test('every gateway config file under examples/ passes config check', async () => {
    const found = files('examples').filter((f) => /\.(ya?ml|json)$/.test(f))
    const configs = found.filter((f) => {
      try {
        return isGatewayConfig(parse(readFileSync(join(ROOT, f), 'utf8')))
      } catch {
        return false
      }
    })
    assert.ok(configs.length >= 4, configs.join(', '))
    for (const f of configs) {
      const r = await loadGatewayConfig(join(ROOT, f), { env: { PORTCULLIS_ADMIN_TOKEN: TOKEN } })
      assert.deepEqual(r.errors.map(formatProblem), [], f)
    }
  })

  test("deploy/: the ConfigMap's config and the chart's default config pass config check", async () => {
    const cm = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes/configmap.yaml'), 'utf8'))
      .map((d) => d.toJS() as { kind?: string; data?: Record<string, string> })
      .find((d) => d.kind === 'ConfigMap')
    const values = parse(readFileSync(join(ROOT, 'deploy/helm/portcullis/values.yaml'), 'utf8')) as {
      config: unknown
    }
    const docs: [string, string][] = [
      ['configmap.yaml', cm?.data?.['portcullis.yaml'] ?? ''],
      ['values.yaml', JSON.stringify(values.config)],
    ]
    for (const [name, text] of docs) {
      assert.ok(isGatewayConfig(parse(text)), name)
      const file = join(tmp, name)
      writeFileSync(file, text)
      const r = await loadGatewayConfig(file, { env: { PORTCULLIS_ADMIN_TOKEN: TOKEN } })
      assert.deepEqual(r.errors.map(formatProblem), [], name)
    }
  })

  test('every bench scenario config passes config check', async (t) => {
    let n = 0
    // the Redis scenarios name the bench's redis-server; loading the config connects to nothing
    const port = benchRedis.port
    benchRedis.port = 6379
    t.after(() => {
      benchRedis.port = port
    })
    for (const s of SCENARIOS) {
      if (!s.portcullisConfig) continue
      const base = basePortcullisConfig({
        listenerPort: 18080,
        adminPort: 19901,
        upstreamOrigin: 'http://127.0.0.1:13000',
        accessLogPath: join(tmp, 'access.log'),
      })
      const file = join(tmp, `bench-${n++}.yaml`)
      writeFileSync(file, stringify(s.portcullisConfig(base)))
      const r = await loadGatewayConfig(file, { env: {} })
      assert.deepEqual(r.errors.map(formatProblem), [], s.name)
    }
    assert.ok(n >= 10, `${n} scenarios with a Portcullis config`)
  })

  test(`every config snippet of docs/ loads (${SNIPPETS.length} snippets), but those invalid on purpose`, () => {
    assert.ok(SNIPPETS.length >= 40, `only ${SNIPPETS.length} snippets found`)
    const listed = new Set<(typeof INVALID_ON_PURPOSE)[number]>()
    const failures: string[] = []
    for (const s of SNIPPETS) {
      const r = loadConfigText(completed(s), join(ROOT, s.file), { env: SNIPPET_ENV })
      // files the snippet names (certificates, key stores) are on the reader's machine
      const errors = r.errors.filter((e) => !/cannot read|ENOENT/.test(e.message))
      const purpose = INVALID_ON_PURPOSE.find(([f, line]) => f === s.file && s.text.includes(line))
      if (purpose !== undefined) {
        listed.add(purpose)
        assert.ok(errors.length > 0, `${s.file}:${s.line} is listed as invalid (${purpose[2]}) but loads`)
        continue
      }
      if (errors.length > 0)
        failures.push(`${s.file}:${s.line}\n${errors.map((e) => `  ${e.path}: ${e.message}`).join('\n')}`)
    }
    assert.deepEqual(failures, [])
    assert.deepEqual(
      INVALID_ON_PURPOSE.filter((p) => !listed.has(p)).map((p) => p[0]),
      [],
      'every listed snippet still exists',
    )
  })
})

describe('the old duration form (`timeoutMs: 5000`) is written nowhere', () => {
  /** [file, the old field as written, why it is not a config]. */
  const NOT_CONFIG: [string, string, string][] = [
    ['docs/detect.md', '"windowSec": 60', "an alert's data (what the detector reports), not config"],
  ]

  test('no YAML or JSON file under examples/, deploy/ and test/fixtures', () => {
    const all = ['examples', 'deploy', 'test/fixtures', 'test/scanner-fixtures']
      .flatMap((d) => files(d))
      .filter((f) => /\.(ya?ml|json)$/.test(f))
    assert.ok(all.length > 20, `${all.length} files`)
    const found = all.flatMap((f) =>
      migrateText(f, readFileSync(join(ROOT, f), 'utf8')).rewrites.map((r) => `${f}:${r.line}: ${r.from}`),
    )
    assert.deepEqual(found, [])
  })

  test('no yaml or json block of docs/, fragments included', () => {
    assert.ok(BLOCKS.length > 100, `${BLOCKS.length} blocks`)
    const found: string[] = []
    for (const b of BLOCKS) {
      const { rewrites } = migrateText(`${b.file}.${b.lang === 'yml' ? 'yaml' : b.lang}`, b.text)
      for (const r of rewrites) {
        if (NOT_CONFIG.some(([f, w]) => f === b.file && r.from === w)) continue
        found.push(`${relative(ROOT, join(ROOT, b.file))}:${b.line + r.line}: ${r.from}`)
      }
    }
    assert.deepEqual(found, [])
  })

  test('the detector finds the old form (it is not a check that cannot fail)', () => {
    const { rewrites, text } = migrateText(
      'x.yaml',
      'shutdown: { drainTimeoutMs: 5000 }\ninventory:\n  retentionDays: 30   # a comment\n',
    )
    assert.deepEqual(
      rewrites.map((r) => [r.line, r.from, r.to]),
      [
        [1, 'drainTimeoutMs: 5000', 'drainTimeout: 5s'],
        [3, 'retentionDays: 30', 'retention: 30d'],
      ],
    )
    assert.equal(text, 'shutdown: { drainTimeout: 5s }\ninventory:\n  retention: 30d      # a comment\n')
    const json = migrateText('x.json', '{"upstreams": {"a": {"connectTimeoutMs": 0, "bodyTimeoutMs": 1.5}}}')
    assert.equal(json.text, '{"upstreams": {"a": {"connectTimeout": 0, "bodyTimeoutMs": 1.5}}}')
    assert.deepEqual(
      json.rewrites.map((r) => r.to),
      ['"connectTimeout": 0', undefined],
    )
  })
})
