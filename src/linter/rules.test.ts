import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { lintFile } from './engine.js'
import { RULES } from './rules/index.js'
import { CATEGORY_TITLES, SEVERITY_RANK } from './types.js'

const dir = mkdtempSync(join(tmpdir(), 'pcl-lint-rules-'))
let n = 0

/** A rule's before/after fragment as a whole document (openapi, info and paths added when absent). */
export function snippetDocument(fragment: string): string {
  let text = fragment
  if (!/^openapi:/m.test(text)) text = `openapi: 3.1.0\n${text}`
  if (!/^info:/m.test(text)) text = `info: { title: t, version: "1" }\n${text}`
  if (!/^paths:/m.test(text) && !/^webhooks:/m.test(text)) text = `${text}\npaths: {}`
  return text
}

function lintSnippet(fragment: string) {
  const file = join(dir, `s${++n}.yaml`)
  writeFileSync(file, snippetDocument(fragment))
  return lintFile(file)
}

test('at least 60 rules, each with a unique id, a category, a severity and a why', () => {
  assert.ok(RULES.length >= 60, `${RULES.length} rules`)
  assert.equal(new Set(RULES.map((r) => r.id)).size, RULES.length)
  for (const r of RULES) {
    assert.match(r.id, /^[a-z0-9]+(-[a-z0-9]+)*$/)
    assert.ok(r.category in CATEGORY_TITLES, r.id)
    assert.ok(r.severity in SEVERITY_RANK, r.id)
    assert.ok(r.why.length > 80, `${r.id}: why is too short`)
    assert.notEqual(r.before.trim(), r.after.trim(), r.id)
  }
  const owasp = new Set(RULES.map((r) => r.category))
  for (const c of ['API1', 'API2', 'API3', 'API4', 'API5', 'API6', 'API7', 'API8', 'API9', 'API10'])
    assert.ok(owasp.has(c as never), `no rule for ${c}`)
})

for (const rule of RULES) {
  test(`${rule.id}: its "before" example is reported and its "after" example is not`, () => {
    const before = lintSnippet(rule.before)
    assert.ok(
      before.findings.some((f) => f.rule === rule.id),
      `${rule.id} not reported on its before example; got ${before.findings.map((f) => f.rule).join(', ')}`,
    )
    const after = lintSnippet(rule.after)
    const still = after.findings.filter((f) => f.rule === rule.id)
    assert.deepEqual(
      still.map((f) => f.message),
      [],
      `${rule.id} still reported on its after example`,
    )
  })
}

test('x-portcullis-lint-ignore on an operation or a schema silences that rule there only', () => {
  const report = lintSnippet(`paths:
  /a/{id}:
    get:
      x-portcullis-lint-ignore: [bola-numeric-id]
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer, minimum: 1 } }
      responses:
        "200": { description: A }
  /b/{id}:
    get:
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer, minimum: 1 } }
      responses:
        "200": { description: B }
  /c:
    post:
      requestBody:
        content:
          application/json:
            schema: { $ref: "#/components/schemas/C" }
      responses:
        "201": { description: C }
components:
  schemas:
    C:
      type: object
      x-portcullis-lint-ignore: [string-unbounded]
      properties:
        note: { type: string }`)
  const bola = report.findings.find((f) => f.rule === 'bola-numeric-id')
  assert.deepEqual(
    bola?.locations.map((l) => l.operation),
    ['GET /b/{id}'],
  )
  assert.ok(!report.findings.some((f) => f.rule === 'string-unbounded'))
  assert.ok(report.findings.some((f) => f.rule === 'request-schema-open'))
})

test('admin-shares-user-access: declared roles count, unless a user operation accepts the same ones', () => {
  const doc = (adminRoles: string) => `security:
  - bearer: []
paths:
  /profile:
    get:
      x-portcullis-roles: [user]
      responses:
        "200": { description: Me }
  /admin/users:
    get:
      tags: [admin]
      x-portcullis-roles: ${adminRoles}
      responses:
        "200": { description: Users }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }`
  const rule = (r: ReturnType<typeof lintSnippet>) =>
    r.findings.filter((f) => f.rule === 'admin-shares-user-access')
  assert.equal(rule(lintSnippet(doc('[admin]'))).length, 0)
  const same = rule(lintSnippet(doc('[user]')))
  assert.equal(same.length, 1)
  assert.match(same[0]?.message ?? '', /requires the roles \[user\] that GET \/profile also accepts/)
})
