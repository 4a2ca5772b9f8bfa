/**
 * The `portcullis` CLI. This file holds the only top-level catch; commands are plain async
 * functions loaded lazily. Exit codes: 0 ok, 1 findings (scan/lint/secrets), 2 usage or config error.
 */
import { parseArgs } from 'node:util'

export class UsageError extends Error {
  override name = 'UsageError'
}

const HELP = `portcullis — API security gateway, scanner, linter and secret detection

Usage:
  portcullis serve [--config FILE]         run the gateway (default config: ./portcullis.yaml)
  portcullis config check FILE             validate a config; prints every problem, exit 2 if any
  portcullis keys SUBCOMMAND --store FILE  create, list, revoke, rotate, import API keys
                      | --config FILE    (in a key store file, or in the Redis of a config)
  portcullis audit verify|report|decrypt|keygen ...
                                           verify an audit chain, report who accessed what,
                                           decrypt encrypted files; make or rotate its keyring
  portcullis scan --spec F --target URL    test a live API for the OWASP API Top 10 (docs/cli/scan.md)
  portcullis --version | --help

Exit codes: 0 ok, 1 findings at or above --fail-on, 2 usage or config error.
Docs: docs/README.md`

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${HELP}\n`)
      return cmd === undefined ? 2 : 0
    case '-v':
    case '--version': {
      const { readFileSync } = await import('node:fs')
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
        version: string
      }
      process.stdout.write(`${pkg.version}\n`)
      return 0
    }
    case 'serve': {
      const { values } = parseArgs({
        args: rest,
        options: { config: { type: 'string', short: 'c' } },
        strict: true,
      })
      const { serve } = await import('./commands/serve/serve.js')
      return serve({ config: values.config ?? 'portcullis.yaml' })
    }
    case 'config': {
      const [sub, ...args] = rest
      if (sub !== 'check') throw new UsageError(`unknown config subcommand "${sub ?? ''}" (expected: check)`)
      const { positionals, values } = parseArgs({
        args,
        options: { format: { type: 'string', default: 'text' } },
        allowPositionals: true,
        strict: true,
      })
      if (positionals.length !== 1) throw new UsageError('usage: portcullis config check FILE')
      if (values.format !== 'text' && values.format !== 'json')
        throw new UsageError('--format is text or json')
      const { configCheck } = await import('./commands/config/check.js')
      return configCheck({ file: positionals[0] as string, format: values.format })
    }
    case 'keys': {
      const { keysCommand } = await import('./commands/keys/keys.js')
      return keysCommand(rest)
    }
    case 'audit': {
      const { auditCommand } = await import('./commands/audit/audit.js')
      return auditCommand(rest)
    }
    case 'scan': {
      const { scanCommand } = await import('./commands/scan.js')
      return scanCommand(rest)
    }
    default:
      throw new UsageError(`unknown command "${cmd}"; see portcullis --help`)
  }
}

/** Runs the CLI and sets the process exit code. The only top-level catch. */
export async function run(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv)
  } catch (err) {
    const e = err as Error & { code?: string }
    if (e instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS') || e.name === 'ConfigError') {
      process.stderr.write(`portcullis: ${e.message}\n`)
      process.exitCode = 2
      return
    }
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES') {
      process.stderr.write(`portcullis: cannot listen: ${e.message}\n`)
      process.exitCode = 2
      return
    }
    process.stderr.write(`portcullis: ${e.stack ?? String(err)}\n`)
    process.exitCode = 1
  }
}
