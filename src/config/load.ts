/**
 * Config loading: parse (YAML or JSON) → substitute `${env:NAME}` / `${file:PATH}` → validate
 * against the schema, filling defaults → cross-field rules → deep-freeze. Every problem is
 * collected, so a user sees all of them at once, each with file, line, path, expected and found.
 */

import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { Ajv } from 'ajv'
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml'
import { type DurationRewrite, normalizeDurations } from './durations.js'
import { linePosAt, MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, tooDeepAt } from './bounds.js'
import { ajvProblems, describe, formatPath, type Problem, type Seg } from './messages.js'
import { secretLikeName } from './redact.js'
import { plainSecrets, rules } from './rules.js'
import { GatewayConfig } from './schema.js'
import { substitute } from './substitute.js'

export { formatPath } from './messages.js'
export { MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH } from './bounds.js'

export interface ConfigProblem {
  file: string
  /** Path in the document, e.g. `routes[0].upstream`; '' for the whole document. */
  path: string
  line?: number
  column?: number
  message: string
}

export interface LoadResult {
  config: GatewayConfig | undefined
  errors: ConfigProblem[]
  warnings: ConfigProblem[]
  /** Paths whose values came from ${env:} or ${file:}: treated as secrets (never printed). */
  secretPaths: ReadonlySet<string>
  /** Where a path is in the document, for problems found after loading (policy checks). */
  locate?: (path: readonly (string | number)[]) => { line?: number; column?: number }
  /**
   * A path of the loaded config as the document writes it: a duration field rewritten from
   * `timeout: 5s` is `timeoutMs` in the config and `timeout` in the document.
   */
  asWritten?: (path: readonly (string | number)[]) => (string | number)[]
  /** Removes every secret value of the document from a message. */
  scrub?: (message: string) => string
}

// verbose: ajv sets `parentSchema` on errors only in verbose mode (used for the unknown-field hint).
// code.optimize off: ajv's code optimizer counts identifiers in plain objects keyed by name, and
// on a schema this size that leaves V8's shared object shapes in a state that slows every
// request the process serves afterwards (measured: the same bare proxy code costs ~30% more CPU
// per request in a process that compiled this schema optimized; see docs/benchmarks.md). The
// validator runs at load and reload only, where the unoptimized code costs nothing that matters.
const ajv = new Ajv({
  allErrors: true,
  useDefaults: true,
  strict: false,
  coerceTypes: false,
  verbose: true,
  code: { optimize: false },
})
const validate = ajv.compile<GatewayConfig>(GatewayConfig)

/**
 * Members whose values are secrets in every config (admin.token, stores.redis.password, audit
 * sinks' tokens, webhook secrets, an introspection client secret, a JWK that may hold an HMAC
 * secret): their values are removed from every message, wherever they appear.
 */
const SECRET_MEMBERS = new Set(['token', 'password', 'sentinelPassword', 'secret', 'clientSecret', 'jwk'])

/**
 * Records the paths of members whose name looks like a secret's (config/redact.ts'
 * `secretLikeName`: a message never shows their value), and the values of SECRET_MEMBERS (scrubbed
 * from every message). Policy ids (the members of a `policies` map) are not judged by name.
 */
function inlineSecrets(
  node: unknown,
  segs: Seg[],
  paths: Set<string>,
  values: Set<string>,
  under: 'no' | 'name' | 'value' = 'no',
): void {
  if (typeof node === 'string') {
    if (under !== 'no') paths.add(formatPath(segs))
    if (under === 'value' && node.length >= 4) values.add(node)
    return
  }
  if (node === null || typeof node !== 'object') return
  const isPolicyMap = segs[segs.length - 1] === 'policies'
  if (Array.isArray(node)) {
    node.forEach((v, i) => {
      inlineSecrets(v, [...segs, i], paths, values, under)
    })
    return
  }
  for (const [k, v] of Object.entries(node)) {
    let next = under
    if (next !== 'value' && !isPolicyMap) {
      if (SECRET_MEMBERS.has(k) && typeof v === 'string') next = 'value'
      else if (next === 'no' && secretLikeName(k)) next = 'name'
    }
    if (next !== 'no') paths.add(formatPath([...segs, k]))
    inlineSecrets(v, [...segs, k], paths, values, next)
  }
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o)
    for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv
  /**
   * The document is a config object built in code (the embedding API, `createGateway({...})`),
   * not a file: its duration fields take the schema's unit-named form (`timeoutMs: 5000`), which
   * a config file may not use (config/durations.ts).
   */
  programmatic?: boolean
}

/** Problems sorted by position (stable; those without a position first), as a reader scans. */
function inDocumentOrder(problems: ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))
}

function isUnder(path: readonly Seg[], prefix: readonly Seg[]): boolean {
  return prefix.length <= path.length && prefix.every((s, i) => String(s) === String(path[i]))
}

/** Loads a config from text. `file` is used for messages and relative paths. Never throws. */
export function loadConfigText(text: string, file: string, opts: LoadOptions = {}): LoadResult {
  try {
    return load(text, file, opts)
  } catch (err) {
    // Defence in depth: whatever a hostile document does to a library, it is a config error.
    return {
      config: undefined,
      errors: [{ file, path: '', message: `cannot load the config: ${(err as Error).message}` }],
      warnings: [],
      secretPaths: new Set(),
    }
  }
}

function load(text: string, file: string, opts: LoadOptions): LoadResult {
  const secretPaths = new Set<string>()
  const fail = (message: string, pos: { line?: number; column?: number } = {}): LoadResult => ({
    config: undefined,
    errors: [{ file, path: '', ...pos, message }],
    warnings: [],
    secretPaths,
  })
  const bytes = Buffer.byteLength(text)
  if (bytes > MAX_CONFIG_BYTES) {
    return fail(`the document is ${bytes} bytes; the limit is ${MAX_CONFIG_BYTES} bytes`)
  }
  const deep = tooDeepAt(text, MAX_CONFIG_DEPTH)
  if (deep !== -1) {
    return fail(`the document nests deeper than ${MAX_CONFIG_DEPTH} levels`, linePosAt(text, deep))
  }
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const pos = (offset: number) => {
    const p = lineCounter.linePos(offset)
    return { line: p.line, column: p.col }
  }
  // The key node of the member at `segs` (as written), if the document has one there.
  const keyNode = (segs: readonly Seg[]): { range?: [number, number, number]; type?: string } | undefined => {
    if (segs.length === 0) return undefined
    const parent = doc.getIn(segs.slice(0, -1), true)
    const last = segs[segs.length - 1]
    if (!isMap(parent)) return undefined
    const pair = parent.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(last))
    return pair?.key as { range?: [number, number, number]; type?: string } | undefined
  }
  const locate = (segs: readonly Seg[], atKey = false): { line?: number; column?: number } => {
    if (atKey) {
      const range = keyNode(segs)?.range
      if (range) return pos(range[0])
    }
    for (let n = segs.length; n >= 0; n--) {
      const node = doc.getIn(segs.slice(0, n), true) as { range?: [number, number, number] } | undefined
      if (node?.range) return pos(node.range[0])
    }
    return {}
  }
  const secretValues = new Set<string>()
  // Substituted values never appear in a message, whatever rule produced it.
  const scrub = (message: string): string => {
    let out = message
    for (const v of [...secretValues].sort((a, b) => b.length - a.length)) {
      if (v.length >= 4) out = out.split(v).join('(secret)')
    }
    return out
  }
  const toProblem = (p: Problem): ConfigProblem => ({
    file,
    path: formatPath(p.segs),
    ...locate(p.segs, p.atKey),
    message: scrub(p.message),
  })
  if (doc.errors.length > 0) {
    return {
      config: undefined,
      errors: doc.errors.map((e) => ({
        file,
        path: '',
        ...(e.linePos?.[0] ? { line: e.linePos[0].line, column: e.linePos[0].col } : pos(e.pos[0])),
        message: e.message.split('\n')[0] ?? e.message,
      })),
      warnings: [],
      secretPaths,
    }
  }
  let raw: unknown
  try {
    raw = doc.toJS({ maxAliasCount: 50 })
  } catch (err) {
    // yaml throws (ReferenceError) on alias amplification ("billion laughs").
    return fail((err as Error).message)
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return fail(`expected a mapping at the top level, found ${describe(raw, false)}`)
  }
  const baseDir = dirname(resolve(file))
  const substProblems: Problem[] = []
  const data = substitute(raw, [], {
    baseDir,
    env: opts.env ?? process.env,
    problems: substProblems,
    secretPaths,
    secretValues,
    ancestors: new Set(),
  })
  // Values written inline under a secret-like name (token, password, secret, …: the admin API's
  // redaction rule, config/redact.ts) are secrets too: never in a message, even when invalid.
  const sensitive = new Set(secretPaths)
  inlineSecrets(data, [], sensitive, secretValues)
  // Durations written `timeout: 5s` become the schema's `timeoutMs: 5000` (config/durations.ts).
  const durationProblems: Problem[] = []
  const rewrites = normalizeDurations(data, GatewayConfig, durationProblems, {
    programmatic: opts.programmatic === true,
    jsonStyle: (segs) => keyNode(segs)?.type === 'QUOTE_DOUBLE',
  })
  const asWritten = (p: Problem): Problem => writtenAs(p, rewrites)
  const errors: ConfigProblem[] = [...substProblems, ...durationProblems].map(toProblem)
  // A value whose substitution failed is reported once, not again for being empty.
  const unreported = (p: Problem) =>
    ![...substProblems, ...durationProblems].some((s) => isUnder(p.segs, s.segs))
  if (!validate(data)) {
    const schemaProblems = ajvProblems(validate.errors ?? [], data, sensitive)
    for (const p of schemaProblems.filter(unreported)) errors.push(toProblem(asWritten(p)))
    // The cross-field rules too, so that every problem shows at once. They assume a valid
    // shape: best effort, and nothing about a value the schema already rejected.
    let ruleErrors: Problem[] = []
    try {
      ruleErrors = rules(data as GatewayConfig, baseDir).errors
    } catch {
      // a shape the schema already reported
    }
    for (const p of ruleErrors) {
      if (unreported(p) && !schemaProblems.some((s) => isUnder(p.segs, s.covers ?? s.segs)))
        errors.push(toProblem(asWritten(p)))
    }
    return { config: undefined, errors: inDocumentOrder(errors), warnings: [], secretPaths }
  }
  const r = rules(data, baseDir)
  errors.push(...r.errors.filter(unreported).map(asWritten).map(toProblem))
  if (durationProblems.length > 0 && errors.length === 0) errors.push(...durationProblems.map(toProblem))
  const warnings = [...r.warnings, ...plainSecrets(data, secretPaths)].map(asWritten).map(toProblem)
  if (errors.length > 0)
    return {
      config: undefined,
      errors: inDocumentOrder(errors),
      warnings: inDocumentOrder(warnings),
      secretPaths,
    }
  return {
    config: deepFreeze(data),
    errors,
    warnings: inDocumentOrder(warnings),
    secretPaths,
    locate: (segs) => locate(segs as Seg[]),
    asWritten: (segs) => writtenAs({ segs: [...segs], message: '' }, rewrites).segs,
    scrub,
  }
}

/**
 * A problem about a field the config wrote as a duration (`timeout: 10ms`, stored as `timeoutMs`):
 * located and named as written, the value quoted.
 */
function writtenAs(p: Problem, rewrites: readonly DurationRewrite[]): Problem {
  const r = rewrites.find((w) => isUnder(p.segs, w.segs))
  if (r === undefined) return p
  const segs = [...p.segs]
  segs[r.segs.length - 1] = r.written
  return { ...p, segs, message: `${p.message} (${r.written}: ${r.value})` }
}

/** Loads a config file. Never throws for bad content; an unreadable file is one error. */
export function loadConfigFile(file: string, opts: LoadOptions = {}): LoadResult {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    return {
      config: undefined,
      errors: [
        {
          file,
          path: '',
          // e.g. "ENOENT: no such file or directory" (without the repeated path)
          message: `cannot read the file: ${(err as Error).message.replace(/, \w+ '.*'$/s, '')}`,
        },
      ],
      warnings: [],
      secretPaths: new Set(),
    }
  }
  return loadConfigText(text, file, opts)
}

/** `file:line:col path: message` */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}:${p.column}` : p.file
  return `${where}${p.path ? ` ${p.path}` : ''}: ${p.message}`
}
