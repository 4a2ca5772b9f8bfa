import { parseArgs } from 'node:util'
import { formatProblem } from '../../../config/load.js'
import { loadGatewayConfig } from '../../../config/policy-checks.js'
import { UsageError } from '../../command.js'
import { CONFIG_USAGE } from '../../usage.js'

export interface ConfigCheckOptions {
  file: string
  format: 'text' | 'json'
}

/** `portcullis config check FILE`: every problem at once; exit 2 when there are errors. */
export async function configCheck(opts: ConfigCheckOptions): Promise<number> {
  const r = await loadGatewayConfig(opts.file)
  if (opts.format === 'json') {
    process.stdout.write(
      `${JSON.stringify({ valid: r.config !== undefined, errors: r.errors, warnings: r.warnings }, null, 2)}\n`,
    )
  } else {
    for (const e of r.errors) process.stdout.write(`error: ${formatProblem(e)}\n`)
    for (const w of r.warnings) process.stdout.write(`warning: ${formatProblem(w)}\n`)
    if (r.config?.admin.enabled && r.config.admin.token === undefined) {
      process.stdout.write(
        // biome-ignore lint/suspicious/noTemplateCurlyInString: ${env:} is config syntax
        'note: admin API (/v1/) disabled: set admin.token (at least 32 characters, e.g. ${env:PORTCULLIS_ADMIN_TOKEN}) to enable it\n',
      )
    }
    if (r.config)
      process.stdout.write(
        `${opts.file}: valid${r.warnings.length ? ` (${r.warnings.length} warning${r.warnings.length === 1 ? '' : 's'})` : ''}\n`,
      )
    else process.stdout.write(`${opts.file}: ${r.errors.length} error${r.errors.length === 1 ? '' : 's'}\n`)
  }
  return r.config ? 0 : 2
}

/** `portcullis config SUBCOMMAND ...`: only `check` today. */
export async function configCommand(argv: string[]): Promise<number> {
  const [sub, ...args] = argv
  if (sub !== 'check') throw new UsageError(`unknown config subcommand "${sub ?? ''}"\n${CONFIG_USAGE}`)
  const { positionals, values } = parseArgs({
    args,
    options: { format: { type: 'string', default: 'text' } },
    allowPositionals: true,
    strict: true,
  })
  if (positionals.length > 1) throw new UsageError(CONFIG_USAGE)
  // as serve: the file named, else $PORTCULLIS_CONFIG, else ./portcullis.yaml
  const env = process.env.PORTCULLIS_CONFIG
  const file = positionals[0] ?? (env !== undefined && env !== '' ? env : 'portcullis.yaml')
  if (values.format !== 'text' && values.format !== 'json') throw new UsageError('--format is text or json')
  return configCheck({ file, format: values.format })
}
