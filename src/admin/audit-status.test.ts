/**
 * GET /v1/audit/status in-process: off, hostile query parameters, a check of the current
 * (encrypted) file that passes, then fails once the file is tampered with, and the stdout sink.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import pino from 'pino'
import type { AuditConfig } from '../audit/config.js'
import type { AuditLog } from '../audit/log.js'
import { openAuditLog } from '../audit/open.js'
import type { GatewayError } from '../gateway/errors.js'
import type { AdminModuleContext } from './api.js'
import { auditStatusModule } from './audit-status.js'
import type { AdminRequest, AdminResponse } from './router.js'

const KR = JSON.stringify({ active: 'k1', keys: { k1: randomBytes(32).toString('base64') } })

function handler(audit: AuditLog | undefined) {
  const ctx = { audit, now: Date.now } as unknown as AdminModuleContext
  const route = auditStatusModule(ctx).routes[0]
  assert.ok(route)
  return (query: string): Promise<AdminResponse> =>
    Promise.resolve(
      route.handler({
        id: 'r',
        method: 'GET',
        path: '/v1/audit/status',
        params: {},
        query: new URLSearchParams(query),
        body: undefined,
        actor: 'admin token',
        raw: {} as IncomingMessage,
      } satisfies AdminRequest),
    )
}

function config(over: Partial<AuditConfig> = {}): AuditConfig {
  return {
    enabled: true,
    sink: 'file',
    keyring: { env: 'KR' },
    checkpoint: { everyRecords: 1000, intervalSec: 60 },
    maxQueue: 10000,
    events: { authSuccess: false },
    redact: [],
    file: {
      dir: 'audit',
      prefix: 'audit',
      fsync: 'interval',
      fsyncIntervalMs: 1000,
      maxBytes: 0,
      maxAgeSec: 0,
    },
    ...over,
  }
}

test('audit status: off; hostile query parameters are 400', async () => {
  assert.deepEqual((await handler(undefined)('')).body, { enabled: false })
  const get = handler(undefined)
  for (const q of [
    'verify=2',
    'verify=',
    'verify=1&verify=1',
    'x=1',
    'verify=true',
    `${'v'.repeat(5000)}=1`,
  ]) {
    await assert.rejects(get(q), (e: GatewayError) => e.code === 'GW_ERR_VALIDATION', q)
  }
})

test('audit status: the current encrypted file is checked with ?verify=1; a tampered frame is reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-admin-audit-'))
  writeFileSync(
    join(dir, 'enc.json'),
    JSON.stringify({ active: 'e1', keys: { e1: randomBytes(32).toString('base64') } }),
    { mode: 0o600 },
  )
  const log = await openAuditLog(config({ encryption: { keyring: { file: 'enc.json' } } }), {
    baseDir: dir,
    logger: pino({ level: 'silent' }),
    env: { KR },
  })
  try {
    for (let i = 0; i < 20; i++) log.emit({ type: 'deny', requestId: `r${i}`, status: 403 })
    await log.commit()
    const get = handler(log)
    const before = (await get('')).body as {
      verify: { status: string }
      lastSeq: number
      encryption: unknown
    }
    assert.equal(before.verify.status, 'not-run')
    assert.equal(before.lastSeq, 20) // audit.start + 20
    assert.deepEqual(before.encryption, { kid: 'e1' })
    const ok = (await get('verify=1')).body as { verify: { status: string; records: number } }
    assert.equal(ok.verify.status, 'ok', JSON.stringify(ok))
    assert.equal(ok.verify.records, 21)
    // Concurrent checks share one run.
    const [a, b] = await Promise.all([get('verify=1'), get('verify=1')])
    assert.deepEqual((a.body as { verify: unknown }).verify, (b.body as { verify: unknown }).verify)
    // Flip one character of the 6th frame of the file being written.
    const status = log.status()
    const path = status.currentPath as string
    const lines = readFileSync(path, 'utf8').split('\n')
    const l = lines[6] as string
    lines[6] = `${l.slice(0, 25)}${l[25] === 'Q' ? 'R' : 'Q'}${l.slice(26)}`
    writeFileSync(path, lines.join('\n'))
    const bad = (await get('verify=1')).body as {
      verify: { status: string; problem: { kind: string; line: number } }
    }
    assert.equal(bad.verify.status, 'failed')
    assert.equal(bad.verify.problem.kind, 'altered')
    assert.equal(bad.verify.problem.line, 7)
    // Without ?verify=1 the last result is reported.
    assert.equal(((await get('')).body as { verify: { status: string } }).verify.status, 'failed')
  } finally {
    await log.close()
  }
})

test('audit status: the stdout sink keeps no file to check', async () => {
  const out = new PassThrough()
  out.resume()
  const log = await openAuditLog(config({ sink: 'stdout' }), {
    baseDir: tmpdir(),
    logger: pino({ level: 'silent' }),
    env: { KR },
    stdout: out,
  })
  try {
    const body = (await handler(log)('verify=1')).body as {
      sink: string
      currentFile: unknown
      verify: { status: string }
    }
    assert.equal(body.sink, 'stdout')
    assert.equal(body.currentFile, null)
    assert.equal(body.verify.status, 'unavailable')
  } finally {
    await log.close()
  }
})
