/**
 * Tamper tests for `portcullis audit verify` (the real CLI): a chain written by the real writer
 * across several files, then edited, cut, reordered, spliced or checked with the wrong key. Each
 * tampering must be named (kind, file, line) with exit 1; an intact chain exits 0; usage and
 * keyring errors exit 2.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import pino from 'pino'
import type { AuditConfig } from '../src/audit/config.js'
import { openAuditLog } from '../src/audit/open.js'
import { tempDir } from './helpers/process.js'

const ROOT = new URL('../../', import.meta.url).pathname

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function cli(args: string[]): Run {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'audit', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const keyA = randomBytes(32).toString('base64')
const KEYRING = JSON.stringify({ active: 'k1', keys: { k1: keyA } })

function auditConfig(instanceId: string): AuditConfig {
  return {
    enabled: true,
    instanceId,
    sink: 'file',
    keyring: { env: 'KR' },
    checkpoint: { everyRecords: 7, intervalSec: 60 },
    maxQueue: 10000,
    events: { authSuccess: false },
    redact: [],
    file: {
      dir: 'chain',
      prefix: 'audit',
      fsync: 'interval',
      fsyncIntervalMs: 1000,
      maxBytes: 3000,
      maxAgeSec: 0,
    },
  }
}

async function writeChain(base: string, instanceId: string, n: number): Promise<void> {
  const log = await openAuditLog(auditConfig(instanceId), {
    baseDir: base,
    logger: pino({ level: 'silent' }),
    env: { KR: KEYRING },
  })
  for (let i = 0; i < n; i++) {
    log.emit({
      type: i % 3 === 0 ? 'auth.failure' : 'deny',
      requestId: `${instanceId}-req-${i}`,
      clientIp: '127.0.0.1',
      route: 'api',
      status: 401,
      code: 'GW_ERR_AUTH_INVALID',
    })
    if (i % 5 === 4) await log.commit()
  }
  await log.close()
}

let base: string
let keyringFile: string
/** The intact chain's files, in order (names only). */
let names: string[]

/** A fresh copy of the intact chain to tamper with; returns its directory. */
function copy(): string {
  const d = join(tempDir('pc-tamper-'), 'chain')
  cpSync(join(base, 'chain'), d, { recursive: true })
  for (const f of readdirSync(d)) if (f.includes('gw-other') || f.endsWith('.lock')) rmSync(join(d, f))
  return d
}

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').slice(0, -1)
const writeLines = (file: string, l: string[]) =>
  writeFileSync(file, l.length === 0 ? '' : `${l.join('\n')}\n`)

function verify(dir: string, extra: string[] = []): Run {
  return cli(['verify', '--keyring', keyringFile, '--instance', 'gw-main', ...extra, dir])
}

function assertFailed(r: Run, kind: string, file: string, line?: number): void {
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}`)
  assert.match(
    r.stdout,
    new RegExp(
      `^FAILED: ${kind}: ${file.replace(/\./g, '\\.')}${line !== undefined ? ` line ${line}\\b` : ''}`,
    ),
    r.stdout,
  )
}

describe('portcullis audit verify', () => {
  before(async () => {
    base = tempDir('pc-verify-')
    keyringFile = join(base, 'keys.json')
    writeFileSync(keyringFile, KEYRING, { mode: 0o600 })
    await writeChain(base, 'gw-main', 92) // the last batch holds events and the close checkpoint
    await writeChain(base, 'gw-other', 5)
    names = readdirSync(join(base, 'chain'))
      .filter((f) => f.startsWith('audit-gw-main-'))
      .sort()
    assert.ok(names.length >= 4, `${names.length} files`)
  })

  test('an intact chain across rotated files: exit 0, counts printed', () => {
    const r = verify(copy())
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(
      r.stdout,
      new RegExp(
        `^OK: \\d+ records \\(\\d+ checkpoints\\) in ${names.length} files, instance gw-main, seq 0\\.\\.\\d+, last at .*, closed`,
      ),
    )
    // Files listed explicitly, in order, work the same.
    const d = copy()
    const r2 = cli(['verify', '--keyring', keyringFile, ...names.map((n) => join(d, n))])
    assert.equal(r2.code, 0, r2.stdout)
    const json = cli(['verify', '--keyring', keyringFile, '--format', 'json', '--instance', 'gw-main', d])
    const report = JSON.parse(json.stdout) as { ok: boolean; records: number; closed: boolean }
    assert.equal(report.ok, true)
    assert.equal(report.closed, true)
    assert.ok(report.records > 90)
  })

  test('an edited field: altered (MAC), with file and line', () => {
    const d = copy()
    const f = join(d, names[1] as string)
    const l = lines(f)
    l[2] = (l[2] as string).replace('"status":401', '"status":200')
    assert.notEqual(l[2], lines(f)[2])
    writeLines(f, l)
    const r = verify(d)
    assertFailed(r, 'altered', names[1] as string, 3)
    assert.match(r.stdout, /MAC does not verify/)
  })

  test('a re-serialized line (same content, other formatting): altered (not canonical)', () => {
    const d = copy()
    const f = join(d, names[0] as string)
    const l = lines(f)
    l[1] = JSON.stringify(JSON.parse(l[1] as string), null, 1).replace(/\n/g, '')
    writeLines(f, l)
    const r = verify(d)
    assertFailed(r, 'altered', names[0] as string, 2)
    assert.match(r.stdout, /canonical/)
  })

  test('a deleted record: missing, naming the seq', () => {
    const d = copy()
    const f = join(d, names[1] as string)
    const l = lines(f)
    const seq = (JSON.parse(l[3] as string) as { seq: number }).seq
    l.splice(3, 1)
    writeLines(f, l)
    const r = verify(d)
    assertFailed(r, 'missing', names[1] as string, 4)
    assert.match(r.stdout, new RegExp(`seq ${seq} missing`))
  })

  test('two records swapped: reordered', () => {
    const d = copy()
    const f = join(d, names[2] as string)
    const l = lines(f)
    ;[l[1], l[2]] = [l[2] as string, l[1] as string]
    writeLines(f, l)
    assertFailed(verify(d), 'reordered', names[2] as string, 2)
  })

  test('a record repeated (replayed): reordered', () => {
    const d = copy()
    const f = join(d, names[2] as string)
    const l = lines(f)
    l.splice(3, 0, l[2] as string)
    writeLines(f, l)
    assertFailed(verify(d), 'reordered', names[2] as string, 4)
  })

  test('the last file cut in the middle of a record: truncated', () => {
    const d = copy()
    const f = join(d, names.at(-1) as string)
    const size = readFileSync(f).length
    truncateSync(f, size - 25)
    const r = verify(d)
    assertFailed(r, 'truncated', names.at(-1) as string)
    assert.match(r.stdout, /unterminated record at line \d+/)
  })

  test('whole records cut from the end of a middle file: missing', () => {
    const d = copy()
    const f = join(d, names[1] as string)
    writeLines(f, lines(f).slice(0, -3))
    assertFailed(verify(d), 'missing', names[2] as string, 1)
  })

  test('a whole middle file removed: missing', () => {
    const d = copy()
    rmSync(join(d, names[2] as string))
    const r = verify(d)
    assertFailed(r, 'missing', names[3] as string, 1)
    assert.match(r.stdout, new RegExp(`missing between ${names[1]}:\\d+ and ${names[3]}:1`))
  })

  test('the newest file removed after a rotation: truncated (the rotation names it)', () => {
    const d = copy()
    rmSync(join(d, names.at(-1) as string))
    const r = verify(d)
    assertFailed(r, 'truncated', names.at(-1) as string)
    assert.match(r.stdout, /continues in/)
  })

  test('the first file removed: missing (or --partial: verified from there, with a note)', () => {
    const d = copy()
    rmSync(join(d, names[0] as string))
    assertFailed(verify(d), 'missing', names[1] as string, 1)
    const r = verify(d, ['--partial'])
    assert.equal(r.code, 0, r.stdout)
    assert.match(r.stdout, /note: the chain is verified from seq \d+/)
  })

  test('files given out of order: not accepted', () => {
    const d = copy()
    const r = cli([
      'verify',
      '--keyring',
      keyringFile,
      join(d, names[0] as string),
      join(d, names[2] as string),
      join(d, names[1] as string),
    ])
    assert.equal(r.code, 1, r.stdout)
    assert.match(r.stdout, /^FAILED: missing/)
  })

  test('a record from another instance spliced in: foreign', () => {
    const d = copy()
    const other = readdirSync(join(base, 'chain')).find((x) => x.startsWith('audit-gw-other-')) as string
    const alien = lines(join(base, 'chain', other))[3] as string
    const f = join(d, names[1] as string)
    const l = lines(f)
    l.splice(2, 0, alien)
    writeLines(f, l)
    const r = verify(d)
    assertFailed(r, 'foreign', names[1] as string, 3)
    assert.match(r.stdout, /instance "gw-other"/)
  })

  test('verifying with the wrong key: altered at the first record; a keyring without the key id: unknown-key, exit 1 (issue 25, item 10)', () => {
    const wrong = join(base, 'wrong.json')
    writeFileSync(wrong, JSON.stringify({ active: 'k1', keys: { k1: randomBytes(32).toString('base64') } }))
    const d = copy()
    const r = cli(['verify', '--keyring', wrong, d])
    assertFailed(r, 'altered', names[0] as string, 1)
    const otherKid = join(base, 'other-kid.json')
    writeFileSync(
      otherKid,
      JSON.stringify({ active: 'k9', keys: { k9: randomBytes(32).toString('base64') } }),
    )
    const r2 = cli(['verify', '--keyring', otherKid, d])
    assertFailed(r2, 'unknown-key', names[0] as string, 1)
    assert.match(r2.stdout, /key id "k1", which is not in the keyring/)
    // A record signed with a key id the keyring lacks, among records that verify: a forgery, exit 1.
    const forged = copy()
    const f = join(forged, names[1] as string)
    const l = lines(f)
    l[2] = (l[2] as string).replace('"kid":"k1"', '"kid":"k-forged"')
    writeLines(f, l)
    const r3 = cli(['verify', '--keyring', keyringFile, '--instance', 'gw-main', forged])
    assertFailed(r3, 'unknown-key', names[1] as string, 3)
    const r4 = cli([
      'report',
      '--keyring',
      keyringFile,
      '--instance',
      'gw-main',
      '--dir',
      forged,
      '--principal',
      'x',
    ])
    assert.equal(r4.code, 1, r4.stdout + r4.stderr)
    assert.match(r4.stdout, /CHAIN BROKEN: unknown-key/)
    // Rotated keyrings keep verifying: k1 old, k2 active.
    const rotated = join(base, 'rotated.json')
    writeFileSync(
      rotated,
      JSON.stringify({ active: 'k2', keys: { k1: keyA, k2: randomBytes(32).toString('base64') } }),
    )
    assert.equal(cli(['verify', '--keyring', rotated, d]).code, 0)
  })

  test('--require-closed: a chain without its close checkpoint is truncated', () => {
    const d = copy()
    const f = join(d, names.at(-1) as string)
    writeLines(f, lines(f).slice(0, -1))
    const open = verify(d)
    assert.equal(open.code, 0, open.stdout)
    assert.match(open.stdout, /open\nnote: the chain ends at seq \d+ .* without a close checkpoint/)
    assertFailed(verify(d, ['--require-closed']), 'truncated', names.at(-1) as string)
  })

  test('usage and keyring errors exit 2', () => {
    const d = copy()
    const cases: [string[], RegExp][] = [
      [['verify', d], /exactly one of --keyring/],
      [['verify', '--keyring', keyringFile], /no files given/],
      [['verify', '--keyring', join(base, 'nope.json'), d], /ENOENT/],
      [['verify', '--keyring', keyringFile, join(base, 'chain')], /several chains/],
      [['verify', '--keyring', keyringFile, join(d, 'missing.jsonl')], /ENOENT/],
      [['verify', '--keyring', keyringFile, '--format', 'xml', d], /--format/],
      [['frobnicate'], /unknown audit subcommand/],
      [['verify', '--keyring', keyringFile, '--anchor-redis', 'http://127.0.0.1:9', d], /--anchor-redis/],
      [
        ['verify', '--keyring', keyringFile, '--anchor-redis', 'redis://127.0.0.1:9', d],
        /anchors: redis: cannot be read/,
      ],
    ]
    for (const [args, re] of cases) {
      const r = cli(args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
      assert.match(r.stderr, re)
    }
  })

  test('keygen: makes a 0600 keyring, rotates by adding an active key, prints only the key id', () => {
    const d = tempDir('pc-keygen-')
    const file = join(d, 'audit-keys.json')
    const a = cli(['keygen', '--keyring', file])
    assert.equal(a.code, 0, a.stderr)
    assert.equal(a.stdout, 'k1\n')
    const b = cli(['keygen', '--keyring', file, '--kid', '2026-q1'])
    assert.equal(b.stdout, '2026-q1\n')
    const ring = JSON.parse(readFileSync(file, 'utf8')) as { active: string; keys: Record<string, string> }
    assert.equal(ring.active, '2026-q1')
    assert.deepEqual(Object.keys(ring.keys), ['k1', '2026-q1'])
    for (const key of Object.values(ring.keys)) {
      assert.equal(
        a.stdout.includes(key) || a.stderr.includes(key) || b.stdout.includes(key) || b.stderr.includes(key),
        false,
      )
    }
    assert.equal(statSync(file).mode & 0o077, 0)
    assert.equal(cli(['keygen', '--keyring', file, '--kid', 'k1']).code, 2, 'an existing kid is refused')
  })
})
