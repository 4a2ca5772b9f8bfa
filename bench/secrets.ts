/**
 * npm run bench:secrets — builds a synthetic tree (source, JSON, logs, minified JS, lockfiles;
 * ≥ 100 MB by default) with keys of 25 providers planted at known files and lines, then scans it
 * with Portcullis (--jobs 1 and --jobs 2) and with secretlint (its recommended preset) in the same
 * run, and prints throughput (MB/s) and which planted keys each found.
 *
 * Options: --mb N (size of the tree, default 110)  --keep (keep the tree)  --skip-secretlint
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Fakes } from '../src/secrets/testing/fakes.js'

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '110' },
    keep: { type: 'boolean', default: false },
    'skip-secretlint': { type: 'boolean', default: false },
  },
})
const targetBytes = Number(values.mb) * 1e6
const root = new URL('../..', import.meta.url).pathname
const f = new Fakes(2026)
const dir = mkdtempSync(join(tmpdir(), 'pcl-bench-secrets-'))

/** Planted keys: provider, the line written, and the detector Portcullis should report. */
const plants: { provider: string; line: () => string }[] = [
  { provider: 'github', line: () => `const token = "${f.crcToken('ghp_')}"` },
  { provider: 'npm', line: () => `//registry.npmjs.org/:_authToken=${f.crcToken('npm_')}` },
  {
    provider: 'slack-token',
    line: () => `SLACK_TOKEN=xoxb-${f.chars('d', 12)}-${f.chars('d', 13)}-${f.chars('a', 24)}`,
  },
  {
    provider: 'slack-webhook',
    line: () =>
      `hook: https://hooks.slack.com/services/T${f.chars('u', 9)}/B${f.chars('u', 9)}/${f.chars('a', 24)}`,
  },
  { provider: 'sendgrid', line: () => `SENDGRID_API_KEY=SG.${f.chars('w', 22)}.${f.chars('w', 43)}` },
  { provider: 'stripe', line: () => `stripe_key = "sk_live_${f.chars('a', 24)}"` },
  {
    provider: 'aws',
    line: () => `aws_access_key_id = AKIA${f.chars('B32', 16)}\naws_secret_access_key = ${f.chars('b', 40)}`,
  },
  { provider: 'gcp', line: () => `apiKey: "AIza${f.chars('w', 35)}"` },
  { provider: 'openai', line: () => `OPENAI_API_KEY=sk-proj-${f.chars('w', 74)}T3BlbkFJ${f.chars('w', 74)}` },
  { provider: 'anthropic', line: () => `ANTHROPIC_API_KEY=sk-ant-api03-${f.chars('w', 93)}AA` },
  { provider: 'shopify', line: () => `token: shpat_${f.chars('h', 32)}` },
  { provider: 'gitlab', line: () => `GITLAB_TOKEN=glpat-${f.chars('w', 20)}` },
  { provider: 'digitalocean', line: () => `do_token = "dop_v1_${f.chars('h', 64)}"` },
  { provider: 'mailchimp', line: () => `MAILCHIMP_KEY=${f.chars('h', 32)}-us${f.chars('d', 1)}` },
  { provider: 'twilio', line: () => `TWILIO_API_KEY=SK${f.chars('h', 32)}` },
  {
    provider: 'discord',
    line: () => `url = "https://discord.com/api/webhooks/${f.chars('d', 18)}/${f.chars('w', 68)}"`,
  },
  { provider: 'telegram', line: () => `bot_token: ${f.chars('d', 10)}:AA${f.chars('w', 33)}` },
  { provider: 'huggingface', line: () => `HF_TOKEN=hf_${f.chars('A', 34)}` },
  { provider: 'pypi', line: () => `password = pypi-AgEIcHlwaS5vcmc${f.chars('w', 70)}` },
  { provider: 'dockerhub', line: () => `DOCKER_PAT=dckr_pat_${f.chars('w', 27)}` },
  { provider: 'vault', line: () => `VAULT_TOKEN=hvs.${f.chars('w', 90)}` },
  { provider: 'linear', line: () => `LINEAR_KEY=lin_api_${f.chars('a', 40)}` },
  { provider: 'sentry', line: () => `SENTRY_AUTH_TOKEN=sntryu_${f.chars('h', 64)}` },
  { provider: 'private-key', line: () => f.pem('rsa').trimEnd() },
  {
    provider: 'postgres',
    line: () => `DATABASE_URL=postgres://app:${f.chars('a', 16)}@db.internal:5432/app`,
  },
]

// ---- the tree --------------------------------------------------------------------------------
const words =
  'order customer invoice payment shipment account session request response handler service client server config value result error status item list map key index count total user token secret password cache queue'.split(
    ' ',
  )
const w = () => words[Math.floor(Math.random() * words.length)] as string
function sourceFile(lines: number): string {
  const out: string[] = []
  for (let i = 0; i < lines; i++)
    out.push(
      `  const ${w()}${i} = await ${w()}.${w()}(${w()}, { ${w()}: ${i}, ${w()}: '${w()}-${w()}' }) // ${w()} ${w()}`,
    )
  return `export async function ${w()}() {\n${out.join('\n')}\n}\n`
}
function jsonFile(n: number): string {
  return JSON.stringify(
    Array.from({ length: n }, (_, i) => ({
      id: i,
      [w()]: w(),
      email: `u${i}@example.com`,
      amount: i * 3,
      tags: [w(), w()],
      uuid: f.uuid(),
    })),
    null,
    2,
  )
}
function logFile(lines: number): string {
  const out: string[] = []
  for (let i = 0; i < lines; i++)
    out.push(
      `2026-01-0${(i % 9) + 1}T10:${String(i % 60).padStart(2, '0')}:00Z INFO ${w()} ${w()} request_id=${f.chars('h', 16)} path=/api/${w()}/${i} status=200 ms=${i % 97}`,
    )
  return out.join('\n')
}
function minified(bytes: number): string {
  let s = ''
  while (s.length < bytes)
    s += `function ${w()}${s.length}(a,b){return a.${w()}(b)||${w()}[a]}var ${w()}=${s.length % 1000};`
  return s
}
function lockfile(n: number): string {
  const packages: Record<string, unknown> = {}
  for (let i = 0; i < n; i++)
    packages[`node_modules/${w()}-${i}`] = {
      version: `1.${i % 50}.0`,
      resolved: `https://registry.npmjs.org/${w()}-${i}/-/${w()}-${i}-1.0.0.tgz`,
      integrity: `sha512-${f.chars('b', 86)}==`,
    }
  return JSON.stringify({ name: 'app', lockfileVersion: 3, packages }, null, 2)
}

let bytes = 0
let files = 0
const planted: { provider: string; file: string; line: number }[] = []
let plantIdx = 0
while (bytes < targetBytes) {
  const sub = join(dir, `pkg${Math.floor(files / 100)}`)
  if (files % 100 === 0) mkdirSync(sub, { recursive: true })
  const kind = files % 5
  const [name, body] =
    kind === 0
      ? [`m${files}.ts`, sourceFile(400)]
      : kind === 1
        ? [`d${files}.json`, jsonFile(300)]
        : kind === 2
          ? [`a${files}.log`, logFile(800)]
          : kind === 3
            ? [`b${files}.min.js`, minified(120_000)]
            : [`package-lock${files}.json`, lockfile(250)]
  let text = body
  if (files % 7 === 3 && kind !== 3 && kind !== 4) {
    const p = plants[plantIdx++ % plants.length] as (typeof plants)[number]
    const lines = text.split('\n')
    const at = Math.floor(lines.length / 2)
    lines.splice(at, 0, p.line())
    text = lines.join('\n')
    planted.push({ provider: p.provider, file: `pkg${Math.floor(files / 100)}/${name}`, line: at + 1 })
  }
  writeFileSync(join(sub, name), text)
  bytes += Buffer.byteLength(text)
  files++
}
console.log(
  `tree: ${files} files, ${(bytes / 1e6).toFixed(1)} MB, ${planted.length} planted keys of ${new Set(planted.map((p) => p.provider)).size} providers (${dir})`,
)

// ---- Portcullis --------------------------------------------------------------------------------
interface Run {
  tool: string
  seconds: number
  hits: Set<string>
}
function portcullis(jobs: number): Run {
  const out = join(dir, '..', `pcl-out-${jobs}.json`)
  const t = performance.now()
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'bin/portcullis.js'),
      'secrets',
      '.',
      '--format',
      'json',
      '--output',
      out,
      '--jobs',
      String(jobs),
    ],
    { cwd: dir, encoding: 'utf8' },
  )
  const seconds = (performance.now() - t) / 1000
  if (r.status !== 1 && r.status !== 0) throw new Error(`portcullis failed: ${r.status} ${r.stderr}`)
  const found = JSON.parse(readFileSync(out, 'utf8')) as { findings: { file: string; line: number }[] }
  rmSync(out)
  return {
    tool: `portcullis --jobs ${jobs}`,
    seconds,
    hits: new Set(found.findings.map((x) => `${x.file}:${x.line}`)),
  }
}
function secretlint(): Run {
  writeFileSync(
    join(dir, '.secretlintrc.json'),
    JSON.stringify({ rules: [{ id: '@secretlint/secretlint-rule-preset-recommend' }] }),
  )
  const t = performance.now()
  const r = spawnSync(
    process.execPath,
    [join(root, 'node_modules/secretlint/bin/secretlint.js'), '**/*', '--format', 'json', '--maskSecrets'],
    { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 28 },
  )
  const seconds = (performance.now() - t) / 1000
  let results: { filePath: string; messages: { loc: { start: { line: number } } }[] }[] = []
  try {
    results = JSON.parse(r.stdout)
  } catch {
    throw new Error(`secretlint output not JSON (exit ${r.status}): ${r.stderr.slice(0, 500)}`)
  }
  const hits = new Set<string>()
  for (const res of results)
    for (const m of res.messages) hits.add(`${res.filePath.slice(dir.length + 1)}:${m.loc.start.line}`)
  return { tool: 'secretlint (recommended preset)', seconds, hits }
}

const runs = [portcullis(1), portcullis(2)]
if (!values['skip-secretlint']) runs.push(secretlint())
const plantedFound = (r: Run) =>
  planted.filter((p) => [0, 1, -1].some((d) => r.hits.has(`${p.file}:${p.line + d}`)))
for (const r of runs) {
  const found = plantedFound(r)
  console.log(
    `${r.tool.padEnd(34)} ${r.seconds.toFixed(2).padStart(7)} s  ${(bytes / 1e6 / r.seconds).toFixed(1).padStart(7)} MB/s  planted keys found ${found.length}/${planted.length} (${new Set(found.map((p) => p.provider)).size} providers)  findings ${r.hits.size}`,
  )
}
const sl = runs.find((r) => r.tool.startsWith('secretlint'))
const p1 = runs[0] as Run
if (sl) {
  const slFound = new Set(plantedFound(sl).map((p) => `${p.file}:${p.line}`))
  const p1Found = new Set(plantedFound(p1).map((p) => `${p.file}:${p.line}`))
  const missed = [...slFound].filter((k) => !p1Found.has(k))
  console.log(
    `speed-up over secretlint (one job): ${(sl.seconds / p1.seconds).toFixed(1)}x; planted keys secretlint found that Portcullis missed: ${missed.length}`,
  )
  const notFound = planted.filter((p) => !slFound.has(`${p.file}:${p.line}`)).map((p) => p.provider)
  console.log(`providers secretlint missed: ${[...new Set(notFound)].join(', ') || 'none'}`)
}
const missedByUs = planted.filter((p) => !plantedFound(p1).includes(p)).map((p) => p.provider)
console.log(`providers Portcullis missed: ${[...new Set(missedByUs)].join(', ') || 'none'}`)
if (!values.keep) rmSync(dir, { recursive: true, force: true })
