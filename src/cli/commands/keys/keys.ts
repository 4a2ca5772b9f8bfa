/**
 * `portcullis keys create|list|revoke|rotate|import`: manages API key records, in a key store file
 * (`--store FILE`, see src/keys/store.ts) or in the Redis state store named by a gateway config
 * (`--config FILE`, see src/keys/map-records.ts). A new key is printed once, on stdout, and never
 * again: only its hash is kept. Exit codes: 0 ok, 2 usage error, unreadable or invalid store or
 * config, unreachable Redis, unknown key id.
 */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import {
  type KeyAdmin,
  fileKeyAdmin,
  type MapKeyAdmin,
  type NewKey,
  UnknownKeyError,
} from '../../../keys/admin.js'
import { parseDuration } from '../../../util/duration.js'
import { isKeyId } from '../../../keys/format.js'
import {
  type KeyRecord,
  KeyStoreError,
  keyState,
  NAME_PATTERN,
  OWNER_PATTERN,
  readStore,
  readUsage,
  SCOPE_PATTERN,
} from '../../../keys/store.js'
import { isStoreError } from '../../../stores/types.js'
import { UsageError } from '../../command.js'
import { KEYS_USAGE } from '../../usage.js'
import { scrub } from './scrub.js'

const OWNER_RE = new RegExp(OWNER_PATTERN)
const SCOPE_RE = new RegExp(SCOPE_PATTERN)
const NAME_RE = new RegExp(NAME_PATTERN)

type Format = 'text' | 'json'

function format(v: string | undefined): Format {
  if (v === undefined || v === 'text' || v === 'json') return v ?? 'text'
  throw new UsageError('--format is text or json')
}

function duration(flag: string, v: string, allowZero: boolean): number {
  const ms = parseDuration(v)
  if (ms === undefined || (ms === 0 && !allowZero)) {
    throw new UsageError(
      `${flag} takes a duration like 90s, 15m, 24h, 30d or 2w${allowZero ? ' (or 0)' : ''}; got "${v}"`,
    )
  }
  return ms
}

function scopesOf(v: string | undefined): string[] {
  if (v === undefined || v === '') return []
  const scopes = [...new Set(v.split(',').map((s) => s.trim()))].filter((s) => s !== '')
  for (const s of scopes) {
    if (!SCOPE_RE.test(s)) throw new UsageError(`invalid scope "${s}" (visible ASCII without , " or \\)`)
  }
  return scopes
}

function keyId(positionals: string[], sub: string): string {
  if (positionals.length !== 1)
    throw new UsageError(`usage: portcullis keys ${sub} (--store FILE | --config FILE) ID`)
  const id = positionals[0] as string
  if (!isKeyId(id)) throw new UsageError(`"${id.slice(0, 40)}" is not a key id (8 letters or digits)`)
  return id
}

const iso = (ms: number) => new Date(ms).toISOString()

/** Options every subcommand takes: where the records are. */
const WHERE = { store: { type: 'string' }, config: { type: 'string' } } as const

/**
 * `--config` support, loaded only when used: the config loader compiles the whole gateway schema
 * and the Redis client is large, and a `--store` command should not pay for them.
 */
const fromConfig = () => import('./from-config.js')

/** Secrets of the config in use, scrubbed from any error message printed. */
let secrets: string[] = []
/** The Redis records in use, for messages about a failed operation. */
let redisWhere: string | undefined

/** The backend named by exactly one of --store and --config. */
async function open(values: { store?: string | undefined; config?: string | undefined }, usage: string) {
  if ((values.store === undefined) === (values.config === undefined)) {
    throw new UsageError(`${usage}\n(--store FILE and --config FILE: exactly one of them)`)
  }
  if (values.store !== undefined) return fileKeyAdmin(resolve(values.store))
  const opened = await (await fromConfig()).openConfigStore(values.config as string)
  secrets = opened.secrets
  redisWhere = opened.admin.where
  return opened.admin
}

/** Runs `fn` on the backend and closes it (a Redis connection would keep the process alive). */
async function withAdmin<T>(admin: KeyAdmin, fn: (a: KeyAdmin) => Promise<T>): Promise<T> {
  try {
    return await fn(admin)
  } finally {
    await admin.close()
  }
}

/** Prints a new key: the key alone on stdout (text) so that `$(portcullis keys create …)` works. */
function printNewKey(fmt: Format, made: NewKey, extra: Record<string, string> = {}): void {
  const { key, record: r } = made
  if (fmt === 'json') {
    const { hash: _h, salt: _s, ...pub } = r
    process.stdout.write(`${JSON.stringify({ ...pub, key, ...extra }, null, 2)}\n`)
    return
  }
  process.stderr.write(
    `created key ${r.id} for owner ${r.owner}` +
      ` (scopes: ${r.scopes.length ? r.scopes.join(',') : 'none'}; expires: ${r.expiresAt ?? 'never'})\n` +
      'store the key now: it is shown only this once and cannot be recovered\n',
  )
  process.stdout.write(`${key}\n`)
}

async function create(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...WHERE,
      owner: { type: 'string' },
      scopes: { type: 'string' },
      expires: { type: 'string' },
      name: { type: 'string' },
      format: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  })
  const usage =
    'usage: portcullis keys create (--store FILE | --config FILE) --owner ID [--scopes a,b] [--expires 30d]'
  if (positionals.length > 0 || values.owner === undefined) throw new UsageError(usage)
  const fmt = format(values.format)
  if (!OWNER_RE.test(values.owner)) {
    throw new UsageError('--owner is 1 to 128 visible ASCII characters, no spaces')
  }
  if (values.name !== undefined && !NAME_RE.test(values.name)) {
    throw new UsageError('--name is 1 to 100 printable ASCII characters')
  }
  const scopes = scopesOf(values.scopes)
  const ttl = values.expires === undefined ? undefined : duration('--expires', values.expires, false)
  const owner = values.owner
  const admin = await open(values, usage)
  const now = Date.now()
  const made = await withAdmin(admin, (a) =>
    a.create(
      { owner, scopes, name: values.name, expiresAt: ttl === undefined ? undefined : iso(now + ttl) },
      now,
    ),
  )
  printNewKey(fmt, made)
  return 0
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length))) ?? []
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

const short = (s: string | undefined) => (s === undefined ? '-' : `${s.slice(0, 19)}Z`)

async function list(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...WHERE, format: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  })
  const usage = 'usage: portcullis keys list (--store FILE | --config FILE) [--format text|json]'
  if (positionals.length > 0) throw new UsageError(usage)
  const fmt = format(values.format)
  const admin = await open(values, usage)
  const records = await withAdmin(admin, (a) => a.list())
  const now = Date.now()
  // An allow-list of fields: hashes and salts are never printed.
  const rows = records.map((k) => ({
    id: k.id,
    owner: k.owner,
    name: k.name,
    scopes: k.scopes,
    status: keyState(k, now),
    createdAt: k.createdAt,
    expiresAt: k.expiresAt,
    revokedAt: k.revokedAt,
    lastUsedAt: k.lastUsedAt,
    rotatedFrom: k.rotatedFrom,
    rotatedTo: k.rotatedTo,
  }))
  if (fmt === 'json') {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`)
    return 0
  }
  if (rows.length === 0) {
    process.stdout.write(`no keys in ${admin.where}\n`)
    return 0
  }
  const lines = [['ID', 'OWNER', 'NAME', 'SCOPES', 'STATUS', 'CREATED', 'EXPIRES', 'LAST USED']]
  for (const r of rows) {
    lines.push([
      r.id,
      r.owner,
      r.name ?? '-',
      r.scopes.length ? r.scopes.join(',') : '-',
      r.status,
      short(r.createdAt),
      short(r.expiresAt),
      short(r.lastUsedAt),
    ])
  }
  process.stdout.write(`${table(lines)}\n`)
  return 0
}

async function revoke(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: WHERE,
    allowPositionals: true,
    strict: true,
  })
  const id = keyId(positionals, 'revoke')
  const admin = await open(values, 'usage: portcullis keys revoke (--store FILE | --config FILE) ID')
  const outcome = await withAdmin(admin, (a) => a.revoke(id, Date.now()))
  const who =
    values.store !== undefined ? `gateways watching ${admin.where}` : `gateways using ${admin.where}`
  process.stdout.write(
    outcome.already
      ? `key ${id} (owner ${outcome.owner}) was already revoked\n`
      : `revoked key ${id} (owner ${outcome.owner}); ${who} refuse it from now on\n`,
  )
  return 0
}

async function rotate(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...WHERE,
      overlap: { type: 'string' },
      expires: { type: 'string' },
      format: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  })
  const id = keyId(positionals, 'rotate')
  const fmt = format(values.format)
  const overlapMs = duration('--overlap', values.overlap ?? '24h', true)
  const ttlMs = values.expires === undefined ? undefined : duration('--expires', values.expires, false)
  const admin = await open(
    values,
    'usage: portcullis keys rotate (--store FILE | --config FILE) ID [--overlap 24h] [--expires 30d]',
  )
  const made = await withAdmin(admin, (a) => a.rotate(id, { overlapMs, ttlMs }, Date.now()))
  if (fmt === 'text') process.stderr.write(`rotated key ${id}: it stays valid until ${made.oldUntil}\n`)
  printNewKey(fmt, made, { rotatedFromExpiresAt: made.oldUntil })
  return 0
}

/** Records of a key store file with the gateways' last-used times folded in. */
function fileRecords(file: string): KeyRecord[] {
  const usage = readUsage(file)
  return readStore(file).keys.map((k) => {
    const seen = usage.get(k.id)
    if (seen === undefined || (k.lastUsedAt !== undefined && Date.parse(k.lastUsedAt) >= seen)) return k
    return { ...k, lastUsedAt: iso(seen) }
  })
}

async function importKeys(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...WHERE, format: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  })
  if (positionals.length > 0 || values.store === undefined || values.config === undefined) {
    throw new UsageError('usage: portcullis keys import --store FILE --config FILE [--format text|json]')
  }
  const fmt = format(values.format)
  const file = resolve(values.store)
  const records = fileRecords(file) // before connecting: a bad file is reported without Redis
  const opened = await (await fromConfig()).openConfigStore(values.config)
  secrets = opened.secrets
  redisWhere = opened.admin.where
  const admin: MapKeyAdmin = opened.admin
  const outcome = await withAdmin(admin, () => admin.importRecords(records, Date.now()))
  if (fmt === 'json') {
    process.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`)
    return 0
  }
  process.stdout.write(
    `imported ${outcome.added.length} key record${outcome.added.length === 1 ? '' : 's'} from ${file} into ${admin.where}` +
      ` (${outcome.present.length} already there` +
      `${outcome.revoked.length ? `, ${outcome.revoked.length} revoked there as in the file: ${outcome.revoked.join(', ')}` : ''})\n`,
  )
  return 0
}

/** `portcullis keys SUBCOMMAND …` */
export async function keysCommand(argv: string[]): Promise<number> {
  const [sub, ...args] = argv
  secrets = []
  redisWhere = undefined
  try {
    switch (sub) {
      case 'create':
        return await create(args)
      case 'list':
        return await list(args)
      case 'revoke':
        return await revoke(args)
      case 'rotate':
        return await rotate(args)
      case 'import':
        return await importKeys(args)
      case 'rotate-audit': {
        const { rotateAudit } = await import('./rotate-audit.js')
        return await rotateAudit(args)
      }
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(`${KEYS_USAGE}\n`)
        return sub === undefined ? 2 : 0
      default:
        throw new UsageError(
          `unknown keys subcommand "${sub}" (expected: create, list, revoke, rotate, import, rotate-audit)`,
        )
    }
  } catch (err) {
    if (err instanceof Error && err.name === 'ConfigLoadError') return 2 // its problems were printed
    if (isStoreError(err)) {
      // An outage or a timeout after the connection was made (the message never holds a password).
      const what = redisWhere === undefined ? '' : `cannot complete the operation on ${redisWhere}: `
      process.stderr.write(`portcullis: ${what}${scrub(err.message, secrets)}\n`)
      return 2
    }
    if (
      err instanceof KeyStoreError ||
      err instanceof UnknownKeyError ||
      err instanceof RangeError // a full map
    ) {
      process.stderr.write(`portcullis: ${scrub((err as Error).message, secrets)}\n`)
      return 2
    }
    throw err
  }
}
