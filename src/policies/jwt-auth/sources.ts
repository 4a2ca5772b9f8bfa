/**
 * Where verification keys come from: static keys, a local JWKS file (reloaded on change), a remote
 * JWKS URL or OIDC discovery. Every source is loaded asynchronously from the moment the policy is
 * created; `current()` is the synchronous view the cache-hit path uses, `ready()` what a first
 * request awaits. Sources are shared by key (same keys config → one fetch loop, one watch), also
 * across a config reload, and released by reference count.
 */
import { readFileSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import type { Logger } from 'pino'
import type { Agent } from 'undici'
import { fetchAgent, fetchJson } from '../../auth/fetch-json.js'
import { hashContent, watchFile } from '../../auth/watch-file.js'
import {
  checkJwk,
  importKeySet,
  KeyError,
  type KeySet,
  type PreparedKey,
  pemToJwk,
  prepareJwk,
  prepareJwks,
  refusedKeyLogger,
} from './keys.js'
import type { JwsAlgorithm, JwtAuthConfig } from './schema.js'

/** No usable keys (never loaded, or stale beyond maxStaleMs): requests fail closed with 503. */
export class KeysUnavailableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'KeysUnavailableError'
  }
}

export interface KeySource {
  /** Keys usable now (synchronous), or undefined: not loaded yet, or too stale. */
  current(): KeySet | undefined
  /** Usable keys, after a first load or a refresh if needed (bounded by the fetch timeout). */
  ready(): Promise<KeySet>
  /** A token names a kid the set does not have: refetch if the rate limit allows, then the set. */
  refreshForUnknownKid(): Promise<KeySet>
  /** Number of fetches started (tests, logs). */
  readonly fetches: number
}

export interface SourceHandle {
  source: KeySource
  release(): void
}

interface SourceImpl extends KeySource {
  close(): void
}

export interface RemoteSpec {
  jwksUrl: URL | undefined
  discoveryUrl: URL | undefined
  issuer: string | undefined
  timeoutMs: number
  maxBytes: number
  refreshIntervalMs: number
  unknownKidMinIntervalMs: number
  maxStaleMs: number
  allowHttp: boolean
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** Validates a remote URL: https (http only on loopback or when allowed), no credentials, no fragment. */
export function remoteUrl(s: string, allowHttp: boolean, what: string): URL {
  let u: URL
  try {
    u = new URL(s)
  } catch {
    throw new Error(`${what}: not a URL`)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new Error(`${what}: expected https:, found ${u.protocol}`)
  if (u.protocol === 'http:' && !allowHttp && !isLoopback(u.hostname)) {
    throw new Error(`${what}: plain http is only allowed for loopback hosts (or with remote.allowHttp)`)
  }
  if (u.username || u.password) throw new Error(`${what}: credentials in the URL are not allowed`)
  if (u.hash) throw new Error(`${what}: a fragment is not allowed`)
  return u
}

class StaticSource implements SourceImpl {
  private set: KeySet | undefined
  private readonly loading: Promise<KeySet>
  readonly fetches = 0

  constructor(keys: PreparedKey[], logger: Logger) {
    this.loading = importKeySet(keys).then((s) => {
      this.set = s
      return s
    })
    this.loading.catch((err: unknown) => logger.error({ err }, 'jwt-auth: importing the static keys failed'))
  }
  current(): KeySet | undefined {
    return this.set
  }
  ready(): Promise<KeySet> {
    return this.loading.catch(() => {
      throw new KeysUnavailableError('static keys could not be imported')
    })
  }
  refreshForUnknownKid(): Promise<KeySet> {
    return this.ready()
  }
  close(): void {}
}

class FileSource implements SourceImpl {
  private set: KeySet | undefined
  private loading: Promise<KeySet>
  private readonly watch: { close(): void }
  private readonly logRefused: ReturnType<typeof refusedKeyLogger>
  readonly fetches = 0

  constructor(
    private readonly path: string,
    private readonly allowed: ReadonlySet<JwsAlgorithm>,
    private readonly logger: Logger,
  ) {
    this.logRefused = refusedKeyLogger(logger, { file: path })
    const content = readFileSync(path)
    const keys = this.parse(content)
    this.loading = this.install(keys)
    this.loading.catch(() => undefined)
    this.watch = watchFile(
      path,
      hashContent(content),
      (next) => {
        let parsed: PreparedKey[]
        try {
          parsed = this.parse(next)
        } catch (err) {
          logger.error(
            { file: path, reason: (err as Error).message },
            'jwt-auth: JWKS file refused; keeping the last keys',
          )
          return
        }
        this.install(parsed).then(
          (s) => logger.info({ file: path, keys: s.size }, 'jwt-auth: JWKS file reloaded'),
          () => undefined,
        )
      },
      (err) =>
        logger.error(
          { file: path, code: (err as NodeJS.ErrnoException).code },
          'jwt-auth: JWKS file unreadable; keeping the last keys',
        ),
      { debounceMs: 100, pollMs: 2000, logger },
    )
  }

  private parse(content: Buffer): PreparedKey[] {
    let doc: unknown
    try {
      doc = JSON.parse(content.toString('utf8'))
    } catch {
      throw new KeyError('not JSON')
    }
    const { keys, refused } = prepareJwks(doc, this.allowed, { allowSecrets: true })
    this.logRefused(refused)
    if (keys.length === 0) throw new KeyError('no usable key for the configured algorithms')
    return keys
  }

  private install(keys: PreparedKey[]): Promise<KeySet> {
    const p = importKeySet(keys, this.set).then((s) => {
      this.set = s
      return s
    })
    p.catch((err: unknown) =>
      this.logger.error({ err, file: this.path }, 'jwt-auth: importing JWKS file keys failed'),
    )
    if (this.set === undefined) this.loading = p
    return p
  }

  current(): KeySet | undefined {
    return this.set
  }
  ready(): Promise<KeySet> {
    if (this.set) return Promise.resolve(this.set)
    return this.loading.catch(() => {
      throw new KeysUnavailableError('JWKS file keys could not be imported')
    })
  }
  refreshForUnknownKid(): Promise<KeySet> {
    return this.ready()
  }
  close(): void {
    this.watch.close()
  }
}

/** Retry interval after a failed fetch (capped by refreshIntervalMs). */
const RETRY_MS = 5000
/** While fetches keep failing in the same way, one warning per this interval. */
const WARN_EVERY_MS = 60_000

class RemoteSource implements SourceImpl {
  private set: KeySet | undefined
  private bodyHash = ''
  private loadedAt = Number.NEGATIVE_INFINITY
  private lastAttempt = Number.NEGATIVE_INFINITY
  private inflight: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private lastError = 'keys not loaded yet'
  private failState: 'ok' | 'stale' | 'unavailable' = 'ok'
  private lastWarnAt = Number.NEGATIVE_INFINITY
  private readonly agent: Agent
  private logRefused: ReturnType<typeof refusedKeyLogger> | undefined
  private logRefusedUrl = ''
  fetches = 0

  constructor(
    private readonly spec: RemoteSpec,
    private readonly allowed: ReadonlySet<JwsAlgorithm>,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {
    this.agent = fetchAgent(spec.timeoutMs)
    void this.refresh('initial')
  }

  current(): KeySet | undefined {
    const s = this.set
    if (s === undefined || this.now() - this.loadedAt > this.spec.maxStaleMs) return undefined
    return s
  }

  async ready(): Promise<KeySet> {
    const s = this.current()
    if (s) return s
    if (this.inflight) await this.inflight
    else if (this.now() - this.lastAttempt >= this.spec.unknownKidMinIntervalMs)
      await this.refresh('keys unavailable')
    const after = this.current()
    if (!after) throw new KeysUnavailableError(this.set ? `keys stale: ${this.lastError}` : this.lastError)
    return after
  }

  async refreshForUnknownKid(): Promise<KeySet> {
    if (this.inflight) await this.inflight
    else if (this.now() - this.lastAttempt >= this.spec.unknownKidMinIntervalMs)
      await this.refresh('unknown kid')
    return this.ready()
  }

  private refresh(reason: string): Promise<void> {
    if (this.inflight) return this.inflight
    if (this.closed) return Promise.resolve()
    this.lastAttempt = this.now()
    this.fetches++
    clearTimeout(this.timer)
    const p = this.load(reason).then(
      () => true,
      (err: unknown) => {
        this.lastError = (err as Error).message
        const kept = this.set !== undefined && this.now() - this.loadedAt <= this.spec.maxStaleMs
        // One line per state change, then at most one a minute while it lasts.
        const state = kept ? 'stale' : 'unavailable'
        if (state !== this.failState || this.now() - this.lastWarnAt >= WARN_EVERY_MS) {
          this.failState = state
          this.lastWarnAt = this.now()
          this.logger.warn(
            { reason, error: this.lastError, keptKeys: kept, sinceLastSuccessMs: this.sinceLoaded() },
            kept
              ? 'jwt-auth: JWKS refresh failed; verifying with the last keys'
              : 'jwt-auth: JWKS unavailable',
          )
        }
        return false
      },
    )
    this.inflight = p.then((ok) => {
      this.inflight = undefined
      if (this.closed) return
      const next = ok ? this.spec.refreshIntervalMs : Math.min(this.spec.refreshIntervalMs, RETRY_MS)
      this.timer = setTimeout(() => void this.refresh('interval'), next)
      this.timer.unref()
    })
    return this.inflight
  }

  private sinceLoaded(): number | undefined {
    return Number.isFinite(this.loadedAt) ? Math.round(this.now() - this.loadedAt) : undefined
  }

  private async load(reason: string): Promise<void> {
    const o = { dispatcher: this.agent, timeoutMs: this.spec.timeoutMs, maxBytes: this.spec.maxBytes }
    let jwksUrl = this.spec.jwksUrl
    if (this.spec.discoveryUrl) {
      const d = await fetchJson(this.spec.discoveryUrl, o)
      const doc = d.json as { issuer?: unknown; jwks_uri?: unknown } | null
      // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
      if (doc === null || typeof doc !== 'object' || doc.issuer !== this.spec.issuer) {
        throw new KeyError('discovery document: issuer does not match the configured issuer')
      }
      if (typeof doc.jwks_uri !== 'string') throw new KeyError('discovery document: no jwks_uri')
      jwksUrl = remoteUrl(doc.jwks_uri, this.spec.allowHttp, 'discovery jwks_uri')
    }
    if (!jwksUrl) throw new KeyError('no JWKS URL')
    const r = await fetchJson(jwksUrl, o)
    const h = hashContent(r.body)
    if (h !== this.bodyHash || this.set === undefined) {
      const { keys, refused } = prepareJwks(r.json, this.allowed, { allowSecrets: false })
      // Each refused key once per JWKS URL (discovery may move it).
      if (this.logRefused === undefined || this.logRefusedUrl !== jwksUrl.href) {
        this.logRefused = refusedKeyLogger(this.logger, { url: jwksUrl.href })
        this.logRefusedUrl = jwksUrl.href
      }
      this.logRefused(refused)
      if (keys.length === 0) throw new KeyError('JWKS has no usable key for the configured algorithms')
      const set = await importKeySet(keys, this.set)
      this.set = set
      this.bodyHash = h
      this.logger.info({ url: jwksUrl.href, keys: set.size, reason }, 'jwt-auth: JWKS loaded')
    }
    if (this.failState !== 'ok') {
      this.logger.info({ url: jwksUrl.href }, 'jwt-auth: JWKS reachable again')
      this.failState = 'ok'
    }
    this.loadedAt = this.now()
  }

  close(): void {
    this.closed = true
    clearTimeout(this.timer)
    void this.agent.close().catch(() => undefined)
  }
}

const shared = new Map<string, { impl: SourceImpl; refs: number }>()

/**
 * Validates the keys part of a config and returns a handle on its (shared) source. Throws an
 * Error with a config message when the keys config is wrong.
 */
export function acquireKeySource(config: JwtAuthConfig, logger: Logger, now: () => number): SourceHandle {
  const allowed = new Set<JwsAlgorithm>(config.algorithms)
  const given = [
    config.keys !== undefined,
    config.jwksFile !== undefined,
    config.jwksUrl !== undefined,
    config.discovery,
  ].filter(Boolean).length
  if (given !== 1) {
    throw new Error('jwt-auth: set exactly one of keys, jwksFile, jwksUrl or discovery: true')
  }
  const algs = [...allowed].sort()
  let id: string
  let make: () => SourceImpl
  if (config.keys !== undefined) {
    const prepared: PreparedKey[] = config.keys.map((k, i) => {
      const where = `jwt-auth: keys[${i}]`
      if ((k.pem === undefined) === (k.jwk === undefined))
        throw new Error(`${where}: set exactly one of pem or jwk`)
      let raw: unknown
      try {
        raw = k.pem !== undefined ? pemToJwk(k.pem) : JSON.parse(k.jwk as string)
      } catch (err) {
        throw new Error(`${where}: ${err instanceof KeyError ? err.message : 'jwk is not JSON'}`)
      }
      const p = prepareJwk(raw, allowed, { kid: k.kid, alg: k.alg })
      if (typeof p === 'string') throw new Error(`${where}: ${p}`)
      try {
        checkJwk(p)
      } catch (err) {
        throw new Error(`${where}: ${(err as Error).message}`)
      }
      return p
    })
    id = JSON.stringify({ static: prepared })
    make = () => new StaticSource(prepared, logger)
  } else if (config.jwksFile !== undefined) {
    const path = config.jwksFile
    if (!isAbsolute(path)) throw new Error(`jwt-auth: jwksFile must be an absolute path, found "${path}"`)
    id = JSON.stringify({ file: path, algs })
    make = () => {
      try {
        return new FileSource(path, allowed, logger)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        throw new Error(`jwt-auth: jwksFile ${path}: ${code ?? (err as Error).message}`)
      }
    }
  } else {
    const r = config.remote
    if (r.maxStaleMs < r.refreshIntervalMs) {
      throw new Error('jwt-auth: remote.maxStaleMs must be at least remote.refreshIntervalMs')
    }
    let jwksUrl: URL | undefined
    let discoveryUrl: URL | undefined
    if (config.discovery) {
      if (config.issuer === undefined) throw new Error('jwt-auth: discovery needs issuer')
      const base = remoteUrl(config.issuer, r.allowHttp, 'jwt-auth: issuer (discovery)')
      discoveryUrl = new URL(`${base.href.replace(/\/$/, '')}/.well-known/openid-configuration`)
    } else jwksUrl = remoteUrl(config.jwksUrl as string, r.allowHttp, 'jwt-auth: jwksUrl')
    const spec: RemoteSpec = {
      jwksUrl,
      discoveryUrl,
      issuer: config.issuer,
      timeoutMs: r.timeoutMs,
      maxBytes: r.maxBytes,
      refreshIntervalMs: r.refreshIntervalMs,
      unknownKidMinIntervalMs: r.unknownKidMinIntervalMs,
      maxStaleMs: r.maxStaleMs,
      allowHttp: r.allowHttp,
    }
    id = JSON.stringify({
      remote: { ...spec, jwksUrl: jwksUrl?.href, discoveryUrl: discoveryUrl?.href },
      algs,
    })
    make = () => new RemoteSource(spec, allowed, logger, now)
  }
  let entry = shared.get(id)
  if (entry === undefined) {
    entry = { impl: make(), refs: 0 }
    shared.set(id, entry)
  }
  const e = entry
  e.refs++
  let held = true
  return {
    source: e.impl,
    release() {
      if (!held) return
      held = false
      if (--e.refs === 0) {
        e.impl.close()
        if (shared.get(id) === e) shared.delete(id)
      }
    },
  }
}
