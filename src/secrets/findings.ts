/**
 * Findings as the CLI reports them: a match placed at a file, line and column, with a redacted
 * preview, a hash of the value and a fingerprint for baselines. The secret itself stops here.
 */
import { createHash } from 'node:crypto'
import { redactValue, type SecretScanner } from './engine.js'
import type { Encoding, Match, ScanStats, Severity } from './types.js'

export interface CommitInfo {
  sha: string
  author: string
  date: string
}

export interface Finding {
  detector: string
  name: string
  provider: string
  severity: Severity
  file: string
  /** 1-based. */
  line: number
  /** 1-based, in UTF-16 code units (SARIF's default column kind). */
  column: number
  endLine: number
  endColumn: number
  /** The first 4 characters and `***` (or `***` with --redact). */
  preview: string
  /** SHA-256 (hex, 32 characters) of the value: stable across runs, reveals nothing. */
  valueHash: string
  /** detector + file + line + value hash: what a baseline records. */
  fingerprint: string
  encodings: Encoding[]
  commit?: CommitInfo
}

/** The marker that silences a finding on its own line. */
export const ALLOW_MARKER = 'portcullis:allow'

export function valueHash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 32)
}

export function fingerprintOf(
  detector: string,
  file: string,
  line: number,
  hash: string,
  commit?: string,
): string {
  return createHash('sha256')
    .update(`${detector}\0${file}\0${line}\0${hash}\0${commit ?? ''}`)
    .digest('hex')
    .slice(0, 32)
}

export interface PlaceOptions {
  file: string
  /** Lines before the buffer's first byte (streamed chunks, git hunks). */
  lineBase?: number
  /** Maps a 0-based line index within the buffer to the real line number (git hunks). */
  lineMap?: readonly number[]
  commit?: CommitInfo
  /** Honour `portcullis:allow` on the finding's line (default true). */
  inlineAllow?: boolean
  /** Hide even the first 4 characters. */
  redact?: boolean
}

/** Places matches found in `buf` (sorted by start) at lines and columns. */
export function placeMatches(buf: Buffer, matches: readonly Match[], o: PlaceOptions): Finding[] {
  const out: Finding[] = []
  let line = 0 // newlines before `pos`
  let pos = 0
  let lineStart = 0
  const advance = (to: number) => {
    while (pos < to) {
      const nl = buf.indexOf(10, pos)
      if (nl === -1 || nl >= to) {
        pos = to
        break
      }
      line++
      lineStart = nl + 1
      pos = nl + 1
    }
  }
  for (const m of matches) {
    advance(m.start)
    const startLine = line
    const startCol = buf.toString('utf8', lineStart, m.start).length + 1
    if (o.inlineAllow !== false) {
      let e = buf.indexOf(10, m.start)
      if (e === -1) e = buf.length
      if (buf.toString('latin1', lineStart, Math.min(e, lineStart + 64 * 1024)).includes(ALLOW_MARKER))
        continue
    }
    // End position without moving the cursor (a later match may start inside this one).
    const seg = buf.subarray(m.start, m.end)
    let nls = 0
    let lastNl = -1
    for (let i = seg.indexOf(10); i !== -1; i = seg.indexOf(10, i + 1)) {
      nls++
      lastNl = i
    }
    const endCol =
      nls === 0
        ? startCol + buf.toString('utf8', m.start, m.end).length
        : buf.toString('utf8', m.start + lastNl + 1, m.end).length + 1
    const realLine = (i: number) => (o.lineMap ? (o.lineMap[i] ?? i + 1) : (o.lineBase ?? 0) + i + 1)
    const d = m.detector
    const hash = valueHash(m.secret)
    const ln = realLine(startLine)
    out.push({
      detector: d.id,
      name: d.name,
      provider: d.provider,
      severity: d.severity,
      file: o.file,
      line: ln,
      column: startCol,
      endLine: realLine(startLine + nls),
      endColumn: endCol,
      preview: o.redact ? '***' : redactValue(m.secret),
      valueHash: hash,
      fingerprint: fingerprintOf(d.id, o.file, ln, hash, o.commit?.sha),
      encodings: m.encodings,
      ...(o.commit ? { commit: o.commit } : {}),
    })
  }
  return out
}

/** Scans one in-memory input and places its findings. */
export function scanBuffer(
  scanner: SecretScanner,
  buf: Buffer,
  o: PlaceOptions,
): { findings: Finding[]; stats: ScanStats } {
  const { matches, stats } = scanner.scan(buf)
  return { findings: matches.length === 0 ? [] : placeMatches(buf, matches, o), stats }
}
