/**
 * Opens the audit log from the config: keyring, sink, and where the chain continues.
 *
 * With the file sink, the writer reads the tail of the chain's newest file(s) on start:
 * - the last complete (newline-terminated) line must be a record of this chain signed with a key
 *   of the keyring; otherwise the gateway refuses to start (the chain would continue from a record
 *   nobody can vouch for: run `portcullis audit verify`);
 * - bytes after the last newline (a record cut by a crash or a full disk), and files holding no
 *   complete line at all, are not part of the chain. The writer never appends to an old file: it
 *   opens the next one, whose first record (`audit.start`) continues the chain from the last
 *   complete record and lists every such torn tail (`data.torn`: file, offset, bytes), so
 *   `audit verify` accepts exactly those and nothing else.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Writable } from 'node:stream'
import type { Logger } from 'pino'
import type { Store } from '../stores/types.js'
import { Anchorer, type AnchorTarget, readAnchorsWithin, StoreAnchors, WitnessDir } from './anchor.js'
import { type AuditConfig, checkSinkConfig, SPOOL_DEFAULTS } from './config.js'
import { EncHeaderError, EncryptionKeys, FileDecryptor, isEncrypted } from './encryption.js'
import {
  acquireChainLock,
  type ChainFile,
  instancesIn,
  listChainFiles,
  readFirstLine,
  readTail,
} from './files.js'
import { type Keyring, loadKeyring } from './keyring.js'
import { AuditLog } from './log.js'
import { checkRecord, genesisHash, recordHash } from './record.js'
import { checkRedactPaths, compileRedactor } from './redact.js'
import { FileSink } from './sinks/file.js'
import { HttpSink } from './sinks/http.js'
import { Spool } from './sinks/spool.js'
import { StdoutSink } from './sinks/stdout.js'
import { SyslogSink } from './sinks/syslog.js'
import type { AuditSink } from './sinks/types.js'

/** A problem with the audit config, keyring or chain that keeps the gateway from starting (exit 2). */
export class AuditConfigError extends Error {
  // The CLI reports errors named ConfigError as config problems (exit 2).
  override name = 'ConfigError'
}

export interface OpenOptions {
  /** The config file's directory. */
  baseDir: string
  logger: Logger
  env?: NodeJS.ProcessEnv
  now?: () => number
  /** The stdout sink's stream (tests). */
  stdout?: Writable
  /** The gateway's store, for `anchor.redis` (must be the Redis store). */
  store?: Store
}

/** The anchor targets of a config (empty without `anchor`). Throws AuditConfigError. */
export function anchorTargets(
  config: AuditConfig,
  baseDir: string,
  store: Store | undefined,
): AnchorTarget[] {
  const a = config.anchor
  if (a === undefined) return []
  const out: AnchorTarget[] = []
  if (a.witness !== undefined) out.push(new WitnessDir(resolve(baseDir, a.witness.dir)))
  if (a.redis) {
    if (store === undefined || store.backend !== 'redis')
      throw new AuditConfigError('audit.anchor.redis needs the Redis store (stores.backend: redis)')
    out.push(new StoreAnchors(store))
  }
  return out
}

/** Where a chain continues, found in its files. */
export interface ChainTail {
  /** Next seq and the hash of the last record (genesis when the chain is new). */
  seq: number
  prev: string
  /** Number for the next file. */
  nextFile: number
  previous: { file: string; seq: number; closed: boolean } | undefined
  torn: { file: string; offset: number; bytes: number }[]
}

/** Reads where the chain of `files` (in file-number order) ends. Throws AuditConfigError. */
export function findChainTail(
  files: readonly ChainFile[],
  instance: string,
  keyring: Parameters<typeof checkRecord>[1],
  encryption?: Keyring,
): ChainTail {
  const torn: ChainTail['torn'] = []
  const nextFile = files.length > 0 ? (files[files.length - 1] as ChainFile).n + 1 : 1
  for (let i = files.length - 1; i >= 0; i--) {
    const f = files[i] as ChainFile
    const tail = readTail(f.path)
    if (tail.tornBytes > 0) torn.unshift({ file: f.name, offset: tail.tornOffset, bytes: tail.tornBytes })
    if (tail.lastLine === undefined) continue
    let lastLine = tail.lastLine
    if (isEncrypted(lastLine) || f.name.endsWith('.enc')) {
      // An encrypted file: the header alone (a crash before its first record) holds no record.
      if (lastLine.startsWith('{') && tail.tornOffset === Buffer.byteLength(lastLine) + 1) continue
      if (encryption === undefined) {
        throw new AuditConfigError(
          `audit: ${f.path} is encrypted; continuing its chain needs audit.encryption (the keyring it was written with)`,
        )
      }
      const header = readFirstLine(f.path)
      let plain: string | undefined
      try {
        plain = header === undefined ? undefined : new FileDecryptor(header, encryption).decrypt(lastLine)
      } catch (err) {
        if (!(err instanceof EncHeaderError)) throw err
        throw new AuditConfigError(
          `audit: the encryption header of ${f.path} cannot be used (${err.message}); the chain cannot continue from it`,
        )
      }
      if (plain === undefined) {
        throw new AuditConfigError(
          `audit: the last record of ${f.path} does not decrypt (altered, or another key); the chain cannot continue from it. Run \`portcullis audit verify\` on the directory`,
        )
      }
      lastLine = plain
    }
    const c = checkRecord(lastLine, keyring)
    if (!c.ok) {
      throw new AuditConfigError(
        `audit: the last record of ${f.path} cannot be trusted (${c.message}); the chain cannot continue from it. Run \`portcullis audit verify\` on the directory`,
      )
    }
    if (c.record.instance !== instance) {
      throw new AuditConfigError(
        `audit: ${f.path} ends with a record of instance "${c.record.instance}", not "${instance}"`,
      )
    }
    const closed = c.record.type === 'audit.checkpoint' && c.record.data?.reason === 'close'
    return {
      seq: c.record.seq + 1,
      prev: recordHash(lastLine),
      nextFile,
      previous: { file: f.name, seq: c.record.seq, closed },
      torn,
    }
  }
  return { seq: 0, prev: genesisHash(instance), nextFile, previous: undefined, torn }
}

/** Builds and starts the audit log described by `config` (which must be enabled). */
export async function openAuditLog(config: AuditConfig, o: OpenOptions): Promise<AuditLog> {
  const { logger } = o
  if (config.keyring === undefined) {
    throw new AuditConfigError(
      'audit.enabled needs audit.keyring (file or env); `portcullis audit keygen` makes one',
    )
  }
  const problems = checkRedactPaths(config.redact)
  if (problems.length > 0) throw new AuditConfigError(`audit.redact: ${problems.join('; ')}`)
  const sinkProblems = checkSinkConfig(config)
  if (sinkProblems.length > 0) throw new AuditConfigError(sinkProblems.join('; '))
  let keyring: ReturnType<typeof loadKeyring>['keyring']
  try {
    const loaded = loadKeyring(config.keyring, { baseDir: o.baseDir, env: o.env })
    keyring = loaded.keyring
    for (const w of loaded.warnings) logger.warn(w)
  } catch (err) {
    throw new AuditConfigError(`audit: ${(err as Error).message}`)
  }
  const now = o.now ?? Date.now
  let encryption: EncryptionKeys | undefined
  if (config.encryption !== undefined) {
    if (config.sink !== 'file') throw new AuditConfigError('audit.encryption needs the file sink')
    try {
      encryption = new EncryptionKeys(config.encryption.keyring, {
        baseDir: o.baseDir,
        env: o.env,
        onError: (message) =>
          logger.error(
            { message },
            'audit: the encryption keyring cannot be re-read; the last good one stays',
          ),
        onChange: (active) =>
          logger.info({ kid: active }, 'audit: new active encryption key; starting a new file'),
      })
    } catch (err) {
      throw new AuditConfigError(`audit.encryption: ${(err as Error).message}`)
    }
    for (const w of encryption.warnings) logger.warn(`audit.encryption: ${w}`)
  }
  let sink: AuditSink
  let instance: string
  let tail: ChainTail
  let release: (() => void) | undefined
  // The log is created after the sink; sink errors reach it through this.
  let log: AuditLog | undefined
  const onError = (err: NodeJS.ErrnoException, op: string) => {
    if (log) log.sinkError(err, op)
    else logger.error({ op, code: err.code }, 'audit sink error')
  }
  if (config.sink === 'http' || config.sink === 'syslog') {
    const opened = await openForwardingSink(config, o, keyring, onError)
    ;({ sink, instance, tail, release } = opened)
  } else if (config.sink === 'stdout') {
    instance = config.instanceId ?? `gw-${randomBytes(5).toString('hex')}`
    tail = { seq: 0, prev: genesisHash(instance), nextFile: 1, previous: undefined, torn: [] }
    sink = new StdoutSink(o.stdout ?? process.stdout, onError)
  } else {
    const dir = resolve(o.baseDir, config.file.dir)
    const prefix = config.file.prefix
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
    } catch (err) {
      throw new AuditConfigError(
        `audit.file.dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be created'}`,
      )
    }
    if (config.instanceId !== undefined) instance = config.instanceId
    else {
      const found = instancesIn(dir, prefix)
      if (found.length > 1) {
        throw new AuditConfigError(
          `audit: ${dir} holds the chains of several instances (${found.join(', ')}); set audit.instanceId`,
        )
      }
      instance = found[0] ?? `gw-${randomBytes(5).toString('hex')}`
    }
    try {
      release = acquireChainLock(dir, prefix, instance)
    } catch (err) {
      throw new AuditConfigError(`audit: ${(err as Error).message}`)
    }
    try {
      tail = findChainTail(
        listChainFiles(dir).get(`${prefix}-${instance}`) ?? [],
        instance,
        keyring,
        encryption?.keyring,
      )
      sink = await FileSink.open({
        dir,
        prefix,
        instance,
        firstFile: tail.nextFile,
        fsync: config.file.fsync,
        fsyncIntervalMs: config.file.fsyncIntervalMs,
        maxBytes: config.file.maxBytes,
        maxAgeMs: config.file.maxAgeSec * 1000,
        now,
        onError,
        encryption,
      })
    } catch (err) {
      release()
      if (err instanceof AuditConfigError) throw err
      throw new AuditConfigError(
        `audit: cannot open a file in ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      )
    }
  }
  // The chain against its anchor: files that end before it were cut.
  const targets = (() => {
    try {
      return anchorTargets(config, o.baseDir, o.store)
    } catch (err) {
      release?.()
      throw err
    }
  })()
  const startProblems: AuditLog['startProblems'] = []
  let truncated: Record<string, unknown> | undefined
  let anchorCheck: Record<string, unknown> | undefined
  if (targets.length > 0) {
    const reading = await readAnchorsWithin(targets, instance, keyring, config.anchor?.startTimeoutMs ?? 5000)
    const last = tail.seq - 1
    const a = reading.newest
    if (reading.problems.length > 0) {
      anchorCheck = { problems: reading.problems.slice(0, 8) }
      logger.error(
        { instance, problems: reading.problems },
        'audit: the chain cannot be checked against every anchor (a cut at its end may go unseen)',
      )
      startProblems.push({
        summary: `audit chain ${instance}: anchors not checked at start: ${reading.problems.join('; ').slice(0, 300)}`,
        data: { instance, problems: reading.problems.length },
      })
    }
    if (a !== undefined && a.seq > last) {
      truncated = {
        after: last,
        anchoredSeq: a.seq,
        anchoredHash: a.hash,
        anchoredAt: a.time,
        source: a.source,
        missing: a.seq - last,
      }
      logger.error(
        { instance, lastInFiles: last, anchoredSeq: a.seq, anchoredAt: a.time, source: a.source },
        `AUDIT CHAIN TRUNCATED: the chain's files end at seq ${last}, but its anchor (${a.source}, ${a.time}) says it reached seq ${a.seq}: ${a.seq - last} records were removed. The chain continues after the anchor; the gap is recorded in audit.start (data.truncated)`,
      )
      startProblems.push({
        summary: `audit chain ${instance} truncated: its files end at seq ${last}, its anchor (${a.source}) says seq ${a.seq}: ${a.seq - last} records removed`,
        data: { instance, lastInFiles: last, anchoredSeq: a.seq, missing: a.seq - last },
      })
      // Continue from the anchored head, not from the cut: the seq gap stays visible in the chain.
      tail = { ...tail, seq: a.seq + 1, prev: a.hash }
    } else if (a !== undefined && a.seq === last && a.hash !== tail.prev) {
      anchorCheck = { ...anchorCheck, mismatch: { seq: a.seq, anchoredAt: a.time, source: a.source } }
      logger.error(
        { instance, seq: a.seq, anchoredAt: a.time, source: a.source },
        'AUDIT CHAIN REPLACED: the last record in the files is not the one anchored at that seq; run `portcullis audit verify`',
      )
      startProblems.push({
        summary: `audit chain ${instance}: the record at seq ${a.seq} is not the one anchored (${a.source}): the files were replaced`,
        data: { instance, seq: a.seq },
      })
    }
  }
  const startData: Record<string, unknown> = { pid: process.pid, sink: sink.kind }
  if (tail.previous) startData.previous = tail.previous
  if (truncated) startData.truncated = truncated
  if (anchorCheck) startData.anchorCheck = anchorCheck
  if (tail.torn.length > 0) startData.torn = tail.torn
  // The encryption key id of the file this record opens (the file's header names it too).
  if (encryption) startData.encryption = { kid: encryption.keyring.active }
  log = new AuditLog({
    instance,
    keyring,
    sink,
    start: { seq: tail.seq, prev: tail.prev },
    startData,
    checkpointEvery: config.checkpoint.everyRecords,
    checkpointIntervalMs: config.checkpoint.intervalSec * 1000,
    maxQueue: config.maxQueue,
    durable: config.sink !== 'stdout' && config.file.fsync === 'always',
    redact: compileRedactor(config.redact),
    logger,
    now,
    onClose: release,
    ...(targets.length > 0
      ? {
          anchor: new Anchorer({
            instance,
            signer: { kid: keyring.active, key: keyring.keys.get(keyring.active) as Buffer },
            targets,
            intervalMs: config.anchor?.intervalMs ?? 1000,
            logger,
            now,
          }),
        }
      : {}),
  })
  log.startProblems = startProblems
  await log.commit()
  if (tail.torn.length > 0) {
    logger.warn(
      { torn: tail.torn, continuesAfterSeq: tail.seq - 1 },
      'audit: the previous run left an unterminated record (crash); the chain continues in a new file that records it',
    )
  }
  logger.info(
    {
      instance,
      sink: sink.kind,
      seq: tail.seq,
      fsync: config.sink !== 'stdout' ? config.file.fsync : undefined,
    },
    'audit log open',
  )
  return log
}

/**
 * The http and syslog sinks: the spool directory holds the chain's unsent records and its tail,
 * so the chain continues from it on restart as it does from the file sink's directory.
 */
async function openForwardingSink(
  config: AuditConfig,
  o: OpenOptions,
  keyring: Parameters<typeof checkRecord>[1],
  onError: (err: NodeJS.ErrnoException, op: string) => void,
): Promise<{ sink: AuditSink; instance: string; tail: ChainTail; release: () => void }> {
  const spoolConfig = config.spool ?? { dir: 'audit-spool', maxBytes: SPOOL_DEFAULTS.maxBytes }
  const dir = resolve(o.baseDir, spoolConfig.dir)
  const prefix = config.file.prefix
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw new AuditConfigError(
      `audit.spool.dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be created'}`,
    )
  }
  let instance: string
  if (config.instanceId !== undefined) instance = config.instanceId
  else {
    const found = instancesIn(dir, prefix)
    if (found.length > 1) {
      throw new AuditConfigError(
        `audit: ${dir} holds the spools of several instances (${found.join(', ')}); set audit.instanceId`,
      )
    }
    instance = found[0] ?? `gw-${randomBytes(5).toString('hex')}`
  }
  let release: () => void
  try {
    release = acquireChainLock(dir, prefix, instance)
  } catch (err) {
    throw new AuditConfigError(`audit: ${(err as Error).message}`)
  }
  const readPem = (field: string, file: string | undefined): Buffer | undefined => {
    if (file === undefined) return undefined
    const path = resolve(o.baseDir, file)
    try {
      return readFileSync(path)
    } catch (err) {
      throw new AuditConfigError(`${field} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`)
    }
  }
  try {
    const tail = findChainTail(listChainFiles(dir).get(`${prefix}-${instance}`) ?? [], instance, keyring)
    let spool: Spool
    try {
      spool = await Spool.open({
        dir,
        prefix,
        instance,
        firstFile: tail.nextFile,
        fsync: config.file.fsync,
        fsyncIntervalMs: config.file.fsyncIntervalMs,
        maxBytes: spoolConfig.maxBytes,
        onError,
      })
    } catch (err) {
      throw new AuditConfigError(
        `audit: cannot open the spool in ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      )
    }
    let sink: AuditSink
    if (config.sink === 'http') {
      const h = config.http as NonNullable<AuditConfig['http']>
      sink = new HttpSink({
        spool,
        url: new URL(h.url),
        instance,
        token: h.token,
        tokenHeader: h.tokenHeader,
        ca: readPem('audit.http.ca', h.ca),
        timeoutMs: h.timeoutMs,
        maxRecords: h.batch.maxRecords,
        maxBytes: h.batch.maxBytes,
        lingerMs: h.batch.lingerMs,
        retryMinMs: h.retry.minMs,
        retryMaxMs: h.retry.maxMs,
        onError,
      })
    } else {
      const y = config.syslog as NonNullable<AuditConfig['syslog']>
      const abs = (f: string | undefined) => (f === undefined ? undefined : resolve(o.baseDir, f))
      for (const [field, f] of [
        ['ca', y.tls?.ca],
        ['cert', y.tls?.cert],
        ['key', y.tls?.key],
      ] as const)
        readPem(`audit.syslog.tls.${field}`, f)
      sink = new SyslogSink({
        spool,
        host: y.host,
        port: y.port,
        tls:
          y.transport === 'tls'
            ? {
                ca: abs(y.tls?.ca),
                cert: abs(y.tls?.cert),
                key: abs(y.tls?.key),
                servername: y.tls?.servername,
                minVersion: y.tls?.minVersion ?? 'TLSv1.2',
              }
            : undefined,
        facility: y.facility as ConstructorParameters<typeof SyslogSink>[0]['facility'],
        hostname: y.hostname,
        connectTimeoutMs: y.connectTimeoutMs,
        settleMs: y.settleMs,
        retryMinMs: y.retry.minMs,
        retryMaxMs: y.retry.maxMs,
        onError,
      })
    }
    return { sink, instance, tail, release }
  } catch (err) {
    release()
    throw err
  }
}
