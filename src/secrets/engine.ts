/**
 * The secret scanning engine: keyword pass → anchored patterns → validators → entropy → allowlist,
 * then nested decoding (base64, percent, JSON escapes; two levels). Patterns run on RE2 (re2js):
 * linear in the text they see, and they only see a bounded window at each keyword occurrence, so
 * the work of a scan is bounded by (keyword hits × window) and capped by a budget proportional to
 * the input (`ScanStats.truncated` says when it ran out).
 */
import { RE2JS } from 're2js'
import { allowedValue, EXAMPLE_KEY_HASHES } from './allowlist.js'
import { base64Spans, decodeSpan, type EncodedSpan, jsonEscapeSpans, percentSpans } from './decode.js'
import { KeywordAutomaton } from './prefilter.js'
import { emptyStats, type Detector, type Match, type ScanStats } from './types.js'
import { hasLetterAndDigit, runValidator, shannonEntropy } from './validators.js'

interface Compiled {
  d: Detector
  re: RE2JS
  exclude: RE2JS | undefined
  group: number
  before: number
  after: number
  boundary: boolean
  specificity: number
}

export interface ScanOptions {
  /** Decode base64 / percent / JSON escapes and rescan (default true). */
  decode?: boolean
  /**
   * Most units handed to the pattern engine, as a multiple of the input's length (default 64),
   * plus a constant 1 MiB. Past it the scan stops with `stats.truncated`.
   */
  budgetFactor?: number
}

export interface ScanResult {
  matches: Match[]
  stats: ScanStats
}

/** Thrown when a detector cannot be compiled; names the detector. */
export class DetectorError extends Error {
  override name = 'DetectorError'
}

const MAX_DEPTH = 2
const WORD = (() => {
  const t = new Uint8Array(256)
  for (let c = 0; c < 256; c++) if (/[A-Za-z0-9]/.test(String.fromCharCode(c))) t[c] = 1
  return t
})()

/**
 * Compiles detectors once; `scan` and `mask` are then safe to call on any input.
 *
 * @example
 * const scanner = new SecretScanner(BUILTIN_DETECTORS)
 * scanner.scan(Buffer.from(text)).matches.map((m) => m.detector.id)
 * scanner.mask('GET /x?token=…') // the token replaced by `ghp_***`
 */
export class SecretScanner {
  readonly detectors: readonly Detector[]
  private readonly compiled: Compiled[]
  private readonly automaton: KeywordAutomaton
  /** For each keyword: the detectors (indexes into `compiled`) that use it. */
  private readonly byKeyword: number[][]
  private readonly exampleHashes: ReadonlySet<string>

  constructor(detectors: readonly Detector[], opts: { exampleHashes?: ReadonlySet<string> } = {}) {
    this.detectors = detectors
    this.exampleHashes = opts.exampleHashes ?? EXAMPLE_KEY_HASHES
    const ids = new Set<string>()
    const keywordIndex = new Map<string, number>()
    this.byKeyword = []
    this.compiled = detectors.map((d, di) => {
      if (ids.has(d.id)) throw new DetectorError(`detector ${d.id}: duplicate id`)
      ids.add(d.id)
      if (d.keywords.length === 0) throw new DetectorError(`detector ${d.id}: at least one keyword`)
      let re: RE2JS
      let exclude: RE2JS | undefined
      try {
        re = RE2JS.compile(RE2JS.translateRegExp(d.pattern))
        if (d.exclude !== undefined) exclude = RE2JS.compile(RE2JS.translateRegExp(d.exclude))
      } catch (err) {
        throw new DetectorError(
          `detector ${d.id}: pattern not supported by the linear-time engine: ${(err as Error).message}`,
        )
      }
      for (const k of d.keywords) {
        const lk = k.toLowerCase()
        if (!/^[\x20-\x7e]+$/.test(lk))
          throw new DetectorError(`detector ${d.id}: keyword "${k}" must be printable ASCII`)
        let ki = keywordIndex.get(lk)
        if (ki === undefined) {
          ki = this.byKeyword.length
          keywordIndex.set(lk, ki)
          this.byKeyword.push([])
        }
        const list = this.byKeyword[ki] as number[]
        if (!list.includes(di)) list.push(di)
      }
      const groups = re.groupCount()
      const group = d.secretGroup ?? (groups > 0 ? 1 : 0)
      if (group > groups)
        throw new DetectorError(`detector ${d.id}: secretGroup ${group} but ${groups} groups`)
      return {
        d,
        re,
        exclude,
        group,
        before: d.before ?? 0,
        after: d.after ?? 256,
        boundary: d.boundary ?? true,
        specificity: d.specificity ?? 2,
      }
    })
    this.automaton = new KeywordAutomaton([...keywordIndex.keys()])
  }

  /**
   * Finds the secrets in `input` (a Buffer is read as Latin-1: offsets are byte offsets; secrets
   * are ASCII). Matches are sorted by offset; overlapping ones keep the most specific detector.
   */
  scan(input: Uint8Array | string, opts: ScanOptions = {}): ScanResult {
    const stats = emptyStats()
    const budget = (opts.budgetFactor ?? 64) * input.length + (1 << 20)
    const matches = this.scanLevel(input, 0, opts.decode ?? true, stats, budget)
    return { matches, stats }
  }

  /**
   * `text` with every secret replaced by its mask (`ghp_***`; `***` for a secret whose first
   * characters are not a public prefix). The common case, no keyword at all, costs one pass of
   * the keyword automaton and returns `text` itself.
   */
  mask(text: string): string {
    if (!this.automaton.any(text)) return text
    const { matches } = this.scan(text, { budgetFactor: 16 })
    return applyMasks(text, matches)
  }

  private scanLevel(
    input: Uint8Array | string,
    depth: number,
    decode: boolean,
    stats: ScanStats,
    budget: number,
  ): Match[] {
    const len = input.length
    stats.bytesScanned += len
    const compiled = this.compiled
    const byKeyword = this.byKeyword
    const lastStart = new Int32Array(compiled.length).fill(-1)
    const coveredTo = new Int32Array(compiled.length).fill(-1)
    const found: Match[] = []
    const str = typeof input === 'string'
    const buf = str ? undefined : Buffer.from(input.buffer, input.byteOffset, input.length)
    const slice = (a: number, b: number): string =>
      buf === undefined ? (input as string).slice(a, b) : buf.toString('latin1', a, b)
    const charAt = (i: number): number => {
      const c = str ? (input as string).charCodeAt(i) : (input[i] as number)
      return c < 256 ? c : 0
    }

    this.automaton.scan(input, 0, len, (k, start) => {
      stats.keywordHits++
      const list = byKeyword[k] as number[]
      for (let j = 0; j < list.length; j++) {
        const di = list[j] as number
        if (start === lastStart[di] || start < (coveredTo[di] as number)) continue
        lastStart[di] = start
        const c = compiled[di] as Compiled
        const ws = Math.max(0, start - c.before)
        const we = Math.min(len, start + c.after)
        if (stats.regexUnits + (we - ws) > budget) {
          stats.truncated = true
          return false
        }
        stats.regexRuns++
        stats.regexUnits += we - ws
        const text = slice(ws, we)
        const m = c.re.matcher(text)
        if (c.before === 0) {
          if (!m.lookingAt()) continue
          this.accept(c, m, ws, charAt, found, coveredTo, di)
        } else {
          while (m.find()) {
            if (ws + m.start() > start) break // matches after this keyword are found from their own
            this.accept(c, m, ws, charAt, found, coveredTo, di)
          }
        }
      }
      return true
    })

    let matches = resolveOverlaps(found)
    if (decode && depth < MAX_DEPTH && !stats.truncated) {
      const spans: EncodedSpan[] = []
      base64Spans(input, spans)
      percentSpans(input, spans)
      jsonEscapeSpans(input, spans)
      if (spans.length > 0) {
        const extra: Match[] = []
        for (const sp of spans) {
          if (stats.regexUnits > budget) {
            stats.truncated = true
            break
          }
          if (matches.some((m) => m.start <= sp.start && m.end >= sp.end)) continue
          const decoded = decodeSpan(sp.encoding, slice(sp.start, sp.end))
          if (decoded === undefined) continue
          stats.decodes++
          for (const inner of this.scanLevel(decoded, depth + 1, true, stats, budget)) {
            extra.push({
              detector: inner.detector,
              start: sp.start,
              end: sp.end,
              secret: inner.secret,
              encodings: [sp.encoding, ...inner.encodings],
            })
          }
        }
        if (extra.length > 0) matches = resolveOverlaps([...matches, ...extra])
      }
    }
    return matches
  }

  private accept(
    c: Compiled,
    m: ReturnType<RE2JS['matcher']>,
    offset: number,
    charAt: (i: number) => number,
    found: Match[],
    coveredTo: Int32Array,
    di: number,
  ): void {
    const ms = offset + m.start()
    if (c.boundary && ms > 0 && WORD[charAt(ms - 1)] === 1) return
    const secret = m.group(c.group)
    if (secret === null || secret === '') return
    const d = c.d
    if (d.validator !== undefined && !runValidator(d.validator, secret)) return
    if (d.minEntropy !== undefined && shannonEntropy(secret) < d.minEntropy) return
    if (d.mixed && !hasLetterAndDigit(secret)) return
    if (c.exclude?.matcher(m.group(0) ?? '').find()) return
    if (allowedValue(secret, this.exampleHashes) !== undefined) return
    const start = offset + m.start(c.group)
    const end = offset + m.end(c.group)
    if (found.some((f) => f.detector === d && f.start === start)) return
    coveredTo[di] = Math.max(coveredTo[di] as number, end)
    found.push({ detector: d, start, end, secret, encodings: [] })
  }
}

/** Sorts matches by offset; of two that overlap, keeps the more specific (then the longer). */
export function resolveOverlaps(found: Match[]): Match[] {
  if (found.length <= 1) return found
  const sorted = [...found].sort((a, b) => a.start - b.start || b.end - a.end)
  const out: Match[] = []
  for (const m of sorted) {
    const prev = out[out.length - 1]
    if (prev === undefined || m.start >= prev.end) {
      out.push(m)
      continue
    }
    const ps = prev.detector.specificity ?? 2
    const ms = m.detector.specificity ?? 2
    if (ms > ps || (ms === ps && m.end - m.start > prev.end - prev.start)) out[out.length - 1] = m
  }
  return out
}

/** The redacted form of a secret: its first 4 characters, then `***` (shorter secrets: `***`). */
export function redactValue(secret: string): string {
  return secret.length >= 12 ? `${secret.slice(0, 4)}***` : '***'
}

/**
 * The form written in logs and responses: the public prefix of prefixed tokens (`ghp_***`,
 * `AKIA***`), `***` for everything else (a password's first characters are part of it).
 */
export function maskValue(m: Match): string {
  const d = m.detector
  if (m.encodings.length === 0 && (d.specificity ?? 2) === 2 && d.before === undefined) {
    const kw = d.keywords.find((k) => m.secret.toLowerCase().startsWith(k.toLowerCase()))
    if (kw !== undefined && kw.length <= 12) return `${m.secret.slice(0, kw.length)}***`
  }
  return '***'
}

/** Replaces each match's span in `text` by its mask. `matches` must be sorted and disjoint. */
export function applyMasks(text: string, matches: readonly Match[]): string {
  if (matches.length === 0) return text
  let out = ''
  let pos = 0
  for (const m of matches) {
    out += text.slice(pos, m.start) + maskValue(m)
    pos = m.end
  }
  return out + text.slice(pos)
}
