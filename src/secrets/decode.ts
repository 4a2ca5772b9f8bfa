/**
 * Nested encodings: spans of an input that may hide a secret under base64, percent-encoding or
 * JSON string escapes. Finding them is one linear pass each (the percent and escape passes jump
 * from one `%` or `\` to the next with the native `indexOf`); the engine decodes a span, keeps it
 * when the result is mostly printable text that differs from the span, and rescans it (at most
 * two levels deep, within the scan's budget). A base64 span of binary data (an integrity hash, an
 * image) is given up after its first few bytes, before any allocation.
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

/** Value of each base64 character (standard and URL-safe alphabets), -1 for the others. */
const B64_VALUE = (() => {
  const t = new Int8Array(256).fill(-1)
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  for (let i = 0; i < 64; i++) t[abc.charCodeAt(i)] = i
  t[45] = 62 // -
  t[95] = 63 // _
  return t
})()

/** Characters that end a percent-encoded or escaped token. */
const STOP = (() => {
  const t = new Uint8Array(256)
  for (const ch of ' \t\r\n"\'<>`') t[ch.charCodeAt(0)] = 1
  return t
})()

/** True for a byte of printable ASCII, tab, CR or LF. */
function printable(c: number): boolean {
  return (c >= 0x20 && c <= 0x7e) || c === 9 || c === 10 || c === 13
}

/** Bit 1: a base64 character (either alphabet); bit 2: an upper-case letter; bit 4: lower-case. */
export const B64_CLASS = (() => {
  const t = new Uint8Array(256)
  for (let c = 0; c < 256; c++) if ((B64_VALUE[c] as number) >= 0) t[c] = 1
  for (let c = 65; c <= 90; c++) t[c] = 3
  for (let c = 97; c <= 122; c++) t[c] = 5
  return t
})()

/**
 * Runs of base64 characters (standard or URL-safe, with `=` padding) at least 24 long and at most
 * 64 KiB, with both upper- and lower-case letters (base64 of text always has both; a long
 * identifier or hex string does not). A skip loop: a run long enough must cover the position 21
 * characters ahead, so the characters before it are not looked at when it is not base64.
 */
export function base64Spans(input: Uint8Array, out: EncodedSpan[], runs?: readonly number[]): void {
  if (runs !== undefined) {
    for (let k = 0; k < runs.length; k += 2) base64Span(input, runs[k] as number, runs[k + 1] as number, out)
    return
  }
  const n = input.length
  const reach = B64_RUN - 1
  let i = 0 // no run starts before i: input[i - 1] is not a base64 character (or i is 0)
  while (i + reach < n) {
    const j = i + reach
    if (B64_CLASS[input[j] as number] === 0) {
      i = j + 1
      continue
    }
    let e = j + 1
    while (e < n && B64_CLASS[input[e] as number] !== 0) e++
    if (e - i < B64_RUN) {
      // The run holding j starts at i or later: it is shorter than any span (no need to find
      // where it starts).
      i = e + 1
      continue
    }
    let s = j
    while (s > i && B64_CLASS[input[s - 1] as number] !== 0) s--
    base64Span(input, s, e, out)
    // `=` is not a base64 character: the next run starts after the padding anyway.
    i = e + 1
  }
}

/**
 * Shortest run of base64 characters that can make a span (24 with two `=`): the runs that
 * `base64Spans` looks at, found by its loop or by the keyword pass's WebAssembly module
 * (`KeywordAutomaton.runsOf` with `B64_CLASS`).
 */
export const B64_RUN = MIN_B64 - 2
/** The classes a run must have to be a span: base64, upper case, lower case (see `B64_CLASS`). */
export const B64_NEED = 7

/** The span of the run of base64 characters [s, e) and its padding, when it is one (see above). */
function base64Span(input: Uint8Array, s: number, e: number, out: EncodedSpan[]): void {
  const n = input.length
  let end = e
  while (end < n && end - e < 2 && input[end] === 61) end++
  const len = end - s
  if (len >= MIN_B64 && len <= MAX_SPAN) {
    let f = 0
    for (let k = s; k < e && f !== B64_NEED; k++) f |= B64_CLASS[input[k] as number] as number
    if (f === B64_NEED) out.push({ encoding: 'base64', start: s, end })
  }
}

/** Tokens (between whitespace and quotes) that contain `%XX`. */
export function percentSpans(input: Uint8Array, out: EncodedSpan[]): void {
  escapeSpans(input, 37 /* % */, 'percent', out, isHex)
}

/** Tokens that contain a JSON escape other than `\n` (`\/`, `\uXXXX`, `\"`, `\\`). */
export function jsonEscapeSpans(input: Uint8Array, out: EncodedSpan[]): void {
  escapeSpans(input, 92 /* \ */, 'json-escape', out, (c) => c === 47 || c === 117 || c === 34 || c === 92)
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
}

function indexOfByte(input: Uint8Array, byte: number, from: number): number {
  return Buffer.isBuffer(input) ? input.indexOf(byte, from) : input.indexOf(byte, from)
}

function escapeSpans(
  input: Uint8Array,
  mark: number,
  encoding: Encoding,
  out: EncodedSpan[],
  next: (c: number) => boolean,
): void {
  const n = input.length
  let covered = 0 // end of the last span: a mark inside it starts nothing new
  for (let i = indexOfByte(input, mark, 0); i !== -1; i = indexOfByte(input, mark, i + 1)) {
    if (i < covered || i + 1 >= n || !next(input[i + 1] as number)) continue
    let s = i
    while (s > 0 && i - s < 4096 && STOP[input[s - 1] as number] === 0) s--
    if (s < covered) s = covered
    let e = i + 1
    while (e < n && e - s < MAX_SPAN && STOP[input[e] as number] === 0) e++
    out.push({ encoding, start: s, end: e })
    covered = e
    i = e
    if (i >= n) break
  }
}

/**
 * Decodes a span of `input`; undefined when it does not decode to mostly printable text (base64)
 * or decodes to itself (percent, escapes). Characters above 0xFF (from `\uXXXX`) become 0.
 */
export function decodeSpan(
  encoding: Encoding,
  input: Uint8Array,
  start: number,
  end: number,
): Buffer | undefined {
  switch (encoding) {
    case 'base64':
      return decodeBase64Text(input, start, end)
    case 'percent': {
      const out = Buffer.allocUnsafe(end - start)
      let o = 0
      let changed = false
      for (let i = start; i < end; i++) {
        const c = input[i] as number
        if (c === 37 && i + 2 < end && isHex(input[i + 1] as number) && isHex(input[i + 2] as number)) {
          out[o++] = (hexValue(input[i + 1] as number) << 4) | hexValue(input[i + 2] as number)
          i += 2
          changed = true
        } else out[o++] = c
      }
      return changed ? out.subarray(0, o) : undefined
    }
    case 'json-escape': {
      const out = Buffer.allocUnsafe(end - start)
      let o = 0
      let changed = false
      for (let i = start; i < end; i++) {
        const c = input[i] as number
        if (c !== 92 || i + 1 >= end) {
          out[o++] = c
          continue
        }
        const e = input[i + 1] as number
        const simple = ESCAPES[e] as number
        if (simple !== 0) {
          out[o++] = simple
          i++
          changed = true
        } else if (
          e === 117 &&
          i + 5 < end &&
          isHex(input[i + 2] as number) &&
          isHex(input[i + 3] as number) &&
          isHex(input[i + 4] as number) &&
          isHex(input[i + 5] as number)
        ) {
          const v =
            (hexValue(input[i + 2] as number) << 12) |
            (hexValue(input[i + 3] as number) << 8) |
            (hexValue(input[i + 4] as number) << 4) |
            hexValue(input[i + 5] as number)
          out[o++] = v < 256 ? v : 0
          i += 5
          changed = true
        } else out[o++] = c
      }
      return changed ? out.subarray(0, o) : undefined
    }
  }
}

/** `\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t`: the byte each stands for (0: not a simple escape). */
const ESCAPES = (() => {
  const t = new Uint8Array(256)
  t[34] = 34
  t[92] = 92
  t[47] = 47
  t[98] = 8
  t[102] = 12
  t[110] = 10
  t[114] = 13
  t[116] = 9
  return t
})()

function hexValue(c: number): number {
  return c <= 57 ? c - 48 : (c | 0x20) - 87
}

/**
 * base64 (either alphabet, `=` padding ignored) of `input[start, end)` decoded, when at most 1 in
 * 20 of its bytes is not printable ASCII; otherwise undefined. Validated before it allocates:
 * binary data is given up as soon as it has more bad bytes than allowed.
 */
function decodeBase64Text(input: Uint8Array, start: number, end: number): Buffer | undefined {
  let e = end
  while (e > start && input[e - 1] === 61) e--
  const chars = e - start
  const bytes = Math.floor((chars * 6) / 8)
  if (bytes < 12) return undefined
  const allowed = Math.floor(bytes / 20)
  let bad = 0
  let acc = 0
  let bits = 0
  for (let i = start; i < e; i++) {
    const v = B64_VALUE[input[i] as number] as number
    if (v < 0) return undefined
    acc = ((acc << 6) | v) & 0xffffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      if (!printable((acc >> bits) & 0xff) && ++bad > allowed) return undefined
    }
  }
  const out = Buffer.allocUnsafe(bytes)
  let o = 0
  acc = 0
  bits = 0
  for (let i = start; i < e; i++) {
    acc = ((acc << 6) | (B64_VALUE[input[i] as number] as number)) & 0xffffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[o++] = (acc >> bits) & 0xff
    }
  }
  return out
}
