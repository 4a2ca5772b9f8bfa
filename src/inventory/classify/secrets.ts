/**
 * Credentials recognized by the `secrets` engine (src/secrets: 192 detectors behind a keyword
 * prefilter, linear-time patterns): the inventory asks it about sampled values its own short list
 * of formats (validators.ts) did not recognize. Built on first use; a value without any detector
 * keyword costs one pass of the keyword automaton.
 */
import { BUILTIN_DETECTORS } from '../../secrets/detectors/index.js'
import { SecretScanner } from '../../secrets/engine.js'

let scanner: SecretScanner | undefined

/** True when a built-in secrets detector finds a credential in `text`. */
export function hasSecret(text: string): boolean {
  scanner ??= new SecretScanner(BUILTIN_DETECTORS)
  if (!scanner.hasKeyword(text)) return false
  return scanner.scan(text, { decode: false, budgetFactor: 16 }).matches.length > 0
}
