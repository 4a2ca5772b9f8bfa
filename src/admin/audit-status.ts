/**
 * Admin API: the audit log's state.
 *
 *   GET /v1/audit/status[?verify=1]
 *     → { enabled, sink, instance, currentFile, encryption: { kid } | null, lastSeq,
 *         lastCheckpointAt, queueDepth, written, dropped, sinkErrors, lastError, verify }
 *
 * `verify` is the result of the last check of the current file (`status: not-run` before the
 * first). With `?verify=1` the current file is checked now: in a worker thread (the gateway keeps
 * serving), at most one check at a time (concurrent calls share it), given up after
 * {@link VERIFY_TIMEOUT_MS} (`status: timeout`). The check covers the current file on its own:
 * each record's MAC, canonical form and decryption, seq without gaps and prev links inside the
 * file; the file's first prev is trusted (`audit verify` on the directory checks the whole chain),
 * and bytes after the last newline are a write in progress, not a torn record.
 */
import type { AuditLog, AuditLogStatus } from '../audit/log.js'
import { verifyInWorker } from '../audit/verify-worker.js'
import type { AdminModule, AdminModuleContext } from './api.js'
import { invalid } from './list.js'
import type { AdminRequest, AdminResponse } from './router.js'

export const VERIFY_TIMEOUT_MS = 10_000

export interface CurrentFileCheck {
  status: 'ok' | 'failed' | 'timeout' | 'error' | 'not-run' | 'unavailable'
  file?: string
  checkedAt?: string
  ms?: number
  records?: number
  firstSeq?: number
  lastSeq?: number
  problem?: { kind: string; line: number; seq?: number; message: string }
  message?: string
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())

async function checkCurrent(log: AuditLog, s: AuditLogStatus, now: () => number): Promise<CurrentFileCheck> {
  if (s.currentPath === undefined || s.currentFile === undefined) {
    return { status: 'unavailable', message: `the ${s.sink} sink keeps no file to check` }
  }
  const started = now()
  const v = await verifyInWorker(
    [s.currentPath],
    log.keyring,
    log.encryptionKeyring,
    { partial: true, live: true },
    VERIFY_TIMEOUT_MS,
  )
  const base = { file: s.currentFile, checkedAt: new Date(now()).toISOString(), ms: now() - started }
  if (v.status === 'timeout') return { status: 'timeout', ...base }
  if (v.status === 'error') return { status: 'error', ...base, message: v.message }
  const r = v.report
  const out: CurrentFileCheck = {
    status: r.ok ? 'ok' : 'failed',
    ...base,
    records: r.records,
    ...(r.firstSeq !== undefined ? { firstSeq: r.firstSeq } : {}),
    ...(r.lastSeq !== undefined ? { lastSeq: r.lastSeq } : {}),
  }
  if (r.problem) {
    const p = r.problem
    out.problem = {
      kind: p.kind,
      line: p.line,
      ...(p.seq !== undefined ? { seq: p.seq } : {}),
      message: p.message,
    }
  }
  return out
}

/** The audit status part of the admin API. */
export function auditStatusModule(ctx: AdminModuleContext): AdminModule {
  let running: Promise<CurrentFileCheck> | undefined
  let last: CurrentFileCheck = { status: 'not-run' }
  const status = async (req: AdminRequest): Promise<AdminResponse> => {
    for (const k of req.query.keys()) if (k !== 'verify') throw invalid(k, 'unknown query parameter')
    const all = req.query.getAll('verify')
    if (all.length > 1) throw invalid('verify', 'given twice')
    const v = all[0]
    if (v !== undefined && v !== '0' && v !== '1') throw invalid('verify', 'expected 1 or 0')
    const log = ctx.audit
    if (log === undefined) return { status: 200, body: { enabled: false } }
    if (v === '1') {
      if (running === undefined) {
        running = checkCurrent(log, log.status(), ctx.now).finally(() => {
          running = undefined
        })
      }
      last = await running
    }
    const s = log.status()
    const stats = log.stats
    return {
      status: 200,
      body: {
        enabled: true,
        sink: s.sink,
        instance: s.instance,
        currentFile: s.currentFile ?? null,
        encryption: s.encryptionKid !== undefined ? { kid: s.encryptionKid } : null,
        lastSeq: s.lastSeq ?? null,
        lastCheckpointAt: iso(s.lastCheckpointAt),
        queueDepth: s.queued,
        written: stats.written,
        dropped: stats.dropped,
        sinkErrors: stats.sinkErrors,
        lastError: s.lastError
          ? { op: s.lastError.op, code: s.lastError.code, at: iso(s.lastError.at) }
          : null,
        verify: last,
      },
    }
  }
  return { routes: [{ method: 'GET', path: '/v1/audit/status', handler: status }] }
}
