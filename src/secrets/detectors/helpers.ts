/**
 * Small builders for detector data, so that the tables read as formats rather than regex
 * plumbing. Every builder returns a plain `Detector`: the data is what the engine, the docs
 * generator and user files share.
 */
import type { Detector, Severity, ValidatorId } from '../types.js'

/** Character after a token: not one of its characters (or the end of the window). */
export const END = '(?:[^A-Za-z0-9_-]|$)'
/** The same for tokens over the base64 alphabet. */
export const END64 = '(?:[^A-Za-z0-9+/=_-]|$)'
/** An assignment between a name and a value: `=`, `:`, `:=`, `=>`, quotes and spaces around. */
export const ASSIGN = `["'\`]?[ \\t]*(?:=|:|:=|=>|,)[ \\t]*["'\`]?`

/**
 * The gate of a `name = value` detector: after the name, only name characters, quotes and blanks
 * until `=`, `:` or `,` (what `ASSIGN` requires). `verifyToken(`, `tokens.map` fail it at once.
 * It starts at the keyword's last character, so a keyword ending with the `=` (`pan=`) passes.
 */
export const ASSIGN_GATE = { skip: `[A-Za-z0-9_.\\-"'\` \\t]`, find: '[=:,]', fromLast: true }

/** What may come between an assignment's first character and its value (`ASSIGN`'s rest). */
export const AFTER_ASSIGN = `[=> \\t"'\`]`

/**
 * The class a pattern's first character must be in, when the pattern starts with a bracket
 * expression repeated at least once (`[A-Za-z0-9]{36}` → `[A-Za-z0-9]`); undefined otherwise.
 */
export function firstClass(pattern: string): string | undefined {
  return /^(\[(?:[^\]\\]|\\.)+\])(?:\{[1-9][0-9]*(?:,[0-9]*)?\}|\+)/.exec(pattern)?.[1]
}

/** ASSIGN_GATE, with a second stage on the value's first character when the value pattern says it. */
export function assignGate(value: string): NonNullable<Detector['gate']> {
  const first = firstClass(value)
  return first === undefined ? ASSIGN_GATE : { ...ASSIGN_GATE, next: { skip: AFTER_ASSIGN, find: first } }
}

/** Escapes a literal for a pattern. */
export function lit(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')
}

interface Common {
  severity?: Severity
  validator?: ValidatorId
  minEntropy?: number
  mixed?: boolean
  description?: string
  specificity?: number
  after?: number
}

/**
 * A token with a fixed public prefix (`ghp_` + 36 base62): the prefix is the keyword and the
 * match starts at it. `body` is the pattern after the prefix; `maxLen` its longest length.
 */
export function prefixed(
  id: string,
  name: string,
  provider: string,
  prefix: string | string[],
  body: string,
  maxLen: number,
  docs: string,
  o: Common & { end?: string; caseInsensitivePrefix?: boolean; boundary?: boolean } = {},
): Detector {
  const prefixes = Array.isArray(prefix) ? prefix : [prefix]
  const alt = prefixes.map(lit).join('|')
  const longest = Math.max(...prefixes.map((p) => p.length))
  // The body's first character: when the body starts with a bracket expression repeated at least
  // once, a keyword followed by anything else cannot start a match (`key-value`, `sk_live_xxx…`).
  const first = firstClass(body)
  return {
    id,
    name,
    provider,
    keywords: prefixes,
    pattern: `(${o.caseInsensitivePrefix ? '(?i:' : '(?:'}${alt})${body})${o.end ?? END}`,
    ...(first !== undefined ? { gate: { find: first } } : {}),
    ...(o.caseInsensitivePrefix ? {} : { exactKeyword: true }),
    after: o.after ?? longest + maxLen + 2,
    ...(o.boundary === false ? { boundary: false } : {}),
    severity: o.severity ?? 'high',
    docs,
    ...pick(o),
  }
}

/**
 * A value announced by a name (`HEROKU_API_KEY=…`, `"datadog_api_key": "…"`): the name is the
 * keyword (matched case-insensitively, anywhere in an identifier), the value the secret.
 * `name` is a pattern for what may follow the keyword before the assignment (default any
 * identifier characters).
 */
export function keyed(
  id: string,
  title: string,
  provider: string,
  keywords: string[],
  value: string,
  docs: string,
  o: Common & { nameTail?: string; end?: string } = {},
): Detector {
  const alt = keywords.map(lit).join('|')
  const tail = o.nameTail ?? '[A-Za-z0-9_.-]{0,32}'
  // The gate holds when the name and its tail are made of name characters (so the first other
  // character after the keyword is the assignment's).
  const gated =
    keywords.every((k) => /^[A-Za-z0-9_.-]+$/.test(k)) && !/[^A-Za-z0-9_.\-{}(?:|)[\],\\]/.test(tail)
  return {
    id,
    name: title,
    provider,
    keywords,
    pattern: `(?i:${alt})${tail}${ASSIGN}(${value})${o.end ?? END}`,
    ...(gated ? { gate: assignGate(value) } : {}),
    boundary: false,
    after: o.after ?? 200,
    severity: o.severity ?? 'high',
    docs,
    ...pick(o),
  }
}

function pick(o: Common): Partial<Detector> {
  const out: Partial<Detector> = {}
  if (o.validator !== undefined) out.validator = o.validator
  if (o.minEntropy !== undefined) out.minEntropy = o.minEntropy
  if (o.mixed !== undefined) out.mixed = o.mixed
  if (o.description !== undefined) out.description = o.description
  if (o.specificity !== undefined) out.specificity = o.specificity
  return out
}

/** A UUID (lower or upper case hex). */
export const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}'
