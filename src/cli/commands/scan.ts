/**
 * `portcullis scan`: runs the scanner against a live API (see docs/cli/scan.md).
 * Exit codes: 0 no (new) finding at or above --fail-on, 1 at least one, 2 usage or config error,
 * 3 the target did not answer (or answered mostly with errors): no verdict, no finding.
 */
import { DURATION_FORMS, formatDuration, parseDuration } from '../../util/duration.js'
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { loadOpenApi, SpecError } from '../../openapi/index.js'
import { runScan, type ScanProgress, unsafeActions } from '../../scanner/engine.js'
import { BaselineError } from '../../scanner/findings.js'
import { loadAuthConfig, type ParsedAuth } from '../../scanner/identities.js'
import { isReportFormat, type ReportFormat, renderReport } from '../../scanner/report/index.js'
import { SEVERITY_RANK, type Severity } from '../../scanner/types.js'
import { ConfigError, EXIT, UsageError } from '../command.js'
import { SCAN_USAGE } from '../usage.js'

/** File names in --output-dir, by format. */
const FILE_NAMES: Record<ReportFormat, string> = {
  text: 'portcullis-scan.txt',
  json: 'portcullis-scan.json',
  sarif: 'portcullis-scan.sarif',
  junit: 'portcullis-scan.junit.xml',
  html: 'portcullis-scan.html',
}

function positiveNumber(name: string, v: string | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0 || n > max)
    throw new UsageError(`--${name} must be a number in (0, ${max}]`)
  return n
}

/** `--timeout 10s`: the duration grammar (src/util/duration.ts); a bare number is refused. */
function durationFlag(name: string, v: string | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt
  if (/^\d+(\.\d+)?$/.test(v))
    throw new UsageError(`--${name} needs a unit: write --${name} ${v}ms (durations: ${DURATION_FORMS})`)
  const ms = parseDuration(v)
  if (ms === undefined || ms <= 0 || ms > max)
    throw new UsageError(
      `--${name} must be a duration from 1ms to ${formatDuration(max)} (${DURATION_FORMS})`,
    )
  return ms
}

function list(values: string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean)
}

/** `-H 'Name: value'` → a header; a bad one is a usage error (its value is never printed). */
function headers(values: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const h of values ?? []) {
    const i = h.indexOf(':')
    const name = i > 0 ? h.slice(0, i).trim() : ''
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/.test(name))
      throw new UsageError(`-H: expected 'Name: value' (got a header without a valid name)`)
    if (/^(host|content-length|transfer-encoding|connection)$/i.test(name))
      throw new UsageError(`-H: ${name} cannot be set`)
    out[name] = h.slice(i + 1).trim()
  }
  return out
}

/** Secrets of a --jwt-wordlist file: one per line, at most 1,000,000 lines and 64 MiB. */
function wordlist(file: string | undefined): string[] | undefined {
  if (!file) return undefined
  let text: string
  try {
    const buf = readFileSync(file)
    if (buf.length > 64 * 1024 * 1024) throw new ConfigError(`--jwt-wordlist ${file}: larger than 64 MiB`)
    text = buf.toString('utf8')
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(
      `--jwt-wordlist ${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    )
  }
  const words = text.split(/\r?\n/).filter((w) => w !== '')
  if (words.length > 1_000_000) throw new ConfigError(`--jwt-wordlist ${file}: more than 1,000,000 lines`)
  return words
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
      'output-dir': { type: 'string' },
      baseline: { type: 'string' },
      header: { type: 'string', short: 'H', multiple: true },
      include: { type: 'string', multiple: true },
      exclude: { type: 'string', multiple: true },
      'jwt-wordlist': { type: 'string' },
      chain: { type: 'boolean', default: false },
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
    return EXIT.OK
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"\n${SCAN_USAGE}`)
  if (!values.spec || !values.target) throw new UsageError(`--spec and --target are required\n${SCAN_USAGE}`)
  const failOn = values['fail-on'] as Severity
  if (!(failOn in SEVERITY_RANK))
    throw new UsageError('--fail-on is one of critical, high, medium, low, info')
  const formats = list([values.format ?? 'text'])
  const bad = formats.find((f) => !isReportFormat(f))
  if (bad !== undefined || formats.length === 0)
    throw new UsageError(`--format is one or more of text, json, sarif, junit, html (comma-separated)`)
  if (new Set(formats).size !== formats.length) throw new UsageError('--format: a format is given twice')
  if (values.output && values['output-dir']) throw new UsageError('give --output or --output-dir, not both')
  if (formats.length > 1 && !values['output-dir'])
    throw new UsageError('several formats need --output-dir DIR (one file per format)')
  const rate = positiveNumber('rate', values.rate, 20, 1000)
  const concurrency = Math.floor(positiveNumber('concurrency', values.concurrency, 4, 64))
  const timeoutMs = durationFlag('timeout', values.timeout, 10_000, 600_000)
  const checks = values.checks ? list([values.checks]) : undefined
  const extraHeaders = headers(values.header)
  const include = list(values.include)
  const exclude = list(values.exclude)
  const jwtWordlist = wordlist(values['jwt-wordlist'])
  const auth: ParsedAuth | undefined = values.auth ? loadAuthConfig(values.auth) : undefined

  const tty = process.stderr.isTTY === true && !process.env.CI
  const clear = tty ? '\r\x1b[K' : ''
  if (values.unsafe) {
    // Say what --unsafe may do before doing it.
    let ops: string[] = []
    try {
      if (!/^https?:\/\//i.test(values.spec)) ops = unsafeActions(loadOpenApi(values.spec)).operations
    } catch {
      ops = []
    }
    process.stderr.write(
      `${unsafeActions().text}${ops.length > 0 ? `\n  destructive-looking operations it may call: ${ops.join(', ')}` : ''}\n`,
    )
  }
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
      ...(Object.keys(extraHeaders).length > 0 ? { headers: extraHeaders } : {}),
      ...(include.length > 0 ? { include } : {}),
      ...(exclude.length > 0 ? { exclude } : {}),
      ...(jwtWordlist ? { jwtWordlist } : {}),
      ...(values.baseline ? { baseline: values.baseline } : {}),
      chain: values.chain === true,
      onProgress,
      ...(values.verbose ? { log: (l: string) => process.stderr.write(`${clear}scan: ${l}\n`) } : {}),
    })
  } catch (err) {
    if (err instanceof SpecError) {
      process.stderr.write(`${clear}portcullis: ${err.message}\n`)
      return EXIT.USAGE
    }
    if (err instanceof BaselineError) throw new ConfigError(err.message)
    throw err
  } finally {
    if (tty && lastLine > 0) process.stderr.write('\r\x1b[K')
  }
  const outDir = values['output-dir']
  if (outDir) await mkdir(outDir, { recursive: true })
  for (const format of formats as ReportFormat[]) {
    const color = !values.output && !outDir && process.stdout.isTTY === true && !process.env.NO_COLOR
    const out = renderReport(report, format, { color })
    if (outDir) await writeFile(join(outDir, FILE_NAMES[format]), out)
    else if (values.output) await writeFile(values.output, out)
    else process.stdout.write(out)
  }
  if (report.unreachable) {
    process.stderr.write(`portcullis scan: no verdict: ${report.unreachable}\n`)
    return EXIT.UNREACHABLE
  }
  // With a baseline, only findings it does not have decide the exit code.
  const counted = report.findings.filter((f) => f.baselineState !== 'unchanged')
  const worst = counted.filter((f) => SEVERITY_RANK[f.severity] >= SEVERITY_RANK[failOn])
  if (values.output || outDir || formats[0] !== 'text') {
    process.stderr.write(
      `portcullis scan: ${report.findings.length} finding(s)${report.baseline ? ` (${report.baseline.new} new)` : ''}, ${worst.length} at or above ${failOn}; ${report.stats.requests} requests in ${(report.durationMs / 1000).toFixed(1)} s${outDir ? `; reports in ${outDir}` : ''}\n`,
    )
  }
  return worst.length > 0 ? EXIT.FINDINGS : EXIT.OK
}
