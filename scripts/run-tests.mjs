#!/usr/bin/env node
// Builds the project, then runs every compiled *.test.js under dist/ with Node's test runner.
// Node 20's --test takes no globs, so the files are listed here. Extra args are passed through
// (e.g. `npm test -- --test-name-pattern=hygiene`); NODE_BIN picks another Node (CI runs Node 24).
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const tsc = spawnSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')],
  {
    stdio: 'inherit',
  },
)
if (tsc.status !== 0) process.exit(tsc.status ?? 1)

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p, out)
    else if (name.endsWith('.test.js')) out.push(p)
  }
  return out
}
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'))
let files = walk(join(root, 'dist'), []).sort()
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)))
if (files.length === 0) {
  console.error('no test files found')
  process.exit(1)
}
const node = process.env.NODE_BIN || process.execPath
const run = spawnSync(node, ['--enable-source-maps', '--test', '--test-concurrency=2', ...flags, ...files], {
  stdio: 'inherit',
  env: { ...process.env, PORTCULLIS_TEST: '1' },
})
process.exit(run.status ?? 1)
