import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import pino from 'pino'
import type { AuditConfig } from './config.js'
import { listChainFiles } from './files.js'
import { parseKeyring } from './keyring.js'
import { openAuditLog } from './open.js'
import type { ParsedRecord } from './record.js'
import { parseTime } from '../cli/commands/audit/report.js'
import { type AccessEntry, accessReport, matchRecord, pathNamesObject } from './report.js'

const rec = (over: Partial<ParsedRecord>): ParsedRecord =>
  ({
    v: 1,
    seq: 1,
    time: '2026-03-01T10:00:00.000Z',
    instance: 'i',
    kid: 'k',
    prev: '',
    mac: '',
    type: 'deny',
    ...over,
  }) as ParsedRecord

test('objects are found in object, data.object, objects and the path', () => {
  const q = { object: { type: 'order', id: '42' } }
  assert.equal(matchRecord(rec({ object: { type: 'order', id: '42' } }), q), 'object')
  assert.equal(matchRecord(rec({ object: { type: 'order', id: 42 } }), q), 'object')
  assert.equal(matchRecord(rec({ data: { object: { type: 'order', id: '42' } } }), q), 'object')
  assert.equal(matchRecord(rec({ objects: ['user:1', 'order:42'] }), q), 'objects')
  assert.equal(matchRecord(rec({ path: '/api/orders/42' }), q), 'path')
  assert.equal(matchRecord(rec({ path: '/api/Order/42/items' }), q), 'path')
  assert.equal(matchRecord(rec({ path: '/api/orders/420' }), q), undefined)
  assert.equal(matchRecord(rec({ path: '/api/users/42' }), q), undefined)
  assert.equal(matchRecord(rec({ object: { type: 'order', id: '43' } }), q), undefined)
  assert.equal(matchRecord(rec({ type: 'audit.start', path: '/api/orders/42' }), q), undefined)
  assert.equal(pathNamesObject('/v1/companies/acme%20inc', { type: 'company', id: 'acme inc' }), true)
  // Time window: since inclusive, until exclusive.
  const t = Date.parse('2026-03-01T10:00:00.000Z')
  assert.equal(matchRecord(rec({ principal: 'p' }), { principal: 'p', since: t }), 'principal')
  assert.equal(matchRecord(rec({ principal: 'p' }), { principal: 'p', until: t }), undefined)
  assert.equal(matchRecord(rec({ principal: 'q' }), { principal: 'p' }), undefined)
  // Hostile paths never throw.
  for (const p of ['', '/', '//', '/%', '/orders/%E0%A4%A', `/${'orders/'.repeat(5000)}42`])
    assert.doesNotThrow(() => pathNamesObject(p, { type: 'order', id: '42' }))
})

test('report over a real chain: entries in chain order, a broken chain reported with what came before it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-report-'))
  const KR = JSON.stringify({ active: 'k1', keys: { k1: randomBytes(32).toString('base64') } })
  const keyring = parseKeyring(KR, 't')
  const config: AuditConfig = {
    enabled: true,
    sink: 'file',
    keyring: { env: 'KR' },
    checkpoint: { everyRecords: 1000, intervalSec: 60 },
    maxQueue: 10000,
    events: { authSuccess: true },
    redact: [],
    file: {
      dir: 'audit',
      prefix: 'audit',
      fsync: 'interval',
      fsyncIntervalMs: 1000,
      maxBytes: 0,
      maxAgeSec: 0,
    },
  }
  const log = await openAuditLog(config, { baseDir: dir, logger: pino({ level: 'silent' }), env: { KR } })
  for (let i = 0; i < 30; i++) {
    log.emit({
      type: 'auth.success',
      principal: i % 2 ? 'alice' : 'bob',
      method: 'GET',
      path: `/api/orders/${i % 5}`,
      decision: 'allow',
      status: 200,
    })
  }
  log.emit({
    type: 'ownership.deny',
    principal: 'mallory',
    object: { type: 'order', id: '3' },
    decision: 'deny',
    reason: 'not owner',
  } as never)
  await log.close()
  const files = [...listChainFiles(join(dir, 'audit')).values()].flat().map((f) => f.path)
  const got: AccessEntry[] = []
  let r = accessReport(files, keyring, { object: { type: 'order', id: '3' } }, (e) => got.push(e))
  assert.equal(r.ok, true)
  assert.equal(got.length, 7) // i = 3, 8, …, 28 by path, and mallory's by object
  assert.deepEqual(got.map((e) => e.match).at(-1), 'object')
  assert.equal(got.at(-1)?.principal, 'mallory')
  assert.deepEqual(got.at(-1)?.objects, ['order:3'])
  assert.ok(got.every((e, i) => i === 0 || e.seq > (got[i - 1] as AccessEntry).seq))
  const alice: AccessEntry[] = []
  r = accessReport(files, keyring, { principal: 'alice' }, (e) => alice.push(e))
  assert.equal(alice.length, 15)
  // Alter a record in the middle: the entries before it, and the problem.
  const f = files[0] as string
  const lines = readFileSync(f, 'utf8').split('\n')
  lines[10] = (lines[10] as string).replace('"alice"', '"alicf"').replace('"bob"', '"bop"')
  writeFileSync(f, lines.join('\n'))
  const partial: AccessEntry[] = []
  r = accessReport(files, keyring, { principal: 'alice' }, (e) => partial.push(e))
  assert.equal(r.ok, false)
  assert.equal(r.problem?.kind, 'altered')
  assert.equal(r.problem?.line, 11)
  assert.ok(partial.length < 15 && partial.length > 0)
})

test('--since / --until: ISO dates and times, durations back from now; anything else is a usage error', () => {
  const now = Date.parse('2026-03-10T00:00:00Z')
  assert.equal(parseTime('--since', '2026-03-01', now), Date.parse('2026-03-01T00:00:00Z'))
  assert.equal(parseTime('--since', '2026-03-01T10:00:00Z', now), Date.parse('2026-03-01T10:00:00Z'))
  assert.equal(parseTime('--since', '2026-03-01T10:00:00+02:00', now), Date.parse('2026-03-01T08:00:00Z'))
  assert.equal(parseTime('--since', '24h', now), now - 86_400_000)
  for (const bad of [
    '',
    'yesterday',
    '2026-13-45',
    '2026-03-01T25:99:00Z',
    '1e9',
    '-5d',
    '2026-03-01; rm',
    'x'.repeat(10000),
  ])
    assert.throws(
      () => parseTime('--since', bad, now),
      (e: Error) => e.name === 'UsageError',
      bad,
    )
})
