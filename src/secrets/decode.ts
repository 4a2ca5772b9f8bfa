/**
 * Nested encodings: spans of an input that may hide a secret under base64, percent-encoding or
 * JSON string escapes. Finding them is one linear pass each; the engine decodes a span, keeps it
 * when the result is mostly printable text that differs from the span, and rescans it (at most
 * two levels deep, within the scan's budget).
 */
import type { Encoding } from './types.js'

export interface EncodedSpan {
  encoding: Encoding
  start: number
  end: number
}

/** Shortest base64 run worth decoding (18 bytes: the shortest secrets we detect encoded). */
const MIN_B64 = 24
/** Longest span decoded (a larger run is an embedded file: images, fonts). */
export const MAX_SPAN = 64 * 1024

const B64 = (() => {
  const t = new Uint8Array(256)
  for (let c = 0; c < 256; c++) {
    const ch = String.fromCharCode(c)
    if (/[A-Za-z0-9+/_-]/.test(ch)) t[c] = 1
  }
  return t
})()

/** Characters that end a percent-encoded or escaped token. */
const STOP = (() => {
  const t = new Uint8Array(256)
  for (const ch of ' \t\r\n"\'<>`') t[ch.charCodeAt(0)] = 1
  return t
})()

function at(input: Uint8Array | string, i: number): number {
  if (typeof input === 'string') {
    const c = input.charCodeAt(i)
    return c < 256 ? c : 0
  }
  return input[i] as number
}

/**
 * Runs of base64 characters (standard or URL-safe, with `=` padding) at least 24 long and at most
 * 64 KiB, with both upper- and lower-case letters (base64 of text always has both; a long
 * identifier or hex string does not).
 */
export function base64Spans(input: Uint8Array | string, out: EncodedSpan[]): void {
  const n = input.length
  let i = 0
  while (i < n) {
    if (B64[at(input, i)] === 0) {
      i++
      continue
    }
    const start = i
    let upper = false
    let lower = false
    while (i < n) {
      const c = at(input, i)
      if (B64[c] === 0) break
      if (c >= 65 && c <= 90) upper = true
      else if (c >= 97 && c <= 122) lower = true
      i++
    }
    let end = i
    while (end < n && end - i < 2 && at(input, end) === 61) end++
    const len = end - start
    if (len >= MIN_B64 && len <= MAX_SPAN && upper && lower) out.push({ encoding: 'base64', start, end })
    i = end + 1
  }
}

/** Tokens (between whitespace and quotes) that contain `%XX`. */
export function percentSpans(input: Uint8Array | string, out: EncodedSpan[]): void {
  escapeSpans(input, 37 /* % */, 'percent', out, (c) => isHex(c))
}

/** Tokens that contain a JSON escape other than `\n` (`\/`, `\uXXXX`, `\"`, `\\`). */
export function jsonEscapeSpans(input: Uint8Array | string, out: EncodedSpan[]): void {
  escapeSpans(input, 92 /* \ */, 'json-escape', out, (c) => c === 47 || c === 117 || c === 34 || c === 92)
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
}

function escapeSpans(
  input: Uint8Array | string,
  mark: number,
  encoding: Encoding,
  out: EncodedSpan[],
  next: (c: number) => boolean,
): void {
  const n = input.length
  let covered = 0 // end of the last span: a mark inside it starts nothing new
  for (let i = 0; i < n; i++) {
    if (at(input, i) !== mark || i < covered || i + 1 >= n || !next(at(input, i + 1))) continue
    let s = i
    while (s > 0 && i - s < 4096 && STOP[at(input, s - 1)] === 0) s--
    if (s < covered) s = covered
    let e = i + 1
    while (e < n && e - s < MAX_SPAN && STOP[at(input, e)] === 0) e++
    out.push({ encoding, start: s, end: e })
    covered = e
    i = e
  }
}

/** Decodes a span's text; undefined when it does not decode or decodes to itself. */
export function decodeSpan(encoding: Encoding, text: string): string | undefined {
  switch (encoding) {
    case 'base64': {
      const t = text.replace(/-/g, '+').replace(/_/g, '/')
      const b = Buffer.from(t, 'base64')
      if (b.length < 12) return undefined
      let bad = 0
      for (let i = 0; i < b.length; i++) {
        const c = b[i] as number
        if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13) || c > 0x7e) bad++
      }
      return bad * 20 <= b.length ? b.toString('latin1') : undefined
    }
    case 'percent': {
      const d = text.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) =>
        String.fromCharCode(Number.parseInt(h, 16)),
      )
      return d === text ? undefined : d
    }
    case 'json-escape': {
      const d = text.replace(/\\(u[0-9A-Fa-f]{4}|["\\/bfnrt])/g, (_, e: string) => {
        if (e.length === 5) return String.fromCharCode(Number.parseInt(e.slice(1), 16))
        return (
          { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' } as Record<
            string,
            string
          >
        )[e] as string
      })
      return d === text ? undefined : d
    }
  }
}
