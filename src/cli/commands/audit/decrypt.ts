/**
 * `portcullis audit decrypt (--encryption-keyring FILE | --encryption-keyring-env NAME | --config FILE)
 * [--out DIR] FILE|DIR...`: the record lines of encrypted chain files (`….jsonl.enc`), each frame
 * authenticated (AES-256-GCM) as it is decrypted. With `--out`, one plain file per input
 * (`….jsonl`, 0600, never overwriting) in DIR (created 0700); without it, the lines on stdout.
 * Plain files given are passed through. A torn last frame (a crash) is left out with a note on
 * stderr. This checks each frame, not the chain: run `audit verify` on the encrypted files for
 * that (torn-tail offsets recorded by a restart are byte offsets of the encrypted file).
 *
 * Exit codes: 0 every frame decrypted; 1 a header or frame that does not decrypt (named by file,
 * line and frame; nothing is written for that file); 2 usage error, an unreadable file, or a file
 * encrypted with a key id the keyring does not have.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import {
  EncHeaderError,
  FileDecryptor,
  isEncrypted,
  loadEncryptionKeyring,
} from '../../../audit/encryption.js'
import { listChainFiles } from '../../../audit/files.js'
import { type Keyring, KeyringError } from '../../../audit/keyring.js'
import { UsageError } from '../../command.js'
import { auditConfigOf } from './source.js'

const MAX_FILE_BYTES = 1024 * 1024 * 1024

async function keyringOf(v: {
  config?: string | undefined
  'encryption-keyring'?: string | undefined
  'encryption-keyring-env'?: string | undefined
}): Promise<Keyring> {
  const given = [v.config, v['encryption-keyring'], v['encryption-keyring-env']].filter(
    (x) => x !== undefined,
  )
  if (given.length !== 1) {
    throw new UsageError(
      'give the encryption keyring with exactly one of --encryption-keyring FILE, --encryption-keyring-env NAME or --config FILE',
    )
  }
  try {
    if (v.config !== undefined) {
      const { audit, baseDir } = await auditConfigOf(v.config)
      if (audit.encryption === undefined) throw new UsageError(`${v.config}: audit.encryption is not set`)
      return loadEncryptionKeyring(audit.encryption.keyring, { baseDir }).keyring
    }
    const r = loadEncryptionKeyring({ file: v['encryption-keyring'], env: v['encryption-keyring-env'] })
    for (const w of r.warnings) process.stderr.write(`portcullis: warning: ${w}\n`)
    return r.keyring
  } catch (err) {
    if (err instanceof KeyringError) throw new UsageError(`encryption keyring: ${err.message}`)
    throw err
  }
}

function expand(paths: readonly string[]): string[] {
  const out: string[] = []
  for (const p of paths) {
    let st: ReturnType<typeof statSync>
    try {
      st = statSync(p)
    } catch (err) {
      throw new UsageError(`${p}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be read'}`)
    }
    if (!st.isDirectory()) {
      if (st.size > MAX_FILE_BYTES) throw new UsageError(`${p}: larger than 1 GiB`)
      out.push(p)
      continue
    }
    const chains = listChainFiles(p)
    if (chains.size === 0) throw new UsageError(`${p}: no audit files`)
    for (const list of chains.values()) for (const f of list) out.push(f.path)
  }
  return out
}

type Decrypted = { ok: true; text: string; torn: number } | { ok: false; line: number; message: string }

/** The plain lines of one file (`\n`-terminated), or where it fails. */
export function decryptFile(data: Buffer, keyring: Keyring, name: string): Decrypted {
  const nl = data.indexOf(10)
  if (!isEncrypted(data) || nl === -1) {
    // A plain file (or an encrypted one whose header was torn: nothing in it to decrypt).
    if (isEncrypted(data)) return { ok: true, text: '', torn: data.length }
    return { ok: true, text: data.toString('utf8'), torn: 0 }
  }
  let d: FileDecryptor
  try {
    d = new FileDecryptor(data.toString('utf8', 0, nl), keyring)
  } catch (err) {
    if (!(err instanceof EncHeaderError)) throw err
    if (err.kind === 'unknown-key') throw new UsageError(`${name}:1: ${err.message}`)
    return { ok: false, line: 1, message: err.message }
  }
  const out: string[] = []
  let start = nl + 1
  let line = 1
  for (;;) {
    const e = data.indexOf(10, start)
    if (e === -1) break
    line++
    const plain = d.decrypt(data.toString('latin1', start, e))
    if (plain === undefined) {
      return {
        ok: false,
        line,
        message: `frame ${line - 1} does not decrypt: its ciphertext was altered, or it was moved from another file`,
      }
    }
    out.push(plain)
    start = e + 1
  }
  out.push('')
  return { ok: true, text: out.join('\n'), torn: data.length - start }
}

export async function decrypt(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      'encryption-keyring': { type: 'string' },
      'encryption-keyring-env': { type: 'string' },
      out: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  })
  if (positionals.length === 0) throw new UsageError('audit decrypt: no files given')
  const keyring = await keyringOf(values)
  const files = expand(positionals)
  const outDir = values.out !== undefined ? resolve(values.out) : undefined
  if (outDir !== undefined) mkdirSync(outDir, { recursive: true, mode: 0o700 })
  let failed = false
  for (const file of files) {
    const name = basename(file)
    let data: Buffer
    try {
      data = readFileSync(file)
    } catch (err) {
      throw new UsageError(`${file}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be read'}`)
    }
    const r = decryptFile(data, keyring, name)
    if (!r.ok) {
      process.stderr.write(`FAILED: ${name} line ${r.line}: ${r.message}\n`)
      failed = true
      continue
    }
    if (r.torn > 0) {
      process.stderr.write(
        `note: ${name}: ${r.torn} bytes after the last complete frame (a torn write) left out\n`,
      )
    }
    if (outDir === undefined) {
      process.stdout.write(r.text)
      continue
    }
    const target = join(outDir, name.replace(/\.enc$/, ''))
    try {
      writeFileSync(target, r.text, { flag: 'wx', mode: 0o600 })
    } catch (err) {
      throw new UsageError(`${target}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be written'}`)
    }
    process.stderr.write(`${name} → ${target}\n`)
  }
  return failed ? 1 : 0
}
