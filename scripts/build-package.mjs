#!/usr/bin/env node
// `npm pack` / `npm publish` (the prepack script): a clean build of src/ only, with type
// declarations and without tests or source maps (tsconfig.build.json). dist/ is emptied first, so
// the package holds exactly what this build made; the next `npm test` rebuilds the rest.
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
rmSync(join(root, 'dist'), { recursive: true, force: true })
const tsc = spawnSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
  { stdio: 'inherit' },
)
process.exit(tsc.status ?? 1)
