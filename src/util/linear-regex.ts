/**
 * Regular expressions that come from configuration or from an OpenAPI document (spec `pattern`s,
 * path templates with several parameters in one segment, policy conditions) run against client
 * input. JavaScript's backtracking engine can take exponential time on some of them (`^(a+)+$`
 * against `aaaa…b`): one request would stall the event loop, so every gateway worker. These run
 * on RE2JS instead, a port of RE2 whose matching time is linear in the input, whatever the
 * pattern. The price: no backreferences and no lookaround; such a pattern is refused when it is
 * compiled (at startup), never at request time. Patterns of a small class proved linear for a
 * backtracking engine (anchored, flat and deterministic: deterministic-regex.ts) run on V8's own
 * engine instead, after RE2JS has accepted them: the same answers, many times faster.
 */
import { RE2JS } from 're2js'
import { isDeterministic } from './deterministic-regex.js'

/** A compiled linear-time pattern: what ajv's `code.regExp` engine and our own callers need. */
export interface LinearRegExp {
  /** The pattern as written (JavaScript syntax). */
  readonly source: string
  readonly flags: string
  /** True when the pattern matches anywhere in `input` (like RegExp.prototype.test, no `g` state). */
  test(input: string): boolean
  /** The capture groups of the first match (index 0: the whole match), or null when none matches. */
  exec(input: string): (string | null)[] | null
  /** `/source/flags`: ajv keys its compiled patterns by this. */
  toString(): string
}

/** Thrown for a pattern that RE2 cannot run (backreferences, lookaround) or that is malformed. */
export class LinearRegExpError extends SyntaxError {
  override readonly name = 'LinearRegExpError'
}

const FLAG_BITS: Record<string, number> = {
  i: RE2JS.CASE_INSENSITIVE,
  s: RE2JS.DOTALL,
  m: RE2JS.MULTILINE,
  u: 0, // RE2 matches code points already
}

/**
 * Compiles a JavaScript-syntax pattern for linear-time matching. Flags: `i`, `s`, `m`, `u`;
 * others (`g`, `y`, `d`, `v`) are refused: they make no sense for a yes/no check.
 *
 * @example
 * const re = compileLinear('^[a-z0-9-]{1,64}$')
 * re.test('order-42') // true
 * compileLinear('^(a+)+$').test('a'.repeat(100_000) + 'b') // false, in milliseconds
 */
export function compileLinear(source: string, flags = ''): LinearRegExp {
  let bits = 0
  for (const f of flags) {
    const bit = FLAG_BITS[f]
    if (bit === undefined) throw new LinearRegExpError(`unsupported regular expression flag "${f}"`)
    bits |= bit
  }
  let re: RE2JS
  try {
    re = RE2JS.compile(RE2JS.translateRegExp(source), bits)
  } catch (err) {
    // RE2JS messages name the construct (e.g. "invalid or unsupported Perl syntax: `(?=`"); they
    // quote the pattern, which is configuration, not a secret.
    throw new LinearRegExpError(
      `pattern not supported by the linear-time engine (no backreferences or lookaround): ${(err as Error).message}`,
    )
  }
  const text = `/${source}/${flags}`
  // A pattern of the class proved linear for a backtracking engine (deterministic-regex.ts) runs on
  // V8's engine: the same ECMAScript semantics, many times faster on short values. RE2JS has
  // compiled it above all the same, so a pattern is accepted or refused the same way either way.
  const fast = isDeterministic(source, flags) ? nativeOf(source, flags) : undefined
  const engine: Pick<LinearRegExp, 'test' | 'exec'> =
    fast !== undefined
      ? {
          test: (input) => fast.test(input),
          exec: (input) => {
            const m = fast.exec(input)
            return m === null ? null : Array.from(m, (g) => g ?? null)
          },
        }
      : {
          test: (input) => re.test(input),
          exec: (input) => {
            const m = re.matcher(input)
            if (!m.find()) return null
            const groups: (string | null)[] = []
            for (let i = 0; i <= m.groupCount(); i++) groups.push(m.group(i))
            return groups
          },
        }
  return { source, flags, ...engine, toString: () => text }
}

function nativeOf(source: string, flags: string): RegExp | undefined {
  try {
    return new RegExp(source, flags)
  } catch {
    return undefined
  }
}

/** True when `compileLinear(source, flags)` runs on V8's engine (tests, benchmarks). */
export function runsNative(source: string, flags = ''): boolean {
  return isDeterministic(source, flags) && nativeOf(source, flags) !== undefined
}

/**
 * ajv's `code.regExp` option: schema `pattern` and `patternProperties` keywords compile with
 * {@link compileLinear}. (`code` names the engine in generated standalone code, which we do not use.)
 */
export const ajvLinearRegExp: ((pattern: string, u: string) => LinearRegExp) & { code: string } =
  Object.assign((pattern: string, u: string) => compileLinear(pattern, u), { code: 'compileLinear' })
