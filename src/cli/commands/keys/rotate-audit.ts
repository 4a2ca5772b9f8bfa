/**
 * `portcullis keys rotate-audit --config FILE [--kid ID]`: adds a new random AES-256 key to the
 * audit encryption keyring file that the config's `audit.encryption.keyring.file` names and makes
 * it active (the old keys stay, to read old files). The file is written atomically (temp file,
 * fsync, rename), mode 0600; it is created when missing. A running gateway sees the change within
 * a second and starts a new file encrypted with the new key (docs/audit.md). Prints the new key id
 * (never the key) on stdout. Exit codes: 0 done; 2 usage error, an invalid config or keyring, a
 * keyring in an environment variable (which this command cannot change).
 */
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { parseEncryptionKeyring } from '../../../audit/encryption.js'
import { addActiveKey } from '../keyring-file.js'
import { UsageError } from '../../command.js'
import { auditConfigOf } from '../audit/source.js'

export const ROTATE_AUDIT_USAGE = 'usage: portcullis keys rotate-audit --config FILE [--kid ID]'

export async function rotateAudit(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string' }, kid: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  })
  if (positionals.length > 0 || values.config === undefined) throw new UsageError(ROTATE_AUDIT_USAGE)
  const { audit, baseDir } = await auditConfigOf(values.config)
  const src = audit.encryption?.keyring
  if (src === undefined) throw new UsageError(`${values.config}: audit.encryption is not set`)
  if (src.file === undefined) {
    throw new UsageError(
      `${values.config}: the audit encryption keyring is in $${src.env}; add a key there yourself (this command writes keyring files only)`,
    )
  }
  const file = resolve(baseDir, src.file)
  const keys = new Map<string, string>()
  if (existsSync(file)) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw new UsageError(`${file}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be read'}`)
    }
    try {
      for (const [kid, key] of parseEncryptionKeyring(text, `keyring ${file}`).keys) {
        keys.set(kid, key.toString('base64'))
      }
    } catch (err) {
      throw new UsageError((err as Error).message)
    }
  }
  const kid = addActiveKey(file, keys, values.kid, 'e')
  process.stderr.write(
    `${keys.size === 1 ? 'created' : 'updated'} ${file}: new active encryption key "${kid}"${keys.size > 1 ? ` (${keys.size - 1} older kept for reading old files)` : ''}; a running gateway starts a new file with it within a second\n`,
  )
  process.stdout.write(`${kid}\n`)
  return 0
}
