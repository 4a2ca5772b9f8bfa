/**
 * Adding a key to a keyring file from the CLI (`audit keygen`'s signing keys and `keys rotate-audit`'s
 * encryption keys): the new key becomes the active one, the older ones are kept for old records.
 */
import { formatKeyring, KID_PATTERN, newKey, writeKeyringFile } from '../../audit/keyring.js'
import { UsageError } from '../command.js'

/**
 * Adds a new random key to `keys` under `kid` (checked) or the first free `<prefix><n>`, writes the
 * keyring to `file` with it as the active key, and returns its id.
 */
export function addActiveKey(
  file: string,
  keys: Map<string, string>,
  kid: string | undefined,
  prefix: string,
): string {
  if (kid !== undefined) {
    if (!new RegExp(KID_PATTERN).test(kid)) throw new UsageError(`--kid must match ${KID_PATTERN}`)
    if (keys.has(kid)) throw new UsageError(`key id "${kid}" is already in ${file}`)
  } else {
    let n = keys.size + 1
    while (keys.has(`${prefix}${n}`)) n++
    kid = `${prefix}${n}`
  }
  keys.set(kid, newKey())
  try {
    writeKeyringFile(file, formatKeyring(kid, keys))
  } catch (err) {
    throw new UsageError(`${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  return kid
}
