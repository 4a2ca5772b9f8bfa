/**
 * `portcullis lint SPEC|URL`: audits an API description for security design flaws (docs/cli/lint.md).
 * Exit codes: 0 nothing at or above --fail-on and the score at least --min-score; 1 otherwise;
 * 2 usage, an unreadable spec or config.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { formatProblem, SpecError } from '../../../openapi/errors.js'
import { LINT_SPEC_LIMITS, lintFile } from '../../../linter/engine.js'
import { LINT_FORMATS, type LintFormat, renderLint } from '../../../linter/format/index.js'
import { loadRulesConfig, type RulesConfig } from '../../../linter/rules-config.js'
import { RULES } from '../../../linter/rules/index.js'
import { type LintReport, SEVERITY_RANK, type Severity } from '../../../linter/types.js'
import { ConfigError, EXIT, UsageError } from '../../command.js'
import { LINT_USAGE } from '../../usage.js'

const FETCH_TIMEOUT_MS = 30_000

/** Downloads a spec (http/https, bounded size and time) to a temporary file. */
async function fetchSpec(url: URL): Promise<{ file: string; dir: string }> {
  const { Agent, request } = await import('undici')
  const agent = new Agent({ connect: { timeout: 10_000 }, headersTimeout: 15_000, bodyTimeout: 15_000 })
  const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS)
  try {
    let res: Awaited<ReturnType<typeof request>>
    try {
      // undici's request() follows no redirect: a 3xx is reported as it is.
      res = await request(url, {
        dispatcher: agent,
        signal,
        headers: { accept: 'application/yaml, application/json;q=0.9, */*;q=0.1' },
      })
    } catch (err) {
      throw new ConfigError(
        `${url.href}: cannot fetch the spec (${(err as { code?: string }).code ?? (err as Error).name})`,
      )
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined)
      throw new ConfigError(`${url.href}: answered HTTP ${res.statusCode}`)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const c of res.body) {
      size += (c as Buffer).length
      if (size > LINT_SPEC_LIMITS.maxFileBytes) {
        res.body.destroy()
        throw new ConfigError(`${url.href}: larger than ${LINT_SPEC_LIMITS.maxFileBytes} bytes`)
      }
      chunks.push(c as Buffer)
    }
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-lint-'))
    const ext = /\.json$/i.test(url.pathname) ? 'json' : 'yaml'
    const file = join(dir, `spec.${ext}`)
    await writeFile(file, Buffer.concat(chunks, size))
    return { file, dir }
  } finally {
    await agent.close().catch(() => undefined)
  }
}

function failingFindings(report: LintReport, failOn: Severity): number {
  const rank = SEVERITY_RANK[failOn]
  const findings = report.findings.filter((f) => SEVERITY_RANK[f.severity] >= rank).length
  const gaps = (report.gateway?.gaps ?? []).filter((g) => SEVERITY_RANK[g.severity] >= rank).length
  return findings + gaps
}

export async function lintCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      format: { type: 'string', default: 'text' },
      output: { type: 'string', short: 'o' },
      'min-score': { type: 'string' },
      'fail-on': { type: 'string', default: 'high' },
      rules: { type: 'string' },
      gateway: { type: 'string' },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  })
  if (values.help) {
    process.stdout.write(`${LINT_USAGE}\n`)
    return EXIT.OK
  }
  if (positionals.length !== 1)
    throw new UsageError(`give exactly one SPEC (a file or an http(s) URL)\n${LINT_USAGE}`)
  const format = values.format as LintFormat
  if (!LINT_FORMATS.includes(format)) throw new UsageError(`--format is one of ${LINT_FORMATS.join(', ')}`)
  const failOn = values['fail-on'] as Severity
  if (!(failOn in SEVERITY_RANK))
    throw new UsageError('--fail-on is one of critical, high, medium, low, info')
  let minScore: number | undefined
  if (values['min-score'] !== undefined) {
    minScore = Number(values['min-score'])
    if (!Number.isFinite(minScore) || minScore < 0 || minScore > 100)
      throw new UsageError('--min-score is a number from 0 to 100')
  }
  let rules: RulesConfig | undefined
  if (values.rules !== undefined) {
    try {
      rules = loadRulesConfig(values.rules, RULES)
    } catch (err) {
      throw new ConfigError((err as Error).message.split('\n'))
    }
  }
  const spec = positionals[0] as string
  let file = spec
  let tmp: string | undefined
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    let url: URL
    try {
      url = new URL(spec)
    } catch {
      throw new UsageError(`${spec}: not a valid URL`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new UsageError('a SPEC URL must be http or https')
    const got = await fetchSpec(url)
    file = got.file
    tmp = got.dir
  }
  let report: LintReport
  // Loaded only when asked: it brings the gateway's config schema and policies with it.
  const gw = values.gateway !== undefined ? await import('../../../linter/gateway.js') : undefined
  try {
    report = lintFile(file, {
      ...(rules ? { rules } : {}),
      displayName: spec,
      ...(gw && values.gateway !== undefined
        ? { gateway: { file: values.gateway, check: gw.checkGateway } }
        : {}),
    })
  } catch (err) {
    if (err instanceof SpecError) throw new ConfigError(err.problems.map(formatProblem))
    if (gw && err instanceof gw.GatewayConfigError) throw new ConfigError(err.problems)
    throw err
  } finally {
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true })
  }
  const out = renderLint(report, format, { verbose: values.verbose === true })
  if (values.output) {
    try {
      await writeFile(values.output, out)
    } catch (err) {
      throw new ConfigError(
        `--output ${values.output}: cannot write (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      )
    }
  } else process.stdout.write(out)
  const failing = failingFindings(report, failOn)
  const lowScore = minScore !== undefined && report.score < minScore
  if (values.output || format !== 'text') {
    process.stderr.write(
      `portcullis lint: score ${report.score}/100, ${report.findings.length} finding(s), ${failing} at or above ${failOn}${report.gateway ? ` (gateway gaps included: ${report.gateway.gaps.length})` : ''}\n`,
    )
  }
  if (lowScore)
    process.stderr.write(`portcullis lint: score ${report.score} is below --min-score ${minScore}\n`)
  return failing > 0 || lowScore ? EXIT.FINDINGS : EXIT.OK
}
