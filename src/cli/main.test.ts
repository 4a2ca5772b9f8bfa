import assert from 'node:assert/strict'
import { test } from 'node:test'
import { EXIT } from './command.js'
import { COMMANDS, helpText, main, reportError } from './main.js'

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const write = process.stdout.write.bind(process.stdout)
  let out = ''
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk)
    return true
  }) as typeof process.stdout.write
  try {
    return { code: await fn(), out }
  } finally {
    process.stdout.write = write
  }
}

test('help lists exactly the commands of the table', () => {
  const text = helpText()
  for (const c of COMMANDS) assert.match(text, new RegExp(`^  ${c.name} `, 'm'))
  const listed = [...text.matchAll(/^ {2}([a-z][a-z-]*) /gm)].map((m) => m[1])
  assert.deepEqual(listed.filter((n) => n !== 'help').sort(), COMMANDS.map((c) => c.name).sort())
})

test('--help on every command, and help COMMAND, print its usage and exit 0 without running it', async () => {
  for (const c of COMMANDS) {
    for (const argv of [
      [c.name, '--help'],
      [c.name, 'sub', '-h'],
      ['help', c.name],
    ]) {
      const r = await capture(() => main(argv))
      assert.equal(r.code, EXIT.OK, argv.join(' '))
      assert.equal(r.out, `${c.usage}\n`, argv.join(' '))
    }
  }
})

test('unknown command is a usage error; an unexpected error exits 70, never the findings code', async () => {
  await assert.rejects(() => main(['nope']), { name: 'UsageError' })
  const err = process.stderr.write.bind(process.stderr)
  process.stderr.write = (() => true) as typeof process.stderr.write
  try {
    assert.equal(reportError(new TypeError('boom')), EXIT.CRASH)
    assert.notEqual(EXIT.CRASH, EXIT.FINDINGS)
    const usage = new Error('x')
    usage.name = 'ConfigError'
    assert.equal(reportError(usage), EXIT.USAGE)
  } finally {
    process.stderr.write = err
  }
})
