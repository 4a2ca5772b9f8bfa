/**
 * Errors of a spec that cannot be loaded. Each names the file, the JSON pointer in it (RFC 6901)
 * and the problem, so `portcullis config check`, the scanner and the linter can print them as
 * `file#/pointer: problem`.
 */
export interface SpecProblem {
  /** Absolute path of the file (or the remote URL of a refused `$ref`). */
  file: string
  /** JSON pointer inside that file, '' for the whole document. */
  pointer: string
  message: string
}

export class SpecError extends Error {
  readonly problems: readonly SpecProblem[]

  constructor(problems: SpecProblem[]) {
    super(problems.map(formatProblem).join('\n'))
    this.name = 'SpecError'
    this.problems = problems
  }
}

export function formatProblem(p: SpecProblem): string {
  return `${p.file}#${p.pointer}: ${p.message}`
}

/** Throws a SpecError with one problem. */
export function specFail(file: string, pointer: string, message: string): never {
  throw new SpecError([{ file, pointer, message }])
}

/** RFC 6901: one reference token escaped. */
export function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1')
}

export function joinPointer(base: string, ...tokens: (string | number)[]): string {
  let out = base
  for (const t of tokens) out += `/${escapePointerToken(String(t))}`
  return out
}
