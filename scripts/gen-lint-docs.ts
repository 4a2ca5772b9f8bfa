/**
 * Generates the linter's rule pages from the rule data (src/linter/rules/*.ts):
 *
 *   docs/lint/rules/<rule-id>.md  one page per rule: category, severity, why, before/after
 *   docs/lint/README.md           the index: every rule by OWASP item, the score weights
 *
 * `--check` generates in memory and exits 1 when a file on disk differs or a page has no rule
 * (CI: `npm run docs:check`). Deterministic: no dates, stable order.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RULES } from '../src/linter/rules/index.js'
import { SCORE_WEIGHTS } from '../src/linter/score.js'
import { CATEGORY_TITLES, type Category, type Rule, SEVERITIES } from '../src/linter/types.js'

const REGENERATE = 'npm run docs:lint'

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error('package.json not found')
    dir = up
  }
  return dir
}

const OWASP_LINKS: Partial<Record<Category, string>> = {
  API1: 'https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/',
  API2: 'https://owasp.org/API-Security/editions/2023/en/0xa2-broken-authentication/',
  API3: 'https://owasp.org/API-Security/editions/2023/en/0xa3-broken-object-property-level-authorization/',
  API4: 'https://owasp.org/API-Security/editions/2023/en/0xa4-unrestricted-resource-consumption/',
  API5: 'https://owasp.org/API-Security/editions/2023/en/0xa5-broken-function-level-authorization/',
  API6: 'https://owasp.org/API-Security/editions/2023/en/0xa6-unrestricted-access-to-sensitive-business-flows/',
  API7: 'https://owasp.org/API-Security/editions/2023/en/0xa7-server-side-request-forgery/',
  API8: 'https://owasp.org/API-Security/editions/2023/en/0xa8-security-misconfiguration/',
  API9: 'https://owasp.org/API-Security/editions/2023/en/0xa9-improper-inventory-management/',
  API10: 'https://owasp.org/API-Security/editions/2023/en/0xaa-unsafe-consumption-of-apis/',
}

const HEADER = `<!-- Generated from the rule data in src/linter/rules/ by scripts/gen-lint-docs.ts: do not edit; run \`${REGENERATE}\`. -->`

export function rulePage(r: Rule): string {
  const link = OWASP_LINKS[r.category]
  const category = link ? `[${CATEGORY_TITLES[r.category]}](${link})` : CATEGORY_TITLES[r.category]
  return `${HEADER}

# ${r.id}

**${r.title}**

| | |
| --- | --- |
| category | ${category} |
| default severity | ${r.severity} |
| silence it | \`x-portcullis-lint-ignore: [${r.id}]\` on the operation, path item or schema; \`${r.id}: off\` in a rules file |

## Why it matters

${r.why}

## Before (reported)

\`\`\`yaml
${r.before}
\`\`\`

## After (not reported)

\`\`\`yaml
${r.after}
\`\`\`

Both examples are linted by the tests (src/linter/rules.test.ts): the first must be reported by
this rule, the second must not. [All rules](../README.md)
`
}

export function indexPage(rules: readonly Rule[]): string {
  const order = Object.keys(CATEGORY_TITLES) as Category[]
  const lines = [
    HEADER,
    '',
    '# Lint rules',
    '',
    `\`portcullis lint\` runs ${rules.length} rules (usage, the score and the \`--gateway\` report:`,
    '[docs/cli/lint.md](../cli/lint.md)). Each is mapped to an item of the OWASP API Security Top 10',
    '(2023) or to spec hygiene, has a default severity (change it, or turn the rule off, in a rules',
    'file), and reports **one finding with every location** it applies to.',
    '',
  ]
  for (const c of order) {
    const list = rules.filter((r) => r.category === c)
    if (list.length === 0) continue
    lines.push(`## ${CATEGORY_TITLES[c]}`, '', '| rule | severity | what it reports |', '| --- | --- | --- |')
    for (const r of list) lines.push(`| [${r.id}](rules/${r.id}.md) | ${r.severity} | ${r.title} |`)
    lines.push('')
  }
  lines.push(
    '## Score',
    '',
    'The score is `100 × e^(−P/100)`, rounded, where P adds up a penalty per finding: the weight of its',
    'severity times `1 + log10(locations)` (at most 3 times the weight), so a flaw repeated on many',
    'operations counts once, a little more, not once per operation.',
    '',
    '| severity | weight |',
    '| --- | --- |',
    ...SEVERITIES.map((s) => `| ${s} | ${SCORE_WEIGHTS[s]} |`),
    '',
  )
  return lines.join('\n')
}

function main(): void {
  const check = process.argv.includes('--check')
  const root = repoRoot()
  const dir = join(root, 'docs/lint')
  const wanted = new Map<string, string>()
  wanted.set(join(dir, 'README.md'), indexPage(RULES))
  for (const r of RULES) wanted.set(join(dir, 'rules', `${r.id}.md`), rulePage(r))
  const stale: string[] = []
  for (const [file, text] of wanted) {
    const have = existsSync(file) ? readFileSync(file, 'utf8') : undefined
    if (have === text) continue
    if (check) stale.push(file)
    else {
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, text)
    }
  }
  const rulesDir = join(dir, 'rules')
  if (existsSync(rulesDir)) {
    for (const name of readdirSync(rulesDir)) {
      const file = join(rulesDir, name)
      if (wanted.has(file)) continue
      if (check) stale.push(`${file} (no such rule)`)
      else unlinkSync(file)
    }
  }
  if (stale.length > 0) {
    process.stderr.write(`lint rule docs are out of date (${REGENERATE}):\n  ${stale.join('\n  ')}\n`)
    process.exit(1)
  }
  if (!check) process.stdout.write(`docs/lint: ${wanted.size} files\n`)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main()
