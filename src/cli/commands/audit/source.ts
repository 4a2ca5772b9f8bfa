/**
 * Where the `audit` commands find a chain and its keys: from a gateway config (`--config FILE`:
 * `audit.file.dir`, `prefix`, `instanceId`, `keyring` and `encryption.keyring`, relative paths
 * against the config's directory, `${env:}`/`${file:}` resolved by the gateway's own loader), or
 * from flags (`--keyring FILE | --keyring-env NAME`, `--encryption-keyring FILE |
 * --encryption-keyring-env NAME`, files and directories).
 */
import { statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { AuditConfig } from '../../../audit/config.js'
import { loadEncryptionKeyring } from '../../../audit/encryption.js'
import { listChainFiles } from '../../../audit/files.js'
import { type Keyring, KeyringError, type KeyringSource, loadKeyring } from '../../../audit/keyring.js'
import { UsageError } from '../../command.js'

/** The options every audit command that reads a chain takes. */
export const SOURCE_OPTIONS = {
  config: { type: 'string' },
  keyring: { type: 'string' },
  'keyring-env': { type: 'string' },
  'encryption-keyring': { type: 'string' },
  'encryption-keyring-env': { type: 'string' },
  instance: { type: 'string' },
} as const

export interface SourceFlags {
  config?: string | undefined
  keyring?: string | undefined
  'keyring-env'?: string | undefined
  'encryption-keyring'?: string | undefined
  'encryption-keyring-env'?: string | undefined
  instance?: string | undefined
}

/** The audit section of a gateway config and its directory; config problems are a usage error. */
export async function auditConfigOf(configFile: string): Promise<{ audit: AuditConfig; baseDir: string }> {
  // Loaded only when needed: the config loader compiles the whole schema (seconds on a busy machine).
  const { formatProblem, loadConfigFile } = await import('../../../config/load.js')
  const loaded = loadConfigFile(configFile)
  if (loaded.config === undefined) {
    throw new UsageError(`${configFile}: invalid config:\n${loaded.errors.map(formatProblem).join('\n')}`)
  }
  return { audit: loaded.config.audit, baseDir: dirname(resolve(configFile)) }
}

function warn(ws: string[]): void {
  for (const w of ws) process.stderr.write(`portcullis: warning: ${w}\n`)
}

function ring(
  src: KeyringSource,
  baseDir: string | undefined,
  load: typeof loadKeyring,
  what: string,
): Keyring {
  try {
    const r = load(src, baseDir !== undefined ? { baseDir } : {})
    warn(r.warnings)
    return r.keyring
  } catch (err) {
    if (err instanceof KeyringError) throw new UsageError(`${what}: ${err.message}`)
    throw err
  }
}

export interface ChainSource {
  keyring: Keyring
  encryption: Keyring | undefined
  /** With --config: the chain directory (files are taken from it when none are given). */
  dir: string | undefined
  prefix: string | undefined
  instance: string | undefined
}

/** The keyrings (and, with --config, the chain's directory) named by the flags. */
export async function chainSource(v: SourceFlags): Promise<ChainSource> {
  const flagKeys = v.keyring !== undefined || v['keyring-env'] !== undefined
  if (v.config !== undefined) {
    if (flagKeys) throw new UsageError('give the keyring with --config or with --keyring, not both')
    const { audit, baseDir } = await auditConfigOf(v.config)
    if (audit.keyring === undefined) throw new UsageError(`${v.config}: audit.keyring is not set`)
    const enc = audit.encryption?.keyring
    const encFlag = v['encryption-keyring'] ?? v['encryption-keyring-env']
    return {
      keyring: ring(audit.keyring, baseDir, loadKeyring, 'audit keyring'),
      encryption:
        encFlag !== undefined
          ? ring(
              { file: v['encryption-keyring'], env: v['encryption-keyring-env'] },
              undefined,
              loadEncryptionKeyring,
              'encryption keyring',
            )
          : enc !== undefined
            ? ring(enc, baseDir, loadEncryptionKeyring, 'encryption keyring')
            : undefined,
      dir: resolve(baseDir, audit.file.dir),
      prefix: audit.file.prefix,
      instance: v.instance ?? audit.instanceId,
    }
  }
  if (!flagKeys || (v.keyring !== undefined && v['keyring-env'] !== undefined)) {
    throw new UsageError(
      'give the keyring with exactly one of --keyring FILE, --keyring-env NAME or --config FILE',
    )
  }
  if (v['encryption-keyring'] !== undefined && v['encryption-keyring-env'] !== undefined) {
    throw new UsageError('give at most one of --encryption-keyring FILE or --encryption-keyring-env NAME')
  }
  const encGiven = v['encryption-keyring'] !== undefined || v['encryption-keyring-env'] !== undefined
  return {
    keyring: ring({ file: v.keyring, env: v['keyring-env'] }, undefined, loadKeyring, 'audit keyring'),
    encryption: encGiven
      ? ring(
          { file: v['encryption-keyring'], env: v['encryption-keyring-env'] },
          undefined,
          loadEncryptionKeyring,
          'encryption keyring',
        )
      : undefined,
    dir: undefined,
    prefix: undefined,
    instance: v.instance,
  }
}

/**
 * The chain files named on the command line: files as given, directories expanded (one chain per
 * directory; `instance` picks one, `prefix` narrows to the config's file prefix).
 */
export function chainFiles(
  paths: readonly string[],
  instance: string | undefined,
  prefix?: string,
): string[] {
  const out: string[] = []
  for (const p of paths) {
    let st: ReturnType<typeof statSync>
    try {
      st = statSync(p)
    } catch (err) {
      throw new UsageError(`${p}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be read'}`)
    }
    if (!st.isDirectory()) {
      out.push(p)
      continue
    }
    const chains = listChainFiles(p)
    let keys = [...chains.keys()]
    if (prefix !== undefined) keys = keys.filter((k) => k.startsWith(`${prefix}-`))
    if (instance !== undefined) keys = keys.filter((k) => k.endsWith(`-${instance}`))
    if (keys.length === 0) {
      throw new UsageError(`${p}: no audit files${instance !== undefined ? ` of instance ${instance}` : ''}`)
    }
    if (keys.length > 1) {
      throw new UsageError(`${p}: holds several chains (${keys.join(', ')}); pick one with --instance`)
    }
    for (const f of chains.get(keys[0] as string) ?? []) out.push(f.path)
  }
  return out
}
