/** Bounds checked before a config document is parsed: its size and its nesting depth. */
import { Lexer } from 'yaml'

/** Larger documents are refused before parsing: a config is kilobytes, not megabytes. */
export const MAX_CONFIG_BYTES = 1024 * 1024
/**
 * Deeper documents are refused before parsing. The YAML composer recurses once per level and a
 * stack overflow inside it can take the whole process down, so the depth is bounded first.
 */
export const MAX_CONFIG_DEPTH = 200

/**
 * A cheap upper bound of the nesting depth, from the YAML lexer (which does not recurse): flow
 * brackets open, plus block indentation and `- ` / `? ` indicators on the line (a block level
 * takes at least one column or one indicator; a sequence under a key may share its column, hence
 * the factor 2). Block scalar contents and quoted strings are single tokens and never count.
 * Returns the offset where the bound first exceeds `limit`, or -1.
 */
export function tooDeepAt(text: string, limit: number): number {
  let offset = 0
  let flow = 0
  let indent = 0
  let indicators = 0
  let lineStart = true
  let skipScalar = false
  for (const tok of new Lexer().lex(text)) {
    // Control tokens mark the next token and take no room in the source.
    if (tok === '\x02' || tok === '\x18') continue
    if (tok === '\x1f') {
      skipScalar = true
      continue
    }
    const at = offset
    offset += tok.length
    if (skipScalar) {
      skipScalar = false
      lineStart = false
      continue
    }
    const c = tok[0]
    if (tok === '\n' || tok === '\r\n') {
      lineStart = true
      indent = 0
      indicators = 0
      continue
    }
    if (c === ' ' && lineStart) indent = tok.length
    else if (c === '[' || c === '{') flow++
    else if ((c === ']' || c === '}') && flow > 0) flow--
    else if ((tok === '-' || tok === '?') && flow === 0) indicators++
    lineStart = false
    if (flow + 2 * (indent + indicators) + 1 > limit) return at
  }
  return -1
}

export function linePosAt(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let lineStart = 0
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    lineStart = i + 1
  }
  return { line, column: offset - lineStart + 1 }
}
