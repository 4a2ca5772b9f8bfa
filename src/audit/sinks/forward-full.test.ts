/**
 * The audit log over the http sink with a full spool: the log's existing back-pressure applies —
 * the sink's write waits, the queue fills, further events are dropped and recorded as an
 * `audit.gap` — and once the collector is back everything kept is delivered, as a chain that
 * verifies and names the loss.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { appendFileSync, mkdtempSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import pino from 'pino'
import type { AuditConfig } from '../config.js'
import { parseKeyring } from '../keyring.js'
import { openAuditLog } from '../open.js'
import { verifyChain } from '../verify.js'

const KEYRING_TEXT = JSON.stringify({ active: 'k1', keys: { k1: randomBytes(32).toString('base64') } })

test('spool full: writes wait, the queue fills, events are dropped as an audit.gap; all kept records are delivered and verify', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-forward-full-'))
  const probe = http.createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()))
  const port = (probe.address() as AddressInfo).port
  await new Promise((r) => probe.close(r))
  const logLines: string[] = []
  const logger = pino({ level: 'info' }, { write: (s: string) => logLines.push(s) })
  const config: AuditConfig = {
    enabled: true,
    instanceId: 'gw-full',
    sink: 'http',
    keyring: { env: 'KR' },
    checkpoint: { everyRecords: 100000, intervalSec: 3600 },
    maxQueue: 100,
    events: { authSuccess: false },
    redact: [],
    file: {
      dir: 'unused',
      prefix: 'audit',
      fsync: 'always',
      fsyncIntervalMs: 1000,
      maxBytes: 0,
      maxAgeSec: 0,
    },
    spool: { dir: 'spool', maxBytes: 65536 },
    http: {
      url: `http://127.0.0.1:${port}/in`,
      tokenHeader: 'authorization',
      timeoutMs: 1000,
      batch: { maxRecords: 500, maxBytes: 1 << 20, lingerMs: 0 },
      retry: { minMs: 10, maxMs: 50 },
    },
  }
  const log = await openAuditLog(config, { baseDir: dir, logger, env: { KR: KEYRING_TEXT } })
  const pad = 'p'.repeat(400)
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 20; i++)
      log.emit({ type: 'deny', decision: 'deny', reason: `r${round}-${i}`, data: { pad } })
    await new Promise((r) => setTimeout(r, 5))
  }
  const stats = log.stats
  assert.ok(stats.dropped > 0, 'events were dropped once the spool and the queue were full')
  assert.ok(logLines.some((l) => l.includes('"code":"ESPOOLFULL"')))
  assert.ok(logLines.some((l) => l.includes('AUDIT EVENTS DROPPED')))

  const file = join(dir, 'collected.jsonl')
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      appendFileSync(file, Buffer.concat(chunks))
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()))
  await log.close(10_000)
  server.close()
  const report = verifyChain([file], parseKeyring(KEYRING_TEXT, 'test'), { requireClosed: true })
  assert.equal(report.ok, true, JSON.stringify(report.problem))
  assert.equal(report.dropped, stats.dropped)
  assert.equal(report.records, 800 - stats.dropped + report.checkpoints + 1 + 1) // + audit.start, audit.gap
})
