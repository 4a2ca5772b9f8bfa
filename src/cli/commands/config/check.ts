import { formatProblem, loadConfigFile } from '../../../config/load.js'

export interface ConfigCheckOptions {
  file: string
  format: 'text' | 'json'
}

/** `portcullis config check FILE`: every problem at once; exit 2 when there are errors. */
export async function configCheck(opts: ConfigCheckOptions): Promise<number> {
  const r = loadConfigFile(opts.file)
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
