#!/usr/bin/env node
// CI's package check (.ci/run): what a new user gets from `npm pack` / `npm install portcullis`.
//  1. Packs a copy of the source tree as a fresh clone has it (no dist/): the prepack build runs.
//  2. The tarball: no test files, no source maps, no TypeScript sources; LICENSE, the CLI, the
//     programmatic entry and its type declarations are there.
//  3. Installs the tarball in an empty folder (its dependencies come from the npm registry) and runs
//     `npx portcullis --version`, `config check` and `serve` on examples/config/minimal.yaml (serve
//     in the background, /readyz polled, one request through it, then SIGTERM: it must exit 0),
//     then `import { createGateway } from 'portcullis'` in a script and in a type-checked .ts file.
// The minimal config listens on 0.0.0.0:8080 and 127.0.0.1:9901; the copy served here binds
// 127.0.0.1 port 0 instead (the machine is shared), everything else unchanged.
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const work = mkdtempSync(join(tmpdir(), 'pc-package-'))
const keep = process.argv.includes('--keep')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

function step(msg) {
  process.stdout.write(`-- ${msg}\n`)
}
function fail(msg) {
  process.stderr.write(`check-package: FAILED: ${msg}\n`)
  if (!keep) rmSync(work, { recursive: true, force: true })
  process.exit(1)
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, ...opts })
  if (r.error) fail(`${cmd} ${args.join(' ')}: ${r.error.message}`)
  return r
}
function must(cmd, args, opts = {}) {
  const r = run(cmd, args, opts)
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

// 1. A fresh clone's tree: tracked and untracked-but-not-ignored files, no dist/.
step('pack a copy of the source tree (prepack builds it)')
const src = join(work, 'src-tree')
const listed = must('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root })
  .split('\0')
  .filter((f) => f !== '')
for (const f of listed) {
  try {
    mkdirSync(dirname(join(src, f)), { recursive: true })
    cpSync(join(root, f), join(src, f))
  } catch (err) {
    if (err.code !== 'ENOENT') throw err // a file deleted but not yet committed
  }
}
symlinkSync(join(root, 'node_modules'), join(src, 'node_modules'))
const out = join(work, 'out')
mkdirSync(out)
must('npm', ['pack', '--pack-destination', out, '--json'], { cwd: src })
const tgz = join(out, `${pkg.name}-${pkg.version}.tgz`)

// 2. What is in the tarball.
step('inspect the tarball')
const files = must('tar', ['-tzf', tgz])
  .split('\n')
  .filter((f) => f !== '')
  .map((f) => f.replace(/^package\//, ''))
const tests = files.filter((f) => /\.test\.|(^|\/)(test|tests|__tests__|testdata|fixtures)\//.test(f))
if (tests.length > 0) fail(`test files in the tarball:\n  ${tests.join('\n  ')}`)
const maps = files.filter((f) => f.endsWith('.map'))
if (maps.length > 0) fail(`${maps.length} source maps in the tarball, e.g. ${maps[0]}`)
const sources = files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
if (sources.length > 0) fail(`TypeScript sources in the tarball, e.g. ${sources[0]}`)
for (const f of [
  'LICENSE',
  'README.md',
  'package.json',
  'bin/portcullis.js',
  'dist/src/cli/main.js',
  'dist/src/index.js',
  'dist/src/index.d.ts',
  'examples/config/minimal.yaml',
  'docs/config.md',
]) {
  if (!files.includes(f)) fail(`${f} is missing from the tarball`)
}
if (!readFileSync(join(root, 'LICENSE'), 'utf8').includes('Apache License')) fail('LICENSE is not Apache-2.0')
step(`${files.length} files, none of them tests or source maps`)

// 3. Install it where nothing else is.
step('install the tarball in an empty folder')
const app = join(work, 'app')
mkdirSync(app)
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pc-package-check', private: true }))
must('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tgz], { cwd: app })
const installed = join(app, 'node_modules', pkg.name)

step('npx portcullis --version')
const version = must('npx', ['--no-install', 'portcullis', '--version'], { cwd: app }).trim()
if (version !== pkg.version) fail(`--version printed "${version}", expected ${pkg.version}`)

step('npx portcullis --help lists only commands that run')
const help = must('npx', ['--no-install', 'portcullis', '--help'], { cwd: app })
for (const line of help.split('\n')) {
  const m = /^ {2}([a-z]+) {2,}/.exec(line)
  if (!m || m[1] === 'help') continue
  const r = run('npx', ['--no-install', 'portcullis', m[1], '--help'], { cwd: app })
  if (r.status !== 0) fail(`portcullis ${m[1]} --help exited ${r.status}: ${r.stderr}`)
}

step('npx portcullis config check examples/config/minimal.yaml')
const minimal = join(installed, 'examples/config/minimal.yaml')
must('npx', ['--no-install', 'portcullis', 'config', 'check', minimal], { cwd: app })

step('npx portcullis serve (background), /readyz, one request, SIGTERM')
const served = join(app, 'portcullis.yaml')
const yaml = readFileSync(minimal, 'utf8').replace(
  /^ {2}- name: public$/m,
  '  - name: public\n    host: 127.0.0.1\n    port: 0',
)
if (yaml === readFileSync(minimal, 'utf8'))
  fail('examples/config/minimal.yaml changed shape: update this check')
writeFileSync(served, `${yaml}\nadmin: { host: 127.0.0.1, port: 0 }\n`)
await serveAndStop(served)

step("import { createGateway } from 'portcullis' (JavaScript)")
writeFileSync(
  join(app, 'embed.mjs'),
  `import { createGateway, ConfigError } from 'portcullis'
const gw = await createGateway('portcullis.yaml')
const r = await gw.inject({ url: '/' })
await gw.close()
let refused = false
try { await createGateway({ routes: [] }) } catch (err) { refused = err instanceof ConfigError }
console.log(JSON.stringify({ status: r.status, refused }))
`,
)
const embedded = JSON.parse(must(process.execPath, ['embed.mjs'], { cwd: app }).trim().split('\n').pop())
// No upstream listens on 127.0.0.1:3000: the gateway answers 502 itself.
if (embedded.status !== 502 || embedded.refused !== true) fail(`embedding: ${JSON.stringify(embedded)}`)

step("import { createGateway } from 'portcullis' (TypeScript, the package's declarations)")
writeFileSync(
  join(app, 'embed.ts'),
  `import { createGateway, type EmbeddedGateway, type GatewayConfigInput } from 'portcullis'
const config: GatewayConfigInput = { listeners: [{ name: 'public', port: 0 }], upstreams: {}, routes: [] }
export async function start(): Promise<EmbeddedGateway> {
  const gw = await createGateway(config)
  const { urls }: { urls: string[] } = await gw.listen()
  console.log(urls)
  return gw
}
`,
)
writeFileSync(
  join(app, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: {
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      target: 'ES2022',
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [join(root, 'node_modules/@types')],
    },
    files: ['embed.ts'],
  }),
)
must(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app })

if (!keep) rmSync(work, { recursive: true, force: true })
else step(`kept ${work}`)
step('package check passed')

async function serveAndStop(configFile) {
  const child = spawn('npx', ['--no-install', 'portcullis', 'serve', '--config', configFile], {
    cwd: app,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d) => {
    stderr += d
  })
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })))
  const deadline = Date.now() + 60_000
  const logged = (msg) => {
    for (const line of stderr.split('\n')) {
      if (!line.startsWith('{')) continue
      const rec = JSON.parse(line)
      if (rec.msg === msg) return rec.url
    }
    return undefined
  }
  let ready = false
  let url
  while (Date.now() < deadline && child.exitCode === null) {
    const admin = logged('admin listening')
    url = logged('listening')
    if (admin !== undefined && url !== undefined) {
      const r = await fetch(`${admin}/readyz`).catch(() => undefined)
      if (r?.status === 200) {
        ready = true
        break
      }
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  if (!ready) {
    child.kill('SIGKILL')
    fail(`serve did not become ready in 60 s:\n${stderr}`)
  }
  const r = await fetch(`${url}/anything`)
  const body = await r.json()
  if (r.status !== 502 || body.code !== 'GW_ERR_UPSTREAM_UNAVAILABLE')
    fail(`a request through serve: ${r.status} ${JSON.stringify(body)}`)
  // npx runs the CLI in a child of its own: signal the gateway process, as an init system would.
  const pid = gatewayPid(child.pid)
  process.kill(pid, 'SIGTERM')
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const { code } = await exited
  clearTimeout(killer)
  if (!/"msg":"stopped"/.test(stderr)) fail(`serve did not stop cleanly after SIGTERM:\n${stderr}`)
  if (code !== 0) fail(`serve exited ${code} after SIGTERM:\n${stderr}`)
}

/** The node process running bin/portcullis.js: npx itself, or its child. */
function gatewayPid(npxPid) {
  const seen = [npxPid]
  for (let i = 0; i < seen.length; i++) {
    const argv = readFileSync(`/proc/${seen[i]}/cmdline`, 'utf8').split('\0')
    const isNode = /(^|\/)node$/.test(argv[0] ?? '') || argv[0] === process.execPath
    if (isNode && argv.includes('serve') && argv.some((a) => /portcullis(\.js)?$/.test(a))) return seen[i]
    const kids = run('pgrep', ['-P', String(seen[i])])
      .stdout.split('\n')
      .filter(Boolean)
      .map(Number)
    seen.push(...kids)
  }
  return npxPid
}
