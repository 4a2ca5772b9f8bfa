/**
 * Token revocation, from two sources that the authentication policies consult on every request
 * (also on verified-token cache hits), with a synchronous lookup:
 *
 * - a local file (`revocation.file`), hot-reloaded: {@link openFileRevocationList};
 * - the replicated map `revocations` in the configured store (memory: this gateway; Redis: every
 *   gateway sharing it), written through the admin API and followed by a local mirror
 *   (`stores/mirror.ts`): {@link SharedRevocations}.
 *
 * {@link openRevocations} combines both for a policy, including what happens while the shared list
 * cannot be trusted (never synced, or the store unreachable for longer than `maxStaleSeconds`).
 * Entry ids are the same in both: `jti:<value>` or `sha256:<64 hex>`, the SHA-256 of the token's
 * canonical form (see `jws-canonical.ts`: for every token the gateway accepts, the SHA-256 of the
 * token as issued, except that an ECDSA token's two spellings are both checked).
 */
import { readFileSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import type { Logger } from 'pino'
import { acquireMapMirror, type MapMirror } from '../stores/mirror.js'
import type { Store } from '../stores/types.js'
import { hashContent, watchFile } from './watch-file.js'

export interface RevocationList {
  /**
   * True when the token is revoked, by its `jti` claim or by the SHA-256 (hex) of its canonical
   * form (`tokenHash`) or of its other ECDSA spelling (`altHash`).
   */
  isRevoked(jti: string | undefined, tokenHash: string, altHash?: string): boolean
  /** Number of entries now. */
  readonly size: number
  /** Releases this handle (the file watch ends with the last one). */
  close(): void
}

export interface ParsedRevocations {
  jtis: Set<string>
  hashes: Set<string>
  /** 1-based numbers of lines that are not an entry, a comment or blank. */
  invalidLines: number[]
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/

/**
 * One entry per line: `jti:<value>` or `sha256:<64 hex digits>` (the SHA-256 of the whole token as
 * issued, as `sha256sum` prints it; see docs/policies/jwt-auth.md for the canonical form). Blank
 * lines and lines starting with `#` are skipped.
 */
export function parseRevocations(text: string): ParsedRevocations {
  const jtis = new Set<string>()
  const hashes = new Set<string>()
  const invalidLines: number[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.startsWith('jti:') && line.length > 4) jtis.add(line.slice(4))
    else if (line.startsWith('sha256:') && SHA256_HEX.test(line.slice(7)))
      hashes.add(line.slice(7).toLowerCase())
    else invalidLines.push(i + 1)
  }
  return { jtis, hashes, invalidLines }
}

class FileRevocations {
  jtis: Set<string>
  hashes: Set<string>
  refs = 0
  private readonly watch: { close(): void }

  constructor(
    readonly path: string,
    logger: Logger,
    debounceMs: number,
  ) {
    const content = readFileSync(path)
    const parsed = parseRevocations(content.toString('utf8'))
    this.jtis = parsed.jtis
    this.hashes = parsed.hashes
    if (parsed.invalidLines.length > 0) {
      logger.warn({ file: path, lines: parsed.invalidLines.slice(0, 20) }, 'revocation list: lines skipped')
    }
    this.watch = watchFile(
      path,
      hashContent(content),
      (next) => {
        const p = parseRevocations(next.toString('utf8'))
        // Swap both sets at once: a request sees the old list or the new one.
        this.jtis = p.jtis
        this.hashes = p.hashes
        logger.info(
          { file: path, entries: p.jtis.size + p.hashes.size, skippedLines: p.invalidLines.length },
          'revocation list reloaded',
        )
      },
      (err) =>
        logger.error(
          { file: path, code: (err as NodeJS.ErrnoException).code },
          'revocation list unreadable; the last one loaded stays in force',
        ),
      { debounceMs, pollMs: 2000, logger },
    )
  }

  close(): void {
    this.watch.close()
  }
}

/** One loaded file per path, shared by every route and by the runtimes around a config reload. */
const files = new Map<string, FileRevocations>()

/**
 * Opens the revocation list in `path` (absolute). Throws when the file cannot be read: a
 * configured list that is missing is a config error, not "nothing is revoked".
 */
export function openFileRevocationList(
  path: string,
  logger: Logger,
  opts: { debounceMs?: number } = {},
): RevocationList {
  if (!isAbsolute(path)) throw new Error(`revocation file must be an absolute path, found "${path}"`)
  let f = files.get(path)
  if (f === undefined) {
    f = new FileRevocations(path, logger, opts.debounceMs ?? 100)
    files.set(path, f)
  }
  const shared = f
  shared.refs++
  let open = true
  return {
    isRevoked(jti, tokenHash, altHash) {
      return (
        (jti !== undefined && shared.jtis.has(jti)) ||
        shared.hashes.has(tokenHash) ||
        (altHash !== undefined && shared.hashes.has(altHash))
      )
    },
    get size() {
      return shared.jtis.size + shared.hashes.size
    },
    close() {
      if (!open) return
      open = false
      if (--shared.refs === 0) {
        shared.close()
        if (files.get(path) === shared) files.delete(path)
      }
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Shared revocations: the replicated map `revocations`

/** Name of the replicated map (in the configured store) that holds shared revocations. */
export const REVOCATIONS_MAP = 'revocations'
/** Longest `jti` value an entry may hold, in UTF-16 code units (a JWT's `jti` is usually a UUID). */
export const MAX_JTI_LENGTH = 1024
/** Longest `reason` an entry may carry. */
export const MAX_REASON_LENGTH = 500

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** A revocation entry id, parsed: `jti:<value>` or `sha256:<64 lower-case hex>`. */
export type RevocationId = { kind: 'jti' | 'sha256'; value: string; id: string }

/**
 * Parses an entry id (as the admin API receives it). The hex of a `sha256:` id is lower-cased
 * (`id` is the canonical form). Undefined when it is not an id: an unknown prefix, an empty or
 * over-long jti, a jti that is not well-formed Unicode (a lone surrogate cannot round-trip through
 * Redis), a hash that is not 64 hex digits.
 *
 * @example
 * parseRevocationId('sha256:AB…') // { kind: 'sha256', value: 'ab…', id: 'sha256:ab…' }
 */
export function parseRevocationId(id: string): RevocationId | undefined {
  if (id.startsWith('jti:')) {
    const value = id.slice(4)
    if (value.length === 0 || value.length > MAX_JTI_LENGTH || LONE_SURROGATE.test(value)) return undefined
    return { kind: 'jti', value, id }
  }
  if (id.startsWith('sha256:')) {
    const value = id.slice(7)
    if (!SHA256_HEX.test(value)) return undefined
    const lower = value.toLowerCase()
    return { kind: 'sha256', value: lower, id: `sha256:${lower}` }
  }
  return undefined
}

/** What a shared entry's value holds (JSON). The entry's TTL is the token's remaining lifetime. */
export interface RevocationRecord {
  reason?: string
  /** When it was revoked, ms since the epoch. */
  createdAt: number
}

export function encodeRevocationRecord(r: RevocationRecord): string {
  return JSON.stringify(r.reason === undefined ? { createdAt: r.createdAt } : r)
}

/**
 * Reads an entry's value leniently: a value written by another tool or version still revokes (the
 * key is what counts); what cannot be read is left out.
 */
export function decodeRevocationRecord(value: string): Partial<RevocationRecord> {
  try {
    const v = JSON.parse(value) as unknown
    if (v === null || typeof v !== 'object') return {}
    const o = v as Record<string, unknown>
    const out: Partial<RevocationRecord> = {}
    if (typeof o.reason === 'string') out.reason = o.reason
    if (typeof o.createdAt === 'number' && Number.isFinite(o.createdAt)) out.createdAt = o.createdAt
    return out
  } catch {
    return {}
  }
}

/**
 * The shared revocation list of one store, as a local mirror of the `revocations` map: lookups are
 * synchronous Map lookups; the mirror follows the map's change feed in the background. Acquire one
 * per policy instance (the mirror underneath is shared per store) and close it with the instance.
 */
export class SharedRevocations {
  private readonly mirror: MapMirror
  private closed = false

  constructor(store: Store, opts: { logger: Logger; now?: () => number }) {
    this.mirror = acquireMapMirror(store, REVOCATIONS_MAP, {
      logger: opts.logger,
      ...(opts.now ? { now: opts.now } : {}),
    })
  }

  /** True when the `jti` or a token hash (lower-case hex) has an entry in the mirror. */
  isRevoked(jti: string | undefined, tokenHash: string, altHash?: string): boolean {
    const m = this.mirror
    return (
      (jti !== undefined && m.has(`jti:${jti}`)) ||
      m.has(`sha256:${tokenHash}`) ||
      (altHash !== undefined && m.has(`sha256:${altHash}`))
    )
  }

  /** Entries in the mirror now. */
  get size(): number {
    return this.mirror.size
  }

  /** When the mirror last caught up with the store (ms since the epoch); 0: never yet. */
  get lastSyncAt(): number {
    return this.mirror.lastSyncAt
  }

  /** Resolves once the mirror has its first snapshot. */
  ready(): Promise<void> {
    return this.mirror.ready()
  }

  /** Catches up with the store now (after a write, so that this gateway applies it at once). */
  refresh(): Promise<void> {
    return this.mirror.refresh()
  }

  entries(): IterableIterator<[string, { value: string; expiresAt?: number }]> {
    return this.mirror.entries()
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.mirror.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Both sources, for a policy

/** {@link Revocations.check}: the token is not revoked (as far as can be known). */
export const NOT_REVOKED = 0
/** {@link Revocations.check}: the token is revoked (file or shared list): 401. */
export const REVOKED = 1
/** {@link Revocations.check}: the shared list cannot be trusted now and `failOpen` is off: 503. */
export const REVOCATION_UNAVAILABLE = 2
export type RevocationVerdict = typeof NOT_REVOKED | typeof REVOKED | typeof REVOCATION_UNAVAILABLE

/** A policy's `revocation` settings (see `revocation-schema.ts`); `file` is absolute here. */
export interface RevocationSettings {
  file?: string | undefined
  shared: boolean
  maxStaleSeconds: number
  failOpen: boolean
}

/** How long a request waits for the shared list's first snapshot before it is refused (503). */
export const FIRST_SYNC_WAIT_MS = 1000

/** What a policy checks tokens against: its file and the shared list. */
export interface Revocations {
  /**
   * Synchronous, on every request. REVOKED when the file or the shared list has the `jti` or one
   * of the hashes (a known revocation wins over staleness): `tokenHash` is the token's identity
   * (the SHA-256 of its canonical form), `altHash` the other ECDSA spelling's. REVOCATION_UNAVAILABLE
   * when the shared list has never synced, or has not synced for longer than `maxStaleSeconds`,
   * and `failOpen` is off.
   */
  check(jti: string | undefined, tokenHash: string, altHash?: string): RevocationVerdict
  /**
   * While the shared list has not had its first snapshot: a promise that settles when it has, or
   * after {@link FIRST_SYNC_WAIT_MS} (then check() still answers UNAVAILABLE). Undefined otherwise.
   */
  whenReady(): Promise<void> | undefined
  /** Releases the file watch and the mirror (idempotent). */
  close(): void
}

export interface RevocationDeps {
  /** Without a store there is no shared list (direct construction in unit tests and benches). */
  store: Store | undefined
  logger: Logger
  /**
   * The shared list's clock (its mirror's too): staleness is real time since the mirror's last
   * sync, which real timers drive, so a policy's fake clock does not belong here. Default Date.now.
   */
  clock?: () => number
  /** Who checks (for log lines): e.g. `jwt-auth (route api)`. */
  where: string
}

class CombinedRevocations implements Revocations {
  private stale = false
  private readyPromise: Promise<void> | undefined
  private readonly maxStaleMs: number
  private readonly now: () => number

  constructor(
    private readonly file: RevocationList | undefined,
    private readonly shared: SharedRevocations | undefined,
    private readonly settings: RevocationSettings,
    private readonly deps: RevocationDeps,
  ) {
    this.maxStaleMs = settings.maxStaleSeconds * 1000
    this.now = deps.clock ?? Date.now
  }

  check(jti: string | undefined, tokenHash: string, altHash?: string): RevocationVerdict {
    if (this.file?.isRevoked(jti, tokenHash, altHash)) return REVOKED
    const shared = this.shared
    if (shared === undefined) return NOT_REVOKED
    if (shared.isRevoked(jti, tokenHash, altHash)) return REVOKED
    const last = shared.lastSyncAt
    if (last <= 0) return this.settings.failOpen ? NOT_REVOKED : REVOCATION_UNAVAILABLE
    if (this.now() - last > this.maxStaleMs) {
      if (!this.stale) this.noteStale(last)
      return this.settings.failOpen ? NOT_REVOKED : REVOCATION_UNAVAILABLE
    }
    if (this.stale) this.noteFresh()
    return NOT_REVOKED
  }

  whenReady(): Promise<void> | undefined {
    const shared = this.shared
    if (shared === undefined || shared.lastSyncAt > 0) return undefined
    this.readyPromise ??= shared.ready().catch(() => undefined)
    const ready = this.readyPromise
    return new Promise<void>((resolveWait) => {
      const timer = setTimeout(resolveWait, FIRST_SYNC_WAIT_MS)
      void ready.then(() => {
        clearTimeout(timer)
        resolveWait()
      })
    })
  }

  private noteStale(last: number): void {
    this.stale = true
    this.deps.logger.warn(
      {
        where: this.deps.where,
        lastSyncAgoMs: this.now() - last,
        maxStaleSeconds: this.settings.maxStaleSeconds,
        failOpen: this.settings.failOpen,
      },
      this.settings.failOpen
        ? 'shared revocation list is stale (store unreachable): tokens revoked since are not seen (failOpen)'
        : 'shared revocation list is stale (store unreachable): token requests are refused (503) until it syncs',
    )
  }

  private noteFresh(): void {
    this.stale = false
    this.deps.logger.info({ where: this.deps.where }, 'shared revocation list in sync again')
  }

  close(): void {
    this.file?.close()
    this.shared?.close()
  }
}

/**
 * Opens what a policy checks tokens against: the file (when configured) and the shared list (when
 * `shared` and a store is given). Undefined when there is neither. Throws when the file cannot be
 * read (see {@link openFileRevocationList}); nothing is left open then.
 *
 * @example
 * const rv = openRevocations({ shared: true, maxStaleSeconds: 300, failOpen: false },
 *   { store, logger, where: 'jwt-auth (route api)' })
 * if (rv?.check(jti, ident.id, ident.alt) === REVOKED) refuse()
 */
export function openRevocations(settings: RevocationSettings, deps: RevocationDeps): Revocations | undefined {
  const file = settings.file === undefined ? undefined : openFileRevocationList(settings.file, deps.logger)
  let shared: SharedRevocations | undefined
  if (settings.shared && deps.store !== undefined) {
    try {
      shared = new SharedRevocations(deps.store, {
        logger: deps.logger,
        ...(deps.clock ? { now: deps.clock } : {}),
      })
    } catch (err) {
      file?.close()
      throw err
    }
  }
  if (file === undefined && shared === undefined) return undefined
  return new CombinedRevocations(file, shared, settings, deps)
}
