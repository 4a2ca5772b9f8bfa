/** docs/lint is generated from the rule data: the committed pages must match it (npm run docs:lint). */
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'
import { RULES } from '../src/linter/rules/index.js'
import { indexPage, rulePage } from '../scripts/gen-lint-docs.js'

test('docs/lint: one page per rule and the index, as generated from the rules', () => {
  assert.equal(
    readFileSync('docs/lint/README.md', 'utf8'),
    indexPage(RULES),
    'docs/lint/README.md (npm run docs:lint)',
  )
  for (const r of RULES) {
    const file = `docs/lint/rules/${r.id}.md`
    assert.ok(existsSync(file), file)
    assert.equal(readFileSync(file, 'utf8'), rulePage(r), `${file} (npm run docs:lint)`)
  }
  assert.equal(readdirSync('docs/lint/rules').length, RULES.length)
  const index = readFileSync('docs/lint/README.md', 'utf8')
  for (const r of RULES) assert.ok(index.includes(`(rules/${r.id}.md)`), r.id)
})
