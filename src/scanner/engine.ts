/**
 * The scan engine: loads the spec, logs the identities in, seeds objects, runs the checks through
 * a rate-limited, origin-locked HTTP client (undici), cleans up what it created and returns a
 * ScanReport. Every recorded exchange is masked (see mask.ts).
 *
 * Safety rules enforced here, whatever a check asks for:
 * - requests go only to the target's origin (a path that would leave it is refused);
 * - redirects are never followed;
 * - at most `rate` requests per second and `concurrency` at once;
 * - at most `maxBodyBytes` of each response body are read.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { loadOpenApi, type OpenApiSpec } from '../openapi/index.js'
import { ALL_CHECKS } from './checks/index.js'
import { type Credentials, Identity, type LoginSender, type ParsedAuth } from './identities.js'
import { Masker } from './mask.js'
import { cleanupObjects, seedObjects } from './seed.js'
import {
  type Check,
  type CheckInfo,
  type Exchange,
  type Finding,
  type IdentityInfo,
  type ScanContext,
  type ScanReport,
  type ScanRequest,
  type ScanResponse,
  type SeededObject,
  SkipCheck,
} from './types.js'

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

const EXCERPT = 4096

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

/** Token bucket (one token per 1/rate s, no burst) plus a concurrency gate. */
class Limiter {
  private next = 0
  private active = 0
  private readonly waiting: (() => void)[] = []

  constructor(
    private readonly rate: number,
    private readonly concurrency: number,
  ) {}

  async acquire(): Promise<void> {
    if (this.active >= this.concurrency) await new Promise<void>((r) => this.waiting.push(r))
    else this.active++
    const now = Date.now()
    const at = Math.max(now, this.next)
    this.next = at + 1000 / this.rate
    if (at > now) await new Promise((r) => setTimeout(r, at - now))
  }

  release(): void {
    const w = this.waiting.shift()
    if (w) w()
    else this.active--
  }
}

async function fetchSpec(url: URL, maxBytes: number, timeoutMs: number, dispatcher: Agent): Promise<string> {
  const res = await request(url, {
    method: 'GET',
    headers: { accept: 'application/json, application/yaml, text/yaml, */*' },
    dispatcher,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  })
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

async function loadSpec(spec: string, opts: ScanOptions, dispatcher: Agent): Promise<OpenApiSpec> {
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
      return loadOpenApi(file)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
  return loadOpenApi(spec)
}

function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(k.toLowerCase() === 'set-cookie' ? '\n' : ', ') : v
  }
  return out
}

interface CanaryHit {
  id: string
  hit: boolean
  waiters: (() => void)[]
}

class Canary {
  private server: Server | undefined
  private base = ''
  private readonly tokens = new Map<string, CanaryHit>()

  async url(): Promise<{ url: string; wasHit(timeoutMs: number): Promise<boolean> }> {
    if (!this.server) {
      const server = createServer((req, res) => {
        const m = /^\/c\/([a-f0-9]{32})/.exec(req.url ?? '')
        const entry = m ? this.tokens.get(m[1] as string) : undefined
        if (entry && !entry.hit) {
          entry.hit = true
          for (const w of entry.waiters.splice(0)) w()
        }
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.end('portcullis-canary')
      })
      server.maxConnections = 64
      server.requestTimeout = 5000
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, '127.0.0.1', () => resolve())
      })
      this.server = server
      this.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    }
    if (this.tokens.size >= 10_000) throw new Error('too many canary URLs')
    const id = randomBytes(16).toString('hex')
    const entry: CanaryHit = { id, hit: false, waiters: [] }
    this.tokens.set(id, entry)
    return {
      url: `${this.base}/c/${id}`,
      wasHit: (timeoutMs: number) =>
        entry.hit
          ? Promise.resolve(true)
          : new Promise<boolean>((resolve) => {
              const t = setTimeout(() => resolve(entry.hit), timeoutMs)
              entry.waiters.push(() => {
                clearTimeout(t)
                resolve(true)
              })
            }),
    }
  }

  async close(): Promise<void> {
    const s = this.server
    if (!s) return
    s.closeAllConnections()
    await new Promise<void>((r) => s.close(() => r()))
  }
}

/** The engine's ScanContext. Exported for tests and for seeding. */
export class ScanRun implements ScanContext {
  readonly operations
  readonly identities: IdentityInfo[]
  readonly objects: SeededObject[] = []
  readonly masker = new Masker()
  readonly ids = new Map<string, Identity>()
  stats = { requests: 0, errors: 0 }
  private readonly limiter: Limiter
  private readonly canaryServer = new Canary()
  private readonly timeoutMs: number
  private readonly maxBodyBytes: number
  private readonly basePath: string

  constructor(
    readonly spec: OpenApiSpec,
    readonly target: URL,
    readonly safe: boolean,
    readonly auth: ParsedAuth | undefined,
    private readonly opts: ScanOptions,
    private readonly dispatcher: Agent,
  ) {
    this.operations = spec.operations
    this.limiter = new Limiter(Math.max(0.1, opts.rate ?? 20), Math.max(1, Math.floor(opts.concurrency ?? 4)))
    this.timeoutMs = opts.timeoutMs ?? 10_000
    this.maxBodyBytes = opts.maxBodyBytes ?? 1024 * 1024
    this.basePath = target.pathname.replace(/\/+$/, '')
    for (const s of auth?.envSecrets ?? []) this.masker.addSecret(s)
    for (const [name, cfg] of Object.entries(auth?.config.identities ?? {})) {
      this.ids.set(name, new Identity(name, cfg, this.masker))
    }
    this.identities = [...this.ids.values()].map((i) => i.info)
  }

  debug(message: string): void {
    this.opts.log?.(this.masker.text(message))
  }

  /** The identity's current credentials, logged in first (SCAN2's JWT and token-in-URL checks). */
  async credentials(identity: string): Promise<Credentials | undefined> {
    const id = this.ids.get(identity)
    if (!id) return undefined
    await id.ensure(this.loginSender)
    return id.credentials()
  }

  readonly loginSender: LoginSender = async (req) => {
    const r = await this.raw(
      {
        method: req.method,
        path: req.path,
        headers: req.headers,
        ...(req.body !== undefined ? { body: req.body } : {}),
      },
      undefined,
    )
    if (r.status === 0) throw new Error(`login request failed: ${r.exchange.error ?? 'no answer'}`)
    return { status: r.status, json: r.json, headers: r.headers }
  }

  async send(identity: string | undefined, req: ScanRequest): Promise<ScanResponse> {
    const id = identity === undefined ? undefined : this.ids.get(identity)
    if (identity !== undefined && !id) throw new Error(`unknown identity "${identity}"`)
    const useAuth = id !== undefined && req.noAuth !== true
    if (useAuth) await id.ensure(this.loginSender)
    let res = await this.raw(req, useAuth ? id : undefined)
    if (useAuth && id.shouldRefresh(res.status)) {
      this.debug(`${identity}: ${res.status}, logging in again`)
      await id.relogin(this.loginSender)
      res = await this.raw(req, id)
    }
    return res
  }

  /** Builds the absolute URL of a target-relative path; refuses anything off the target's origin. */
  url(path: string, query?: Record<string, string | string[]>): URL {
    if (!path.startsWith('/') || path.startsWith('//'))
      throw new Error(`scan path must start with one "/": ${path.slice(0, 100)}`)
    const url = new URL(`${this.target.origin}${this.basePath}${path}`)
    if (url.origin !== this.target.origin) throw new Error('refusing a request off the target origin')
    for (const [k, v] of Object.entries(query ?? {})) {
      for (const x of Array.isArray(v) ? v : [v]) url.searchParams.append(k, x)
    }
    return url
  }

  private async raw(req: ScanRequest, id: Identity | undefined): Promise<ScanResponse> {
    const creds = id?.credentials()
    const url = this.url(req.path, { ...(creds?.query ?? {}), ...(req.query ?? {}) })
    const headers: Record<string, string> = {
      'user-agent': 'portcullis-scan',
      accept: 'application/json, */*;q=0.5',
    }
    for (const [k, v] of Object.entries(creds?.headers ?? {})) headers[k.toLowerCase()] = v
    let body = req.body
    if (req.json !== undefined) {
      body = JSON.stringify(req.json)
      headers['content-type'] = 'application/json'
    }
    for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v
    const method = req.method.toUpperCase()
    const exchange: Exchange = {
      request: {
        method,
        url: url.href,
        headers: { ...headers },
        ...(body !== undefined ? { body: body.slice(0, EXCERPT) } : {}),
      },
    }
    const timeout = req.timeoutMs ?? this.timeoutMs
    await this.limiter.acquire()
    this.stats.requests++
    const started = performance.now()
    try {
      const res = await request(url, {
        method: method as 'GET',
        headers,
        ...(body !== undefined ? { body } : {}),
        dispatcher: this.dispatcher,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      })
      const chunks: Buffer[] = []
      let size = 0
      if (method !== 'HEAD') {
        for await (const chunk of res.body) {
          const c = chunk as Buffer
          const room = this.maxBodyBytes - size
          if (c.length >= room) {
            chunks.push(c.subarray(0, room))
            size += room
            res.body.destroy()
            break
          }
          chunks.push(c)
          size += c.length
        }
      } else await res.body.dump()
      const text = Buffer.concat(chunks).toString('utf8')
      const durationMs = Math.round(performance.now() - started)
      const rh = flatHeaders(res.headers as Record<string, string | string[] | undefined>)
      let json: unknown
      if (text !== '' && /json/i.test(rh['content-type'] ?? '')) {
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
      }
      exchange.response = { status: res.statusCode, headers: rh, body: text.slice(0, EXCERPT), durationMs }
      return {
        status: res.statusCode,
        headers: rh,
        text,
        json,
        durationMs,
        exchange: this.masker.exchange(exchange),
      }
    } catch (err) {
      this.stats.errors++
      const e = err as Error & { code?: string }
      exchange.error =
        e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT'
          ? `timeout after ${timeout} ms`
          : `${e.code ?? e.name}: ${e.message}`
      return {
        status: 0,
        headers: {},
        text: '',
        json: undefined,
        durationMs: Math.round(performance.now() - started),
        exchange: this.masker.exchange(exchange),
      }
    } finally {
      this.limiter.release()
    }
  }

  canary(): Promise<{ url: string; wasHit(timeoutMs: number): Promise<boolean> }> {
    return this.canaryServer.url()
  }

  async close(): Promise<void> {
    await this.canaryServer.close()
  }

  /** Names of identities with a role, in auth.yaml order. */
  withRole(role: string): string[] {
    return this.identities.filter((i) => i.roles.includes(role)).map((i) => i.name)
  }
}

/** Ordinary users: not anonymous, not admin (in auth.yaml order). */
export function userIdentities(ctx: ScanContext): IdentityInfo[] {
  return ctx.identities.filter((i) => !i.anonymous && !i.roles.includes('admin'))
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

function info(c: Check): CheckInfo {
  const { run: _run, ...rest } = c
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
  const dispatcher = new Agent({ connections: Math.max(1, opts.concurrency ?? 4) + 2, pipelining: 1 })
  const progress = (p: Omit<ScanProgress, 'total' | 'requests'>, run?: ScanRun) =>
    opts.onProgress?.({ ...p, total: checks.length, requests: run?.stats.requests ?? 0 })
  let run: ScanRun | undefined
  try {
    const spec = await loadSpec(opts.spec, opts, dispatcher)
    run = new ScanRun(spec, target, opts.safe ?? true, opts.auth, opts, dispatcher)
    const r = run
    progress({ phase: 'login', done: 0 }, r)
    for (const id of r.ids.values()) {
      try {
        await id.ensure(r.loginSender)
      } catch (err) {
        throw new ScanSetupError((err as Error).message)
      }
    }
    progress({ phase: 'seed', done: 0 }, r)
    const seeded = await seedObjects(r)
    r.objects.push(...seeded)
    r.debug(`seeded ${seeded.length} object(s): ${seeded.map((o) => `${o.owner}:${o.path}`).join(', ')}`)
    const findings: Finding[] = []
    const skipped: { checkId: string; reason: string }[] = []
    let done = 0
    for (const check of checks) {
      progress({ phase: 'check', check: check.id, done }, r)
      try {
        const found = await check.run(r)
        findings.push(...found)
        r.debug(`${check.id}: ${found.length} finding(s)`)
      } catch (err) {
        const reason = err instanceof SkipCheck ? err.message : `error: ${(err as Error).message}`
        skipped.push({ checkId: check.id, reason: r.masker.text(reason) })
        r.debug(`${check.id}: skipped (${reason})`)
      }
      done++
    }
    progress({ phase: 'cleanup', done }, r)
    await cleanupObjects(r)
    progress({ phase: 'done', done }, r)
    const finishedAt = new Date()
    return {
      tool: { name: 'portcullis', version: version() },
      target: target.href.replace(/\/$/, ''),
      spec: /^https?:/i.test(opts.spec) ? r.masker.url(opts.spec) : opts.spec,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      safe: r.safe,
      identities: r.identities.map((i) => i.name),
      checks: checks.map(info),
      findings,
      skipped,
      stats: { ...r.stats },
    }
  } finally {
    await run?.close()
    await dispatcher.close()
  }
}
