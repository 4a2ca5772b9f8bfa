/**
 * The audit keyring: HMAC-SHA-256 keys by key id, one of them active. The writer signs new records
 * with the active key and writes its id (`kid`) in each record; `audit verify` looks the key up by
 * that id, so old keys keep verifying old records after a rotation.
 *
 * File (JSON or YAML), or the same text in an environment variable:
 *
 *     { "active": "k2", "keys": { "k1": "<base64>", "k2": "<base64>" } }
 *
 * Keys are at least 32 random bytes. Messages never contain key material.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'

export const KID_PATTERN = '^[A-Za-z0-9._-]{1,64}$'
const KID_RE = new RegExp(KID_PATTERN)
export const MIN_KEY_BYTES = 32
const MAX_KEY_BYTES = 1024
const MAX_KEYS = 256
const MAX_KEYRING_BYTES = 256 * 1024
const BASE64_RE = /^[A-Za-z0-9+/_-]+={0,2}$/

export interface Keyring {
  /** Id of the key new records are signed with. */
  readonly active: string
  readonly keys: ReadonlyMap<string, Buffer>
}

/** A keyring that cannot be read or is invalid: a usage/config error (exit 2). */
export class KeyringError extends Error {
  override name = 'KeyringError'
}

/** Where the writer or `audit verify` reads the keyring from. */
export interface KeyringSource {
  /** Path of a keyring file (relative paths against `baseDir`). */
  file?: string | undefined
  /** Name of an environment variable holding the keyring text. */
  env?: string | undefined
}

function decodeKey(kid: string, v: unknown, where: string): Buffer {
  if (typeof v !== 'string' || !BASE64_RE.test(v)) {
    throw new KeyringError(`${where}: key "${kid}" is not a base64 string`)
  }
  const std = v.replace(/-/g, '+').replace(/_/g, '/')
  const buf = Buffer.from(std, 'base64')
  // Buffer.from ignores what is not base64: re-encoding tells a clean value from a mangled one.
  if (buf.toString('base64').replace(/=+$/, '') !== std.replace(/=+$/, '')) {
    throw new KeyringError(`${where}: key "${kid}" is not valid base64`)
  }
  if (buf.length < MIN_KEY_BYTES || buf.length > MAX_KEY_BYTES) {
    throw new KeyringError(
      `${where}: key "${kid}" is ${buf.length} bytes; keys are ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} random bytes`,
    )
  }
  return buf
}

/** Parses keyring text (JSON or YAML). Throws KeyringError naming what is wrong (never a key). */
export function parseKeyring(text: string, where: string): Keyring {
  if (text.length > MAX_KEYRING_BYTES)
    throw new KeyringError(`${where}: larger than ${MAX_KEYRING_BYTES} bytes`)
  let doc: unknown
  try {
    doc = parseYaml(text, { maxAliasCount: 0 })
  } catch {
    throw new KeyringError(`${where}: not valid JSON or YAML`)
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new KeyringError(`${where}: expected a mapping { active, keys }`)
  }
  const o = doc as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (k !== 'active' && k !== 'keys') throw new KeyringError(`${where}: unknown field "${k.slice(0, 40)}"`)
  }
  const rawKeys = o.keys
  if (rawKeys === null || typeof rawKeys !== 'object' || Array.isArray(rawKeys)) {
    throw new KeyringError(`${where}: "keys" must be a mapping of key id to base64 key`)
  }
  const entries = Object.entries(rawKeys as Record<string, unknown>)
  if (entries.length === 0) throw new KeyringError(`${where}: "keys" is empty`)
  if (entries.length > MAX_KEYS) throw new KeyringError(`${where}: more than ${MAX_KEYS} keys`)
  const keys = new Map<string, Buffer>()
  for (const [kid, v] of entries) {
    if (!KID_RE.test(kid)) {
      throw new KeyringError(`${where}: key id "${kid.slice(0, 40)}" does not match ${KID_PATTERN}`)
    }
    keys.set(kid, decodeKey(kid, v, where))
  }
  const active = o.active
  if (typeof active !== 'string' || !keys.has(active)) {
    throw new KeyringError(`${where}: "active" must name one of the keys (${[...keys.keys()].join(', ')})`)
  }
  return { active, keys }
}

/** The keyring from a file or an environment variable, and warnings (e.g. a readable file). */
export function loadKeyring(
  src: KeyringSource,
  opts: { baseDir?: string; env?: NodeJS.ProcessEnv } = {},
): { keyring: Keyring; warnings: string[] } {
  const warnings: string[] = []
  if ((src.file === undefined) === (src.env === undefined)) {
    throw new KeyringError('the audit keyring needs exactly one of `file` or `env`')
  }
  if (src.env !== undefined) {
    const text = (opts.env ?? process.env)[src.env]
    if (text === undefined || text === '') {
      throw new KeyringError(`environment variable ${src.env} (audit keyring) is not set`)
    }
    return { keyring: parseKeyring(text, `keyring in $${src.env}`), warnings }
  }
  const path = resolve(opts.baseDir ?? process.cwd(), src.file as string)
  let text: string
  try {
    const st = statSync(path)
    if (!st.isFile()) throw new KeyringError(`keyring ${path}: not a regular file`)
    if (st.size > MAX_KEYRING_BYTES)
      throw new KeyringError(`keyring ${path}: larger than ${MAX_KEYRING_BYTES} bytes`)
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      warnings.push(
        `keyring ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      )
    }
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if (err instanceof KeyringError) throw err
    throw new KeyringError(`keyring ${path}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be read'}`)
  }
  return { keyring: parseKeyring(text, `keyring ${path}`), warnings }
}

/** A new random key, base64. */
export function newKey(): string {
  return randomBytes(MIN_KEY_BYTES).toString('base64')
}

/** The keyring file's text (JSON, keys in insertion order). */
export function formatKeyring(active: string, keys: ReadonlyMap<string, string>): string {
  return `${JSON.stringify({ active, keys: Object.fromEntries(keys) }, null, 2)}\n`
}

/** Writes a keyring file atomically (temp file, fsync, rename), mode 0600. */
export function writeKeyringFile(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`)
  const fd = openSync(tmp, 'wx', 0o600)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, file)
}
