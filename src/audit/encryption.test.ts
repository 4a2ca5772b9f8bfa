/**
 * Audit encryption at rest, in-process on real files: encrypted chains verify (and only with the
 * keyring), tampered ciphertext or headers are named, torn frames are recovered from, a new key in
 * the keyring file starts a new file, chains mix plain and encrypted files, hostile input.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import pino from 'pino'
import { decryptFile } from '../cli/commands/audit/decrypt.js'
import type { AuditConfig } from './config.js'
import { FileDecryptor, FileEncryptor, parseEncryptionKeyring } from './encryption.js'
import { listChainFiles } from './files.js'
import { formatKeyring, KeyringError, parseKeyring } from './keyring.js'
import type { AuditLog } from './log.js'
import { openAuditLog } from './open.js'
import { checkRecord } from './record.js'
import { VerifyUsageError, verifyChain } from './verify.js'

const KEYRING_TEXT = JSON.stringify({ active: 'k1', keys: { k1: randomBytes(32).toString('base64') } })
const keyring = parseKeyring(KEYRING_TEXT, 'test')
const b64 = () => randomBytes(32).toString('base64')

function config(
  over: Partial<Omit<AuditConfig, 'file'>> & { file?: Partial<AuditConfig['file']> } = {},
): AuditConfig {
  return {
    enabled: true,
    sink: 'file',
    keyring: { env: 'KR' },
    encryption: { keyring: { file: 'enc-keys.json' } },
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

const tmp = () => mkdtempSync(join(tmpdir(), 'pc-audit-enc-'))

function writeEncKeys(dir: string, active: string, keys: Map<string, string>): void {
  writeFileSync(join(dir, 'enc-keys.json'), formatKeyring(active, keys), { mode: 0o600 })
}

function encKeys(dir: string) {
  return parseEncryptionKeyring(readFileSync(join(dir, 'enc-keys.json'), 'utf8'), 'test')
}

async function open(dir: string, c: AuditConfig = config(), now?: () => number): Promise<AuditLog> {
  return openAuditLog(c, {
    baseDir: dir,
    logger: pino({ level: 'silent' }),
    env: { KR: KEYRING_TEXT },
    ...(now ? { now } : {}),
  })
}

function files(dir: string): string[] {
  return [...listChainFiles(join(dir, 'audit')).values()].flat().map((f) => f.path)
}

async function writeSome(log: AuditLog, n: number, tag = 'r'): Promise<void> {
  for (let i = 0; i < n; i++) {
    log.emit({ type: 'deny', requestId: `${tag}-${i}`, clientIp: '198.51.100.77', path: `/api/orders/${i}` })
    if (i % 10 === 9) await log.commit()
  }
  await log.commit()
}

/** Replaces line `n` (1-based) of a file. */
function editLine(file: string, n: number, edit: (line: string) => string): void {
  const lines = readFileSync(file, 'utf8').split('\n')
  lines[n - 1] = edit(lines[n - 1] as string)
  writeFileSync(file, lines.join('\n'))
}

describe('audit encryption at rest', () => {
  test('an encrypted chain across rotations verifies with the keyring, holds no plaintext, and is 0600', async () => {
    const dir = tmp()
    writeEncKeys(dir, 'e1', new Map([['e1', b64()]]))
    const log = await open(dir, config({ file: { maxBytes: 4000 } }))
    await writeSome(log, 120)
    await log.close()
    const list = files(dir)
    assert.ok(list.length >= 3, `${list.length} files`)
    for (const f of list) {
      assert.match(f, /\.jsonl\.enc$/)
      assert.equal(statSync(f).mode & 0o077, 0)
      const text = readFileSync(f, 'utf8')
      assert.ok(!text.includes('198.51.100.77'), 'no plaintext member in the file')
      assert.ok(!text.includes('"seq"'), 'no plaintext record in the file')
      const header = JSON.parse(text.split('\n')[0] as string) as Record<string, unknown>
      assert.equal(header.alg, 'AES-256-GCM')
      assert.equal(header.kid, 'e1')
      assert.equal(header.instance, log.instance)
    }
    const r = verifyChain(list, keyring, { encryption: encKeys(dir) })
    assert.equal(r.ok, true, JSON.stringify(r.problem))
    assert.equal(r.closed, true)
    assert.ok(r.records > 120)
    const first = decryptFile(readFileSync(list[0] as string), encKeys(dir), 'f')
    assert.ok(first.ok)
    const start = JSON.parse(first.text.split('\n')[0] as string) as {
      type: string
      data: { encryption: unknown }
    }
    assert.equal(start.type, 'audit.start')
    assert.deepEqual(start.data.encryption, { kid: 'e1' })
    // Without the encryption keyring: a usage error, not a verdict.
    assert.throws(() => verifyChain(list, keyring), VerifyUsageError)
    // With another encryption keyring (unknown key id): a usage error naming the key id.
    const other = parseEncryptionKeyring(JSON.stringify({ active: 'x', keys: { x: b64() } }), 't')
    assert.throws(() => verifyChain(list, keyring, { encryption: other }), /"e1", which is not in/)
    // decrypt: every file's lines are the records, which verify one by one.
    let n = 0
    for (const f of list) {
      const d = decryptFile(readFileSync(f), encKeys(dir), 'f')
      assert.ok(d.ok)
      const lines = d.text.split('\n').filter((l) => l !== '')
      for (const l of lines) assert.equal(checkRecord(l, keyring).ok, true)
      n += lines.length
    }
    assert.equal(n, r.records)
  })

  test('altered ciphertext, an altered header, a frame from another file, swapped frames: verify names them', async () => {
    const dir = tmp()
    writeEncKeys(dir, 'e1', new Map([['e1', b64()]]))
    const log = await open(dir, config({ file: { maxBytes: 4000 } }))
    await writeSome(log, 60)
    await log.close()
    const list = files(dir)
    const enc = encKeys(dir)
    const first = list[0] as string
    const original = readFileSync(first)
    const restore = () => writeFileSync(first, original)

    // One base64url character of frame 4 (line 5) changed.
    editLine(first, 5, (l) => `${l.slice(0, 20)}${l[20] === 'A' ? 'B' : 'A'}${l.slice(21)}`)
    let r = verifyChain(list, keyring, { encryption: enc })
    assert.equal(r.ok, false)
    assert.equal(r.problem?.kind, 'altered')
    assert.equal(r.problem?.line, 5)
    assert.match(r.problem?.message ?? '', /frame 4 does not decrypt/)
    assert.equal(r.records, 3, 'the three records before it verified')
    restore()
    const d = decryptFile(readFileSync(first), enc, 'f')
    assert.ok(d.ok)

    // The header's instance edited (its data key no longer unwraps).
    editLine(first, 1, (l) => l.replace(/"instance":"([^"]+)"/, '"instance":"gw-forged"'))
    r = verifyChain(list, keyring, { encryption: enc })
    assert.equal(r.problem?.kind, 'altered')
    assert.equal(r.problem?.line, 1)
    restore()

    // A frame of the second file copied over frame 2 of the first (same key, another file's data key).
    const second = readFileSync(list[1] as string, 'utf8').split('\n')
    editLine(first, 3, () => second[2] as string)
    r = verifyChain(list, keyring, { encryption: enc })
    assert.equal(r.problem?.kind, 'altered')
    assert.equal(r.problem?.line, 3)
    restore()

    // Frames 3 and 4 swapped: each decrypts, the chain says reordered.
    const lines = original.toString('utf8').split('\n')
    ;[lines[3], lines[4]] = [lines[4] as string, lines[3] as string]
    writeFileSync(first, lines.join('\n'))
    r = verifyChain(list, keyring, { encryption: enc })
    assert.equal(r.problem?.kind, 'reordered')
    assert.equal(r.problem?.line, 4)
    restore()

    // A frame deleted: missing.
    const del = original.toString('utf8').split('\n')
    del.splice(4, 1)
    writeFileSync(first, del.join('\n'))
    r = verifyChain(list, keyring, { encryption: enc })
    assert.equal(r.problem?.kind, 'missing')
    restore()
    assert.equal(verifyChain(list, keyring, { encryption: enc }).ok, true)
  })

  test('a torn frame (crash mid-write) is recorded by the restart; a file holding only its header is skipped', async () => {
    const dir = tmp()
    writeEncKeys(dir, 'e1', new Map([['e1', b64()]]))
    let log = await open(dir)
    await writeSome(log, 15, 'one')
    await log.commit() // no close: the process died
    const last = files(dir).at(-1) as string
    truncateSync(last, statSync(last).size - 30)
    const enc = encKeys(dir)
    let r = verifyChain(files(dir), keyring, { encryption: enc })
    assert.equal(r.problem?.kind, 'truncated')
    log = await open(dir)
    const instance = log.instance
    await writeSome(log, 5, 'two')
    await log.close()
    r = verifyChain(files(dir), keyring, { encryption: enc })
    assert.equal(r.ok, true, JSON.stringify(r.problem))
    assert.ok(
      r.notes.some((n) => /unterminated record .* recorded by the restart/.test(n)),
      r.notes.join('\n'),
    )

    // A crash right after a new file's header was written: that file holds no record.
    const e = new FileEncryptor(enc, instance)
    const n = files(dir).length + 1
    writeFileSync(
      join(dir, 'audit', `audit-${instance}-${String(n).padStart(6, '0')}.jsonl.enc`),
      `${e.header}\n`,
      {
        mode: 0o600,
      },
    )
    log = await open(dir)
    await writeSome(log, 3, 'three')
    await log.close()
    r = verifyChain(files(dir), keyring, { encryption: enc })
    assert.equal(r.ok, true, JSON.stringify(r.problem))
    assert.ok(r.notes.some((x) => /no records/.test(x)))

    // Without the encryption keyring the chain cannot be continued: refuse to start.
    await assert.rejects(open(dir, config({ encryption: undefined })), /is encrypted/)
  })

  test('a new active key in the keyring file (keys rotate-audit) starts a new file within a second', async () => {
    const dir = tmp()
    const keys = new Map([['e1', b64()]])
    writeEncKeys(dir, 'e1', keys)
    let t = Date.parse('2026-03-01T10:00:00Z')
    const log = await open(dir, config(), () => t)
    await writeSome(log, 5)
    assert.equal(files(dir).length, 1)
    keys.set('e2', b64())
    // Written as the CLI writes it: a new file renamed over the old one.
    writeFileSync(join(dir, 'enc-keys.tmp'), formatKeyring('e2', keys), { mode: 0o600 })
    ;(await import('node:fs')).renameSync(join(dir, 'enc-keys.tmp'), join(dir, 'enc-keys.json'))
    t += 1500
    await writeSome(log, 5, 'after')
    await log.close()
    const list = files(dir)
    assert.equal(list.length, 2)
    const kids = list.map(
      (f) => (JSON.parse(readFileSync(f, 'utf8').split('\n')[0] as string) as { kid: string }).kid,
    )
    assert.deepEqual(kids, ['e1', 'e2'])
    const r = verifyChain(list, keyring, { encryption: encKeys(dir) })
    assert.equal(r.ok, true, JSON.stringify(r.problem))
    // The first file ends with a rotation checkpoint naming the second.
    const d = decryptFile(readFileSync(list[0] as string), encKeys(dir), 'f')
    assert.ok(d.ok)
    const lastRec = JSON.parse(d.text.trim().split('\n').at(-1) as string) as {
      data: { reason: string; next: string }
    }
    assert.equal(lastRec.data.reason, 'rotate')
    assert.ok((list[1] as string).endsWith(lastRec.data.next))
  })

  test('a chain may mix plain and encrypted files (encryption turned on between runs); off again needs the keyring', async () => {
    const dir = tmp()
    writeEncKeys(dir, 'e1', new Map([['e1', b64()]]))
    let log = await open(dir, config({ encryption: undefined }))
    await writeSome(log, 5)
    await log.close()
    log = await open(dir)
    await writeSome(log, 5)
    await log.close()
    // Turning it off again: the chain's last record is encrypted, and nothing could vouch for it.
    await assert.rejects(
      open(dir, config({ encryption: undefined })),
      /is encrypted; continuing its chain needs/,
    )
    const list = files(dir)
    assert.deepEqual(
      list.map((f) => f.endsWith('.enc')),
      [false, true],
    )
    const r = verifyChain(list, keyring, { encryption: encKeys(dir) })
    assert.equal(r.ok, true, JSON.stringify(r.problem))
  })

  test('hostile input: keys, headers and frames that are not what they claim never throw out of decrypt', () => {
    assert.throws(
      () =>
        parseEncryptionKeyring(
          JSON.stringify({ active: 'a', keys: { a: randomBytes(48).toString('base64') } }),
          't',
        ),
      KeyringError,
    )
    const ring = parseEncryptionKeyring(JSON.stringify({ active: 'a', keys: { a: b64() } }), 't')
    const e = new FileEncryptor(ring, 'gw-1')
    const d = new FileDecryptor(e.header, ring)
    assert.equal(d.decrypt(e.frame('{"x":1}')), '{"x":1}')
    for (const bad of [
      '',
      'A',
      '!!!!',
      'A'.repeat(40),
      Buffer.alloc(100).toString('base64url'),
      `${e.frame('x')}A`,
    ]) {
      assert.equal(d.decrypt(bad), undefined)
    }
    for (const h of [
      '',
      '{',
      'null',
      '[]',
      '{"alg":"AES-256-GCM"}',
      e.header.replace('"v":1', '"v":2'),
      ` ${e.header}`,
    ]) {
      assert.throws(
        () => new FileDecryptor(h, ring),
        (err: Error) => err.name === 'EncHeaderError',
      )
    }
    // Re-ordered header members: not the canonical form the writer wrote.
    const h = JSON.parse(e.header) as Record<string, unknown>
    const reordered = JSON.stringify({ v: h.v, ...h })
    assert.throws(() => new FileDecryptor(reordered, ring), /edited/)
    // Two encryptions of one line differ (random nonces).
    assert.notEqual(e.frame('same'), e.frame('same'))
  })
})
