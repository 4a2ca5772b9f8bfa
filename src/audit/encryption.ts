/**
 * Audit encryption at rest (optional, file sink): AES-256-GCM.
 *
 * An encrypted chain file is still a file of `\n`-terminated lines, so that crash recovery (a torn
 * last line) and verification work on it the same way as on a plain one:
 *
 * - line 1, the **header**: a JSON object
 *   `{"alg":"AES-256-GCM","dek":"<base64url>","format":"portcullis-audit-enc","instance":…,"kid":…,"v":1}`
 *   (canonical member order). `kid` names the key of the *encryption keyring* that wraps the
 *   file's data key; `dek` is a random 256-bit data key for this file alone, wrapped with that key:
 *   base64url(nonce[12] ‖ AES-256-GCM(kek, dek) ‖ tag[16]), the header's other members as AAD.
 * - every further line, a **frame**: one record, base64url(nonce[12] ‖ AES-256-GCM(dek, line) ‖
 *   tag[16]) with a random 96-bit nonce, and SHA-256(header line) as AAD (a frame cannot be moved
 *   to another file or decrypted under an edited header).
 *
 * One data key per file keeps the number of GCM invocations under one key far below the 2^32 that
 * random nonces allow (a file is rotated at `maxBytes`). The plaintext of a frame is the record's
 * canonical line: the chain (seq, prev, mac) is the same whether a file is encrypted or not, so a
 * chain may mix plain and encrypted files (encryption turned on or off between runs).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import { canonicalize } from './canonical.js'
import { type Keyring, KeyringError, type KeyringSource, loadKeyring, parseKeyring } from './keyring.js'

export const ENC_FORMAT = 'portcullis-audit-enc'
export const ENC_ALG = 'AES-256-GCM'
export const ENC_VERSION = 1
/** Every encrypted file starts with these bytes (the header's canonical form begins so). */
export const ENC_MAGIC = '{"alg":"AES-256-GCM",'
const NONCE = 12
const TAG = 16
export const DEK_BYTES = 32

export interface EncHeader {
  alg: typeof ENC_ALG
  dek: string
  format: typeof ENC_FORMAT
  instance: string
  kid: string
  v: number
}

/** An encryption keyring: the HMAC keyring's format, every key exactly 32 bytes (AES-256). */
export function checkEncryptionKeyring(ring: Keyring, where: string): Keyring {
  for (const [kid, key] of ring.keys) {
    if (key.length !== DEK_BYTES) {
      throw new KeyringError(
        `${where}: encryption key "${kid}" is ${key.length} bytes; AES-256 keys are exactly ${DEK_BYTES}`,
      )
    }
  }
  return ring
}

export function loadEncryptionKeyring(
  src: KeyringSource,
  opts: { baseDir?: string; env?: NodeJS.ProcessEnv } = {},
): { keyring: Keyring; warnings: string[] } {
  const r = loadKeyring(src, opts)
  return { keyring: checkEncryptionKeyring(r.keyring, 'encryption keyring'), warnings: r.warnings }
}

export function parseEncryptionKeyring(text: string, where: string): Keyring {
  return checkEncryptionKeyring(parseKeyring(text, where), where)
}

// Random nonces drawn from a pool refilled in bulk: one randomBytes call per 512 frames instead of
// one per frame (a third of the cost of a frame, measured). Each nonce is used once.
const POOL_NONCES = 512
let pool = Buffer.alloc(0)
let poolAt = 0

function nextNonce(): Buffer {
  if (poolAt + NONCE > pool.length) {
    pool = randomBytes(NONCE * POOL_NONCES)
    poolAt = 0
  }
  const n = pool.subarray(poolAt, poolAt + NONCE)
  poolAt += NONCE
  return n
}

function seal(key: Buffer, plain: Buffer, aad: Buffer): Buffer {
  const nonce = nextNonce()
  const c = createCipheriv('aes-256-gcm', key, nonce)
  c.setAAD(aad)
  const body = Buffer.concat([c.update(plain), c.final()])
  return Buffer.concat([nonce, body, c.getAuthTag()])
}

/** Decrypts nonce ‖ ciphertext ‖ tag; undefined when it does not authenticate. */
function open(key: Buffer, sealed: Buffer, aad: Buffer): Buffer | undefined {
  if (sealed.length < NONCE + TAG) return undefined
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE))
    d.setAAD(aad)
    d.setAuthTag(sealed.subarray(sealed.length - TAG))
    return Buffer.concat([d.update(sealed.subarray(NONCE, sealed.length - TAG)), d.final()])
  } catch {
    return undefined
  }
}

function wrapAad(h: Omit<EncHeader, 'dek'>): Buffer {
  return Buffer.from(canonicalize({ alg: h.alg, format: h.format, instance: h.instance, kid: h.kid, v: h.v }))
}

/** Encrypts the lines of one file. */
export class FileEncryptor {
  readonly header: string
  readonly kid: string
  private readonly dek: Buffer
  private readonly aad: Buffer

  constructor(keyring: Keyring, instance: string) {
    this.kid = keyring.active
    const kek = keyring.keys.get(keyring.active) as Buffer
    this.dek = randomBytes(DEK_BYTES)
    const base = { alg: ENC_ALG, format: ENC_FORMAT, instance, kid: this.kid, v: ENC_VERSION } as const
    const dek = seal(kek, this.dek, wrapAad(base)).toString('base64url')
    this.header = canonicalize({ ...base, dek })
    this.aad = createHash('sha256').update(this.header).digest()
  }

  /** One frame (without the newline) for one record line. */
  frame(line: string | Buffer): string {
    return seal(this.dek, typeof line === 'string' ? Buffer.from(line, 'utf8') : line, this.aad).toString(
      'base64url',
    )
  }

  /** A batch of `\n`-terminated lines → the same number of `\n`-terminated frames. */
  encryptBatch(data: Buffer): Buffer {
    const out: string[] = []
    let start = 0
    for (;;) {
      const nl = data.indexOf(10, start)
      if (nl === -1) break
      out.push(this.frame(data.subarray(start, nl)))
      start = nl + 1
    }
    out.push('')
    return Buffer.from(out.join('\n'), 'ascii')
  }
}

/** A header that cannot be used: `unknown-key` (exit 2 in verify) or `altered`. */
export class EncHeaderError extends Error {
  override name = 'EncHeaderError'
  constructor(
    readonly kind: 'altered' | 'unknown-key',
    message: string,
  ) {
    super(message)
  }
}

/** Whether a file's first bytes are an encrypted file's header. */
export function isEncrypted(firstBytes: Buffer | string): boolean {
  const s = typeof firstBytes === 'string' ? firstBytes : firstBytes.toString('latin1', 0, ENC_MAGIC.length)
  return s.startsWith(ENC_MAGIC)
}

const B64URL = /^[A-Za-z0-9_-]+$/

/** Decrypts the frames of one file, given its header line. */
export class FileDecryptor {
  readonly kid: string
  readonly instance: string
  private readonly dek: Buffer
  private readonly aad: Buffer

  /** Throws EncHeaderError when the header is not one, names an unknown key or does not unwrap. */
  constructor(headerLine: string, keyring: Keyring) {
    let h: EncHeader
    try {
      h = JSON.parse(headerLine) as EncHeader
    } catch {
      throw new EncHeaderError('altered', 'the encryption header is not valid JSON')
    }
    if (
      h === null ||
      typeof h !== 'object' ||
      h.alg !== ENC_ALG ||
      h.format !== ENC_FORMAT ||
      h.v !== ENC_VERSION ||
      typeof h.kid !== 'string' ||
      typeof h.instance !== 'string' ||
      typeof h.dek !== 'string' ||
      !B64URL.test(h.dek)
    ) {
      throw new EncHeaderError('altered', 'not a valid encryption header')
    }
    let canonical: string
    try {
      canonical = canonicalize(h)
    } catch {
      throw new EncHeaderError('altered', 'not a valid encryption header')
    }
    if (canonical !== headerLine) throw new EncHeaderError('altered', 'the encryption header was edited')
    const kek = keyring.keys.get(h.kid)
    if (kek === undefined) {
      throw new EncHeaderError(
        'unknown-key',
        `encrypted with key id "${h.kid.slice(0, 64)}", which is not in the encryption keyring`,
      )
    }
    const dek = open(kek, Buffer.from(h.dek, 'base64url'), wrapAad(h))
    if (dek === undefined || dek.length !== DEK_BYTES) {
      throw new EncHeaderError(
        'altered',
        'the data key does not decrypt: the header was altered, or the key is not the one it was written with',
      )
    }
    this.kid = h.kid
    this.instance = h.instance
    this.dek = dek
    this.aad = createHash('sha256').update(headerLine).digest()
  }

  /** The record line of a frame; undefined when the frame does not authenticate. */
  decrypt(frame: string): string | undefined {
    if (!B64URL.test(frame)) return undefined
    const plain = open(this.dek, Buffer.from(frame, 'base64url'), this.aad)
    if (plain === undefined) return undefined
    const s = plain.toString('utf8')
    // A record line is valid UTF-8; the writer encrypted exactly such bytes.
    return Buffer.from(s, 'utf8').equals(plain) ? s : undefined
  }
}

/**
 * The encryption keyring as the file sink uses it: read at start, and, when it is a file, checked
 * at most once a second (mtime, size, inode) and re-read when it changed, so that a key added by
 * `portcullis keys rotate-audit` is used from the next file on. A keyring that can no longer be
 * read or is invalid is reported and the last good one stays in use (files stay encrypted).
 */
export class EncryptionKeys {
  private ring: Keyring
  private stamp: string
  private lastPoll = Number.NEGATIVE_INFINITY
  /** Warnings from the first read (a keyring file readable by group or others). */
  readonly warnings: readonly string[]

  constructor(
    private readonly src: KeyringSource,
    private readonly opts: {
      baseDir?: string
      env?: NodeJS.ProcessEnv
      onError?: (message: string) => void
      onChange?: (active: string) => void
    } = {},
  ) {
    const loaded = loadEncryptionKeyring(src, opts)
    this.ring = loaded.keyring
    this.warnings = loaded.warnings
    this.stamp = this.fileStamp()
  }

  get keyring(): Keyring {
    return this.ring
  }

  private fileStamp(): string {
    if (this.src.file === undefined) return ''
    try {
      const st = statSync(resolve(this.opts.baseDir ?? process.cwd(), this.src.file))
      return `${st.ino}:${st.size}:${st.mtimeMs}`
    } catch {
      return 'missing'
    }
  }

  /** Re-reads the keyring file when it changed (at most once a second); returns the active key id. */
  poll(now: number): string {
    if (this.src.file === undefined || now - this.lastPoll < 1000) return this.ring.active
    this.lastPoll = now
    const stamp = this.fileStamp()
    if (stamp === this.stamp) return this.ring.active
    this.stamp = stamp
    try {
      const before = this.ring.active
      this.ring = loadEncryptionKeyring(this.src, this.opts).keyring
      if (this.ring.active !== before) this.opts.onChange?.(this.ring.active)
    } catch (err) {
      this.opts.onError?.((err as Error).message)
    }
    return this.ring.active
  }
}
