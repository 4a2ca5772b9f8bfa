/**
 * The scan engine: loads the spec, checks the target answers, logs the identities in, seeds
 * objects, runs the checks through the ScanContext (context.ts: origin-locked, rate-limited,
 * safe-mode guarded), cleans up what it created, and returns a ScanReport.
 *
 * No verdict without answers: a target that does not answer, or answers mostly with errors,
 * gives a report with `unreachable` set and no finding (the CLI exits 3); a finding whose proof
 * is a timeout or a connection error is dropped (except from checks whose proof is timing).
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { loadOpenApi, type OpenApiSpec, type Operation } from '../openapi/index.js'
import { ALL_CHECKS } from './checks/index.js'
import { ScanRun } from './context.js'
import { destructiveReason } from './safety.js'
import { finalize, loadBaseline, operationPositions, restsOnNoAnswer } from './findings.js'
import type { ParsedAuth } from './identities.js'
import { cleanupObjects, seedObjects } from './seed.js'
import { type Check, type CheckInfo, type Finding, type ScanReport, SkipCheck } from './types.js'

export { ScanRun } from './context.js'
export { userIdentities } from './roles.js'

export interface ScanProgress {
  phase: 'login' | 'seed' | 'check' | 'cleanup' | 'done'
  /** The check running (phase `check`). */
  check?: string
  /** Checks finished / total. */
  done: number
  total: number
  requests: number
}

export interface ScanOptions {
  /** A spec file path, or an http(s) URL (fetched once, bounded). */
  spec: string
  /** Base URL of the API under test. */
  target: string
  /** Parsed auth.yaml (see identities.ts); without it the scan runs without identities. */
  auth?: ParsedAuth
  /** Check ids to run (default: all). Unknown ids are an error. */
  checks?: readonly string[]
  /** No destructive calls outside objects the scanner created (default true). */
  safe?: boolean
  /** Requests per second (default 20). */
  rate?: number
  /** Requests in flight at most (default 4). */
  concurrency?: number
  /** Per-request timeout in ms (default 10 000). */
  timeoutMs?: number
  /** Bytes of each response body read at most (default 1 MiB). */
  maxBodyBytes?: number
  /** Largest spec fetched from a URL (default 10 MiB). */
  maxSpecBytes?: number
  /** Extra headers sent with every request (`-H 'Name: value'`); their values are masked. */
  headers?: Record<string, string>
  /**
   * Operations to scan (default all) and to leave alone: operationIds, `METHOD /path` or
   * `/path` (`*` matches anything). Excluded operations are never called, by any check.
   */
  include?: readonly string[]
  exclude?: readonly string[]
  /** Opt-in: a forged-token finding mints identities to reach higher roles' operations. */
  chain?: boolean
  /** Extra candidate JWT secrets (`--jwt-wordlist FILE`), tried before the built-in list. */
  jwtWordlist?: readonly string[]
  /** A baseline file (an earlier JSON or SARIF report): findings it has are marked `unchanged`. */
  baseline?: string
  onProgress?: (p: ScanProgress) => void
  /** Receives `--verbose` lines (never secrets). */
  log?: (line: string) => void
  /** The checks to choose from (default ALL_CHECKS). */
  allChecks?: readonly Check[]
}

/** A bad option (target, spec, check id): the CLI exits 2. */
export class ScanSetupError extends Error {
  override name = 'ConfigError'
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string
    }
    return pkg.version
  } catch {
    return '0.0.0'
  }
}

async function fetchSpec(url: URL, maxBytes: number, timeoutMs: number, dispatcher: Agent): Promise<string> {
  let res: Awaited<ReturnType<typeof request>>
  try {
    res = await request(url, {
      method: 'GET',
      headers: { accept: 'application/json, application/yaml, text/yaml, */*' },
      dispatcher,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    })
  } catch (err) {
    const e = err as Error & { code?: string }
    throw new TargetUnreachableError(`--spec ${url.href}: ${e.code ?? e.name}: ${e.message}`)
  }
  if (res.statusCode !== 200) {
    await res.body.dump()
    throw new ScanSetupError(`--spec ${url.href}: answered ${res.statusCode}`)
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length
    if (size > maxBytes) {
      res.body.destroy()
      throw new ScanSetupError(`--spec ${url.href}: larger than ${maxBytes} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The spec could not be fetched because nothing answered: like a dead target, exit 3. */
export class TargetUnreachableError extends Error {
  override name = 'TargetUnreachableError'
}

async function loadSpec(
  spec: string,
  opts: ScanOptions,
  dispatcher: Agent,
): Promise<{ spec: OpenApiSpec; text?: string }> {
  if (/^https?:\/\//i.test(spec)) {
    let url: URL
    try {
      url = new URL(spec)
    } catch {
      throw new ScanSetupError(`--spec: invalid URL`)
    }
    const text = await fetchSpec(
      url,
      opts.maxSpecBytes ?? 10 * 1024 * 1024,
      opts.timeoutMs ?? 10_000,
      dispatcher,
    )
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-spec-'))
    try {
      const file = join(dir, 'openapi.yaml')
      await writeFile(file, text)
      return { spec: loadOpenApi(file), text }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
  const loaded = loadOpenApi(spec)
  let text: string | undefined
  try {
    text = readFileSync(loaded.documents.rootFile, 'utf8')
  } catch {
    text = undefined
  }
  return { spec: loaded, ...(text !== undefined ? { text } : {}) }
}

export function selectChecks(all: readonly Check[], ids: readonly string[] | undefined): Check[] {
  if (!ids || ids.length === 0) return [...all]
  const known = new Map(all.map((c) => [c.id, c]))
  const unknown = ids.filter((id) => !known.has(id))
  if (unknown.length > 0) {
    throw new ScanSetupError(
      `unknown check id(s): ${unknown.join(', ')} (known: ${[...known.keys()].join(', ')})`,
    )
  }
  return ids.map((id) => known.get(id) as Check)
}

function globRe(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .split('*')
      .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  )
}

/** Whether an operation matches an include/exclude pattern (operationId, `METHOD /path`, `/path`; `*` globs). */
export function matchesOperation(op: Operation, pattern: string): boolean {
  const p = pattern.trim()
  const m = /^([A-Za-z*]+)\s+(\/.*)$/.exec(p)
  if (m) {
    const method = (m[1] as string).toUpperCase()
    return (method === '*' || method === op.method) && globRe(m[2] as string).test(op.path)
  }
  if (p.startsWith('/')) return globRe(p).test(op.path)
  return op.operationId !== undefined && globRe(p).test(op.operationId)
}

/** The operations left out by --include / --exclude. */
export function excludedOperations(
  ops: readonly Operation[],
  include: readonly string[] | undefined,
  exclude: readonly string[] | undefined,
): Operation[] {
  return ops.filter(
    (op) =>
      (include && include.length > 0 && !include.some((p) => matchesOperation(op, p))) ||
      (exclude ?? []).some((p) => matchesOperation(op, p)),
  )
}

/**
 * What `--unsafe` may do: the lifted safe-mode limits, and (with a spec) the destructive-looking
 * operations a scan may then call. Printed by the CLI before an unsafe scan.
 */
export function unsafeActions(spec?: OpenApiSpec): { text: string; operations: string[] } {
  const operations = (spec?.operations ?? [])
    .filter((op) => destructiveReason(op) !== undefined)
    .map((op) => `${op.method} ${op.path}`)
  const text = [
    'portcullis scan --unsafe: on a test system only. Beyond what a safe scan does, it may:',
    '  - read, rewrite and delete objects it did not create (BOLA writes and deletes on seeded ids),',
    '  - call operations meant for admins with example bodies, deletes included (BFLA),',
    '  - write privileged and read-only properties to existing objects, and register accounts it cannot remove,',
    '  - send bursts to sensitive flows whose objects it cannot delete, and injection payloads and 100 KB',
    '    strings in any POST body,',
    '  - call operations whose names suggest destruction or a reset (delete, reset, drop, purge, redeem, …).',
  ].join('\n')
  return { text, operations }
}

/** The target-relative path of a spec URL on the target's own origin. */
function specPathOn(spec: string, target: URL): { specPath?: string } {
  if (!/^https?:\/\//i.test(spec)) return {}
  try {
    const u = new URL(spec)
    if (u.origin !== target.origin) return {}
    const base = target.pathname.replace(/\/+$/, '')
    const p = base && u.pathname.startsWith(`${base}/`) ? u.pathname.slice(base.length) : u.pathname
    return { specPath: p }
  } catch {
    return {}
  }
}

function info(c: Check): CheckInfo {
  const { run: _run, last: _last, timingEvidence: _t, ...rest } = c
  return rest
}

/** Runs a scan. Throws ScanSetupError for bad options, SpecError for a bad spec. */
export async function runScan(opts: ScanOptions): Promise<ScanReport> {
  const startedAt = new Date()
  const t0 = performance.now()
  let target: URL
  try {
    target = new URL(opts.target)
  } catch {
    throw new ScanSetupError('--target: invalid URL')
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:')
    throw new ScanSetupError('--target must be http or https')
  if (target.username || target.password) throw new ScanSetupError('--target must not contain credentials')
  target.search = ''
  target.hash = ''
  const checks = selectChecks(opts.allChecks ?? ALL_CHECKS, opts.checks)
  const baseline = opts.baseline ? loadBaseline(opts.baseline) : undefined
  const dispatcher = new Agent({ connections: Math.max(1, opts.concurrency ?? 4) + 2, pipelining: 1 })
  const progress = (p: Omit<ScanProgress, 'total' | 'requests'>, run?: ScanRun) =>
    opts.onProgress?.({ ...p, total: checks.length, requests: run?.stats.requests ?? 0 })
  let run: ScanRun | undefined
  try {
    let loaded: { spec: OpenApiSpec; text?: string }
    try {
      loaded = await loadSpec(opts.spec, opts, dispatcher)
    } catch (err) {
      if (err instanceof TargetUnreachableError) {
        return emptyReport(opts, target, startedAt, t0, checks, err.message)
      }
      throw err
    }
    const spec = loaded.spec
    const excluded = excludedOperations(spec.operations, opts.include, opts.exclude)
    run = new ScanRun(
      spec,
      target,
      opts.safe ?? true,
      opts.auth,
      {
        ...(opts.rate !== undefined ? { rate: opts.rate } : {}),
        ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
        ...(opts.headers ? { headers: opts.headers } : {}),
        ...(opts.log ? { log: opts.log } : {}),
        excluded,
        chain: opts.chain === true,
        ...specPathOn(opts.spec, target),
        ...(opts.jwtWordlist ? { jwtWordlist: opts.jwtWordlist } : {}),
      },
      dispatcher,
    )
    const r = run
    if (excluded.length > 0)
      r.note(`excluded by --include/--exclude: ${excluded.map((o) => `${o.method} ${o.path}`).join(', ')}`)
    // Does anything answer at the target? A transport error here ends the scan at once.
    const pre = await r.send(undefined, { method: 'GET', path: '/', retry429: false })
    if (pre.status === 0) {
      r.dead = `the target does not answer (${pre.exchange.error ?? 'no answer'})`
      return finish(r, opts, target, startedAt, t0, checks, [], [], baseline, loaded.text)
    }
    progress({ phase: 'login', done: 0 }, r)
    for (const id of r.ids.values()) {
      try {
        await id.ensure(r.loginSender)
      } catch (err) {
        if (r.dead || /login request failed/.test((err as Error).message)) {
          r.dead ??= `the target does not answer the login of "${id.name}" (${(err as Error).message})`
          return finish(r, opts, target, startedAt, t0, checks, [], [], baseline, loaded.text)
        }
        throw new ScanSetupError((err as Error).message)
      }
    }
    progress({ phase: 'seed', done: 0 }, r)
    const seeded = await seedObjects(r)
    r.objects.push(...seeded)
    r.debug(`seeded ${seeded.length} object(s): ${seeded.map((o) => `${o.owner}:${o.path}`).join(', ')}`)
    const findings: Finding[] = []
    const skipped: { checkId: string; reason: string }[] = []
    const keep = (check: Check, found: Finding[]) => {
      for (const f of found) {
        if (!check.timingEvidence && restsOnNoAnswer(f)) {
          r.debug(`${check.id}: dropped a finding whose proof has no answer: ${f.title}`)
          continue
        }
        findings.push(f)
      }
    }
    let done = 0
    for (const check of checks) {
      if (r.dead) {
        skipped.push({ checkId: check.id, reason: r.masker.text(r.dead) })
        continue
      }
      progress({ phase: 'check', check: check.id, done }, r)
      try {
        const found = await check.run(r)
        keep(check, found)
        r.debug(`${check.id}: ${found.length} finding(s)`)
      } catch (err) {
        const reason = err instanceof SkipCheck ? err.message : `error: ${(err as Error).message}`
        skipped.push({ checkId: check.id, reason: r.masker.text(reason) })
        r.debug(`${check.id}: skipped (${reason})`)
      }
      done++
    }
    progress({ phase: 'cleanup', done }, r)
    if (!r.dead) {
      await cleanupObjects(r)
      await r.deleteThrowaways()
    }
    // Probes that may lock the scanner's own client out come last, after the cleanup.
    for (const check of checks) {
      if (!check.last || r.dead || skipped.some((s) => s.checkId === check.id)) continue
      try {
        keep(check, await check.last(r))
      } catch (err) {
        if (!(err instanceof SkipCheck)) r.note(`${check.id}: ${(err as Error).message}`)
      }
    }
    if (!r.dead) await r.deleteThrowaways()
    progress({ phase: 'done', done }, r)
    return finish(r, opts, target, startedAt, t0, checks, findings, skipped, baseline, loaded.text)
  } finally {
    await run?.close()
    await dispatcher.close()
  }
}

function finish(
  r: ScanRun,
  opts: ScanOptions,
  target: URL,
  startedAt: Date,
  t0: number,
  checks: readonly Check[],
  found: Finding[],
  skipped: { checkId: string; reason: string }[],
  baseline: Set<string> | undefined,
  specText: string | undefined,
): ScanReport {
  // No verdict without answers: dead, or most answers were transport or gateway errors.
  if (!r.dead && r.counted >= 10 && r.bad / r.counted > 0.5)
    r.dead = `the target answered mostly with errors (${r.bad} of ${r.counted} requests: no answer or 502-504)`
  let findings = r.dead ? [] : finalize(found)
  if (r.dead) r.note(`no verdict: ${r.dead}`)
  if (specText !== undefined && findings.length > 0) {
    const where = operationPositions(specText)
    findings = findings.map((f) => {
      const pos = f.operation
        ? where.get(`${f.operation.method.toUpperCase()} ${f.operation.path}`)
        : undefined
      return pos && f.operation
        ? { ...f, operation: { ...f.operation, line: pos.line, column: pos.column } }
        : f
    })
  }
  let baselineInfo: ScanReport['baseline']
  if (baseline && opts.baseline) {
    findings = findings.map((f) => ({
      ...f,
      baselineState: baseline.has(f.fingerprint as string) ? ('unchanged' as const) : ('new' as const),
    }))
    const unchanged = findings.filter((f) => f.baselineState === 'unchanged').length
    baselineInfo = { file: opts.baseline, unchanged, new: findings.length - unchanged }
  }
  const finishedAt = new Date()
  return {
    tool: { name: 'portcullis', version: version() },
    target: target.href.replace(/\/$/, ''),
    spec: /^https?:/i.test(opts.spec) ? r.masker.url(opts.spec) : opts.spec,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    safe: r.safe,
    identities: r.identities.filter((i) => !i.throwaway).map((i) => i.name),
    checks: checks.map(info),
    findings,
    skipped,
    stats: { ...r.stats },
    ...(r.dead ? { unreachable: r.masker.text(r.dead) } : {}),
    notes: [...r.notes],
    blocked: [...r.blocked].map(([operation, reason]) => ({ operation, reason })),
    ...(baselineInfo ? { baseline: baselineInfo } : {}),
  }
}

function emptyReport(
  opts: ScanOptions,
  target: URL,
  startedAt: Date,
  t0: number,
  checks: readonly Check[],
  why: string,
): ScanReport {
  return {
    tool: { name: 'portcullis', version: version() },
    target: target.href.replace(/\/$/, ''),
    spec: opts.spec,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs: Math.round(performance.now() - t0),
    safe: opts.safe ?? true,
    identities: Object.keys(opts.auth?.config.identities ?? {}),
    checks: checks.map(info),
    findings: [],
    skipped: [],
    stats: { requests: 1, errors: 1 },
    unreachable: why,
    notes: [`no verdict: ${why}`],
  }
}
