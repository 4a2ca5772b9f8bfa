/**
 * `portcullis secrets --git`: a repository of 10,000 commits made with git fast-import, with a
 * key added in one commit and deleted in a later one; the scan must find it, with its commit,
 * in under 60 s (the bound is the issue's; on this shared machine it takes a few seconds).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { BUILTIN_DETECTORS } from '../src/secrets/detectors/index.js'
import { SecretScanner } from '../src/secrets/engine.js'
import { scanGit } from '../src/secrets/sources/git.js'
import { Fakes } from '../src/secrets/testing/fakes.js'

const repo = mkdtempSync(join(tmpdir(), 'pcl-git-'))
after(() => rmSync(repo, { recursive: true, force: true }))

test('10,000 commits: a key added then deleted is found with its commit, in < 60 s', async () => {
  const fakes = new Fakes(99)
  const key = fakes.crcToken('ghp_')
  const COMMITS = 10_000
  const ADD = 4321
  const DEL = 4400
  let stream = ''
  for (let i = 1; i <= COMMITS; i++) {
    const file = `src/mod${i % 50}.js`
    let content = `export const v${i} = ${i} // change ${i}\n`
    if (i === ADD) content += `const token = "${key}"\n`
    const msg = `commit ${i}`
    stream += `commit refs/heads/main\nmark :${i}\nauthor Dev ${i} <dev${i}@example.test> ${1700000000 + i} +0000\ncommitter Dev <dev@example.test> ${1700000000 + i} +0000\ndata ${msg.length}\n${msg}\n`
    if (i > 1) stream += `from :${i - 1}\n`
    stream += `M 100644 inline ${file}\ndata ${Buffer.byteLength(content)}\n${content}\n`
    if (i === DEL) stream += `M 100644 inline src/mod${ADD % 50}.js\ndata 8\nx = 1;\n\n`
  }
  assert.equal(spawnSync('git', ['init', '-q', repo]).status, 0)
  const fi = spawnSync('git', ['-C', repo, 'fast-import', '--quiet'], { input: stream, maxBuffer: 1 << 28 })
  assert.equal(fi.status, 0, fi.stderr?.toString())
  const head = spawnSync('git', ['-C', repo, 'show', `main:src/mod${ADD % 50}.js`]).stdout.toString()
  assert.ok(!head.includes(key), 'the key is gone from the tip')
  const sha = spawnSync('git', ['-C', repo, 'rev-list', '--all', '--grep', `^commit ${ADD}$`])
    .stdout.toString()
    .trim()
  const started = performance.now()
  const r = await scanGit(new SecretScanner(BUILTIN_DETECTORS), { repo })
  const seconds = (performance.now() - started) / 1000
  console.log(`scanned ${r.commits} commits in ${seconds.toFixed(1)} s`)
  assert.equal(r.commits, COMMITS)
  assert.ok(seconds < 60, `${seconds} s`)
  assert.equal(r.findings.length, 1)
  const f = r.findings[0]
  assert.equal(f?.detector, 'github-pat')
  assert.equal(f?.commit?.sha, sha)
  assert.equal(f?.commit?.author, `Dev ${ADD} <dev${ADD}@example.test>`)
  assert.equal(f?.file, `src/mod${ADD % 50}.js`)
  assert.equal(f?.line, 2)
  assert.ok(!JSON.stringify(r.findings).includes(key))
  // --since and --branch narrow the log.
  const none = await scanGit(new SecretScanner(BUILTIN_DETECTORS), {
    repo,
    branch: 'main',
    since: '2030-01-01',
  })
  assert.equal(none.commits, 0)
  await assert.rejects(
    scanGit(new SecretScanner(BUILTIN_DETECTORS), { repo, branch: 'no-such-branch' }),
    /git log failed/,
  )
})
