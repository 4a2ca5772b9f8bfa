/**
 * The secret scanner's data model: a detector is data (what to look for and how to confirm it),
 * a finding is where one matched. Findings carry the secret itself in memory only: every output
 * (CLI, logs, audit, SARIF) goes through `redactValue` or a hash, never the value in clear.
 */

export type Severity = 'critical' | 'high' | 'medium' | 'low'

/** Names of the built-in validators (see validators.ts). */
export type ValidatorId =
  | 'github-crc32'
  | 'npm-crc32'
  | 'portcullis-crc32'
  | 'jwt'
  | 'pem'
  | 'luhn'
  | 'basic-auth-b64'
  | 'docker-auth-b64'
  | 'k8s-secret-value'
  | 'not-identifier'
  | 'not-reference'
  | 'not-name'

/** A detector, as data. */
export interface Detector {
  /** Stable kebab-case id (`github-pat`): findings, baselines and allow rules name it. */
  id: string
  /** Human name. */
  name: string
  /** Who issues the credential (`GitHub`, `AWS`, `Generic`). */
  provider: string
  /**
   * Literals (matched case-insensitively) of which at least one occurs in or right before every
   * match. Only detectors whose keywords occur in an input run their pattern.
   */
  keywords: readonly string[]
  /**
   * A pattern in JavaScript syntax, run by the linear-time engine (RE2). It must match starting
   * at a keyword occurrence unless `before` says how far earlier a match may start.
   */
  pattern: string
  /** Capture group holding the secret (default: 1 when the pattern has a group, else 0). */
  secretGroup?: number
  /**
   * How many characters before the keyword's start a match may begin (default 0: the match
   * starts at the keyword). Patterns whose keyword sits inside the secret (`…T3BlbkFJ…`) set it.
   */
  before?: number
  /** Longest match, counted from the keyword's start (default 256). Bounds the work per keyword hit. */
  after?: number
  /**
   * A cheap necessary condition tested at a keyword occurrence before the pattern runs: from the
   * keyword's end, characters of the class `skip` (default none) may follow, and a character of
   * the class `find` must come before any other character and within the window (`after`). Each class is a
   * bracket expression (`[=:,]`); it must follow from the pattern (the corpus test checks recall).
   * With `fromLast` the scan starts at the keyword's last character instead, for keywords that
   * may end with the `find` character themselves (`pan=`). `next` is a second stage from the
   * character after the one found: `skip` characters, then one of `find` (the first character of
   * the value after `=`). Classes are written without `\s` (RE2's `\s` is `[\t\n\f\r ]`, the
   * table is built by JavaScript's RegExp, whose `\s` is wider).
   * `name = value` detectors set it (`[=:,]` after the name), URL credentials too (`@` before `/`).
   */
  gate?: { skip?: string; find: string; fromLast?: boolean; next?: { skip?: string; find: string } }
  /**
   * The pattern's literal prefix is case-sensitive: a keyword occurrence counts only when it has
   * one of the keywords' exact case (`API-` runs the pattern, `api-` does not). Default false.
   */
  exactKeyword?: boolean
  /** Require no letter or digit right before the match (a token boundary). Default true. */
  boundary?: boolean
  /** A confirmation step on the secret (checksums, structure). */
  validator?: ValidatorId
  /**
   * A pattern (linear-time engine) tested on the whole match: when it matches, the candidate is
   * dropped (`access_key_id = …` is an identifier, not a secret).
   */
  exclude?: string
  /**
   * Longest secret, checked after the match: lets a pattern say `{16,}` where it means
   * `{16,256}` (the window bounds the match anyway), which keeps its program small enough for
   * RE2's bit-state matcher instead of its NFA.
   */
  maxLength?: number
  /** Minimum Shannon entropy of the secret, in bits per character (generic rules). */
  minEntropy?: number
  /** Require both a letter and a digit in the secret (generic rules). */
  mixed?: boolean
  severity: Severity
  /** Where the provider documents the credential (or how to revoke it). */
  docs: string
  /** Short description for the docs table. */
  description?: string
  /**
   * When two findings overlap, the more specific detector wins (provider-specific 2 (default),
   * structural 1, generic 0).
   */
  specificity?: number
  /** Set for detectors loaded from a user file. */
  custom?: boolean
}

/** Where an encoded span came from, outermost first (for nested decoding). */
export type Encoding = 'base64' | 'percent' | 'json-escape'

/** One secret found in one input. Offsets are in the input's units (bytes for a Buffer). */
export interface Match {
  detector: Detector
  /** Offset of the first unit of the match (of the encoded span when decoded). */
  start: number
  end: number
  /** The secret (decoded). In memory only. */
  secret: string
  /** The encodings peeled off to find it, outermost first; empty for a plain match. */
  encodings: Encoding[]
}

/** Counters of the work a scan did: tests bound them, the bench reports them. */
export interface ScanStats {
  /** Units (bytes or chars) examined by the keyword pass, decoded inputs included. */
  bytesScanned: number
  /** Keyword occurrences seen. */
  keywordHits: number
  /** Pattern executions. */
  regexRuns: number
  /** Units handed to the pattern engine, summed over executions (an upper bound of its work). */
  regexUnits: number
  /** Characters the gates looked at (see `Detector.gate`); each is looked at once per detector. */
  gateUnits: number
  /** Decoded spans rescanned. */
  decodes: number
  /** True when the work budget ran out before the input was fully examined. */
  truncated: boolean
}

export function emptyStats(): ScanStats {
  return {
    bytesScanned: 0,
    keywordHits: 0,
    regexRuns: 0,
    regexUnits: 0,
    gateUnits: 0,
    decodes: 0,
    truncated: false,
  }
}
