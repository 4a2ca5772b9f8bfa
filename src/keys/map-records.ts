/**
 * API key records in a replicated map of the state store (`stores.backend: redis`), for
 * `api-key-auth` with `source: store`: every gateway keeps a local copy of the map (see
 * stores/mirror.ts) and `portcullis keys --config FILE` writes to it.
 *
 * Layout, in the map {@link KEYS_MAP}:
 *
 * - `<id>` → the key record as JSON (the same {@link KeyRecord} as in a key store file: hash and
 *   salt, never the key);
 * - `revoked:<id>` → the time of the revocation (ISO 8601): a **tombstone**. Nothing ever deletes
 *   or rewrites it, so a revocation cannot be undone by a concurrent write of the record (a
 *   `rotate` that read the record before the revocation and writes it back after it). A key is
 *   revoked when its record says so or its tombstone exists.
 *
 * Last-used times go to a separate map, {@link LAST_USED_MAP} (`<id>` → ms since the epoch), so
 * that no gateway ever writes the records map either.
 */
import { Value } from '@sinclair/typebox/value'
import { type KeyRecord, KeyRecordSchema, KeyStoreError } from './store.js'

/** The replicated map holding key records and revocation tombstones. */
export const KEYS_MAP = 'api-keys'
/** The map holding last-used times, written by gateways (key id → ms since the epoch). */
export const LAST_USED_MAP = 'api-keys-used'
/** Map key prefix of a revocation tombstone. Record keys are ids (8 base62 characters): no clash. */
export const REVOKED_PREFIX = 'revoked:'

/** The map key of a key's revocation tombstone. */
export function tombstoneKey(id: string): string {
  return `${REVOKED_PREFIX}${id}`
}

const FIELD_ORDER = Object.keys(KeyRecordSchema.properties) as (keyof KeyRecord)[]

/** A record as stored in the map: JSON with a stable field order. */
export function encodeRecord(r: KeyRecord): string {
  const out: Record<string, unknown> = {}
  for (const f of FIELD_ORDER) if (r[f] !== undefined) out[f] = r[f]
  return JSON.stringify(out)
}

/** Longest stored record accepted (a record with 256 scopes of 128 characters is ~33 kB). */
export const MAX_RECORD_CHARS = 64 * 1024

/**
 * Parses and checks one stored record. Throws a KeyStoreError naming the map key and the failing
 * path, never the content (it is someone's hash, or anything a hand-made entry holds).
 */
export function decodeRecord(id: string, value: string): KeyRecord {
  const where = `the key record "${id.slice(0, 40)}" in the map ${KEYS_MAP}`
  if (value.length > MAX_RECORD_CHARS) throw new KeyStoreError(`${where} is too large`)
  let data: unknown
  try {
    data = JSON.parse(value)
  } catch {
    throw new KeyStoreError(`${where} is not valid JSON`)
  }
  if (!Value.Check(KeyRecordSchema, data)) {
    const first = Value.Errors(KeyRecordSchema, data).First()
    throw new KeyStoreError(`${where} is invalid at ${first?.path || '/'}: ${first?.message ?? 'unexpected'}`)
  }
  if (data.id !== id) throw new KeyStoreError(`${where} holds the id of another key`)
  for (const f of ['createdAt', 'expiresAt', 'revokedAt', 'lastUsedAt'] as const) {
    const v = data[f]
    if (v !== undefined && Number.isNaN(Date.parse(v)))
      throw new KeyStoreError(`${where} is invalid at /${f}`)
  }
  return data
}
