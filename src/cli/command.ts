/**
 * The shape of a CLI command and the errors the CLI's one top-level catch knows. A command is a
 * row of the table in `main.ts`: its module is imported only when the command runs.
 */

/** A mistake in how the command was called (unknown flag, missing argument): exit 2, no stack. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/**
 * A config or input file that cannot be used: exit 2, every problem listed, no stack. `problems`
 * are already formatted (`file:line:col path: message`).
 */
export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly problems: readonly string[]
  constructor(problems: readonly string[] | string) {
    const list = typeof problems === 'string' ? [problems] : problems
    super(`invalid config:\n  ${list.join('\n  ')}`)
    this.problems = list
  }
}

/**
 * Exit codes of every command. `FINDINGS` is what scan, lint and secrets return when they found
 * something at or above `--fail-on`; a crash never exits with it.
 */
export const EXIT = {
  OK: 0,
  FINDINGS: 1,
  USAGE: 2,
  /** The scanner's target did not answer (or answered mostly with errors): no verdict. */
  UNREACHABLE: 3,
  /** An unexpected error (a bug): the stack goes to stderr. EX_SOFTWARE of sysexits.h. */
  CRASH: 70,
} as const

/** One CLI command. */
export interface CliCommand {
  /** The word after `portcullis`. */
  name: string
  /** One line for `portcullis --help`. */
  summary: string
  /** Full usage text, printed by `portcullis <name> --help` and `portcullis help <name>`. */
  usage: string
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  run(args: string[]): Promise<number>
}

/**
 * Declares a command whose implementation is imported only when it runs (startup stays fast,
 * and `--help` never loads the gateway).
 */
export function lazyCommand(
  name: string,
  summary: string,
  usage: string,
  load: () => Promise<(args: string[]) => Promise<number>>,
): CliCommand {
  return {
    name,
    summary,
    usage,
    async run(args) {
      const fn = await load()
      return fn(args)
    },
  }
}
