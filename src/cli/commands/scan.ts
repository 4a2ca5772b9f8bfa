/**
 * `portcullis scan`: runs the scanner against a live API (see docs/cli/scan.md).
 * Exit codes: 0 no finding at or above --fail-on, 1 findings at or above it, 2 usage or config error.
 */
import { writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { SpecError } from '../../openapi/index.js'
import { runScan, type ScanProgress } from '../../scanner/engine.js'
import { loadAuthConfig, type ParsedAuth } from '../../scanner/identities.js'
import { type ReportFormat, renderReport } from '../../scanner/report/index.js'
import { SEVERITY_RANK, type Severity } from '../../scanner/types.js'
import { UsageError } from '../command.js'
import { SCAN_USAGE } from '../usage.js'

const FORMATS = ['text', 'json', 'sarif', 'junit', 'html']

function positiveNumber(name: string, v: string | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0 || n > max)
    throw new UsageError(`--${name} must be a number in (0, ${max}]`)
  return n
}

export async function scanCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      spec: { type: 'string' },
      target: { type: 'string' },
      auth: { type: 'string' },
      checks: { type: 'string' },
      'fail-on': { type: 'string', default: 'high' },
      format: { type: 'string', default: 'text' },
      output: { type: 'string', short: 'o' },
      unsafe: { type: 'boolean', default: false },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      timeout: { type: 'string' },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  })
  if (values.help) {
    process.stdout.write(`${SCAN_USAGE}\n`)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"\n${SCAN_USAGE}`)
  if (!values.spec || !values.target) throw new UsageError(`--spec and --target are required\n${SCAN_USAGE}`)
  const failOn = values['fail-on'] as Severity
  if (!(failOn in SEVERITY_RANK))
    throw new UsageError('--fail-on is one of critical, high, medium, low, info')
  const format = values.format as ReportFormat
  if (!FORMATS.includes(format)) throw new UsageError(`--format is one of ${FORMATS.join(', ')}`)
  const rate = positiveNumber('rate', values.rate, 20, 1000)
  const concurrency = Math.floor(positiveNumber('concurrency', values.concurrency, 4, 64))
  const timeoutMs = positiveNumber('timeout', values.timeout, 10_000, 600_000)
  const checks = values.checks
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const auth: ParsedAuth | undefined = values.auth ? loadAuthConfig(values.auth) : undefined

  const tty = process.stderr.isTTY === true && !process.env.CI
  let lastLine = 0
  const onProgress = (p: ScanProgress) => {
    if (!tty) return
    const width = 20
    const filled = p.total === 0 ? width : Math.round((p.done / p.total) * width)
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total} ${p.phase}${p.check ? ` ${p.check}` : ''} · ${p.requests} requests`
    process.stderr.write(`\r${line.padEnd(lastLine)}`)
    lastLine = line.length
  }
  let report: Awaited<ReturnType<typeof runScan>>
  try {
    report = await runScan({
      spec: values.spec,
      target: values.target,
      ...(auth ? { auth } : {}),
      ...(checks ? { checks } : {}),
      safe: !values.unsafe,
      rate,
      concurrency,
      timeoutMs,
      onProgress,
      ...(values.verbose
        ? { log: (l: string) => process.stderr.write(`${tty ? '\r\x1b[K' : ''}scan: ${l}\n`) }
        : {}),
    })
  } catch (err) {
    if (err instanceof SpecError) {
      process.stderr.write(`${tty ? '\r\x1b[K' : ''}portcullis: ${err.message}\n`)
      return 2
    }
    throw err
  } finally {
    if (tty && lastLine > 0) process.stderr.write('\r\x1b[K')
  }
  let out: string
  try {
    out = renderReport(report, format, {
      color: !values.output && process.stdout.isTTY === true && !process.env.NO_COLOR,
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (values.output) await writeFile(values.output, out)
  else process.stdout.write(out)
  const worst = report.findings.filter((f) => SEVERITY_RANK[f.severity] >= SEVERITY_RANK[failOn])
  if (values.output || format !== 'text') {
    process.stderr.write(
      `portcullis scan: ${report.findings.length} finding(s), ${worst.length} at or above ${failOn}; ${report.stats.requests} requests in ${(report.durationMs / 1000).toFixed(1)} s\n`,
    )
  }
  return worst.length > 0 ? 1 : 0
}
