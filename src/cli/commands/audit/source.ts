/**
 * Where the `audit` commands find a chain and its keys: from a gateway config (`--config FILE`:
 * `audit.file.dir`, `prefix`, `instanceId`, `keyring` and `encryption.keyring`, relative paths
 * against the config's directory, `${env:}`/`${file:}` resolved by the gateway's own loader), or
 * from flags (`--keyring FILE | --keyring-env NAME`, `--encryption-keyring FILE |
 * --encryption-keyring-env NAME`, files and directories).
 */
import { statSync } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import pino from 'pino'
import {
  type Anchor,
  type AnchorTarget,
  readAnchorsWithin,
  StoreAnchors,
  WitnessDir,
} from '../../../audit/anchor.js'
import type { AuditConfig } from '../../../audit/config.js'
import { loadEncryptionKeyring } from '../../../audit/encryption.js'
import { FILE_RE, listChainFiles } from '../../../audit/files.js'
import { type Keyring, KeyringError, type KeyringSource, loadKeyring } from '../../../audit/keyring.js'
import type { StoresConfig } from '../../../stores/config.js'
import type { Store } from '../../../stores/types.js'
import { UsageError } from '../../command.js'

/** The options every audit command that reads a chain takes. */
export const SOURCE_OPTIONS = {
  config: { type: 'string' },
  keyring: { type: 'string' },
  'keyring-env': { type: 'string' },
  'encryption-keyring': { type: 'string' },
  'encryption-keyring-env': { type: 'string' },
  instance: { type: 'string' },
  'anchor-dir': { type: 'string' },
  'anchor-redis': { type: 'string' },
  'no-anchors': { type: 'boolean', default: false },
} as const

export interface SourceFlags {
  config?: string | undefined
  keyring?: string | undefined
  'keyring-env'?: string | undefined
  'encryption-keyring'?: string | undefined
  'encryption-keyring-env'?: string | undefined
  instance?: string | undefined
  'anchor-dir'?: string | undefined
  'anchor-redis'?: string | undefined
  'no-anchors'?: boolean | undefined
}

/** The audit section of a gateway config and its directory; config problems are a usage error. */
export async function auditConfigOf(
  configFile: string,
): Promise<{ audit: AuditConfig; stores: StoresConfig; baseDir: string }> {
  // Loaded only when needed: the config loader compiles the whole schema (seconds on a busy machine).
  const { formatProblem, loadConfigFile } = await import('../../../config/load.js')
  const loaded = loadConfigFile(configFile)
  if (loaded.config === undefined) {
    throw new UsageError(`${configFile}: invalid config:\n${loaded.errors.map(formatProblem).join('\n')}`)
  }
  return { audit: loaded.config.audit, stores: loaded.config.stores, baseDir: dirname(resolve(configFile)) }
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
  /** Where the chain's anchors are (from the flags or the config); empty: none given. */
  anchors: AnchorSource
}

/** The anchor targets named by the flags or the config, and how to let go of them. */
export interface AnchorSource {
  targets: AnchorTarget[]
  close(): Promise<void>
}

const NO_ANCHORS: AnchorSource = { targets: [], close: async () => undefined }

async function redisTarget(make: () => Promise<Store>): Promise<AnchorSource> {
  const store = await make()
  return { targets: [new StoreAnchors(store)], close: () => store.close() }
}

/** Anchors from --anchor-dir / --anchor-redis (they win), else from the config's audit.anchor. */
async function anchorSource(
  v: SourceFlags,
  cfg: { audit: AuditConfig; stores: StoresConfig; baseDir: string } | undefined,
): Promise<AnchorSource> {
  if (v['no-anchors']) return NO_ANCHORS
  const silent = pino({ level: 'silent' })
  if (v['anchor-dir'] !== undefined || v['anchor-redis'] !== undefined) {
    const targets: AnchorTarget[] = []
    if (v['anchor-dir'] !== undefined) targets.push(new WitnessDir(resolve(v['anchor-dir'])))
    if (v['anchor-redis'] === undefined) return { targets, close: async () => undefined }
    const url = v['anchor-redis']
    if (!/^rediss?:\/\//.test(url))
      throw new UsageError('--anchor-redis: expected redis://host:port or rediss://…')
    const { createRedisStore } = await import('../../../stores/redis/redis-store.js')
    const r = await redisTarget(async () => createRedisStore({ url, logger: silent }))
    return { targets: [...targets, ...r.targets], close: r.close }
  }
  const a = cfg?.audit.anchor
  if (cfg === undefined || a === undefined) return NO_ANCHORS
  const targets: AnchorTarget[] = []
  if (a.witness !== undefined) targets.push(new WitnessDir(resolve(cfg.baseDir, a.witness.dir)))
  if (!a.redis) return { targets, close: async () => undefined }
  if (cfg.stores.backend !== 'redis') throw new UsageError('audit.anchor.redis needs stores.backend: redis')
  const { createStore } = await import('../../../stores/config.js')
  const r = await redisTarget(async () => createStore(cfg.stores, { logger: silent }))
  return { targets: [...targets, ...r.targets], close: r.close }
}

/** The instance of a chain's files: `--instance`, else from the first file's name. */
export function instanceOf(files: readonly string[], given: string | undefined): string | undefined {
  if (given !== undefined) return given
  const m = files.length > 0 ? FILE_RE.exec(basename(files[0] as string)) : null
  if (!m) return undefined
  const chain = m[1] as string
  const dash = chain.indexOf('-')
  return dash === -1 ? undefined : chain.slice(dash + 1)
}

/**
 * The newest verified anchor of `instance` from `src` (undefined: none given, or none there).
 * A target that cannot be read is a usage error (exit 2): the check asked for cannot be made.
 * Anchors that do not verify are returned as notes.
 */
export async function loadAnchor(
  src: AnchorSource,
  instance: string | undefined,
  keyring: Keyring,
): Promise<{ anchor: Anchor | undefined; checked: boolean; notes: string[] }> {
  if (src.targets.length === 0 || instance === undefined)
    return { anchor: undefined, checked: false, notes: [] }
  try {
    const r = await readAnchorsWithin(src.targets, instance, keyring, 3000)
    if (r.unreadable.length > 0)
      throw new UsageError(`anchors: ${r.problems.filter((p) => p.includes('cannot be read')).join('; ')}`)
    return { anchor: r.newest, checked: true, notes: r.problems }
  } finally {
    await src.close().catch(() => undefined)
  }
}

/** The keyrings (and, with --config, the chain's directory) named by the flags. */
export async function chainSource(v: SourceFlags): Promise<ChainSource> {
  const flagKeys = v.keyring !== undefined || v['keyring-env'] !== undefined
  if (v.config !== undefined) {
    if (flagKeys) throw new UsageError('give the keyring with --config or with --keyring, not both')
    const cfg = await auditConfigOf(v.config)
    const { audit, baseDir } = cfg
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
      anchors: await anchorSource(v, cfg),
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
    anchors: await anchorSource(v, undefined),
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
