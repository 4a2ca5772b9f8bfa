/**
 * The `portcullis` CLI: a table of commands (`COMMANDS`), help built from it, and the only
 * top-level catch. Commands are loaded lazily. Exit codes (`EXIT`): 0 ok, 1 findings at or above
 * `--fail-on` (scan, lint, secrets), 2 usage or config error, 3 the scanner's target did not
 * answer, 70 an unexpected error (a bug; never 1, so CI cannot read a crash as "findings").
 */
import { type CliCommand, ConfigError, EXIT, lazyCommand, UsageError } from './command.js'
import {
  AUDIT_USAGE,
  CONFIG_USAGE,
  INVENTORY_USAGE,
  KEYS_USAGE,
  LINT_USAGE,
  SCAN_USAGE,
  SECRETS_USAGE,
  SERVE_USAGE,
} from './usage.js'

export { ConfigError, UsageError }

/** Every command, in the order `--help` lists them. New commands add a row here. */
export const COMMANDS: readonly CliCommand[] = [
  lazyCommand(
    'serve',
    'run the gateway (config: --config FILE, $PORTCULLIS_CONFIG or ./portcullis.yaml)',
    SERVE_USAGE,
    async () => (await import('./commands/serve/serve.js')).serveCommand,
  ),
  lazyCommand(
    'config',
    'config check FILE: validate a gateway config as serve would',
    CONFIG_USAGE,
    async () => (await import('./commands/config/check.js')).configCommand,
  ),
  lazyCommand(
    'keys',
    'create, list, revoke, rotate and import API keys',
    KEYS_USAGE,
    async () => (await import('./commands/keys/keys.js')).keysCommand,
  ),
  lazyCommand(
    'audit',
    'verify an audit chain, report who accessed what, decrypt, make keyrings',
    AUDIT_USAGE,
    async () => (await import('./commands/audit/audit.js')).auditCommand,
  ),
  lazyCommand(
    'inventory',
    'the API inventory from live traffic: list, diff with a spec, export OpenAPI 3.1 (docs/inventory.md)',
    INVENTORY_USAGE,
    async () => (await import('./commands/inventory/inventory.js')).inventoryCommand,
  ),
  lazyCommand(
    'scan',
    'test a live API for the OWASP API Top 10 (docs/cli/scan.md)',
    SCAN_USAGE,
    async () => (await import('./commands/scan.js')).scanCommand,
  ),
  lazyCommand(
    'secrets',
    'find leaked API keys and credentials in files, archives, git history or stdin (docs/secrets.md)',
    SECRETS_USAGE,
    async () => (await import('./commands/secrets/secrets.js')).secretsCommand,
  ),
  lazyCommand(
    'lint',
    'audit an OpenAPI/Swagger spec for security design flaws; --gateway checks a config against it (docs/cli/lint.md)',
    LINT_USAGE,
    async () => (await import('./commands/lint/lint.js')).lintCommand,
  ),
]

export function helpText(commands: readonly CliCommand[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`)
  return `portcullis — API security gateway, scanner, linter and secret detection

Usage: portcullis COMMAND [options]     (portcullis help COMMAND, or COMMAND --help, for its options)

Commands:
${lines.join('\n')}
  ${'help'.padEnd(width)}help COMMAND: that command's usage
  ${'--version'.padEnd(width)}the version

Exit codes: 0 ok, 1 findings at or above --fail-on, 2 usage or config error,
3 scan target unreachable, 70 internal error.
Docs: https://github.com/portcullis-security/portcullis/tree/main/docs (also in the package's docs/)`
}

function commandNamed(name: string): CliCommand {
  const c = COMMANDS.find((x) => x.name === name)
  if (c === undefined) throw new UsageError(`unknown command "${name}"; see portcullis --help`)
  return c
}

/** True when the arguments ask for help (before a `--` that ends the options). */
function asksHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false
    if (a === '--help' || a === '-h') return true
  }
  return false
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case undefined:
      process.stderr.write(`${helpText()}\n`)
      return EXIT.USAGE
    case '-h':
    case '--help':
      process.stdout.write(`${helpText()}\n`)
      return EXIT.OK
    case 'help': {
      if (rest[0] === undefined) {
        process.stdout.write(`${helpText()}\n`)
        return EXIT.OK
      }
      process.stdout.write(`${commandNamed(rest[0]).usage}\n`)
      return EXIT.OK
    }
    case '-v':
    case '--version': {
      const { readFileSync } = await import('node:fs')
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
        version: string
      }
      process.stdout.write(`${pkg.version}\n`)
      return EXIT.OK
    }
  }
  const command = commandNamed(cmd)
  if (asksHelp(rest)) {
    process.stdout.write(`${command.usage}\n`)
    return EXIT.OK
  }
  return command.run(rest)
}

/** Runs the CLI and sets the process exit code. The only top-level catch. */
export async function run(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv)
  } catch (err) {
    process.exitCode = reportError(err)
  }
}

/** Writes what the user needs to know about `err` to stderr and returns the exit code. */
export function reportError(err: unknown): number {
  const e = err as Error & { code?: string }
  if (e instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`portcullis: ${e.message}\n`)
    return EXIT.USAGE
  }
  if (e instanceof ConfigError || e.name === 'ConfigError') {
    process.stderr.write(`portcullis: ${e.message}\n`)
    return EXIT.USAGE
  }
  if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
    process.stderr.write(`portcullis: cannot listen: ${e.message}\n`)
    return EXIT.USAGE
  }
  process.stderr.write(`portcullis: internal error (please report it): ${e?.stack ?? String(err)}\n`)
  return EXIT.CRASH
}
