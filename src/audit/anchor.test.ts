/**
 * Anchors, in-process on real files: the format and its MAC, the witness directory, the writer's
 * anchoring (interval and close), verify against an anchor (a cut end is `truncated`), and a
 * restart on a cut chain (it continues after the anchor and records the gap).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import pino from 'pino'
import { createMemoryStore } from '../stores/memory/memory-store.js'
import {
  Anchorer,
  type AnchorTarget,
  anchorKey,
  checkAnchor,
  readAnchors,
  sealAnchor,
  StoreAnchors,
  WitnessDir,
} from './anchor.js'
import type { AuditConfig } from './config.js'
import { listChainFiles } from './files.js'
import { parseKeyring } from './keyring.js'
import { openAuditLog } from './open.js'
import { genesisHash, recordHash } from './record.js'
import { verifyChain } from './verify.js'

const KEYRING_TEXT = JSON.stringify({ active: 'k1', keys: { k1: randomBytes(32).toString('base64') } })
const keyring = parseKeyring(KEYRING_TEXT, 'test')
const signer = { kid: 'k1', key: keyring.keys.get('k1') as Buffer }
const tmp = () => mkdtempSync(join(tmpdir(), 'pc-anchor-'))
const HASH = 'a'.repeat(64)

function config(over: Partial<AuditConfig> = {}): AuditConfig {
  return {
    enabled: true,
    instanceId: 'gw-a',
    sink: 'file',
    keyring: { env: 'KR' },
    checkpoint: { everyRecords: 1000, intervalSec: 60 },
    maxQueue: 10000,
    events: { authSuccess: false },
    redact: [],
    anchor: { witness: { dir: 'witness' }, redis: false, intervalMs: 100, startTimeoutMs: 1000 },
    file: {
      dir: 'audit',
      prefix: 'audit',
      fsync: 'interval',
      fsyncIntervalMs: 1000,
      maxBytes: 2000,
      maxAgeSec: 0,
    },
    ...over,
  }
}

async function writeRun(base: string, n: number, c = config()) {
  const log = await openAuditLog(c, {
    baseDir: base,
    logger: pino({ level: 'silent' }),
    env: { KR: KEYRING_TEXT },
  })
  for (let i = 0; i < n; i++) {
    log.emit({
      type: 'deny',
      requestId: `r${i}`,
      path: `/api/orders/${i}`,
      status: 404,
      code: 'GW_ERR_NOT_FOUND',
    })
    if (i % 4 === 3) await log.commit()
  }
  await log.close()
  return log
}

const chainFiles = (dir: string) => [...listChainFiles(dir).values()].flat().map((f) => f.path)
const lines = (f: string) => readFileSync(f, 'utf8').split('\n').slice(0, -1)

async function anchorOf(base: string) {
  return (await readAnchors([new WitnessDir(join(base, 'witness'))], 'gw-a', keyring)).newest
}

describe('anchors', () => {
  test('format: sealed and checked; every edit, another instance or key, and hostile input are refused', () => {
    const line = sealAnchor('gw-a', { seq: 41, hash: HASH }, Date.UTC(2026, 0, 2), signer)
    const ok = checkAnchor(line, keyring, 'test', 'gw-a')
    assert.ok(ok.ok)
    assert.equal(ok.ok && ok.anchor.seq, 41)
    assert.equal(ok.ok && ok.anchor.hash, HASH)
    const o = JSON.parse(line) as Record<string, unknown>
    const edits: Record<string, unknown>[] = [
      { ...o, seq: 42 },
      { ...o, hash: 'b'.repeat(64) },
      { ...o, instance: 'gw-b' },
      { ...o, time: '2030-01-01T00:00:00.000Z' },
      { ...o, kid: 'k9' },
      { ...o, extra: 1 },
      { ...o, type: 'audit.start' },
    ]
    for (const e of edits)
      assert.equal(checkAnchor(JSON.stringify(e), keyring, 'test').ok, false, JSON.stringify(e))
    assert.equal(checkAnchor(line, keyring, 'test', 'gw-b').ok, false, 'another instance')
    const other = parseKeyring(
      JSON.stringify({ active: 'k1', keys: { k1: randomBytes(32).toString('base64') } }),
      't',
    )
    assert.equal(checkAnchor(line, other, 'test').ok, false, 'another key')
    for (const bad of ['', 'null', '[]', '{}', '"x"', '{'.repeat(5000), `${line}x`, 'x'.repeat(10_000)])
      assert.equal(checkAnchor(bad, keyring, 'test').ok, false, bad.slice(0, 20))
    // A record line is not an anchor.
    assert.equal(checkAnchor(JSON.stringify({ ...o, prev: HASH }), keyring, 'test').ok, false)
  })

  test('witness dir and store: newest anchor per instance; unreadable targets and bad anchors are reported', async () => {
    const dir = tmp()
    const w = new WitnessDir(join(dir, 'w'))
    const store = createMemoryStore({})
    const s = new StoreAnchors(store)
    assert.equal(await w.read('gw-a'), undefined)
    await w.write('gw-a', sealAnchor('gw-a', { seq: 5, hash: HASH }, 1, signer))
    await s.write('gw-a', sealAnchor('gw-a', { seq: 9, hash: HASH }, 2, signer))
    assert.equal(readdirSync(join(dir, 'w')).join(), 'gw-a.anchor', 'no temp file left')
    let r = await readAnchors([w, s], 'gw-a', keyring)
    assert.equal(r.newest?.seq, 9)
    assert.equal(r.newest?.source, 'redis')
    assert.deepEqual(r.problems, [])
    await store.kv.set(anchorKey('gw-a'), 'garbage')
    const broken: AnchorTarget = {
      name: 'broken',
      write: () => Promise.reject(new Error('x')),
      read: () => Promise.reject(Object.assign(new Error('down'), { code: 'ECONNREFUSED' })),
    }
    r = await readAnchors([w, s, broken], 'gw-a', keyring)
    assert.equal(r.newest?.seq, 5)
    // A huge witness file is read only so far, and is no anchor.
    writeFileSync(w.fileOf('gw-big'), 'x'.repeat(10_000_000))
    const big = await readAnchors([w], 'gw-big', keyring)
    assert.equal(big.newest, undefined)
    assert.equal(big.problems.length, 1)
    assert.deepEqual(r.unreadable, ['broken'])
    assert.equal(r.problems.length, 2)
    await store.close()
  })

  test('the writer anchors while it writes (interval) and at close; verify checks against it', async () => {
    const base = tmp()
    const log = await openAuditLog(config(), {
      baseDir: base,
      logger: pino({ level: 'silent' }),
      env: { KR: KEYRING_TEXT },
    })
    for (let i = 0; i < 10; i++) log.emit({ type: 'deny', requestId: `r${i}`, status: 403 })
    await log.commit()
    const deadline = Date.now() + 10_000
    while ((await anchorOf(base))?.seq !== log.head()?.seq) {
      assert.ok(Date.now() < deadline, 'no anchor within 10 s')
      await new Promise((r) => setTimeout(r, 20))
    }
    await log.close()
    const a = await anchorOf(base)
    const files = chainFiles(join(base, 'audit'))
    const last = lines(files.at(-1) as string).at(-1) as string
    assert.equal(a?.hash, recordHash(last), 'the close checkpoint is anchored')
    const r = verifyChain(files, keyring, { anchor: a })
    assert.equal(r.ok, true, JSON.stringify(r.problem))
    assert.equal(r.anchor?.seq, a?.seq)
    // --require-anchor: a chain without one is a problem; with one, fine.
    assert.equal(verifyChain(files, keyring, { anchor: a, requireAnchor: true }).ok, true)
    const none = verifyChain(files, keyring, { anchorsChecked: true, requireAnchor: true })
    assert.equal(none.problem?.kind, 'unanchored')
    assert.match(verifyChain(files, keyring, { anchorsChecked: true }).notes.join(), /no anchor found/)
  })

  test('cuts at the end are truncated against the anchor: last lines, last file, last run, a genuine prefix', async () => {
    const base = tmp()
    await writeRun(base, 30)
    const prefixCopy = join(tmp(), 'audit')
    cpSync(join(base, 'audit'), prefixCopy, { recursive: true }) // a genuine older copy of the log
    await writeRun(base, 30)
    const anchor = await anchorOf(base)
    assert.ok(anchor)
    const all = chainFiles(join(base, 'audit'))
    assert.ok(all.length >= 4, `${all.length} files`)
    assert.equal(verifyChain(all, keyring, { anchor }).ok, true)
    const firstRun = chainFiles(prefixCopy)
    const secondRunStart = all.findIndex((f) =>
      lines(f).some((l) => l.includes('"type":"audit.start"') && !l.includes('"seq":0,')),
    )
    const cases: [string, () => string[]][] = [
      [
        'the last 3 lines',
        () => {
          const d = join(tmp(), 'audit')
          cpSync(join(base, 'audit'), d, { recursive: true })
          const f = chainFiles(d).at(-1) as string
          const l = lines(f)
          writeFileSync(f, `${l.slice(0, -3).join('\n')}\n`)
          return chainFiles(d)
        },
      ],
      ['the last file', () => all.slice(0, -1)],
      ['the last run', () => all.slice(0, secondRunStart)],
      ['a genuine prefix', () => firstRun],
    ]
    for (const [what, files] of cases) {
      const fs = files()
      const plain = verifyChain(fs, keyring, {})
      const r = verifyChain(fs, keyring, { anchor })
      assert.equal(r.ok, false, what)
      assert.equal(r.problem?.kind, 'truncated', `${what}: ${JSON.stringify(r.problem)}`)
      assert.equal(r.truncated, true)
      assert.match(r.problem?.message ?? '', /anchor|continues in|removed/, what)
      if (what === 'the last run' || what === 'a genuine prefix') {
        assert.equal(
          plain.ok,
          true,
          `${what}: without the anchor the cut cannot be told (${JSON.stringify(plain.problem)})`,
        )
        assert.equal(plain.closed, true)
      }
    }
  })

  test('a restart on a cut chain continues after the anchor and records the gap; verify reports it and reads on', async () => {
    const base = tmp()
    await writeRun(base, 20)
    await writeRun(base, 20)
    const anchor = await anchorOf(base)
    const all = chainFiles(join(base, 'audit'))
    const secondRunStart = all.findIndex((f) =>
      lines(f).some((l) => l.includes('"type":"audit.start"') && !l.includes('"seq":0,')),
    )
    for (const f of all.slice(secondRunStart)) rmSync(f) // the last run's files deleted
    const lastKept = JSON.parse(lines(all[secondRunStart - 1] as string).at(-1) as string) as { seq: number }
    const errors: string[] = []
    const log = await openAuditLog(config(), {
      baseDir: base,
      logger: pino({ level: 'error' }, { write: (s: string) => errors.push(s) }),
      env: { KR: KEYRING_TEXT },
    })
    assert.equal(log.startProblems.length, 1)
    assert.match(log.startProblems[0]?.summary ?? '', /truncated/)
    assert.ok(errors.some((e) => e.includes('AUDIT CHAIN TRUNCATED')))
    log.emit({ type: 'deny', requestId: 'after', status: 403 })
    await log.close()
    const files = chainFiles(join(base, 'audit'))
    const start = JSON.parse(lines(files[secondRunStart] as string)[0] as string) as {
      seq: number
      prev: string
      type: string
      data: { truncated: { after: number; anchoredSeq: number; missing: number } }
    }
    assert.equal(start.type, 'audit.start')
    assert.equal(start.seq, (anchor?.seq as number) + 1, 'continues after the anchor, not after the cut')
    assert.equal(start.prev, anchor?.hash)
    assert.equal(start.data.truncated.after, lastKept.seq)
    assert.equal(start.data.truncated.anchoredSeq, anchor?.seq)
    const newAnchor = await anchorOf(base)
    const r = verifyChain(files, keyring, { anchor: newAnchor })
    assert.equal(r.ok, false)
    assert.equal(r.problem?.kind, 'truncated')
    assert.match(
      r.problem?.message ?? '',
      new RegExp(`records ${lastKept.seq + 1} to ${anchor?.seq} were removed`),
    )
    assert.equal(r.lastSeq, newAnchor?.seq, 'verified to the end past the recorded gap')
    assert.ok(r.records > 20)
    // Without the anchor, the gap is still in the chain: truncated too.
    assert.equal(verifyChain(files, keyring, {}).problem?.kind, 'truncated')
    // A second restart on the now consistent chain finds nothing wrong.
    const again = await openAuditLog(config(), {
      baseDir: base,
      logger: pino({ level: 'silent' }),
      env: { KR: KEYRING_TEXT },
    })
    assert.deepEqual(again.startProblems, [])
    await again.close()
  })

  test('every file deleted: the restart records that records 0..M are gone', async () => {
    const base = tmp()
    await writeRun(base, 10)
    const anchor = await anchorOf(base)
    rmSync(join(base, 'audit'), { recursive: true })
    const log = await openAuditLog(config(), {
      baseDir: base,
      logger: pino({ level: 'silent' }),
      env: { KR: KEYRING_TEXT },
    })
    await log.close()
    const files = chainFiles(join(base, 'audit'))
    const first = JSON.parse(lines(files[0] as string)[0] as string) as { seq: number; prev: string }
    assert.equal(first.seq, (anchor?.seq as number) + 1)
    assert.notEqual(first.prev, genesisHash('gw-a'))
    const r = verifyChain(files, keyring, { anchor: await anchorOf(base) })
    assert.equal(r.problem?.kind, 'truncated')
    assert.match(r.problem?.message ?? '', new RegExp(`records 0 to ${anchor?.seq} were removed`))
  })

  test('anchors need a place; an unreadable anchor at start is an error and a start problem, not a refusal', async () => {
    const base = tmp()
    await assert.rejects(
      openAuditLog(config({ anchor: { redis: false, intervalMs: 1000, startTimeoutMs: 100 } }), {
        baseDir: base,
        logger: pino({ level: 'silent' }),
        env: { KR: KEYRING_TEXT },
      }),
      /audit.anchor needs a place/,
    )
    await assert.rejects(
      openAuditLog(config({ anchor: { redis: true, intervalMs: 1000, startTimeoutMs: 100 } }), {
        baseDir: base,
        logger: pino({ level: 'silent' }),
        env: { KR: KEYRING_TEXT },
      }),
      /needs the Redis store/,
    )
    // A witness "directory" that is a file: cannot be read.
    writeFileSync(join(base, 'not-a-dir'), 'x')
    const log = await openAuditLog(
      config({
        anchor: { witness: { dir: 'not-a-dir' }, redis: false, intervalMs: 1000, startTimeoutMs: 200 },
      }),
      { baseDir: base, logger: pino({ level: 'silent' }), env: { KR: KEYRING_TEXT } },
    )
    assert.equal(log.startProblems.length, 1)
    assert.match(log.startProblems[0]?.summary ?? '', /not checked/)
    await log.close()
  })

  test('Anchorer: one write in flight, retried after a failure, nothing when the head did not move', async () => {
    let fail = true
    const writes: string[] = []
    const t: AnchorTarget = {
      name: 'flaky',
      write: async (_i, line) => {
        if (fail) throw Object.assign(new Error('nope'), { code: 'EIO' })
        writes.push(line)
      },
      read: async () => undefined,
    }
    const a = new Anchorer({
      instance: 'gw-a',
      signer,
      targets: [t],
      intervalMs: 60_000,
      logger: pino({ level: 'silent' }),
    })
    let head = { seq: 3, hash: HASH }
    a.start(() => head)
    await a.tick()
    assert.equal(a.anchoredSeq, -1)
    assert.equal(a.failures, 1)
    fail = false
    await Promise.all([a.tick(), a.tick()])
    assert.equal(writes.length, 1)
    await a.tick()
    assert.equal(writes.length, 1, 'head unchanged')
    head = { seq: 4, hash: HASH }
    await a.final(1000)
    assert.equal(writes.length, 2)
    assert.equal(a.anchoredSeq, 4)
  })
})
