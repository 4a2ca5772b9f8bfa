/**
 * `portcullis keys create|list|revoke|rotate`: manages an API key store file (see
 * src/keys/store.ts). A new key is printed once, on stdout, and never again: the store keeps only
 * its hash. Exit codes: 0 ok, 2 usage error, unreadable or invalid store, unknown key id.
 */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { parseDuration } from '../../../keys/duration.js'
import { generateKey, isKeyId } from '../../../keys/format.js'
import {
  hashFields,
  type KeyRecord,
  KeyStoreError,
  keyState,
  NAME_PATTERN,
  OWNER_PATTERN,
  readStore,
  readUsage,
  SCOPE_PATTERN,
  type StoreData,
  withStoreLock,
  writeStore,
} from '../../../keys/store.js'
import { UsageError } from '../../main.js'

export const KEYS_USAGE = `usage:
  portcullis keys create --store FILE --owner ID [--scopes a,b] [--expires 30d] [--name N] [--format text|json]
  portcullis keys list   --store FILE [--format text|json]
  portcullis keys revoke --store FILE ID
  portcullis keys rotate --store FILE ID [--overlap 24h] [--expires 30d] [--format text|json]
durations: 90s, 15m, 24h, 30d, 2w`

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
  if (positionals.length !== 1) throw new UsageError(`usage: portcullis keys ${sub} --store FILE ID`)
  const id = positionals[0] as string
  if (!isKeyId(id)) throw new UsageError(`"${id.slice(0, 40)}" is not a key id (8 letters or digits)`)
  return id
}

const iso = (ms: number) => new Date(ms).toISOString()

/** Adds the gateways' last-used times (the sidecar) to the records, keeping the later one. */
function withUsage(file: string, data: StoreData): StoreData {
  const usage = readUsage(file)
  if (usage.size === 0) return data
  return {
    ...data,
    keys: data.keys.map((k) => {
      const seen = usage.get(k.id)
      if (seen === undefined || (k.lastUsedAt !== undefined && Date.parse(k.lastUsedAt) >= seen)) return k
      return { ...k, lastUsedAt: iso(seen) }
    }),
  }
}

/** Reads the store under the lock, lets `change` edit it, writes it back atomically. */
async function update<T>(
  file: string,
  missingOk: boolean,
  change: (data: StoreData) => { data: StoreData | undefined; result: T },
): Promise<T> {
  return withStoreLock(file, () => {
    const current = withUsage(file, readStore(file, { missingOk }))
    const { data, result } = change(current)
    if (data !== undefined) writeStore(file, data)
    return result
  })
}

function newRecord(
  data: StoreData,
  fields: Pick<KeyRecord, 'owner' | 'scopes' | 'name' | 'expiresAt' | 'rotatedFrom'>,
  now: number,
): { key: string; record: KeyRecord } {
  const taken = new Set(data.keys.map((k) => k.id))
  let g = generateKey()
  while (taken.has(g.id)) g = generateKey()
  const record: KeyRecord = {
    id: g.id,
    owner: fields.owner,
    ...(fields.name !== undefined ? { name: fields.name } : {}),
    scopes: fields.scopes,
    createdAt: iso(now),
    ...(fields.expiresAt !== undefined ? { expiresAt: fields.expiresAt } : {}),
    status: 'active',
    ...(fields.rotatedFrom !== undefined ? { rotatedFrom: fields.rotatedFrom } : {}),
    ...hashFields(g.key),
  }
  return { key: g.key, record }
}

/** Prints a new key: the key alone on stdout (text) so that `$(portcullis keys create …)` works. */
function printNewKey(fmt: Format, key: string, r: KeyRecord, extra: Record<string, string> = {}): void {
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
      store: { type: 'string' },
      owner: { type: 'string' },
      scopes: { type: 'string' },
      expires: { type: 'string' },
      name: { type: 'string' },
      format: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  })
  if (positionals.length > 0 || values.store === undefined || values.owner === undefined) {
    throw new UsageError(
      'usage: portcullis keys create --store FILE --owner ID [--scopes a,b] [--expires 30d]',
    )
  }
  const fmt = format(values.format)
  if (!OWNER_RE.test(values.owner)) {
    throw new UsageError('--owner is 1 to 128 visible ASCII characters, no spaces')
  }
  if (values.name !== undefined && !NAME_RE.test(values.name)) {
    throw new UsageError('--name is 1 to 100 printable ASCII characters')
  }
  const scopes = scopesOf(values.scopes)
  const ttl = values.expires === undefined ? undefined : duration('--expires', values.expires, false)
  const file = resolve(values.store)
  const now = Date.now()
  const owner = values.owner
  const name = values.name
  const { key, record } = await update(file, true, (data) => {
    const made = newRecord(
      data,
      {
        owner,
        scopes,
        name,
        expiresAt: ttl === undefined ? undefined : iso(now + ttl),
        rotatedFrom: undefined,
      },
      now,
    )
    return { data: { ...data, keys: [...data.keys, made.record] }, result: made }
  })
  printNewKey(fmt, key, record)
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
    options: { store: { type: 'string' }, format: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  })
  if (positionals.length > 0 || values.store === undefined) {
    throw new UsageError('usage: portcullis keys list --store FILE [--format text|json]')
  }
  const fmt = format(values.format)
  const file = resolve(values.store)
  const data = withUsage(file, readStore(file))
  const now = Date.now()
  // An allow-list of fields: hashes and salts are never printed.
  const rows = data.keys.map((k) => ({
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
    process.stdout.write(`no keys in ${file}\n`)
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

class UnknownKey extends Error {}

async function revoke(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { store: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  })
  if (values.store === undefined) throw new UsageError('usage: portcullis keys revoke --store FILE ID')
  const id = keyId(positionals, 'revoke')
  const file = resolve(values.store)
  const now = Date.now()
  const outcome = await update(file, false, (data) => {
    const k = data.keys.find((x) => x.id === id)
    if (!k) throw new UnknownKey(`no key with id ${id} in ${file}`)
    if (k.status === 'revoked') return { data: undefined, result: { owner: k.owner, already: true } }
    const revoked: KeyRecord = { ...k, status: 'revoked', revokedAt: iso(now) }
    return {
      data: { ...data, keys: data.keys.map((x) => (x.id === id ? revoked : x)) },
      result: { owner: k.owner, already: false },
    }
  })
  process.stdout.write(
    outcome.already
      ? `key ${id} (owner ${outcome.owner}) was already revoked\n`
      : `revoked key ${id} (owner ${outcome.owner}); gateways watching ${file} refuse it from now on\n`,
  )
  return 0
}

async function rotate(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      store: { type: 'string' },
      overlap: { type: 'string' },
      expires: { type: 'string' },
      format: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  })
  if (values.store === undefined) {
    throw new UsageError('usage: portcullis keys rotate --store FILE ID [--overlap 24h] [--expires 30d]')
  }
  const id = keyId(positionals, 'rotate')
  const fmt = format(values.format)
  const overlap = duration('--overlap', values.overlap ?? '24h', true)
  const ttl = values.expires === undefined ? undefined : duration('--expires', values.expires, false)
  const file = resolve(values.store)
  const now = Date.now()
  const { key, record, oldUntil } = await update(file, false, (data) => {
    const old = data.keys.find((x) => x.id === id)
    if (!old) throw new UnknownKey(`no key with id ${id} in ${file}`)
    if (old.status === 'revoked') {
      throw new UnknownKey(`key ${id} is revoked; create a new key instead of rotating it`)
    }
    // The new key lives as long as the old one was meant to, unless --expires says otherwise.
    const lifetime =
      ttl ?? (old.expiresAt === undefined ? undefined : Date.parse(old.expiresAt) - Date.parse(old.createdAt))
    const made = newRecord(
      data,
      {
        owner: old.owner,
        scopes: old.scopes,
        name: old.name,
        expiresAt: lifetime === undefined ? undefined : iso(now + Math.max(lifetime, 1000)),
        rotatedFrom: old.id,
      },
      now,
    )
    const oldEnd =
      old.expiresAt === undefined ? now + overlap : Math.min(Date.parse(old.expiresAt), now + overlap)
    const retired: KeyRecord = { ...old, expiresAt: iso(oldEnd), rotatedTo: made.record.id }
    return {
      data: { ...data, keys: [...data.keys.map((x) => (x.id === id ? retired : x)), made.record] },
      result: { ...made, oldUntil: iso(oldEnd) },
    }
  })
  if (fmt === 'text') process.stderr.write(`rotated key ${id}: it stays valid until ${oldUntil}\n`)
  printNewKey(fmt, key, record, { rotatedFromExpiresAt: oldUntil })
  return 0
}

/** `portcullis keys SUBCOMMAND …` */
export async function keysCommand(argv: string[]): Promise<number> {
  const [sub, ...args] = argv
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
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(`${KEYS_USAGE}\n`)
        return sub === undefined ? 2 : 0
      default:
        throw new UsageError(`unknown keys subcommand "${sub}" (expected: create, list, revoke, rotate)`)
    }
  } catch (err) {
    if (err instanceof KeyStoreError || err instanceof UnknownKey) {
      process.stderr.write(`portcullis: ${err.message}\n`)
      return 2
    }
    throw err
  }
}
