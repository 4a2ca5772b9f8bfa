/**
 * The audit writer and verify, in-process on real files: chains across rotations and restarts,
 * group commit, a full queue, hostile events, crash recovery, one writer per chain.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { describe, test } from 'node:test'
import pino from 'pino'
import { Fakes } from '../secrets/testing/fakes.js'
import { prng } from '../util/prng.js'
import type { AuditConfig } from './config.js'
import { listChainFiles } from './files.js'
import { parseKeyring } from './keyring.js'
import type { AuditLog } from './log.js'
import { AuditConfigError, openAuditLog } from './open.js'
import { verifyChain } from './verify.js'

const KEYRING_TEXT = JSON.stringify({ active: 'k1', keys: { k1: randomBytes(32).toString('base64') } })
const keyring = parseKeyring(KEYRING_TEXT, 'test')

function capture(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = []
  const stream = { write: (s: string) => out.push(s) }
  return {
    logger: pino({ level: 'info' }, stream),
    lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>),
  }
}

function config(
  over: Partial<Omit<AuditConfig, 'file'>> & { file?: Partial<AuditConfig['file']> } = {},
): AuditConfig {
  return {
    enabled: true,
    sink: 'file',
    keyring: { env: 'KR' },
    checkpoint: { everyRecords: 1000, intervalSec: 60 },
    maxQueue: 10000,
    events: { authSuccess: false },
    redact: [],
    ...over,
    file: {
      dir: 'audit',
      prefix: 'audit',
      fsync: 'interval',
      fsyncIntervalMs: 1000,
      maxBytes: 0,
      maxAgeSec: 0,
      ...over.file,
    },
  }
}

async function open(
  dir: string,
  c: AuditConfig = config(),
  logger = pino({ level: 'silent' }),
): Promise<AuditLog> {
  return openAuditLog(c, { baseDir: dir, logger, env: { KR: KEYRING_TEXT } })
}

function files(dir: string): string[] {
  return [...listChainFiles(join(dir, 'audit')).values()].flat().map((f) => f.path)
}

function records(dir: string): Record<string, unknown>[] {
  return files(dir).flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{') && l.endsWith('}'))
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  )
}

const tmp = () => mkdtempSync(join(tmpdir(), 'pc-audit-'))

describe('audit log', () => {
  test('a chain across several rotated files verifies; checkpoints by count and at rotation and close', async () => {
    const dir = tmp()
    const log = await open(
      dir,
      config({ file: { maxBytes: 10000 }, checkpoint: { everyRecords: 10, intervalSec: 60 } }),
    )
    for (let i = 0; i < 200; i++) {
      log.emit({
        type: 'deny',
        requestId: `req-${i}`,
        clientIp: '127.0.0.1',
        status: 401,
        code: 'GW_ERR_AUTH_INVALID',
      })
      if (i % 20 === 19) await log.commit()
    }
    await log.close()
    const list = files(dir)
    assert.ok(list.length >= 4, `${list.length} files`)
    const r = verifyChain(list, keyring)
    assert.equal(r.ok, true, JSON.stringify(r.problem))
    assert.equal(r.closed, true)
    const all = records(dir)
    assert.equal(r.records, all.length)
    assert.equal(all.filter((x) => x.type === 'deny').length, 200)
    const cps = all.filter((x) => x.type === 'audit.checkpoint')
    assert.equal(r.checkpoints, cps.length)
    const reasons = new Set(cps.map((c) => (c.data as { reason: string }).reason))
    assert.deepEqual([...reasons].sort(), ['close', 'count', 'rotate'])
    // Every file but the last ends with a rotate checkpoint that names the next file.
    for (let i = 0; i < list.length - 1; i++) {
      const lines = readFileSync(list[i] as string, 'utf8')
        .trim()
        .split('\n')
      const lastRec = JSON.parse(lines[lines.length - 1] as string) as {
        type: string
        data: { reason: string; next: string }
      }
      assert.equal(lastRec.type, 'audit.checkpoint')
      assert.equal(lastRec.data.reason, 'rotate')
      assert.ok((list[i + 1] as string).endsWith(lastRec.data.next))
    }
    // seq runs 0..n-1 without a gap, across files.
    assert.deepEqual(
      all.map((x) => x.seq),
      all.map((_, i) => i),
    )
    // Files are private.
    for (const f of list) assert.equal((await import('node:fs')).statSync(f).mode & 0o077, 0)
  })

  test('commit() resolves once the batch holding every emitted event is written (fsync: always)', async () => {
    const dir = tmp()
    const log = await open(dir, config({ file: { fsync: 'always' } }))
    assert.equal(log.durable, true)
    await log.commit()
    log.emit({ type: 'deny', requestId: 'held-1' })
    log.emit({ type: 'deny', requestId: 'held-2' })
    const p = log.commit()
    assert.equal(log.commit(), p, 'one promise per batch')
    const text = () =>
      files(dir)
        .map((f) => readFileSync(f, 'utf8'))
        .join('')
    assert.equal(text().includes('held-1'), false, 'not written synchronously')
    await p
    assert.ok(text().includes('held-1') && text().includes('held-2'))
    await log.close()
  })

  test('a full queue drops events, logs an error, and records the gap in the chain', async () => {
    const dir = tmp()
    const cap = capture()
    const log = await open(dir, config({ maxQueue: 100 }), cap.logger)
    for (let i = 0; i < 150; i++) log.emit({ type: 'deny', requestId: `q-${i}` })
    assert.equal(log.stats.dropped, 50)
    await log.commit()
    for (let i = 0; i < 10; i++) log.emit({ type: 'deny', requestId: `after-${i}` })
    await log.close()
    assert.ok(cap.lines().some((l) => l.level === 50 && /AUDIT EVENTS DROPPED/.test(String(l.msg))))
    const all = records(dir)
    const gap = all.find((x) => x.type === 'audit.gap') as { data: { dropped: number } } | undefined
    assert.equal(gap?.data.dropped, 50)
    assert.equal(all.filter((x) => x.type === 'deny').length, 110)
    const r = verifyChain(files(dir), keyring)
    assert.equal(r.ok, true)
    assert.equal(r.dropped, 50)
    assert.ok(r.notes.some((n) => /50 events were dropped/.test(n)))
  })

  test('emit never throws: malformed or reserved events are counted, unserializable ones recorded as audit.invalid', async () => {
    const dir = tmp()
    const log = await open(dir)
    const cyclic: Record<string, unknown> = {}
    cyclic.me = cyclic
    const hostile: unknown[] = [
      null,
      undefined,
      42,
      {},
      { type: '' },
      { type: 'audit.checkpoint' },
      { type: 'x', data: cyclic },
      { type: 'y', data: { n: Number.NaN } },
      { type: 'z', data: { big: 10n } },
    ]
    for (const e of hostile) assert.doesNotThrow(() => log.emit(e as never))
    await log.close()
    const all = records(dir)
    const invalid = all
      .filter((x) => x.type === 'audit.invalid')
      .map((x) => (x.data as { type: string }).type)
    assert.deepEqual(invalid, ['x', 'y', 'z'])
    assert.equal(log.stats.invalid, 9)
    assert.equal(all.filter((x) => x.type === 'audit.checkpoint').length, 1, 'no forged checkpoint')
    assert.equal(verifyChain(files(dir), keyring).ok, true)
  })

  test('configured paths are redacted before records are sealed', async () => {
    const dir = tmp()
    const log = await open(dir, config({ redact: ['path', 'data.subject'] }))
    log.emit({ type: 'lockout', path: '/users/alice@example.com', data: { subject: 'acct:abc', level: 1 } })
    await log.close()
    const text = files(dir)
      .map((f) => readFileSync(f, 'utf8'))
      .join('')
    assert.equal(text.includes('alice@example.com'), false)
    const rec = records(dir).find((x) => x.type === 'lockout') as {
      path: string
      data: { subject: string; level: number }
    }
    assert.equal(rec.path, '[redacted]')
    assert.deepEqual(rec.data, { subject: '[redacted]', level: 1 })
  })

  test('a restart continues the chain in a new file; a torn last record is recorded by the restart', async () => {
    const dir = tmp()
    let log = await open(dir)
    log.emit({ type: 'deny', requestId: 'first-run' })
    await log.commit() // no close: as if the process died
    // The lock of a dead writer is taken over; here the same pid holds it, which also counts as stale.
    log = await open(dir)
    const instance = log.instance
    log.emit({ type: 'deny', requestId: 'second-run' })
    await log.close()
    let r = verifyChain(files(dir), keyring)
    assert.equal(r.ok, true, JSON.stringify(r.problem))
    assert.ok(
      r.notes.some((n) => /left open/.test(n)),
      r.notes.join('\n'),
    )
    // Cut the last record in the middle, as a crash during a write would.
    const last = files(dir).at(-1) as string
    const size = readFileSync(last).length
    truncateSync(last, size - 40)
    r = verifyChain(files(dir), keyring)
    assert.equal(r.ok, false)
    assert.equal(r.problem?.kind, 'truncated')
    assert.match(r.problem?.message ?? '', /unterminated record/)
    const cap = capture()
    log = await open(dir, config(), cap.logger)
    assert.equal(log.instance, instance, 'the instance id is found in the files')
    await log.close()
    r = verifyChain(files(dir), keyring)
    assert.equal(r.ok, true, JSON.stringify(r.problem))
    assert.ok(
      r.notes.some((n) => /unterminated record .* recorded by the restart/.test(n)),
      r.notes.join('\n'),
    )
    const start = records(dir)
      .filter((x) => x.type === 'audit.start')
      .at(-1) as { data: { torn: unknown[] } }
    assert.equal(start.data.torn.length, 1)
    assert.ok(cap.lines().some((l) => /unterminated record/.test(String(l.msg))))
  })

  test('refuses to continue from a last record that does not verify, or from another keyring', async () => {
    const dir = tmp()
    const log = await open(dir)
    await log.close()
    const last = files(dir).at(-1) as string
    writeFileSync(last, readFileSync(last, 'utf8').replace('"reason":"close"', '"reason":"cl0se"'))
    await assert.rejects(open(dir), (err: Error) => {
      assert.ok(err instanceof AuditConfigError)
      assert.match(err.message, /cannot be trusted .*MAC does not verify/)
      return true
    })
    const dir2 = tmp()
    await (await open(dir2)).close()
    const other = JSON.stringify({ active: 'k1', keys: { k1: randomBytes(32).toString('base64') } })
    await assert.rejects(
      openAuditLog(config(), { baseDir: dir2, logger: pino({ level: 'silent' }), env: { KR: other } }),
      AuditConfigError,
    )
  })

  test('one writer per chain; several instances in one directory need instanceId', async () => {
    const dir = tmp()
    const a = await open(dir, config({ instanceId: 'gw-a' }))
    // The lock names a live process that is not this one.
    writeFileSync(join(dir, 'audit', 'audit-gw-a.lock'), `${process.ppid}\n`)
    await assert.rejects(
      open(dir, config({ instanceId: 'gw-a' })),
      /another process .* writes the audit chain/,
    )
    writeFileSync(join(dir, 'audit', 'audit-gw-a.lock'), `${process.pid}\n`)
    const b = await open(dir, config({ instanceId: 'gw-b' }))
    await a.close()
    await b.close()
    assert.deepEqual(
      readdirSync(join(dir, 'audit')).filter((f) => f.endsWith('.lock')),
      [],
      'locks released',
    )
    await assert.rejects(open(dir), /several instances \(.*gw-a.*gw-b|several instances \(.*gw-b.*gw-a/)
    const again = await open(dir, config({ instanceId: 'gw-b' }))
    assert.equal(again.instance, 'gw-b')
    await again.close()
  })

  test('stdout sink: one chain per start, verifiable from the captured output', async () => {
    const dir = tmp()
    const out = new PassThrough()
    let text = ''
    out.on('data', (c: Buffer) => {
      text += c
    })
    const log = await openAuditLog(config({ sink: 'stdout' }), {
      baseDir: dir,
      logger: pino({ level: 'silent' }),
      env: { KR: KEYRING_TEXT },
      stdout: out,
    })
    log.emit({ type: 'deny', requestId: 'to-stdout' })
    await log.close()
    writeFileSync(join(dir, 'captured.jsonl'), text)
    const r = verifyChain([join(dir, 'captured.jsonl')], keyring)
    assert.equal(r.ok, true, JSON.stringify(r.problem))
    assert.equal(r.records, 3)
    assert.match(log.instance, /^gw-[0-9a-f]{10}$/)
  })
})

describe('audit verify against random damage', () => {
  test('every single-byte change, deletion or insertion anywhere in the chain is caught (seeded fuzz)', async () => {
    const dir = tmp()
    const log = await open(
      dir,
      config({ file: { maxBytes: 3000 }, checkpoint: { everyRecords: 9, intervalSec: 60 } }),
    )
    for (let i = 0; i < 40; i++)
      log.emit({ type: 'deny', requestId: `fz-${i}`, status: 403, data: { n: i, s: 'ü€' } })
    await log.close()
    const list = files(dir)
    assert.equal(verifyChain(list, keyring).ok, true)
    const originals = list.map((f) => readFileSync(f))
    const seed = 20260417
    const rnd = prng(seed)
    let caught = 0
    for (let i = 0; i < 300; i++) {
      const fi = Math.floor(rnd() * list.length)
      const orig = originals[fi] as Buffer
      const at = Math.floor(rnd() * orig.length)
      const op = Math.floor(rnd() * 3)
      let damaged: Buffer
      if (op === 0) {
        damaged = Buffer.from(orig)
        let b = Math.floor(rnd() * 256)
        if (b === orig[at]) b = (b + 1) % 256
        damaged[at] = b
      } else if (op === 1) {
        damaged = Buffer.concat([orig.subarray(0, at), orig.subarray(at + 1)])
      } else {
        damaged = Buffer.concat([
          orig.subarray(0, at),
          Buffer.from([Math.floor(rnd() * 256)]),
          orig.subarray(at),
        ])
      }
      writeFileSync(list[fi] as string, damaged)
      let ok: boolean
      try {
        ok = verifyChain(list, keyring).ok
      } catch {
        ok = false // a usage error (e.g. a kid changed into one the keyring lacks): not accepted either
      }
      assert.equal(ok, false, `seed ${seed}, case ${i}: op ${op} at byte ${at} of ${list[fi]} was not caught`)
      caught++
      writeFileSync(list[fi] as string, orig)
    }
    assert.equal(caught, 300)
  })
})

test('verify: invalid UTF-8 standing in for a U+FFFD the writer wrote is caught', async () => {
  const dir = tmp()
  const log = await open(dir)
  log.emit({ type: 'deny', reason: 'x\ufffdy' })
  await log.close()
  const f = files(dir)[0] as string
  const orig = readFileSync(f)
  const at = orig.indexOf(Buffer.from('x\ufffdy'))
  assert.ok(at > 0)
  const damaged = Buffer.concat([orig.subarray(0, at + 1), Buffer.from([0xff]), orig.subarray(at + 4)])
  assert.equal(damaged.toString('utf8'), orig.toString('utf8'), 'decodes the same')
  writeFileSync(f, damaged)
  const r = verifyChain([f], keyring)
  assert.equal(r.problem?.kind, 'altered')
  assert.match(r.problem?.message ?? '', /UTF-8/)
})

test('audit masking: a credential anywhere in an event is masked before sealing; an event without one is sealed as it is', async () => {
  const f = new Fakes(77)
  const gh = f.crcToken('ghp_')
  const npm = f.crcToken('npm_')
  const dir = tmp()
  const log = await open(dir)
  log.emit({ type: 'deny', path: `/cb?token=${gh}`, status: 401 })
  // in a nested member, after a quote and a newline (characters the canonical form escapes)
  log.emit({ type: 'deny', data: { a: [{ note: `he said "${npm}"\nthen left` }] }, status: 400 })
  // as a member name
  log.emit({ type: 'deny', data: { [gh]: 1 }, status: 400 })
  const plain = { type: 'deny', path: '/api/orders/42', reason: 'no scope "orders:write"', status: 403 }
  log.emit(plain)
  await log.close()
  const text = files(dir)
    .map((p) => readFileSync(p, 'utf8'))
    .join('')
  assert.ok(!text.includes(gh) && !text.includes(npm), 'no credential in clear')
  const all = records(dir).filter((r) => r.type === 'deny')
  assert.equal(all.length, 4)
  assert.match(String(all[0]?.path), /^\/cb\?token=ghp_\*+/)
  assert.match(JSON.stringify(all[1]?.data), /npm_\*+/)
  assert.ok(Object.keys(all[2]?.data as object)[0]?.startsWith('ghp_'))
  assert.equal(all[3]?.path, plain.path)
  assert.equal(all[3]?.reason, plain.reason)
  assert.equal(verifyChain(files(dir), keyring).ok, true)
})

test('audit masking: a keyword that holds a quote (a JSON body quoted in a string) is found through its escapes', async () => {
  const card = new Fakes(78).card('4', 16)
  const dir = tmp()
  const log = await open(dir)
  log.emit({ type: 'deny', data: { body: `{"pan":"${card}"}` }, status: 400 })
  await log.close()
  const text = files(dir)
    .map((p) => readFileSync(p, 'utf8'))
    .join('')
  assert.ok(!text.includes(card), 'the card number is masked')
})
