/**
 * The secret scanning engine: keyword pass → anchored patterns → validators → entropy → allowlist,
 * then nested decoding (base64, percent, JSON escapes; two levels). Patterns run on RE2 (re2js):
 * linear in the text they see, and they only see a bounded window at each keyword occurrence, so
 * the work of a scan is bounded by (keyword hits × window) and capped by a budget proportional to
 * the input (`ScanStats.truncated` says when it ran out).
 */
import { MatcherInput, type MatcherInputBase, RE2JS } from 're2js'
import { allowedValue, EXAMPLE_KEY_HASHES } from './allowlist.js'
import { base64Spans, decodeSpan, type EncodedSpan, jsonEscapeSpans, percentSpans } from './decode.js'
import { KeywordAutomaton } from './prefilter.js'
import { emptyStats, type Detector, type Match, type ScanStats } from './types.js'
import { hasLetterAndDigit, runValidator, shannonEntropy } from './validators.js'

/** RE2's matcher entry point that takes a start and an end (no copy of the window). */
interface RE2Core {
  matchWithGroup(
    input: MatcherInputBase,
    start: number,
    end: number,
    anchor: number,
    ngroup: number,
  ): [boolean, number[] | null]
}
const UNANCHORED = 0
const ANCHOR_START = 1

interface Compiled {
  d: Detector
  re: RE2JS
  core: RE2Core
  ngroup: number
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
        core: re.re2() as unknown as RE2Core,
        ngroup: groups + 1,
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
    if (!this.hasKeyword(text)) return text
    const { matches } = this.scan(text, { budgetFactor: 16 })
    return applyMasks(text, matches)
  }

  /** True when any detector keyword occurs in `text` (one pass; stops at the first). */
  hasKeyword(text: string): boolean {
    return this.automaton.any(text)
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

    // One matcher input for the whole text for the unanchored runs (patterns whose match may
    // start before the keyword): each is given a window [ws, we) of it, with no copy.
    const mi = str ? MatcherInput.utf16(input as string) : MatcherInput.utf8(input as Uint8Array)
    this.automaton.scan(input, 0, len, (k, start) => {
      stats.keywordHits++
      const list = byKeyword[k] as number[]
      for (let j = 0; j < list.length; j++) {
        const di = list[j] as number
        if (start === lastStart[di] || start < (coveredTo[di] as number)) continue
        lastStart[di] = start
        const c = compiled[di] as Compiled
        // A token must not continue a word (`xghp_…`): checked before any pattern runs.
        if (c.before === 0 && c.boundary && start > 0 && WORD[charAt(start - 1)] === 1) continue
        const ws = Math.max(0, start - c.before)
        const we = Math.min(len, start + c.after)
        if (stats.regexUnits + (we - ws) > budget) {
          stats.truncated = true
          return false
        }
        stats.regexRuns++
        stats.regexUnits += we - ws
        if (c.before === 0) {
          // RE2 anchors only at the start of its input: the window is cut out (a short copy). A
          // yes/no run first (RE2's cached DFA), the capture groups only for a match.
          const win = MatcherInput.utf16(slice(ws, we))
          if (!c.core.matchWithGroup(win, 0, we - ws, ANCHOR_START, 0)[0]) continue
          const r = c.core.matchWithGroup(win, 0, we - ws, ANCHOR_START, c.ngroup)
          if (r[0]) {
            const g = r[1] as number[]
            for (let i = 0; i < g.length; i++) if ((g[i] as number) >= 0) g[i] = (g[i] as number) + ws
            this.accept(c, g, slice, charAt, found, coveredTo, di)
          }
          continue
        }
        let pos = ws
        while (pos < we) {
          const r = c.core.matchWithGroup(mi, pos, we, UNANCHORED, c.ngroup)
          if (!r[0]) break
          const g = r[1] as number[]
          const s0 = g[0] as number
          if (s0 > start) break // a match after this keyword is found from its own keyword
          this.accept(c, g, slice, charAt, found, coveredTo, di)
          pos = (g[1] as number) > s0 ? (g[1] as number) : s0 + 1
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
    g: number[],
    slice: (a: number, b: number) => string,
    charAt: (i: number) => number,
    found: Match[],
    coveredTo: Int32Array,
    di: number,
  ): void {
    const ms = g[0] as number
    if (c.boundary && ms > 0 && WORD[charAt(ms - 1)] === 1) return
    const start = g[2 * c.group] as number
    const end = g[2 * c.group + 1] as number
    if (start < 0 || end <= start) return
    const secret = slice(start, end)
    const d = c.d
    if (d.validator !== undefined && !runValidator(d.validator, secret)) return
    if (d.minEntropy !== undefined && shannonEntropy(secret) < d.minEntropy) return
    if (d.mixed && !hasLetterAndDigit(secret)) return
    if (c.exclude?.matcher(slice(ms, g[1] as number)).find()) return
    if (allowedValue(secret, this.exampleHashes) !== undefined) return
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
