/**
 * `portcullis audit report`: who accessed what (data-protection requests), from the audit chain,
 * verified as it is read (see src/audit/report.ts). Exit codes: 0 the chain verified (whatever
 * the number of entries); 1 the chain is broken: the entries read before the break are printed,
 * then the problem; 2 usage or keyring error.
 */
import { parseArgs } from 'node:util'
import { type AccessEntry, type AccessQuery, accessReport } from '../../../audit/report.js'
import { type VerifyReport, VerifyUsageError } from '../../../audit/verify.js'
import { parseDuration } from '../../../util/duration.js'
import { UsageError } from '../../command.js'
import { chainFiles, chainSource, instanceOf, loadAnchor, SOURCE_OPTIONS } from './source.js'

/** An ISO 8601 date or date-time, or a duration back from `now` (`24h`, `30d`). */
export function parseTime(flag: string, v: string, now: number): number {
  const d = parseDuration(v)
  if (d !== undefined) return now - d
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) {
    const t = Date.parse(/T|\s/.test(v) || v.length > 10 ? v : `${v}T00:00:00Z`)
    if (Number.isFinite(t)) return t
  }
  throw new UsageError(
    `${flag}: expected an ISO 8601 date or time (2026-03-01, 2026-03-01T10:00:00Z) or a duration (24h, 30d)`,
  )
}

function textLine(e: AccessEntry): string {
  const who = e.principal ?? '-'
  const what =
    e.method !== undefined || e.path !== undefined ? `${e.method ?? ''} ${e.path ?? ''}`.trim() : '-'
  const outcome = [
    e.decision ?? '-',
    e.status !== undefined ? String(e.status) : '',
    e.code ?? '',
    e.reason ?? '',
  ]
    .filter((x) => x !== '')
    .join(' ')
  return [
    e.time,
    who,
    e.operation ?? e.type,
    what,
    e.objects.length > 0 ? e.objects.join(',') : '-',
    outcome,
    `${e.file}:${e.line}`,
  ].join('  ')
}

export async function report(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...SOURCE_OPTIONS,
      dir: { type: 'string' },
      principal: { type: 'string' },
      object: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      partial: { type: 'boolean', default: false },
      format: { type: 'string', default: 'text' },
    },
    allowPositionals: true,
    strict: true,
  })
  if (values.format !== 'text' && values.format !== 'json') throw new UsageError('--format is text or json')
  if ((values.principal === undefined) === (values.object === undefined)) {
    throw new UsageError('give exactly one of --principal ID or --object TYPE:ID')
  }
  const query: AccessQuery = {}
  if (values.principal !== undefined) {
    if (values.principal === '') throw new UsageError('--principal: empty')
    query.principal = values.principal
  }
  if (values.object !== undefined) {
    const i = values.object.indexOf(':')
    if (i <= 0 || i === values.object.length - 1)
      throw new UsageError('--object: expected TYPE:ID (order:42)')
    query.object = { type: values.object.slice(0, i), id: values.object.slice(i + 1) }
  }
  const now = Date.now()
  if (values.since !== undefined) query.since = parseTime('--since', values.since, now)
  if (values.until !== undefined) query.until = parseTime('--until', values.until, now)
  const src = await chainSource(values)
  const paths = [...positionals, ...(values.dir !== undefined ? [values.dir] : [])]
  if (paths.length === 0 && src.dir !== undefined) paths.push(src.dir)
  let files: string[]
  try {
    if (paths.length === 0) throw new UsageError('give the chain with --config FILE or --dir DIR')
    files = chainFiles(paths, src.instance, paths[0] === src.dir ? src.prefix : undefined)
  } catch (err) {
    await src.anchors.close()
    throw err
  }
  const anchors = await loadAnchor(src.anchors, instanceOf(files, src.instance), src.keyring)

  const json = values.format === 'json'
  let n = 0
  const out: string[] = []
  const flush = () => {
    if (out.length > 0) process.stdout.write(out.join(''))
    out.length = 0
  }
  if (json) process.stdout.write(`{"query":${JSON.stringify(query)},"entries":[`)
  else process.stdout.write('time  principal  operation  method path  objects  outcome  where\n')
  let r: VerifyReport
  try {
    r = accessReport(
      files,
      src.keyring,
      query,
      (e) => {
        out.push(json ? `${n === 0 ? '' : ','}\n${JSON.stringify(e)}` : `${textLine(e)}\n`)
        n++
        if (out.length >= 256) flush()
      },
      {
        encryption: src.encryption,
        partial: values.partial,
        anchor: anchors.anchor,
        anchorsChecked: anchors.checked,
      },
    )
  } catch (err) {
    flush()
    if (json) process.stdout.write('\n]}\n')
    if (err instanceof VerifyUsageError) throw new UsageError(err.message)
    throw err
  }
  flush()
  const chain = {
    ok: r.ok,
    records: r.records,
    instance: r.instance,
    firstSeq: r.firstSeq,
    lastSeq: r.lastSeq,
    closed: r.closed,
    dropped: r.dropped,
    truncated: r.truncated,
    ...(r.anchor ? { anchor: r.anchor } : {}),
    ...(r.problem ? { problem: r.problem } : {}),
  }
  if (json) {
    process.stdout.write(`\n],"count":${n},"chain":${JSON.stringify(chain)}}\n`)
  } else {
    process.stdout.write(`${n} entr${n === 1 ? 'y' : 'ies'}\n`)
    if (r.problem) {
      const p = r.problem
      const where = `${p.file}${p.line > 0 ? ` line ${p.line}` : ''}${p.seq !== undefined ? ` (seq ${p.seq})` : ''}`
      process.stdout.write(
        p.kind === 'truncated'
          ? `CHAIN TRUNCATED: ${where}: ${p.message}\n` +
              `this report is incomplete: records were removed from the log, and the accesses they recorded are not listed\n`
          : `CHAIN BROKEN: ${p.kind}: ${where}: ${p.message}\n` +
              `only the ${r.records} records before it were read; records after it cannot be vouched for and are not listed\n`,
      )
    } else {
      process.stdout.write(
        `chain verified: ${r.records} records, instance ${r.instance}, seq ${r.firstSeq}..${r.lastSeq}${r.dropped > 0 ? `, ${r.dropped} events dropped (audit.gap)` : ''}${r.anchor ? `, reaching its anchor (seq ${r.anchor.seq}, ${r.anchor.source})` : r.closed ? '' : ', open (no anchor: a cut at its end cannot be told)'}\n`,
      )
    }
  }
  return r.ok ? 0 : 1
}
