/** Builds the scanner a run uses: built-in detectors plus a user file's, minus the ones turned off. */
import ignore, { type Ignore } from 'ignore'
import { EXAMPLE_KEY_HASHES, sha256Hex } from './allowlist.js'
import type { SecretsConfigT } from './custom.js'
import { BUILTIN_DETECTORS } from './detectors/index.js'
import { SecretScanner } from './engine.js'

export interface ScanSetup {
  scanner: SecretScanner
  allowPaths: Ignore
  config: SecretsConfigT | undefined
}

/**
 * The scanner and allow rules of a run. The user file's loader (YAML, schema validation) is
 * imported only when there is a file: a plain run does not pay for it.
 */
export async function buildSetup(configFile: string | undefined): Promise<ScanSetup> {
  const custom = configFile === undefined ? undefined : await import('./custom.js')
  const config = custom === undefined ? undefined : custom.loadSecretsConfig(configFile as string)
  const off = new Set(config?.allow.detectors ?? [])
  const detectors = [
    ...BUILTIN_DETECTORS,
    ...(config?.detectors ?? []).map((d) => (custom as typeof import('./custom.js')).toDetector(d)),
  ].filter((d) => !off.has(d.id))
  const hashes = new Set(EXAMPLE_KEY_HASHES)
  for (const v of config?.allow.values ?? []) hashes.add(sha256Hex(v))
  return {
    scanner: new SecretScanner(detectors, { exampleHashes: hashes }),
    allowPaths: ignore().add(config?.allow.paths ?? []),
    config,
  }
}
