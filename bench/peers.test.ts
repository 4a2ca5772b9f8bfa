import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { accessLogRefusals } from './peers.js'

test('accessLogRefusals counts the non-2xx lines of an access log by status and code', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-peers-'))
  try {
    const file = join(dir, 'access.log')
    const line = (status: number, code?: string) =>
      JSON.stringify({ msg: 'request', status, durationMs: 1, ...(code ? { code } : {}) })
    writeFileSync(
      file,
      [
        line(200),
        line(503, 'GW_ERR_STATE_UNAVAILABLE'),
        line(201),
        line(503, 'GW_ERR_STATE_UNAVAILABLE'),
        line(401, 'GW_ERR_AUTH_MISSING'),
        line(499),
        '{"status":50', // a line cut short by a buffered write
      ].join('\n'),
    )
    assert.equal(
      accessLogRefusals(file),
      '503 GW_ERR_STATE_UNAVAILABLE x 2, 401 GW_ERR_AUTH_MISSING x 1, 499 x 1',
    )
    writeFileSync(file, `${line(200)}\n`)
    assert.equal(accessLogRefusals(file), 'none logged yet')
    assert.equal(accessLogRefusals(join(dir, 'missing.log')), 'no access log')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
