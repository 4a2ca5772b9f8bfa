/**
 * The systemd unit (deploy/systemd/portcullis.service): `systemd-analyze verify` finds nothing to
 * say about it (verify exits 0 even for an unknown key or a bad value, so any line it prints is
 * a failure here), its hardening scores as `systemd-analyze security` rates well, and reload and
 * stop are wired to SIGHUP and a drain.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'

const UNIT = new URL('../../deploy/systemd/portcullis.service', import.meta.url).pathname
const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' })
const missing =
  analyze.error !== undefined ? 'systemd-analyze is not installed (Debian package systemd)' : false

/**
 * `systemd-analyze verify` on a copy of `text` named portcullis.service. verify checks that
 * ExecStart's program exists: the copy runs this machine's node instead of the installed CLI
 * (/usr/local/bin/portcullis), the rest unchanged. Resolves what it printed.
 */
function verify(text: string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pc-unit-'))
  try {
    const file = join(dir, 'portcullis.service')
    writeFileSync(file, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`))
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60_000 })
    return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('systemd unit', () => {
  // A missing tool fails the suite (never a silent skip): `npm run test:deps` installs it.
  before(() => assert.equal(missing, false, String(missing)))

  const text = readFileSync(UNIT, 'utf8')

  test('systemd-analyze verify: nothing to report', () => {
    const r = verify(text)
    assert.equal(r.status, 0, r.output)
    assert.equal(r.output, '', 'verify printed warnings')
  })

  test('the check fails on a misspelt key or a bad value (it can fail)', () => {
    const bad = verify(text.replace('NoNewPrivileges=yes', 'NoNewPrivilges=yes'))
    assert.match(bad.output, /Unknown key 'NoNewPrivilges'/)
    const badValue = verify(text.replace('ProtectSystem=strict', 'ProtectSystem=strictest'))
    assert.match(badValue.output, /protect system/i)
  })

  test('hardening: systemd-analyze security rates the exposure 2.0 or lower', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-unit-'))
    try {
      const file = join(dir, 'portcullis.service')
      writeFileSync(file, text)
      const r = spawnSync('systemd-analyze', ['security', '--offline=yes', file], {
        encoding: 'utf8',
        timeout: 60_000,
      })
      if (/unrecognized option|unknown option/i.test(r.stderr)) {
        t.skip('this systemd-analyze has no --offline (systemd < 250)')
        return
      }
      const m = /Overall exposure level for portcullis\.service: (\d+\.\d+)/.exec(r.stdout)
      assert.ok(m, `${r.stdout}${r.stderr}`)
      assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]}`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('reload is SIGHUP, stop is a drain within the stop timeout, no writable system paths', () => {
    const keys = new Map<string, string[]>()
    for (const line of text.split('\n')) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line)
      if (m) keys.set(m[1] as string, [...(keys.get(m[1] as string) ?? []), m[2] as string])
    }
    assert.deepEqual(keys.get('ExecReload'), ['/bin/kill -HUP $MAINPID'])
    assert.deepEqual(keys.get('KillSignal'), ['SIGTERM'])
    assert.ok(Number(keys.get('TimeoutStopSec')?.[0]) > 10, 'longer than the default drain (10 s)')
    assert.match(keys.get('ExecStart')?.[0] ?? '', / serve --config \/etc\/portcullis\/portcullis\.yaml$/)
    for (const [k, v] of [
      ['DynamicUser', 'yes'],
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['CapabilityBoundingSet', ''],
    ])
      assert.deepEqual(keys.get(k as string), [v], k)
    assert.ok(!keys.has('MemoryDenyWriteExecute'), "V8's JIT needs W+X memory")
  })
})
