/**
 * The API key store: one JSON file that holds key records, never keys. Each record carries
 * `hash = SHA-256(salt ‖ key)` with a random 16-byte salt per record (fixed length, so the
 * concatenation is unambiguous).
 *
 * Why not a slow KDF (scrypt, argon2): those exist to make guessing a low-entropy password
 * expensive. A key has ≈ 178 random bits (≈ 131 secret beyond its public id), so guessing one
 * from its hash takes ~2^130 hash evaluations whatever the hash costs, while a slow KDF would add
 * milliseconds of CPU to every request. A salted SHA-256 costs ~3 µs (HMAC-SHA-256 ~5 µs in Node,
 * for no gain: the hash is not used as a MAC). GitHub and Stripe store their tokens this way. The
 * salt keeps two stores (or two records) from sharing hashes and rules out precomputation; a
 * server-side pepper would add nothing a 131-bit secret does not already give, and would need
 * distributing.
 *
 * Writes are atomic (a temp file in the same directory, fsync, rename, mode 0600) and serialized
 * between `portcullis keys` processes by a lock file, so a concurrent create can never undo a
 * revocation. Gateways only read this file; the last-used times they see go to a separate,
 * advisory sidecar file (see `USAGE_SUFFIX`), so no gateway write can race a revocation either.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { type Static, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ID_LENGTH } from './format.js'

/** Largest store file (or last-used sidecar) that is loaded; larger ones are refused. */
export const MAX_STORE_BYTES = 16 * 1024 * 1024
export const STORE_VERSION = 1
export const HASH_ALGORITHM = 'sha256-salted'
/** The sidecar with last-used times written by gateways: `<store>.last-used.json`. */
export const USAGE_SUFFIX = '.last-used.json'
/** The lock file `portcullis keys` holds while it rewrites the store: `<store>.lock`. */
export const LOCK_SUFFIX = '.lock'

/** Who owns a key (the principal id): visible ASCII, no spaces, 1–128 characters. */
export const OWNER_PATTERN = '^[\\x21-\\x7e]{1,128}$'
/** One scope: RFC 6749 scope-token characters except `,` (the CLI separator), 1–128 characters. */
export const SCOPE_PATTERN = '^[\\x21\\x23-\\x2b\\x2d-\\x5b\\x5d-\\x7e]{1,128}$'
/** A key's label: printable ASCII (spaces allowed), 1–100 characters. */
export const NAME_PATTERN = '^[\\x20-\\x7e]{1,100}$'
const ISO = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,3})?Z$'
const ID = `^[0-9A-Za-z]{${ID_LENGTH}}$`

const IsoDate = Type.String({ pattern: ISO })
export const KeyRecordSchema = Type.Object(
  {
    id: Type.String({ pattern: ID }),
    owner: Type.String({ pattern: OWNER_PATTERN }),
    name: Type.Optional(Type.String({ pattern: NAME_PATTERN })),
    scopes: Type.Array(Type.String({ pattern: SCOPE_PATTERN }), { maxItems: 256 }),
    createdAt: IsoDate,
    expiresAt: Type.Optional(IsoDate),
    status: Type.Union([Type.Literal('active'), Type.Literal('revoked')]),
    revokedAt: Type.Optional(IsoDate),
    lastUsedAt: Type.Optional(IsoDate),
    rotatedFrom: Type.Optional(Type.String({ pattern: ID })),
    rotatedTo: Type.Optional(Type.String({ pattern: ID })),
    /** base64url SHA-256(salt ‖ key) (32 bytes). */
    hash: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }),
    /** base64url salt (16 bytes). */
    salt: Type.String({ pattern: '^[A-Za-z0-9_-]{22}$' }),
  },
  { additionalProperties: false },
)
export type KeyRecord = Static<typeof KeyRecordSchema>

const StoreSchema = Type.Object(
  {
    version: Type.Literal(STORE_VERSION),
    hash: Type.Literal(HASH_ALGORITHM),
    keys: Type.Array(KeyRecordSchema),
  },
  { additionalProperties: false },
)
export type StoreData = Static<typeof StoreSchema>

const UsageSchema = Type.Object(
  { version: Type.Literal(1), lastUsed: Type.Record(Type.String({ pattern: ID }), IsoDate) },
  { additionalProperties: false },
)

/** A store that cannot be read, parsed or written. The message never holds key material. */
export class KeyStoreError extends Error {
  override name = 'KeyStoreError'
  readonly code: string | undefined
  constructor(message: string, code?: string) {
    super(message)
    this.code = code
  }
}

export function emptyStore(): StoreData {
  return { version: STORE_VERSION, hash: HASH_ALGORITHM, keys: [] }
}

/** SHA-256 of the record's salt followed by the full key. */
export function hashKey(key: string, salt: Buffer): Buffer {
  return createHash('sha256').update(salt).update(key).digest()
}

/** The `hash` and `salt` fields for a new record. */
export function hashFields(key: string): { hash: string; salt: string } {
  const salt = randomBytes(16)
  return { hash: hashKey(key, salt).toString('base64url'), salt: salt.toString('base64url') }
}

/** True when `key` is the key a record was made from (constant time in the key). */
export function matches(record: Pick<KeyRecord, 'hash' | 'salt'>, key: string): boolean {
  return timingSafeEqual(
    hashKey(key, Buffer.from(record.salt, 'base64url')),
    Buffer.from(record.hash, 'base64url'),
  )
}

/**
 * Reads a file of at most `MAX_STORE_BYTES`: the size is checked before reading, and reading
 * stops past the limit (a file that grows meanwhile is refused too).
 */
export function readBounded(file: string, what = 'key store'): Buffer {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new KeyStoreError(`cannot read the ${what} ${file}: ${code ?? (err as Error).message}`, code)
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new KeyStoreError(`the ${what} ${file} is not a regular file`)
    if (st.size > MAX_STORE_BYTES) {
      throw new KeyStoreError(
        `the ${what} ${file} is ${st.size} bytes, over the limit of ${MAX_STORE_BYTES}; refusing to load it`,
        'E2BIG',
      )
    }
    const buf = Buffer.allocUnsafe(Math.min(st.size + 1, MAX_STORE_BYTES + 1))
    let len = 0
    for (;;) {
      if (len === buf.length) break
      const n = readSync(fd, buf, len, buf.length - len, null)
      if (n === 0) break
      len += n
    }
    if (len === buf.length) {
      throw new KeyStoreError(`the ${what} ${file} grew while it was read; refusing it`, 'E2BIG')
    }
    return buf.subarray(0, len)
  } finally {
    closeSync(fd)
  }
}

/** Parses and checks store content; every record is validated and ids must be unique. */
export function parseStore(text: string, file: string): StoreData {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new KeyStoreError(`the key store ${file} is not valid JSON: ${(err as Error).message}`)
  }
  if (data !== null && typeof data === 'object' && 'version' in data && data.version !== STORE_VERSION) {
    throw new KeyStoreError(
      `the key store ${file} has version ${JSON.stringify(data.version)}; this portcullis reads version ${STORE_VERSION}`,
    )
  }
  if (!Value.Check(StoreSchema, data)) {
    const first = Value.Errors(StoreSchema, data).First()
    // The path and the rule only: a value could be a hash or anything else in a hand-edited file.
    throw new KeyStoreError(
      `the key store ${file} is invalid at ${first?.path || '/'}: ${first?.message ?? 'unexpected content'}`,
    )
  }
  const seen = new Set<string>()
  for (const [i, k] of data.keys.entries()) {
    if (seen.has(k.id)) throw new KeyStoreError(`the key store ${file} has the id ${k.id} twice (/keys/${i})`)
    seen.add(k.id)
    for (const f of ['createdAt', 'expiresAt', 'revokedAt', 'lastUsedAt'] as const) {
      const v = k[f]
      if (v !== undefined && Number.isNaN(Date.parse(v)))
        throw new KeyStoreError(`the key store ${file} is invalid at /keys/${i}/${f}: not a date`)
    }
  }
  return data
}

/** Loads a store file; `missingOk` gives an empty store when the file does not exist. */
export function readStore(file: string, opts: { missingOk?: boolean } = {}): StoreData {
  let buf: Buffer
  try {
    buf = readBounded(file)
  } catch (err) {
    if (opts.missingOk && (err as KeyStoreError).code === 'ENOENT') return emptyStore()
    throw err
  }
  return parseStore(buf.toString('utf8'), file)
}

/** Canonical file content: stable field order, two-space indent, one trailing newline. */
export function serializeStore(data: StoreData): string {
  const order = Object.keys(KeyRecordSchema.properties) as (keyof KeyRecord)[]
  const keys = data.keys.map((k) => {
    const out: Record<string, unknown> = {}
    for (const f of order) if (k[f] !== undefined) out[f] = k[f]
    return out
  })
  return `${JSON.stringify({ version: data.version, hash: data.hash, keys }, null, 2)}\n`
}

/**
 * Replaces `file` with `text` atomically: a temp file in the same directory (mode 0600, fsync),
 * then rename over the target, then fsync of the directory. A reader sees the old or the new
 * content, never a mix; a crash leaves the old file.
 */
export function writeFileAtomic(file: string, text: string): void {
  if (Buffer.byteLength(text) > MAX_STORE_BYTES) {
    throw new KeyStoreError(`refusing to write ${file}: over the limit of ${MAX_STORE_BYTES} bytes`)
  }
  const dir = dirname(file)
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  let fd: number
  try {
    fd = openSync(tmp, 'wx', 0o600)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new KeyStoreError(`cannot write in ${dir}: ${code ?? (err as Error).message}`, code)
  }
  try {
    try {
      writeSync(fd, text)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, file)
  } catch (err) {
    rmSync(tmp, { force: true })
    const code = (err as NodeJS.ErrnoException).code
    throw new KeyStoreError(`cannot write ${file}: ${code ?? (err as Error).message}`, code)
  }
  try {
    const d = openSync(dir, 'r')
    try {
      fsyncSync(d)
    } finally {
      closeSync(d)
    }
  } catch {
    // Some filesystems cannot fsync a directory; the rename itself is still atomic.
  }
}

export function writeStore(file: string, data: StoreData): void {
  writeFileAtomic(file, serializeStore(data))
}

/**
 * Runs `fn` while holding `<file>.lock` (created exclusively). Another `portcullis keys` process
 * waits up to `timeoutMs`; a lock older than `staleMs` (a crashed process) is broken.
 */
export async function withStoreLock<T>(
  file: string,
  fn: () => T,
  opts: { timeoutMs?: number; staleMs?: number } = {},
): Promise<T> {
  const lock = `${file}${LOCK_SUFFIX}`
  const timeoutMs = opts.timeoutMs ?? 5000
  const staleMs = opts.staleMs ?? 30_000
  const started = Date.now()
  let fd: number | undefined
  while (fd === undefined) {
    try {
      fd = openSync(lock, 'wx', 0o600)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'EEXIST') {
        throw new KeyStoreError(
          `cannot create the lock file ${lock}: ${code ?? (err as Error).message}`,
          code,
        )
      }
      const st = statSync(lock, { throwIfNoEntry: false })
      if (st && Date.now() - st.mtimeMs > staleMs) {
        rmSync(lock, { force: true })
        continue
      }
      if (Date.now() - started > timeoutMs) {
        throw new KeyStoreError(
          `the key store is locked by another process (${lock}); if no portcullis keys command is running, remove that file`,
          'ELOCKED',
        )
      }
      await new Promise((r) => setTimeout(r, 25 + Math.random() * 50))
    }
  }
  try {
    writeSync(fd, `${process.pid}\n`)
    return fn()
  } finally {
    closeSync(fd)
    rmSync(lock, { force: true })
  }
}

/** The last-used sidecar of a store. */
export function usageFile(store: string): string {
  return `${store}${USAGE_SUFFIX}`
}

/** Last-used times from the sidecar (id → ms); empty when it is missing or unreadable. */
export function readUsage(store: string): Map<string, number> {
  const out = new Map<string, number>()
  let data: unknown
  try {
    data = JSON.parse(readBounded(usageFile(store), 'last-used file').toString('utf8'))
  } catch {
    return out
  }
  if (!Value.Check(UsageSchema, data)) return out
  for (const [id, iso] of Object.entries(data.lastUsed)) {
    const t = Date.parse(iso)
    if (!Number.isNaN(t)) out.set(id, t)
  }
  return out
}

/**
 * Merges last-used times into the sidecar (keeping the later time per id) and writes it
 * atomically. Gateways sharing a store may race here; the worst outcome is an older time.
 */
export function mergeUsage(store: string, seen: ReadonlyMap<string, number>): void {
  const merged = readUsage(store)
  for (const [id, t] of seen) if ((merged.get(id) ?? 0) < t) merged.set(id, t)
  const lastUsed: Record<string, string> = {}
  for (const id of [...merged.keys()].sort()) lastUsed[id] = new Date(merged.get(id) as number).toISOString()
  writeFileAtomic(usageFile(store), `${JSON.stringify({ version: 1, lastUsed }, null, 2)}\n`)
}

/** A record's effective state at `now`. */
export function keyState(k: KeyRecord, now: number): 'active' | 'revoked' | 'expired' {
  if (k.status === 'revoked') return 'revoked'
  if (k.expiresAt !== undefined && now >= Date.parse(k.expiresAt)) return 'expired'
  return 'active'
}
