/**
 * The scan report renderers (text, json, sarif, junit): hostile target content is neutralised,
 * SARIF validates against the official SARIF 2.1.0 schema (vendored in test/fixtures), JUnit is
 * well-formed XML with the expected suites and failures.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { Ajv } from 'ajv'
import { FORMATS } from '../src/openapi/formats.js'
import { renderReport } from '../src/scanner/report/index.js'
import { toUriReference } from '../src/scanner/report/sarif.js'
import type { ScanReport } from '../src/scanner/types.js'
import { sampleReport } from './helpers/scan-report.js'
import { parseXml, type XmlElement } from './helpers/xml-check.js'

const ROOT = new URL('../../', import.meta.url).pathname

test('text: grouped by severity worst first, with proof, why, fix and a summary line', () => {
  const text = renderReport(sampleReport(), 'text', { color: false })
  const high = text.indexOf('HIGH (1)')
  const medium = text.indexOf('MEDIUM (1)')
  const low = text.indexOf('LOW (1)')
  assert.ok(high > 0 && medium > high && low > medium, 'severity groups in order')
  assert.doesNotMatch(text, /CRITICAL \(/, 'empty groups are left out')
  assert.match(text, /\[HIGH\] Bob reads alice's order {2}API1:2023 Broken Object Level Authorization · bola/)
  assert.match(text, /operation: GET \/orders\/\{id\} \(getOrder\) · identity: bob/)
  assert.match(
    text,
    /GET http:\/\/127\.0\.0\.1:8080\/api\/orders\/1\n {6}→ 200 \(2 ms\)\n {8}< \{"id":1,"owner":"alice"\}/,
  )
  assert.match(text, /→ error: timeout/)
  assert.match(text, /Why it matters:\n {4}Attackers swap ids\./)
  assert.match(text, /How to fix:\n {4}Check ownership on every object access\.\n {4}│ if \(order\.owner/)
  assert.match(text, /Skipped checks\n {2}ssrf: no URL-valued field <in> the spec/)
  assert.match(
    text,
    /3 findings \(0 critical, 1 high, 1 medium, 1 low, 0 info\) from 4 checks, 1 skipped, 120 requests, 1 errors, 12\.5 s\n$/,
  )
  assert.doesNotMatch(text, /\x1b/, 'no escape sequence at all without color (the hostile one included)')
  assert.doesNotMatch(text, /[\u0000\u0007\u202e]/, 'no control or bidi characters from the target')
})

test('text: color only when asked, and never the target’s own escape sequences', () => {
  const colored = renderReport(sampleReport(), 'text', { color: true })
  assert.match(colored, /\x1b\[1;31m\[HIGH\]\x1b\[0m/)
  assert.doesNotMatch(colored, /\x1b\[31mRED/, 'the hostile ANSI sequence is neutralised')
  assert.match(colored, /\ufffd\[31mRED/)
})

test('text: an empty report says so', () => {
  const r = { ...sampleReport(), findings: [], skipped: [] }
  const text = renderReport(r, 'text', { color: false })
  assert.match(text, /No findings\./)
  assert.match(text, /0 findings \(0 critical/)
})

test('json: the report with a stable key order, round-trips', () => {
  const r = sampleReport()
  const a = renderReport(r, 'json', { color: false })
  // Same report built with keys in another order renders byte for byte the same.
  const shuffled = JSON.parse(JSON.stringify(r), function (this: unknown, _k, v) {
    if (v && typeof v === 'object' && !Array.isArray(v))
      return Object.fromEntries(Object.entries(v).reverse())
    return v
  }) as ScanReport
  assert.equal(renderReport(shuffled, 'json', { color: false }), a)
  assert.deepEqual(JSON.parse(a), JSON.parse(JSON.stringify(r)))
  const keys = Object.keys(JSON.parse(a))
  assert.deepEqual(keys, [...keys].sort())
})

function sarifValidator() {
  const schema = JSON.parse(readFileSync(`${ROOT}test/fixtures/sarif-schema-2.1.0.json`, 'utf8'))
  // The official schema is draft-04. Its only draft-04-specific keyword is the root `id`
  // (no boolean exclusiveMinimum etc.), so ajv's default draft-07 validates it the same way
  // once `$schema`/`id` become `$id`.
  delete schema.$schema
  schema.$id = schema.id
  delete schema.id
  const ajv = new Ajv({ allErrors: true, strict: false, formats: FORMATS })
  return ajv.compile(schema)
}

test('sarif: validates against the SARIF 2.1.0 schema, rules and results as specified', () => {
  const validate = sarifValidator()
  const text = renderReport(sampleReport(), 'sarif', { color: false })
  const ok = validate(JSON.parse(text))
  const sarif = JSON.parse(text)
  assert.ok(ok, JSON.stringify(validate.errors?.slice(0, 5), null, 2))
  assert.equal(sarif.version, '2.1.0')
  assert.equal(sarif.runs.length, 1)
  const run = sarif.runs[0]
  assert.equal(run.tool.driver.name, 'portcullis')
  assert.deepEqual(
    run.tool.driver.rules.map((r: { id: string }) => r.id),
    ['bola', 'verbose-errors', 'security-headers', 'ssrf'],
  )
  const bolaRule = run.tool.driver.rules[0]
  assert.match(bolaRule.help.text, /Why it matters: Attackers swap ids\./)
  assert.match(bolaRule.help.markdown, /### How to fix\n\nCheck ownership/)
  assert.equal(bolaRule.properties.owasp, 'API1:2023')
  assert.deepEqual(
    run.results.map((r: { ruleId: string; level: string }) => [r.ruleId, r.level]),
    [
      ['bola', 'error'],
      ['verbose-errors', 'warning'],
      ['security-headers', 'note'],
    ],
  )
  const bola = run.results[0]
  assert.equal(run.tool.driver.rules[bola.ruleIndex].id, 'bola')
  assert.deepEqual(bola.properties.owasp, 'API1:2023')
  assert.equal(bola.properties.severity, 'high')
  assert.equal(bola.locations[0].physicalLocation.artifactLocation.uri, 'examples/demo/open%20api.yaml')
  assert.deepEqual(bola.locations[0].logicalLocations[0], {
    name: 'getOrder',
    fullyQualifiedName: 'GET /orders/{id}',
    kind: 'function',
  })
  assert.match(bola.message.text, /Proof: GET http:\/\/127\.0\.0\.1:8080\/api\/orders\/1 → 200/)
  // A finding about the whole target points at the target.
  assert.equal(run.results[2].locations[0].logicalLocations[0].name, 'http://127.0.0.1:8080/api')
})

test('sarif: the schema check can fail (a broken log is rejected)', () => {
  const validate = sarifValidator()
  const sarif = JSON.parse(renderReport(sampleReport(), 'sarif', { color: false }))
  sarif.runs[0].results[0].level = 'fatal'
  assert.equal(validate(sarif), false)
  assert.equal(validate({ version: '2.1.0' }), false, 'runs is required')
})

test('sarif: spec locations become URI references; an empty report is valid too', () => {
  assert.equal(toUriReference('https://api.example.com/openapi.json'), 'https://api.example.com/openapi.json')
  assert.equal(toUriReference('/srv/specs/a b.yaml'), 'file:///srv/specs/a%20b.yaml')
  assert.equal(toUriReference('specs\\v2#.yaml'), 'specs/v2%23.yaml')
  const validate = sarifValidator()
  const emptyText = renderReport({ ...sampleReport(), findings: [], checks: [], skipped: [] }, 'sarif', {
    color: false,
  })
  assert.ok(validate(JSON.parse(emptyText)), JSON.stringify(validate.errors))
  const empty = JSON.parse(emptyText)
  assert.deepEqual(empty.runs[0].results, [])
})

function children(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name)
}

test('junit: well-formed (strict check), a suite per OWASP category, a case per finding (and per check without one)', () => {
  const xml = renderReport(sampleReport(), 'junit', { color: false })
  const root = parseXml(xml)
  assert.equal(root.name, 'testsuites')
  assert.equal(root.attrs.tests, '4')
  assert.equal(root.attrs.failures, '3')
  assert.equal(root.attrs.skipped, '1')
  const suites = children(root, 'testsuite')
  assert.deepEqual(
    suites.map((s) => s.attrs.name),
    [
      'API1:2023 Broken Object Level Authorization',
      'API7:2023 Server Side Request Forgery',
      'API8:2023 Security Misconfiguration',
    ],
  )
  const api8 = suites[2] as XmlElement
  assert.equal(api8.attrs.tests, '2')
  assert.equal(api8.attrs.failures, '2')
  const cases = children(api8, 'testcase')
  assert.deepEqual(
    cases.map((c) => c.attrs.name),
    [
      'verbose-errors: Stack trace in a 500 <b>answer</b> (GET /orders/{id})',
      'security-headers: Missing X-Content-Type-Options',
    ],
  )
  const failure = children(cases[0] as XmlElement, 'failure')[0] as XmlElement
  assert.equal(failure.attrs.type, 'medium')
  assert.match(
    failure.attrs.message as string,
    /^\[medium\] GET \/orders\/\{id\}: The error body carries a stack trace: <script>/,
  )
  assert.match(
    failure.text,
    /<script>window\.__pwned = 1<\/script><\/textarea>/,
    'hostile text survives as text',
  )
  assert.match(failure.text, /\]\]> & "quotes"/)
  const ssrf = children(suites[1] as XmlElement, 'testcase')[0] as XmlElement
  assert.equal(children(ssrf, 'skipped')[0]?.attrs.message, 'no URL-valued field <in> the spec')
})

test('junit: the well-formedness check rejects what a real parser rejects', () => {
  assert.throws(() => parseXml('<a><b></a></b>'), /closes/)
  assert.throws(() => parseXml('<a x="1" x="2"/>'), /duplicate/)
  assert.throws(() => parseXml('<a>1 < 2</a>'), /name/)
  assert.throws(() => parseXml('<a>AT&T</a>'), /entity|bare/)
  assert.throws(() => parseXml('<a>\u0001</a>'), /not allowed/)
  assert.throws(() => parseXml('<a title=x/>'), /quoted/)
  assert.throws(() => parseXml('<a/><b/>'), /after the root/)
  assert.equal(parseXml('<a t="&lt;&#10;">x &amp; y</a>').attrs.t, '<\n')
})
