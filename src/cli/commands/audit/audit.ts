/**
 * `portcullis audit verify|report|decrypt|keygen`. Exit codes: verify — 0 intact chain, 1 a
 * missing, altered, reordered, truncated (also: ending before its anchor) or foreign record, or
 * one signed with a key id the keyring does not have; 2 usage or keyring error (including a file
 * encrypted with a key id the encryption keyring does not have, and anchors that cannot be
 * read); report — as
 * verify (1: the chain is broken, reported with what was read before the break); decrypt — 0
 * done, 1 a frame that does not decrypt, 2 usage error; keygen — 0 done, 2 usage error.
 */
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { parseKeyring } from '../../../audit/keyring.js'
import { addActiveKey } from '../keyring-file.js'
import { type VerifyReport, VerifyUsageError, verifyChain } from '../../../audit/verify.js'
import { UsageError } from '../../command.js'
import { AUDIT_USAGE } from '../../usage.js'
import { chainFiles, chainSource, instanceOf, loadAnchor, SOURCE_OPTIONS } from './source.js'

export async function auditCommand(argv: string[]): Promise<number> {
  const [sub, ...args] = argv
  switch (sub) {
    case 'verify':
      return verify(args)
    case 'report': {
      const { report } = await import('./report.js')
      return report(args)
    }
    case 'decrypt': {
      const { decrypt } = await import('./decrypt.js')
      return decrypt(args)
    }
    case 'keygen':
      return keygen(args)
    default:
      throw new UsageError(`unknown audit subcommand "${sub ?? ''}"\n${AUDIT_USAGE}`)
  }
}

export function printText(r: VerifyReport): void {
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
  if (r.anchor !== undefined) {
    process.stdout.write(
      `anchor: seq ${r.anchor.seq} (${r.anchor.source}, ${r.anchor.time})${r.problem ? '' : ': the chain reaches it'}\n`,
    )
  }
  for (const n of r.notes) process.stdout.write(`note: ${n}\n`)
}

async function verify(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...SOURCE_OPTIONS,
      partial: { type: 'boolean', default: false },
      'require-closed': { type: 'boolean', default: false },
      'require-anchor': { type: 'boolean', default: false },
      format: { type: 'string', default: 'text' },
    },
    allowPositionals: true,
    strict: true,
  })
  if (values.format !== 'text' && values.format !== 'json') throw new UsageError('--format is text or json')
  const src = await chainSource(values)
  const paths = positionals.length > 0 ? positionals : src.dir !== undefined ? [src.dir] : []
  if (paths.length === 0) throw new UsageError(`no files given\n${AUDIT_USAGE}`)
  let files: string[]
  try {
    files = chainFiles(paths, src.instance, positionals.length > 0 ? undefined : src.prefix)
  } catch (err) {
    await src.anchors.close()
    throw err
  }
  const anchors = await loadAnchor(src.anchors, instanceOf(files, src.instance), src.keyring)
  let report: VerifyReport
  try {
    report = verifyChain(files, src.keyring, {
      partial: values.partial,
      requireClosed: values['require-closed'],
      encryption: src.encryption,
      anchor: anchors.anchor,
      anchorsChecked: anchors.checked,
      requireAnchor: values['require-anchor'],
    })
    for (const n of anchors.notes) report.notes.push(`anchor: ${n}`)
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
  const kid = addActiveKey(file, keys, values.kid, 'k')
  process.stderr.write(
    `${keys.size === 1 ? 'created' : 'updated'} ${file}: new active key "${kid}"${keys.size > 1 ? ` (${keys.size - 1} older kept for verifying old records)` : ''}\n`,
  )
  process.stdout.write(`${kid}\n`)
  return 0
}
