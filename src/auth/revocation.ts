/**
 * Token revocation. `RevocationList` is the narrow interface the authentication policies use;
 * today's implementation is a local file, hot-reloaded. A store-backed one (Redis), shared by
 * every gateway of a cluster, can be added behind the same interface: `isRevoked` is synchronous
 * because it runs on every request, also on verified-token cache hits, so such a store would keep
 * a local copy up to date (pub/sub) rather than ask per request.
 */
import { readFileSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import type { Logger } from 'pino'
import { hashContent, watchFile } from './watch-file.js'

export interface RevocationList {
  /** True when the token is revoked, by its `jti` claim or by the SHA-256 (hex) of the token. */
  isRevoked(jti: string | undefined, tokenHash: string): boolean
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
 * One entry per line: `jti:<value>` or `sha256:<64 hex digits>` (the SHA-256 of the whole token,
 * as `sha256sum` prints it). Blank lines and lines starting with `#` are skipped.
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
    isRevoked(jti, tokenHash) {
      return (jti !== undefined && shared.jtis.has(jti)) || shared.hashes.has(tokenHash)
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
