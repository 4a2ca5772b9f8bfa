/** Builds the scanner a run uses: built-in detectors plus a user file's, minus the ones turned off. */
import ignore, { type Ignore } from 'ignore'
import { EXAMPLE_KEY_HASHES, sha256Hex } from './allowlist.js'
import { loadSecretsConfig, type SecretsConfigT, toDetector } from './custom.js'
import { BUILTIN_DETECTORS } from './detectors/index.js'
import { SecretScanner } from './engine.js'

export interface ScanSetup {
  scanner: SecretScanner
  allowPaths: Ignore
  config: SecretsConfigT | undefined
}

export function buildSetup(configFile: string | undefined): ScanSetup {
  const config = configFile === undefined ? undefined : loadSecretsConfig(configFile)
  const off = new Set(config?.allow.detectors ?? [])
  const detectors = [...BUILTIN_DETECTORS, ...(config?.detectors ?? []).map(toDetector)].filter(
    (d) => !off.has(d.id),
  )
  const hashes = new Set(EXAMPLE_KEY_HASHES)
  for (const v of config?.allow.values ?? []) hashes.add(sha256Hex(v))
  return {
    scanner: new SecretScanner(detectors, { exampleHashes: hashes }),
    allowPaths: ignore().add(config?.allow.paths ?? []),
    config,
  }
}
