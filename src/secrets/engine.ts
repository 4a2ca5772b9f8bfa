/**
 * The secret scanning engine: keyword pass → gates → anchored patterns → validators → entropy →
 * allowlist, then nested decoding (base64, percent, JSON escapes; two levels). Gates are cheap
 * checks at a keyword (see `Detector.gate`) that throw out most occurrences before any pattern
 * runs; each character is looked at once per detector. Patterns run on RE2 (re2js): linear in the
 * text they see, and they only see a bounded window at each keyword occurrence, so the work of a
 * scan is bounded by (keyword hits × window) and capped by a budget proportional to the input
 * (`ScanStats.truncated` says when it ran out).
 */
import { MatcherInput, type MatcherInputBase, RE2JS } from 're2js'
import { allowedValue, EXAMPLE_KEY_HASHES } from './allowlist.js'
import {
  B64_CLASS,
  B64_NEED,
  B64_RUN,
  base64Spans,
  decodeSpan,
  type EncodedSpan,
  jsonEscapeSpans,
  percentSpans,
} from './decode.js'
import { KeywordAutomaton, type RunsRequest } from './prefilter.js'
import { emptyStats, type Detector, type Match, type ScanStats } from './types.js'
import { hasLetterAndDigit, readsLead, runValidator, shannonEntropy } from './validators.js'

/** RE2's matcher entry point that takes a start and an end. */
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
  /** The pattern, compiled on first use (most detectors never see their keyword in a scan). */
  core: RE2Core | undefined
  exclude: RE2JS | undefined
  ngroup: number
  group: number
  before: number
  after: number
  boundary: boolean
  specificity: number
  gateSkip: Uint8Array | undefined
  gateFind: Uint8Array | undefined
  /** Pattern runs so far (see DFA_AFTER). */
  runs: number
  gateFromLast: boolean
  /** The gate's second stage (`Detector.gate.next`). */
  thenSkip: Uint8Array | undefined
  thenFind: Uint8Array | undefined
  /** The keywords in their exact case, when a hit must have it (`Detector.exactKeyword`). */
  exact: Buffer[] | undefined
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
/** Pattern runs of a detector before its runs start with a yes/no run on RE2's DFA. */
const DFA_AFTER = 16
const EMPTY: Int32Array = new Int32Array(0)
const WORD = (() => {
  const t = new Uint8Array(256)
  for (let c = 0; c < 256; c++) if (/[A-Za-z0-9]/.test(String.fromCharCode(c))) t[c] = 1
  return t
})()

const NONE = new Uint8Array(256)
const classTables = new Map<string, Uint8Array>()
/** A bracket expression (`[=:,]`) as a table of the 256 byte values it accepts. */
function classTable(cls: string, id: string): Uint8Array {
  let t = classTables.get(cls)
  if (t !== undefined) return t
  if (!/^\[\^?(?:[^\]\\]|\\.)+\]$/.test(cls))
    throw new DetectorError(`detector ${id}: gate class ${cls} is not one bracket expression`)
  const re = new RegExp(`^${cls}$`)
  t = new Uint8Array(256)
  for (let c = 0; c < 256; c++) if (re.test(String.fromCharCode(c))) t[c] = 1
  classTables.set(cls, t)
  return t
}

/** The bytes of a string input: Latin-1 (one byte per UTF-16 unit, so offsets carry over). */
function bytesOf(input: Uint8Array | string): Buffer {
  if (typeof input !== 'string') return Buffer.from(input.buffer, input.byteOffset, input.length)
  // Units above 0xFF would wrap to their low byte: they become NUL (keywords and secrets are ASCII).
  return Buffer.from(/[^\x00-\xff]/.test(input) ? input.replace(/[^\x00-\xff]/g, '\x00') : input, 'latin1')
}

/**
 * Compiles detectors once; `scan` and `mask` are then safe to call on any input. Construction
 * builds the keyword automaton only: a detector's pattern is compiled the first time one of its
 * keywords passes the cheap checks (user detectors are compiled at once, so that a bad pattern is
 * a construction error; `compileAll` does it for every detector).
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
  private readonly keywordLength: Int32Array
  private readonly exampleHashes: ReadonlySet<string>

  /**
   * @param opts.wasm The keyword pass in WebAssembly when available (default true; false: the JS
   *   walks, which give the same hits: the tests compare the two).
   */
  constructor(
    detectors: readonly Detector[],
    opts: { exampleHashes?: ReadonlySet<string>; wasm?: boolean } = {},
  ) {
    this.detectors = detectors
    this.exampleHashes = opts.exampleHashes ?? EXAMPLE_KEY_HASHES
    if (detectors.length > 0xffff) throw new DetectorError('at most 65535 detectors')
    const ids = new Set<string>()
    const keywordIndex = new Map<string, number>()
    this.byKeyword = []
    this.compiled = detectors.map((d, di) => {
      if (ids.has(d.id)) throw new DetectorError(`detector ${d.id}: duplicate id`)
      ids.add(d.id)
      if (d.keywords.length === 0) throw new DetectorError(`detector ${d.id}: at least one keyword`)
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
      const c: Compiled = {
        d,
        core: undefined,
        exclude: undefined,
        ngroup: 0,
        group: 0,
        before: d.before ?? 0,
        after: d.after ?? 256,
        boundary: d.boundary ?? true,
        specificity: d.specificity ?? 2,
        gateSkip: d.gate ? (d.gate.skip === undefined ? NONE : classTable(d.gate.skip, d.id)) : undefined,
        gateFind: d.gate ? classTable(d.gate.find, d.id) : undefined,
        exact: d.exactKeyword ? d.keywords.map((k) => Buffer.from(k, 'latin1')) : undefined,
        gateFromLast: d.gate?.fromLast === true,
        thenSkip: d.gate?.next
          ? d.gate.next.skip === undefined
            ? NONE
            : classTable(d.gate.next.skip, d.id)
          : undefined,
        thenFind: d.gate?.next ? classTable(d.gate.next.find, d.id) : undefined,
        runs: 0,
      }
      if (d.custom) this.compile(c)
      return c
    })
    const keywords = [...keywordIndex.keys()]
    this.automaton = new KeywordAutomaton(keywords, { wasm: opts.wasm ?? true })
    this.keywordLength = Int32Array.from(keywords, (k) => k.length)
  }

  /** Scratch arrays (one per detector) for `scanLevel`, six per depth: reset to -1, reused. */
  private readonly scratchArrays: Int32Array[] = []
  private scratch(i: number): Int32Array {
    let a = this.scratchArrays[i]
    if (a === undefined) {
      a = new Int32Array(this.compiled.length)
      this.scratchArrays[i] = a
    }
    return a.fill(-1)
  }

  /** Compiles every detector's pattern now; throws `DetectorError` naming the first that fails. */
  compileAll(): this {
    for (const c of this.compiled) this.compile(c)
    return this
  }

  private compile(c: Compiled): RE2Core {
    if (c.core !== undefined) return c.core
    const d = c.d
    let re: RE2JS
    try {
      re = RE2JS.compile(RE2JS.translateRegExp(d.pattern))
      if (d.exclude !== undefined) c.exclude = RE2JS.compile(RE2JS.translateRegExp(d.exclude))
    } catch (err) {
      throw new DetectorError(
        `detector ${d.id}: pattern not supported by the linear-time engine: ${(err as Error).message}`,
      )
    }
    const groups = re.groupCount()
    const group = d.secretGroup ?? (groups > 0 ? 1 : 0)
    if (group > groups) throw new DetectorError(`detector ${d.id}: secretGroup ${group} but ${groups} groups`)
    c.ngroup = groups + 1
    c.group = group
    c.core = re.re2() as unknown as RE2Core
    return c.core
  }

  /**
   * Finds the secrets in `input` (a Buffer is read as Latin-1: offsets are byte offsets; a string
   * is read one byte per UTF-16 unit, so offsets are its indexes; secrets are ASCII). Matches are
   * sorted by offset; overlapping ones keep the most specific detector.
   */
  scan(input: Uint8Array | string, opts: ScanOptions = {}): ScanResult {
    const stats = emptyStats()
    const budget = (opts.budgetFactor ?? 64) * input.length + (1 << 20)
    const matches = this.scanLevel(bytesOf(input), 0, opts.decode ?? true, stats, budget)
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

  /** True when the keyword pass runs in WebAssembly. */
  get usesWasm(): boolean {
    return this.automaton.usesWasm
  }

  /** True when any detector keyword occurs in `text` (one pass; stops at the first). */
  hasKeyword(text: string | Uint8Array): boolean {
    return this.automaton.any(text)
  }

  /**
   * True when a keyword occurs in `text` at a place where its detector's cheap checks pass (word
   * boundary, exact case, gate): the occurrences a scan without decoding would run a pattern at.
   * False means such a scan finds nothing (a `-us` in `bench-user` is not the start of a
   * Mailchimp key), so a log line need not be scanned. Linear: one keyword pass, each character
   * looked at once per detector by the gates.
   */
  hasCandidate(text: string | Uint8Array): boolean {
    // A string (a log line) is walked as it is; its bytes are made at its first keyword only.
    let buf: Buffer | undefined = typeof text === 'string' ? undefined : bytesOf(text)
    let memo: GateMemo = NO_MEMO
    const onHit = (k: number, start: number): boolean => {
      if (buf === undefined) buf = bytesOf(text)
      if (memo === NO_MEMO) memo = this.gateMemo(6 * (MAX_DEPTH + 1))
      const len = buf.length
      const kl = this.keywordLength[k] as number
      for (const di of this.byKeyword[k] as number[]) {
        const c = this.compiled[di] as Compiled
        if (this.cheapChecks(c, di, buf, start, kl, Math.min(len, start + c.after), memo, undefined))
          return false
      }
      return true
    }
    if (typeof text === 'string') return !this.automaton.scanString(text, onHit)
    if (!this.automaton.any(text)) return false
    return !this.automaton.scan(buf as Buffer, 0, (buf as Buffer).length, onHit)
  }

  /** Four scratch arrays from `i` for the gates' memo (see `cheapChecks`). */
  private gateMemo(i: number): GateMemo {
    return {
      gateFrom: this.scratch(i),
      gateStop: this.scratch(i + 1),
      thenAt: this.scratch(i + 2),
      thenOk: this.scratch(i + 3),
    }
  }

  /**
   * The checks made at a keyword occurrence before its detector's pattern runs: the token does not
   * continue a word (`xghp_…`), the keyword's exact case when the detector needs it, and the gate
   * (a character of its `find` class after `skip` characters, before `we`; then its second stage).
   * `memo` keeps, per detector, the last stretch the gate scanned: [gateFrom, gateStop) are all
   * `skip` characters and gateStop is where the scan stopped, so a later keyword ending inside it
   * has the same answer and each character is looked at once per detector; and of the second
   * stage, the first stage's stop it was run from and its answer (1 or 0).
   */
  private cheapChecks(
    c: Compiled,
    di: number,
    buf: Buffer,
    start: number,
    kl: number,
    we: number,
    memo: GateMemo,
    stats: ScanStats | undefined,
  ): boolean {
    if (c.before === 0 && c.boundary && start > 0 && WORD[buf[start - 1] as number] === 1) return false
    if (c.exact !== undefined && !exactAt(buf, start, kl, c.exact)) return false
    if (c.gateSkip === undefined) return true
    const len = buf.length
    const { gateFrom, gateStop, thenAt, thenOk } = memo
    const from = c.gateFromLast ? start + kl - 1 : start + kl
    let stop = gateStop[di] as number
    if (!(from >= (gateFrom[di] as number) && from <= stop)) {
      const skip = c.gateSkip
      const find = c.gateFind as Uint8Array
      stop = from
      while (stop < len) {
        const b = buf[stop] as number
        if (find[b] === 1 || skip[b] === 0) break
        stop++
      }
      if (stats !== undefined) stats.gateUnits += stop - from + 1
      gateFrom[di] = from
      gateStop[di] = stop
    }
    if (stop >= we || (c.gateFind as Uint8Array)[buf[stop] as number] !== 1) return false
    if (c.thenFind === undefined) return true
    if (thenAt[di] !== stop) {
      const skip = c.thenSkip as Uint8Array
      const find = c.thenFind
      let p = stop + 1
      while (p < len) {
        const b = buf[p] as number
        if (find[b] === 1 || skip[b] === 0) break
        p++
      }
      if (stats !== undefined) stats.gateUnits += p - stop
      thenAt[di] = stop
      thenOk[di] = p < len && find[buf[p] as number] === 1 ? 1 : 0
    }
    return thenOk[di] === 1
  }

  private scanLevel(buf: Buffer, depth: number, decode: boolean, stats: ScanStats, budget: number): Match[] {
    const len = buf.length
    stats.bytesScanned += len
    const compiled = this.compiled
    const byKeyword = this.byKeyword
    const keywordLength = this.keywordLength
    // Per detector: the last keyword start tried, the end of its last match. Scratch arrays of
    // this depth, reset on the first keyword hit (most decoded spans have none).
    let lastStart: Int32Array = EMPTY
    let coveredTo: Int32Array = EMPTY
    // What each detector's gate found last (see `cheapChecks`), of this depth.
    let memo: GateMemo = NO_MEMO
    const found: Match[] = []
    const seen = new Set<number>()
    // The base64 finder's runs, found by the keyword pass in its copy of the input when it can.
    const runs: RunsRequest | undefined =
      decode && depth < MAX_DEPTH ? { cls: B64_CLASS, minRun: B64_RUN, need: B64_NEED } : undefined

    const onHit = (k: number, start: number): boolean => {
      if (lastStart === EMPTY) {
        lastStart = this.scratch(6 * depth)
        coveredTo = this.scratch(6 * depth + 1)
        memo = this.gateMemo(6 * depth + 2)
      }
      stats.keywordHits++
      const list = byKeyword[k] as number[]
      for (let j = 0; j < list.length; j++) {
        const di = list[j] as number
        if (start === lastStart[di] || start < (coveredTo[di] as number)) continue
        const c = compiled[di] as Compiled
        // The cheap checks depend on which keyword this is: a longer one ending later at the same
        // start is still tried when they fail (so `lastStart` is set only past them).
        const kl = keywordLength[k] as number
        const we = Math.min(len, start + c.after)
        if (!this.cheapChecks(c, di, buf, start, kl, we, memo, stats)) continue
        lastStart[di] = start
        const ws = Math.max(0, start - c.before)
        if (stats.regexUnits + (we - ws) > budget) {
          stats.truncated = true
          return false
        }
        stats.regexRuns++
        stats.regexUnits += we - ws
        const core = c.core ?? this.compile(c)
        // The pattern sees the window only (a view, no copy): its work and any literal search
        // it does are bounded by the window. A yes/no run first (RE2's DFA, no captures), the
        // capture groups only for a match.
        const mi = MatcherInput.utf8(buf.subarray(ws, we))
        const n = we - ws
        const anchor = c.before === 0 ? ANCHOR_START : UNANCHORED
        // The yes/no run pays off once a detector runs often (RE2's DFA builds its states as it
        // meets them); the first runs of a detector go straight to the capture run.
        if (++c.runs > DFA_AFTER && !core.matchWithGroup(mi, 0, n, anchor, 0)[0]) continue
        if (anchor === ANCHOR_START) {
          const r = core.matchWithGroup(mi, 0, n, ANCHOR_START, c.ngroup)
          if (r[0]) this.accept(c, shift(r[1] as number[], ws), buf, found, coveredTo, di, seen)
          continue
        }
        const rel = start - ws
        let pos = 0
        while (pos < n) {
          const r = core.matchWithGroup(mi, pos, n, UNANCHORED, c.ngroup)
          if (!r[0]) break
          const g = r[1] as number[]
          const s0 = g[0] as number
          const e0 = g[1] as number
          if (s0 > rel) break // a match after this keyword is found from its own keyword
          this.accept(c, shift(g, ws), buf, found, coveredTo, di, seen)
          pos = e0 > s0 ? e0 : s0 + 1
        }
      }
      return true
    }
    this.automaton.scan(buf, 0, len, onHit, runs)

    let matches = resolveOverlaps(found)
    if (decode && depth < MAX_DEPTH && !stats.truncated) {
      const spans: EncodedSpan[] = []
      // The runs of base64 characters found in WebAssembly when it is used (same spans): by the
      // keyword pass above, else from a copy of their own; else the JS loop of base64Spans.
      base64Spans(buf, spans, runs?.out ?? this.automaton.runsOf(buf, B64_CLASS, B64_RUN, B64_NEED))
      percentSpans(buf, spans)
      jsonEscapeSpans(buf, spans)
      if (spans.length > 0) {
        spans.sort((a, b) => a.start - b.start)
        const extra: Match[] = []
        let mi = 0
        for (const sp of spans) {
          if (stats.regexUnits > budget) {
            stats.truncated = true
            break
          }
          // Already found in clear: the match that could contain the span is the last one
          // starting at or before it (matches are sorted and disjoint).
          while (mi + 1 < matches.length && (matches[mi + 1] as Match).start <= sp.start) mi++
          const m = matches[mi]
          if (m !== undefined && m.start <= sp.start && m.end >= sp.end) continue
          const decoded = decodeSpan(sp.encoding, buf, sp.start, sp.end)
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
    buf: Buffer,
    found: Match[],
    coveredTo: Int32Array,
    di: number,
    seen: Set<number>,
  ): void {
    const ms = g[0] as number
    if (c.boundary && ms > 0 && WORD[buf[ms - 1] as number] === 1) return
    const start = g[2 * c.group] as number
    const end = g[2 * c.group + 1] as number
    if (start < 0 || end <= start) return
    const secret = buf.toString('latin1', start, end)
    const d = c.d
    if (d.maxLength !== undefined && secret.length > d.maxLength) return
    if (d.validator !== undefined) {
      const lead = readsLead(d.validator) ? buf.toString('latin1', ms, start) : ''
      if (!runValidator(d.validator, secret, lead)) return
    }
    if (d.minEntropy !== undefined && shannonEntropy(secret) < d.minEntropy) return
    if (d.mixed && !hasLetterAndDigit(secret)) return
    if (c.exclude?.matcher(buf.toString('latin1', ms, g[1] as number)).find()) return
    if (allowedValue(secret, this.exampleHashes) !== undefined) return
    const key = start * 0x10000 + di
    if (seen.has(key)) return
    seen.add(key)
    coveredTo[di] = Math.max(coveredTo[di] as number, end)
    found.push({ detector: d, start, end, secret, encodings: [] })
  }
}

/** Per detector, what its gate found last (see `SecretScanner.cheapChecks`). */
interface GateMemo {
  gateFrom: Int32Array
  gateStop: Int32Array
  thenAt: Int32Array
  thenOk: Int32Array
}
const NO_MEMO: GateMemo = { gateFrom: EMPTY, gateStop: EMPTY, thenAt: EMPTY, thenOk: EMPTY }

/** Adds `by` to every set offset of a capture array (in place). */
function shift(g: number[], by: number): number[] {
  if (by !== 0) for (let i = 0; i < g.length; i++) if ((g[i] as number) >= 0) g[i] = (g[i] as number) + by
  return g
}

/** True when one of `keywords` (exact case) of length `len` is at `buf[start]`. */
function exactAt(buf: Buffer, start: number, len: number, keywords: readonly Buffer[]): boolean {
  for (const k of keywords)
    if (k.length === len && buf.compare(k, 0, len, start, start + len) === 0) return true
  return false
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
