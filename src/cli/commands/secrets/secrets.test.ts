import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { Fakes } from '../../../secrets/testing/fakes.js'
import { EXIT, UsageError } from '../../command.js'
import { secretsCommand, setWorkerMinBytes } from './secrets.js'

const fakes = new Fakes(41)
const dir = mkdtempSync(join(tmpdir(), 'pcl-secrets-'))
const outside = mkdtempSync(join(tmpdir(), 'pcl-secrets-out-'))
after(() => {
  rmSync(dir, { recursive: true, force: true })
  rmSync(outside, { recursive: true, force: true })
})

interface Out {
  findings: {
    detector: string
    file: string
    line: number
    column: number
    preview: string
    fingerprint: string
    valueHash: string
  }[]
}

async function run(args: string[]): Promise<{ code: number; out: Out }> {
  const file = join(dir, '..', `out-${Math.random().toString(36).slice(2)}.json`)
  const code = await secretsCommand([...args, '--format', 'json', '--output', file])
  const out = JSON.parse(readFileSync(file, 'utf8')) as Out
  rmSync(file)
  return { code, out }
}

const ghp = fakes.crcToken('ghp_')
const npm = fakes.crcToken('npm_')
const stripe = `sk_live_${fakes.chars('a', 24)}`
mkdirSync(join(dir, 'src'))
mkdirSync(join(dir, 'build'))
writeFileSync(join(dir, 'src', 'config.ts'), `// settings\nexport const token = '${ghp}'\n`)
writeFileSync(join(dir, 'src', 'allowed.ts'), `const t = '${npm}' // portcullis:allow\n`)
writeFileSync(join(dir, '.gitignore'), 'build/\n*.log\n')
writeFileSync(join(dir, 'build', 'out.js'), `x="${stripe}"`)
writeFileSync(join(dir, 'debug.log'), `x="${stripe}"`)
writeFileSync(join(dir, 'image.bin'), Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(stripe)]))
writeFileSync(join(outside, 'secret.txt'), `k=${stripe}`)
symlinkSync(join(outside, 'secret.txt'), join(dir, 'link.txt'))

test('files: .gitignore, binaries, symlinks out of the root, inline allow; exit 1 with findings', async () => {
  const { code, out } = await run([dir])
  assert.equal(code, EXIT.FINDINGS)
  assert.deepEqual(
    out.findings.map((f) => [f.detector, f.file.endsWith('src/config.ts'), f.line, f.column]),
    [['github-pat', true, 2, 23]],
  )
  const text = JSON.stringify(out)
  assert.ok(!text.includes(ghp) && !text.includes(stripe) && !text.includes(npm), 'no secret in the output')
  assert.equal(out.findings[0]?.preview, 'ghp_***')
})

test('--no-gitignore reads ignored files; --redact hides every character', async () => {
  const { out } = await run([dir, '--no-gitignore', '--redact'])
  assert.deepEqual(out.findings.map((f) => f.detector).sort(), [
    'github-pat',
    'stripe-secret-key',
    'stripe-secret-key',
  ])
  assert.ok(out.findings.every((f) => f.preview === '***'))
})

test('baseline: --update-baseline records, then only new findings fail', async () => {
  const base = join(outside, 'baseline.json')
  assert.equal(await secretsCommand([dir, '--baseline', base, '--update-baseline']), EXIT.OK)
  assert.ok(!readFileSync(base, 'utf8').includes(ghp))
  assert.equal((await run([dir, '--baseline', base])).code, EXIT.OK)
  // The same value moved two lines down is still known; a new one is not.
  writeFileSync(join(dir, 'src', 'config.ts'), `// settings\n\n\nexport const token = '${ghp}'\n`)
  assert.equal((await run([dir, '--baseline', base])).code, EXIT.OK)
  const extra = fakes.crcToken('ghp_')
  writeFileSync(join(dir, 'src', 'new.ts'), `const t = '${extra}'\n`)
  const r = await run([dir, '--baseline', base])
  assert.equal(r.code, EXIT.FINDINGS)
  assert.deepEqual(
    r.out.findings.map((f) => f.file.endsWith('src/new.ts')),
    [true],
  )
  rmSync(join(dir, 'src', 'new.ts'))
})

test('--jobs 2 and 3 find the same as one job (worker threads on a small tree)', async () => {
  for (let i = 0; i < 6; i++)
    writeFileSync(join(dir, 'src', `m${i}.ts`), `const k${i} = "${fakes.crcToken('npm_')}"\n`)
  const one = await run([dir])
  setWorkerMinBytes(1) // a worker even for this small tree
  const two = await run([dir, '--jobs', '2'])
  const three = await run([dir, '--jobs', '3'])
  setWorkerMinBytes(undefined)
  const key = (o: Out) => o.findings.map((f) => f.fingerprint).sort()
  assert.equal(one.out.findings.length, 7)
  assert.deepEqual(key(two.out), key(one.out))
  assert.deepEqual(key(three.out), key(one.out))
})

test('custom detectors from a YAML file; a bad file is a config error naming the path', async () => {
  const cfg = join(outside, 'secrets.yaml')
  writeFileSync(
    cfg,
    "detectors:\n  - id: acme-key\n    name: ACME key\n    keywords: [acme_]\n    pattern: '(acme_[a-z0-9]{20})'\n    severity: high\nallow:\n  paths: ['src/m*.ts']\n",
  )
  writeFileSync(join(dir, 'acme.txt'), `key: acme_${fakes.chars('l', 20)}\n`)
  const r = await run([dir, '--config', cfg])
  assert.deepEqual(r.out.findings.map((f) => f.detector).sort(), ['acme-key', 'github-pat'])
  writeFileSync(cfg, "detectors:\n  - id: Bad Id\n    name: x\n    keywords: []\n    pattern: '(a)\\1'\n")
  await assert.rejects(
    secretsCommand([dir, '--config', cfg]),
    (err: Error) => err.name === 'ConfigError' && /\/detectors\/0\/id/.test(err.message),
  )
  writeFileSync(cfg, "detectors:\n  - id: backref\n    name: x\n    keywords: [ab]\n    pattern: '(ab)\\1'\n")
  await assert.rejects(secretsCommand([dir, '--config', cfg]), (err: Error) =>
    /detectors\/0\/pattern: .*linear-time/.test(err.message),
  )
})

test('usage errors', async () => {
  await assert.rejects(secretsCommand(['--format', 'xml']), UsageError)
  await assert.rejects(secretsCommand(['--update-baseline']), UsageError)
  await assert.rejects(secretsCommand(['--since', '1 week']), UsageError)
  await assert.rejects(secretsCommand([join(dir, 'nope')]), UsageError)
})
