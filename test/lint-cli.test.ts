/**
 * `portcullis lint` through the CLI: formats (SARIF validated against the SARIF 2.1.0 schema, with
 * regions; JUnit well-formed), exit codes, rules files, URL specs, Swagger 2.0, hostile text.
 */
import assert from 'node:assert/strict'
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Ajv } from 'ajv'
import { EXIT } from '../src/cli/command.js'
import { main, reportError } from '../src/cli/main.js'
import { RULES } from '../src/linter/rules/index.js'
import { FORMATS } from '../src/openapi/formats.js'
import { parseXml } from './helpers/xml-check.js'

const outDir = mkdtempSync(join(tmpdir(), 'pcl-lint-out-'))
let outN = 0

/**
 * Runs the CLI in-process. The report goes to a file (`--output`): the test runner itself writes
 * to this process's stdout while a test awaits, so stdout cannot be captured safely.
 */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const file = join(outDir, `out-${++outN}`)
  const e = process.stderr.write.bind(process.stderr)
  let err = ''
  process.stderr.write = ((c: string | Uint8Array) => {
    err += String(c)
    return true
  }) as typeof process.stderr.write
  let code: number
  try {
    try {
      code = await main([...argv, '--output', file])
    } catch (x) {
      code = reportError(x)
    }
  } finally {
    process.stderr.write = e
  }
  let out = ''
  try {
    out = readFileSync(file, 'utf8')
  } catch {
    // no report written (usage or spec error)
  }
  return { code, out, err }
}

function sarifValidator() {
  const schema = JSON.parse(readFileSync('test/fixtures/sarif-schema-2.1.0.json', 'utf8'))
  delete schema.$schema
  schema.$id = schema.id
  delete schema.id
  return new Ajv({ allErrors: true, strict: false, formats: FORMATS }).compile(schema)
}

const DEMO = 'examples/demo/openapi.yaml'
const CLEAN = 'test/fixtures/lint/clean.yaml'
const PETSTORE2 = 'test/fixtures/lint/real/petstore-swagger2.yaml'

test('sarif validates against SARIF 2.1.0; every result has a region in the spec', async () => {
  const r = await run(['lint', DEMO, '--format', 'sarif', '--gateway', 'examples/demo/portcullis.yaml'])
  assert.equal(r.code, EXIT.FINDINGS)
  const sarif = JSON.parse(r.out)
  const validate = sarifValidator()
  assert.ok(validate(JSON.parse(r.out)), JSON.stringify(validate.errors?.slice(0, 5), null, 2))
  const run0 = sarif.runs[0]
  assert.equal(run0.tool.driver.rules.length, RULES.length)
  assert.ok(run0.results.length > 5)
  const lines = readFileSync(DEMO, 'utf8').split('\n')
  for (const res of run0.results) {
    const loc = res.locations[0].physicalLocation
    assert.equal(loc.artifactLocation.uri, 'examples/demo/openapi.yaml')
    assert.ok(loc.region.startLine > 0 && loc.region.startLine <= lines.length)
    assert.equal(run0.tool.driver.rules[res.ruleIndex].id, res.ruleId)
  }
  const ssrf = run0.results.find((x: { ruleId: string }) => x.ruleId === 'ssrf-url-input')
  const line = lines[ssrf.locations[0].physicalLocation.region.startLine - 1] as string
  assert.match(line, /imageUrl:/)
  assert.equal(run0.properties.gatewayGaps.length, 0) // the demo config closes every flaw
})

test('junit parses; one testcase per rule and per operation of the gateway check', async () => {
  const r = await run(['lint', DEMO, '--format', 'junit', '--gateway', 'examples/demo/portcullis.yaml'])
  const root = parseXml(r.out)
  assert.equal(root.name, 'testsuites')
  const cases = root.children.flatMap((s) => s.children)
  assert.equal(cases.length, RULES.length + 14)
  const failures = cases.filter((c) => c.children.some((x) => x.name === 'failure'))
  // the spec's design flaw is reported; the demo config leaves no operation with a gap
  assert.ok(!failures.some((c) => c.attrs.name === 'POST /api/v2/users/me/avatar'))
  assert.ok(failures.some((c) => c.attrs.name?.startsWith('ssrf-url-input')))
})

test('json and text agree; text shows file:line:col', async () => {
  const j = await run(['lint', DEMO, '--format', 'json'])
  const report = JSON.parse(j.out)
  const t = await run(['lint', DEMO])
  assert.match(t.out, new RegExp(`score ${report.score}/100`))
  for (const f of report.findings) assert.match(t.out, new RegExp(`^\\S+\\s+${f.rule}\\b`, 'm'))
  assert.match(t.out, /^ {2}examples\/demo\/openapi\.yaml:\d+:\d+ /m)
})

test('exit codes: --fail-on, --min-score, clean spec, usage and spec errors', async () => {
  assert.equal((await run(['lint', DEMO])).code, EXIT.FINDINGS)
  assert.equal((await run(['lint', DEMO, '--fail-on', 'critical'])).code, EXIT.OK)
  assert.equal((await run(['lint', DEMO, '--fail-on', 'critical', '--min-score', '90'])).code, EXIT.FINDINGS)
  assert.equal((await run(['lint', CLEAN, '--fail-on', 'low', '--min-score', '100'])).code, EXIT.OK)
  assert.equal((await run(['lint'])).code, EXIT.USAGE)
  assert.equal((await run(['lint', DEMO, '--format', 'xml'])).code, EXIT.USAGE)
  assert.equal((await run(['lint', DEMO, '--min-score', '101'])).code, EXIT.USAGE)
  const missing = await run(['lint', 'no/such/spec.yaml'])
  assert.equal(missing.code, EXIT.USAGE)
  assert.match(missing.err, /cannot read the file/)
  const dir = mkdtempSync(join(tmpdir(), 'pcl-lint-cli-'))
  writeFileSync(
    join(dir, 'bad.yaml'),
    'openapi: 3.1.0\ninfo: {title: t, version: "1"}\npaths: { /a: { get: { responses: { "200": {description: x} } } }, /a: 1 }\n',
  )
  const bad = await run(['lint', join(dir, 'bad.yaml')])
  assert.equal(bad.code, EXIT.USAGE)
  assert.match(bad.err, /not valid YAML or JSON/)
})

test('a rules file turns rules off and changes severities; unknown rules are refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-lint-rules-'))
  writeFileSync(
    join(dir, 'rules.yaml'),
    'rules:\n  bola-numeric-id: off\n  ssrf-url-input: { severity: critical }\n  example-credentials: { enabled: false }\n',
  )
  const r = await run(['lint', DEMO, '--format', 'json', '--rules', join(dir, 'rules.yaml')])
  const report = JSON.parse(r.out)
  assert.ok(
    !report.findings.some(
      (f: { rule: string }) => f.rule === 'bola-numeric-id' || f.rule === 'example-credentials',
    ),
  )
  assert.equal(
    report.findings.find((f: { rule: string }) => f.rule === 'ssrf-url-input').severity,
    'critical',
  )
  assert.equal(report.rules.length, RULES.length - 2)
  writeFileSync(join(dir, 'bad.yaml'), 'rules:\n  no-such-rule: off\n  ssrf-url-input: loud\n')
  const bad = await run(['lint', DEMO, '--rules', join(dir, 'bad.yaml')])
  assert.equal(bad.code, EXIT.USAGE)
  assert.match(bad.err, /no-such-rule: no such rule/)
  assert.match(bad.err, /ssrf-url-input: expected off, critical/)
})

test('a spec given as a URL is fetched (from a server on 127.0.0.1) and linted', async () => {
  const text = readFileSync(DEMO)
  const server = createServer((req, res) => {
    if (req.url === '/openapi.yaml') res.writeHead(200, { 'content-type': 'application/yaml' }).end(text)
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  try {
    const byUrl = JSON.parse(
      (await run(['lint', `http://127.0.0.1:${port}/openapi.yaml`, '--format', 'json'])).out,
    )
    const byFile = JSON.parse((await run(['lint', DEMO, '--format', 'json'])).out)
    assert.deepEqual(
      byUrl.findings.map((f: { rule: string; locations: unknown[] }) => [f.rule, f.locations.length]),
      byFile.findings.map((f: { rule: string; locations: unknown[] }) => [f.rule, f.locations.length]),
    )
    assert.equal(byUrl.spec, `http://127.0.0.1:${port}/openapi.yaml`)
    const notFound = await run(['lint', `http://127.0.0.1:${port}/nope.yaml`])
    assert.equal(notFound.code, EXIT.USAGE)
    assert.match(notFound.err, /HTTP 404/)
  } finally {
    server.close()
  }
})

test('Swagger 2.0 Petstore lints; locations point into the 2.0 file', async () => {
  const r = await run(['lint', PETSTORE2, '--format', 'json'])
  assert.equal(r.code, EXIT.FINDINGS)
  const report = JSON.parse(r.out)
  assert.equal(report.specVersion, '2.0')
  assert.equal(report.operations, 20)
  const lines = readFileSync(PETSTORE2, 'utf8').split('\n')
  const cred = report.findings.find((f: { rule: string }) => f.rule === 'credential-in-url')
  assert.match(lines[cred.locations[0].line - 1] as string, /name: password/)
  assert.match(cred.locations[0].pointer, /^\/paths\/~1user~1login\/get\/parameters\/1$/)
  const implicit = report.findings.find((f: { rule: string }) => f.rule === 'oauth-implicit-flow')
  assert.match(implicit.locations[0].pointer, /^\/securityDefinitions\/petstore_auth/)
  const text = await run(['lint', PETSTORE2])
  assert.match(text.out, /Swagger 2\.0 \(read as OpenAPI 3\.0\)/)
})

test('hostile names in a spec do not reach the terminal as escape sequences', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-lint-hostile-'))
  writeFileSync(
    join(dir, 'h.json'),
    JSON.stringify({
      openapi: '3.1.0',
      info: { title: 't', version: '1' },
      paths: {
        '/x': {
          post: {
            requestBody: {
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: { '\u001b[31mcallbackUrl\u001b[0m': { type: 'string' } },
                  },
                },
              },
            },
            responses: { '200': { description: 'ok' } },
          },
        },
      },
    }),
  )
  const r = await run(['lint', join(dir, 'h.json'), '--verbose'])
  assert.equal(r.code, EXIT.FINDINGS)
  assert.ok(!r.out.includes('\u001b'), 'no ESC in the output')
  assert.match(r.out, /string-unbounded {2}POST \/x: "\?\[31mcallbackUrl\?\[0m" has no maxLength/)
})
