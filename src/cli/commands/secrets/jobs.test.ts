/**
 * `portcullis secrets --jobs N`: the same findings, in the same order, as one job; errors in the
 * scanning threads (an unreadable file or directory, a thread that dies) reported, never lost.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import type { ScanProfile } from '../../../secrets/profile.js'
import { WHOLE_FILE_BYTES } from '../../../secrets/sources/files.js'
import { Fakes } from '../../../secrets/testing/fakes.js'
import { EXIT } from '../../command.js'
import {
  DEFAULT_WORKER_MIN_BYTES,
  secretsCommand,
  setMainThreadScans,
  setWorkerCrashOn,
  setWorkerMinBytes,
} from './secrets.js'

const ROOT = new URL('../../../../../', import.meta.url).pathname
const fakes = new Fakes(1606)
const base = mkdtempSync(join(tmpdir(), 'pcl-jobs-'))
after(() => rmSync(base, { recursive: true, force: true }))

interface Found {
  detector: string
  file: string
  line: number
  column: number
  fingerprint: string
  encodings: string[]
}
interface Out {
  findings: Found[]
  summary: { files: number; bytes: number; skipped: number }
}

/** Runs the command in-process; resolves its exit code, JSON output and profile. */
async function run(args: string[]): Promise<{ code: number; out: Out; profile: ScanProfile }> {
  const id = Math.random().toString(36).slice(2)
  const file = join(base, `out-${id}.json`)
  const prof = join(base, `profile-${id}.json`)
  process.env.PORTCULLIS_SECRETS_PROFILE = prof
  try {
    const code = await secretsCommand([...args, '--format', 'json', '--output', file])
    return {
      code,
      out: JSON.parse(readFileSync(file, 'utf8')) as Out,
      profile: JSON.parse(readFileSync(prof, 'utf8')) as ScanProfile,
    }
  } finally {
    delete process.env.PORTCULLIS_SECRETS_PROFILE
  }
}

/** Captures what the command writes to stderr while `f` runs. */
async function stderrOf<T>(f: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const write = process.stderr.write.bind(process.stderr)
  let stderr = ''
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk)
    return true
  }) as typeof process.stderr.write
  try {
    return { value: await f(), stderr }
  } finally {
    process.stderr.write = write
  }
}

/** A ustar archive of the given entries (the two zero blocks at the end). */
function tar(entries: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    const h = Buffer.alloc(512)
    h.write(e.name, 0, 'utf8')
    h.write('0000644\0', 100)
    h.write(`${e.data.length.toString(8).padStart(11, '0')}\0`, 124)
    h.write('0', 156)
    h.write('ustar\0', 257)
    parts.push(h, e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

// ---- a tree with many planted keys of several kinds and shapes ----------------------------------
const tree = join(base, 'tree')
/** Ground truth, written as the tree is: the file and line of every planted key. */
const plants: { file: string; line: number }[] = []
const makers: (() => string)[] = [
  () => `const token = "${fakes.crcToken('ghp_')}"`,
  () => `//registry.npmjs.org/:_authToken=${fakes.crcToken('npm_')}`,
  () => `stripe_key: sk_live_${fakes.chars('a', 24)}`,
  () => `Authorization: Bearer ${fakes.jwt()}`,
  () => `blob = "${Buffer.from(`token=${fakes.crcToken('ghp_')}`).toString('base64')}"`,
]
const filler = (i: number) => `export function f${i}(x: number): number { return x * ${i} } // filler line`
mkdirSync(join(tree, 'src', 'deep', 'er'), { recursive: true })
mkdirSync(join(tree, 'logs'))
for (let f = 0; f < 240; f++) {
  const dirs = ['src', 'src/deep', 'src/deep/er', 'logs']
  const name = `${dirs[f % dirs.length]}/m${f}.${f % 4 === 3 ? 'log' : 'ts'}`
  const lines: string[] = []
  // Sizes from a few lines to a few thousand, so that batches hold one file or hundreds.
  const n = 5 + ((f * 7919) % 9) ** 3 * 4
  for (let l = 0; l < n; l++) {
    if ((f + l) % 97 === 13) {
      lines.push((makers[(f + l) % makers.length] as () => string)())
      plants.push({ file: name, line: l + 1 })
    } else lines.push(filler(l))
  }
  writeFileSync(join(tree, name), `${lines.join('\n')}\n`)
}
// A private key (a multi-line finding).
const pem = fakes.pem('ec')
writeFileSync(join(tree, 'src', 'key.pem'), `# deploy key\n${pem}`)
plants.push({ file: 'src/key.pem', line: 2 })
// An archive, scanned entry by entry.
const inTar = `const t = "${fakes.crcToken('ghp_')}"\n`
writeFileSync(join(tree, 'bundle.tar'), tar([{ name: 'pkg/index.js', data: Buffer.from(`x\n${inTar}`) }]))
plants.push({ file: 'bundle.tar!/pkg/index.js', line: 2 })
// A file over the whole-read size: streamed in chunks, keys on both sides of a chunk boundary.
{
  const line = `${'lorem ipsum dolor sit amet '.repeat(3)}\n`
  const count = Math.ceil((WHOLE_FILE_BYTES + 1024 * 1024) / line.length)
  const at = [10, Math.floor((8 * 1024 * 1024) / line.length), count - 5]
  const parts: string[] = []
  for (let l = 0; l < count; l++) {
    if (at.includes(l)) {
      parts.push(`key=${fakes.crcToken('npm_')}\n`)
      plants.push({ file: 'logs/huge.log', line: l + 1 })
    } else parts.push(line)
  }
  writeFileSync(join(tree, 'logs', 'huge.log'), parts.join(''))
}
const walked = 240 + 3

const key = (f: Found) => `${f.file}:${f.line}`

test('--jobs 2, 3 and auto report exactly the findings of --jobs 1, in the same order', async () => {
  const cwd = process.cwd()
  process.chdir(tree)
  try {
    const one = await run(['.'])
    assert.equal(one.code, EXIT.FINDINGS)
    assert.equal(one.profile.workers, 0, '--jobs 1 scans in-process')
    // The ground truth: every planted key found, nothing else.
    assert.deepEqual(one.out.findings.map(key).sort(), plants.map((p) => `${p.file}:${p.line}`).sort())
    assert.ok(plants.length >= 20, `${plants.length} planted keys`)
    assert.ok(one.out.findings.some((f) => f.encodings.includes('base64')))
    setWorkerMinBytes(1) // workers even for this small tree
    try {
      for (const jobs of ['2', '3', 'auto']) {
        const many = await run(['.', '--jobs', jobs])
        const n = jobs === 'auto' ? availableParallelism() : Number(jobs)
        assert.equal(many.code, EXIT.FINDINGS)
        assert.deepEqual(many.out.findings, one.out.findings, `--jobs ${jobs}: same findings, same order`)
        assert.equal(many.out.summary.files, one.out.summary.files)
        assert.equal(many.out.summary.bytes, one.out.summary.bytes)
        // n threads: this one and n - 1 workers; every file scanned once, by one of them (which
        // one depends on the timing: this thread may scan all of so small a tree before a worker
        // is ready).
        const [main, ...workers] = many.profile.threads
        assert.equal(many.profile.workers, n >= 2 ? n - 1 : 0, `--jobs ${jobs}`)
        assert.equal((main?.files ?? 0) + workers.reduce((s, w) => s + w.files, 0), walked)
      }
      // The workers' path, whatever the timing: this thread kept from scanning, they scan it all.
      setMainThreadScans(false)
      try {
        for (const jobs of ['2', '3']) {
          const many = await run(['.', '--jobs', jobs])
          assert.deepEqual(many.out.findings, one.out.findings, `--jobs ${jobs}, workers only`)
          const [main, ...workers] = many.profile.threads
          assert.equal(many.profile.workers, Number(jobs) - 1)
          assert.equal(main?.files, 0)
          assert.equal(
            workers.reduce((s, w) => s + w.files, 0),
            walked,
          )
        }
      } finally {
        setMainThreadScans(true)
      }
      // With the default threshold this tree (about 19 MiB) is too small for two threads.
      setWorkerMinBytes(undefined)
      assert.ok(one.out.summary.bytes < 2 * DEFAULT_WORKER_MIN_BYTES)
      const small = await run(['.', '--jobs', '2'])
      assert.equal(small.profile.workers, 0)
      assert.deepEqual(small.out.findings, one.out.findings)
    } finally {
      setWorkerMinBytes(undefined)
    }
  } finally {
    process.chdir(cwd)
  }
})

test('a scanning thread that dies: the file it was on is reported, its other files rescanned', async () => {
  const dir = join(base, 'crash')
  mkdirSync(dir)
  const expected: string[] = []
  for (let i = 0; i < 30; i++) {
    writeFileSync(join(dir, `f${i}.ts`), `// ${i}\nconst k = "${fakes.crcToken('ghp_')}"\n`)
    expected.push(`f${i}.ts`)
  }
  writeFileSync(join(dir, 'poison.ts'), `const k = "${fakes.crcToken('ghp_')}"\n`)
  setWorkerMinBytes(1)
  setWorkerCrashOn('poison.ts')
  // The worker meets every file (this thread would otherwise scan some, perhaps the poison).
  setMainThreadScans(false)
  try {
    const { value, stderr } = await stderrOf(() => run([dir, '--jobs', '2']))
    assert.equal(value.code, EXIT.FINDINGS)
    // Every other file's key is there, once: the dead thread's batch went to another.
    assert.deepEqual(value.out.findings.map((f) => f.file.split('/').pop()).sort(), expected.sort())
    assert.match(stderr, /poison\.ts: not scanned: the scanning thread died on it \(Error: injected fault/)
    assert.match(stderr, /1 input\(s\) not scanned/)
    // Alone, the unscanned file makes the run an error (exit 2), not a clean one.
    const solo = join(base, 'crash-solo')
    mkdirSync(solo)
    writeFileSync(join(solo, 'poison.ts'), 'nothing here\n')
    writeFileSync(join(solo, 'clean.ts'), 'nothing here either\n')
    const r = await stderrOf(() => run([solo, '--jobs', '2']))
    assert.equal(r.value.code, EXIT.USAGE)
    assert.match(r.stderr, /poison\.ts: not scanned/)
  } finally {
    setWorkerCrashOn(undefined)
    setWorkerMinBytes(undefined)
    setMainThreadScans(true)
  }
})

test('a worker that dies while this thread scans too: every file found once or reported', async () => {
  // Which thread takes which file depends on the timing: the poison file is either scanned here
  // (its key found) or kills the worker (reported as not scanned); no file is lost or doubled.
  const dir = join(base, 'crash-shared')
  mkdirSync(dir)
  const expected: string[] = []
  for (let i = 0; i < 60; i++) {
    writeFileSync(join(dir, `s${i}.ts`), `// ${'x'.repeat(i * 97)}\nconst k = "${fakes.crcToken('ghp_')}"\n`)
    expected.push(`s${i}.ts`)
  }
  writeFileSync(join(dir, 'poison.ts'), `const k = "${fakes.crcToken('ghp_')}"\n`)
  setWorkerMinBytes(1)
  setWorkerCrashOn('poison.ts')
  try {
    for (let round = 0; round < 3; round++) {
      const { value, stderr } = await stderrOf(() => run([dir, '--jobs', '2']))
      assert.equal(value.code, EXIT.FINDINGS)
      const files = value.out.findings.map((f) => f.file.split('/').pop() as string)
      const lost = /poison\.ts: not scanned: the scanning thread died on it/.test(stderr)
      assert.deepEqual(files.sort(), (lost ? expected : [...expected, 'poison.ts']).sort())
      assert.equal(/1 input\(s\) not scanned/.test(stderr), lost)
    }
  } finally {
    setWorkerCrashOn(undefined)
    setWorkerMinBytes(undefined)
  }
})

test('threads that keep dying: each death costs one file, then this thread scans the rest', async () => {
  const dir = join(base, 'crash-all')
  mkdirSync(dir)
  for (let i = 0; i < 12; i++)
    writeFileSync(join(dir, `p${i}.bad.ts`), `const k = "${fakes.crcToken('npm_')}"\n`)
  setWorkerMinBytes(1)
  setWorkerCrashOn('.bad.ts') // every worker dies on its first file; the main thread does not
  setMainThreadScans(false) // until no worker is left
  try {
    const { value, stderr } = await stderrOf(() => run([dir, '--jobs', '2']))
    const lost = stderr.split('\n').filter((l) => /not scanned: the scanning thread died/.test(l))
    // One worker and a replacement for each death up to --jobs: three deaths, three files lost.
    assert.equal(lost.length, 3)
    assert.equal(value.out.findings.length, 12 - lost.length)
    const named = new Set([...value.out.findings.map((f) => f.file), ...lost.map((l) => l.split(': ')[1])])
    assert.equal(named.size, 12, 'every file scanned or reported')
    assert.equal(value.code, EXIT.FINDINGS)
  } finally {
    setWorkerCrashOn(undefined)
    setWorkerMinBytes(undefined)
    setMainThreadScans(true)
  }
})

/**
 * Runs the CLI as a child process, as an unprivileged user when this is root (root reads any
 * file, so a mode-000 file is only unreadable to another user).
 */
function cli(args: string[], cwd: string, env: Record<string, string>, unprivileged = true) {
  const asNobody = unprivileged && process.getuid?.() === 0
  if (asNobody) {
    // The node binary must be reachable by that user (a Node under a 0700 temporary directory
    // is not): say so rather than fail on an EACCES that reads like a product bug.
    const probe = spawnSync(process.execPath, ['-e', '0'], { uid: 65534, gid: 65534 })
    assert.ok(
      probe.error === undefined && probe.status === 0,
      `${process.execPath} cannot be run by uid 65534 (a directory on its path is not world-readable); this test needs it`,
    )
  }
  return new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'secrets', ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(asNobody ? { uid: 65534, gid: 65534 } : {}),
    })
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (d: string) => {
      stderr += d
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stderr }))
  })
}

test('an unreadable file or directory is reported and makes the exit code 2 (jobs 1 and 2)', async () => {
  const dir = join(base, 'locked')
  mkdirSync(join(dir, 'closed'), { recursive: true })
  writeFileSync(join(dir, 'open.ts'), `const k = "${fakes.crcToken('ghp_')}"\n`)
  writeFileSync(join(dir, 'secret.ts'), `const k = "${fakes.crcToken('ghp_')}"\n`)
  writeFileSync(join(dir, 'closed', 'inside.ts'), `const k = "${fakes.crcToken('ghp_')}"\n`)
  // A file of holes (no disk used; binary, so skipped): enough bytes for a worker by default.
  writeFileSync(join(dir, 'sparse.bin'), '')
  truncateSync(join(dir, 'sparse.bin'), 2 * DEFAULT_WORKER_MIN_BYTES + 1024 * 1024)
  chmodSync(join(dir, 'secret.ts'), 0o000)
  chmodSync(join(dir, 'closed'), 0o000)
  for (const p of [base, dir]) chmodSync(p, 0o755)
  const outDir = join(base, 'cli-out')
  mkdirSync(outDir, { mode: 0o777 })
  chmodSync(outDir, 0o777)
  try {
    for (const jobs of ['1', '2']) {
      const out = join(outDir, `o${jobs}.json`)
      const prof = join(outDir, `p${jobs}.json`)
      const r = await cli([dir, '--jobs', jobs, '--format', 'json', '--output', out], outDir, {
        PORTCULLIS_SECRETS_PROFILE: prof,
      })
      assert.equal(r.code, EXIT.FINDINGS, r.stderr)
      const profile = JSON.parse(readFileSync(prof, 'utf8')) as ScanProfile
      assert.equal(profile.workers, jobs === '1' ? 0 : 1)
      const found = (JSON.parse(readFileSync(out, 'utf8')) as Out).findings.map((f) =>
        f.file.split('/').pop(),
      )
      assert.deepEqual(found, ['open.ts'])
      assert.match(r.stderr, /locked\/secret\.ts: not scanned: permission denied/)
      assert.match(r.stderr, /locked\/closed: not scanned: unreadable/)
      assert.match(r.stderr, /2 input\(s\) not scanned/)
    }
    // Without any finding, the unreadable inputs make it an error, not a clean run.
    rmSync(join(dir, 'open.ts'))
    for (const jobs of ['1', '2']) {
      const r = await cli(
        [dir, '--jobs', jobs, '--format', 'json', '--output', join(outDir, 'x.json')],
        outDir,
        {},
      )
      assert.equal(r.code, EXIT.USAGE, r.stderr)
    }
  } finally {
    chmodSync(join(dir, 'closed'), 0o755)
  }
})

test('a pipe or a device named as a path is reported, not read (a FIFO would block the walk for ever)', async () => {
  const dir = mkdtempSync(join(base, 'special-'))
  for (const p of [base, dir]) chmodSync(p, 0o755)
  const fifo = join(dir, 'pipe')
  execFileSync('mkfifo', [fifo])
  const file = join(dir, 'a.ts')
  writeFileSync(file, `const k = "${fakes.crcToken('ghp_')}"\n`)
  for (const jobs of ['1', '2']) {
    const r = await cli([fifo, '/dev/zero', file, '--jobs', jobs], dir, {}, false)
    assert.equal(r.code, EXIT.FINDINGS, r.stderr)
    assert.match(r.stderr, /pipe: not scanned: not a regular file/)
    assert.match(r.stderr, /\/dev\/zero: not scanned: not a regular file/)
  }
  const alone = await cli([fifo], dir, {}, false)
  assert.equal(alone.code, EXIT.USAGE, alone.stderr)
})
