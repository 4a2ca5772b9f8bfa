/**
 * `portcullis audit verify|keygen`. Exit codes: verify — 0 intact chain, 1 a missing, altered,
 * reordered, truncated or foreign record, 2 usage or keyring error (including a record signed
 * with a key id the keyring does not have); keygen — 0 done, 2 usage error.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { listChainFiles } from '../../../audit/files.js'
import {
  formatKeyring,
  KID_PATTERN,
  KeyringError,
  loadKeyring,
  newKey,
  parseKeyring,
  writeKeyringFile,
} from '../../../audit/keyring.js'
import { type VerifyReport, VerifyUsageError, verifyChain } from '../../../audit/verify.js'
import { UsageError } from '../../main.js'

export const AUDIT_USAGE = `usage:
  portcullis audit verify (--keyring FILE | --keyring-env NAME) [--instance ID] [--partial]
                          [--require-closed] [--format text|json] FILE|DIR...
  portcullis audit keygen --keyring FILE [--kid ID]`

export async function auditCommand(argv: string[]): Promise<number> {
  const [sub, ...args] = argv
  switch (sub) {
    case 'verify':
      return verify(args)
    case 'keygen':
      return keygen(args)
    default:
      throw new UsageError(`unknown audit subcommand "${sub ?? ''}"\n${AUDIT_USAGE}`)
  }
}

/** The chain files named on the command line: files as given, directories expanded. */
export function chainFiles(paths: readonly string[], instance: string | undefined): string[] {
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

function printText(r: VerifyReport): void {
  const span = r.firstSeq !== undefined && r.lastSeq !== undefined ? `, seq ${r.firstSeq}..${r.lastSeq}` : ''
  if (r.problem) {
    const p = r.problem
    process.stdout.write(
      `FAILED: ${p.kind}: ${p.file}${p.line > 0 ? ` line ${p.line}` : ''}${p.seq !== undefined ? ` (seq ${p.seq})` : ''}: ${p.message}\n` +
        `verified before it: ${r.records} records (${r.checkpoints} checkpoints)\n`,
    )
  } else {
    process.stdout.write(
      `OK: ${r.records} records (${r.checkpoints} checkpoints) in ${r.files} file${r.files === 1 ? '' : 's'}, instance ${r.instance}${span}, last at ${r.lastTime}, ${r.closed ? 'closed' : 'open'}\n`,
    )
  }
  for (const n of r.notes) process.stdout.write(`note: ${n}\n`)
}

async function verify(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      keyring: { type: 'string' },
      'keyring-env': { type: 'string' },
      instance: { type: 'string' },
      partial: { type: 'boolean', default: false },
      'require-closed': { type: 'boolean', default: false },
      format: { type: 'string', default: 'text' },
    },
    allowPositionals: true,
    strict: true,
  })
  if (positionals.length === 0) throw new UsageError(`no files given\n${AUDIT_USAGE}`)
  if (values.format !== 'text' && values.format !== 'json') throw new UsageError('--format is text or json')
  if ((values.keyring === undefined) === (values['keyring-env'] === undefined)) {
    throw new UsageError('give the keyring with exactly one of --keyring FILE or --keyring-env NAME')
  }
  let keyring: ReturnType<typeof loadKeyring>['keyring']
  try {
    const loaded = loadKeyring({ file: values.keyring, env: values['keyring-env'] })
    keyring = loaded.keyring
    for (const w of loaded.warnings) process.stderr.write(`portcullis: warning: ${w}\n`)
  } catch (err) {
    if (err instanceof KeyringError) throw new UsageError(err.message)
    throw err
  }
  const files = chainFiles(positionals, values.instance)
  let report: VerifyReport
  try {
    report = verifyChain(files, keyring, { partial: values.partial, requireClosed: values['require-closed'] })
  } catch (err) {
    if (err instanceof VerifyUsageError) throw new UsageError(err.message)
    throw err
  }
  if (values.format === 'json') process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  else printText(report)
  return report.ok ? 0 : 1
}

async function keygen(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { keyring: { type: 'string' }, kid: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  })
  if (positionals.length > 0 || values.keyring === undefined) throw new UsageError(AUDIT_USAGE)
  const file = resolve(values.keyring)
  const keys = new Map<string, string>()
  if (existsSync(file)) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw new UsageError(`${file}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be read'}`)
    }
    let ring: ReturnType<typeof parseKeyring>
    try {
      ring = parseKeyring(text, `keyring ${file}`)
    } catch (err) {
      throw new UsageError((err as Error).message)
    }
    for (const [kid, key] of ring.keys) keys.set(kid, key.toString('base64'))
  }
  let kid = values.kid
  if (kid !== undefined) {
    if (!new RegExp(KID_PATTERN).test(kid)) throw new UsageError(`--kid must match ${KID_PATTERN}`)
    if (keys.has(kid)) throw new UsageError(`key id "${kid}" is already in ${file}`)
  } else {
    let n = keys.size + 1
    while (keys.has(`k${n}`)) n++
    kid = `k${n}`
  }
  keys.set(kid, newKey())
  try {
    writeKeyringFile(file, formatKeyring(kid, keys))
  } catch (err) {
    throw new UsageError(`${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  process.stderr.write(
    `${keys.size === 1 ? 'created' : 'updated'} ${file}: new active key "${kid}"${keys.size > 1 ? ` (${keys.size - 1} older kept for verifying old records)` : ''}\n`,
  )
  process.stdout.write(`${kid}\n`)
  return 0
}
