/**
 * Request-target hygiene. Every request is reduced to one canonical path before routing and
 * before any policy runs; routing, policies and the upstream all see that same path. Forms that
 * different servers could read differently are rejected instead of guessed at.
 *
 * Decisions (see docs/security/path-normalization.md):
 * - only origin-form (`/path?query`) is accepted: absolute-form, authority-form and asterisk-form
 *   are rejected, so a client cannot smuggle a second host or path through the request line;
 * - percent-escapes of unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded, other escapes are
 *   kept with upper-case hex; encoded `/`, `\`, NUL and other control bytes are rejected, and so is
 *   a double-encoded escape (`%25` followed by two hex digits, raw or themselves encoded);
 * - the decoded path must be valid UTF-8 (overlong forms such as `%C0%AE` are invalid);
 * - `\`, raw non-ASCII, control characters and other characters outside RFC 3986 are rejected;
 * - `;` is rejected unless allowed: Java servers strip `;params` from segments, which lets
 *   `/public/..;/admin` reach `/admin` behind a proxy that saw a path under `/public`; when it is
 *   allowed, a segment that is `.` or `..` before its `;` is still rejected;
 * - duplicate slashes are collapsed and dot segments removed; a `..` that would climb above the
 *   root is rejected.
 */
import { isUtf8 } from 'node:buffer'
import { GatewayError } from './errors.js'
import { type H2Facts, kHttp2, type MaybeH2 } from './http2/messages.js'

export interface HygieneOptions {
  /** Accept `;` in path segments (matrix parameters). Default false. */
  allowSemicolon: boolean
  /** Longest request target (path + query) accepted; longer ones get 414. */
  maxUrlLength: number
}

export interface CanonicalTarget {
  /** The canonical path: starts with `/`, no dot segments, no empty segments. */
  path: string
  /** The raw query string without the `?`, or '' when there is none. */
  query: string
}

// Character classes for the raw request path, indexed by char code (0..127).
const PATH_OK = 1 // allowed as is
const PATH_PCT = 2 // '%'
const PATH_SEMI = 3 // ';'
const PATH_SLASH = 4 // '/'
const PATH_DOT = 5 // '.'
const pathClass = new Uint8Array(128)
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c)
  if (/[A-Za-z0-9\-_~!$&'()*+,=:@]/.test(ch)) pathClass[c] = PATH_OK
}
pathClass[0x25] = PATH_PCT
pathClass[0x3b] = PATH_SEMI
pathClass[0x2f] = PATH_SLASH
pathClass[0x2e] = PATH_DOT

// Unreserved characters, which are decoded when percent-encoded.
const unreserved = new Uint8Array(128)
for (let c = 0; c < 128; c++) {
  if (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(c))) unreserved[c] = 1
}

// Characters allowed raw in a query: pchar / "/" / "?" (RFC 3986) plus a few that clients send
// unencoded in practice and that carry no path meaning (`[`, `]`, `|`).
const queryOk = new Uint8Array(128)
for (let c = 0; c < 128; c++) {
  if (/[A-Za-z0-9\-._~!$&'()*+,;=:@/?%[\]|]/.test(String.fromCharCode(c))) queryOk[c] = 1
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  return -1
}

const HEX = '0123456789ABCDEF'

const DOUBLE_ENCODED = /%25[0-9A-Fa-f]{2}/

function bad(detail: string): GatewayError {
  return new GatewayError('GW_ERR_BAD_PATH', { detail })
}

/**
 * Turns a raw request target (`req.url`) into its canonical path and raw query.
 * Throws GW_ERR_BAD_PATH (400) for ambiguous forms and GW_ERR_URI_TOO_LONG (414) for long ones.
 *
 * @example
 * canonicalizeTarget('/a//b/./c/../d%7e?x=1', opts) // { path: '/a/b/d~', query: 'x=1' }
 */
export function canonicalizeTarget(raw: string, opts: HygieneOptions): CanonicalTarget {
  if (raw.length > opts.maxUrlLength) {
    throw new GatewayError('GW_ERR_URI_TOO_LONG', { detail: `limit is ${opts.maxUrlLength} characters` })
  }
  if (raw.charCodeAt(0) !== 0x2f) {
    throw bad('only origin-form request targets are accepted')
  }
  const q = raw.indexOf('?')
  const pathEnd = q === -1 ? raw.length : q
  if (q !== -1) {
    for (let i = q + 1; i < raw.length; i++) {
      const c = raw.charCodeAt(i)
      if (c >= 128 || queryOk[c] === 0) throw bad('invalid character in query')
      if (c === 0x25 && (hexVal(raw.charCodeAt(i + 1)) < 0 || hexVal(raw.charCodeAt(i + 2)) < 0)) {
        throw bad('invalid percent-encoding in query')
      }
    }
  }
  // Fast scan: does the path need any rewriting at all?
  let simple = true
  let prev = 0
  for (let i = 0; i < pathEnd; i++) {
    const c = raw.charCodeAt(i)
    if (c >= 128) throw bad('raw non-ASCII character in path')
    const k = pathClass[c]
    if (k === PATH_OK) {
      prev = c
      continue
    }
    if (k === 0) throw bad(`character 0x${c.toString(16).padStart(2, '0')} not allowed in path`)
    if (k === PATH_SEMI && !opts.allowSemicolon) throw bad('";" not allowed in path')
    if (k === PATH_PCT) simple = false
    else if (k === PATH_SLASH && prev === 0x2f) simple = false
    else if (k === PATH_DOT && prev === 0x2f) simple = false // any segment starting with '.' is checked fully
    prev = c
  }
  const query = q === -1 ? '' : raw.slice(q + 1)
  if (simple) return { path: pathEnd === raw.length ? raw : raw.slice(0, pathEnd), query }
  return { path: normalizePath(raw, pathEnd, opts), query }
}

function normalizePath(raw: string, end: number, opts: HygieneOptions): string {
  // 1. Decode unreserved escapes, keep others upper-cased, collect bytes for the UTF-8 check.
  let decoded = ''
  let hasHigh = false
  for (let i = 0; i < end; i++) {
    const c = raw.charCodeAt(i)
    if (c !== 0x25) {
      decoded += raw[i]
      continue
    }
    const h = hexVal(raw.charCodeAt(i + 1))
    const l = hexVal(raw.charCodeAt(i + 2))
    if (i + 2 >= end || h < 0 || l < 0) throw bad('invalid percent-encoding in path')
    const b = h * 16 + l
    i += 2
    if (b === 0x2f) throw bad('encoded "/" in path')
    if (b === 0x5c) throw bad('encoded "\\" in path')
    if (b < 0x20 || b === 0x7f) throw bad('encoded control character in path')
    if (b === 0x3b && !opts.allowSemicolon) throw bad('encoded ";" not allowed in path')
    if (b < 128 && unreserved[b] === 1) {
      decoded += String.fromCharCode(b)
    } else {
      if (b >= 128) hasHigh = true
      decoded += `%${HEX[b >> 4]}${HEX[b & 15]}`
    }
  }
  // A kept `%25` followed by two hex digits is a double-encoded escape, whether the digits were
  // raw (`%252e`) or themselves encoded (`%25%32%65`, which decodes to `%252e`): an upstream that
  // decodes twice would see `.`. Checked on the decoded form so both spellings are caught.
  if (DOUBLE_ENCODED.test(decoded)) throw bad('double percent-encoding in path')
  if (hasHigh && !isUtf8(percentBytes(decoded))) throw bad('path is not valid UTF-8')

  // 2. Collapse empty segments and remove dot segments (RFC 3986 5.2.4); never climb above root.
  const parts = decoded.split('/')
  const out: string[] = []
  let trailing = false
  for (let i = 1; i < parts.length; i++) {
    const seg = parts[i] as string
    const last = i === parts.length - 1
    if (opts.allowSemicolon) {
      // Java servers drop `;params` from a segment before removing dot segments: `..;x` is `..`.
      const semi = seg.indexOf(';')
      const base = semi === -1 ? undefined : seg.slice(0, semi)
      if (base === '.' || base === '..') throw bad('dot segment with ";" parameters')
    }
    if (seg === '' || seg === '.') {
      if (last) trailing = true
      continue
    }
    if (seg === '..') {
      if (out.length === 0) throw bad('path climbs above the root')
      out.pop()
      if (last) trailing = true
      continue
    }
    out.push(seg)
  }
  if (out.length === 0) return '/'
  return `/${out.join('/')}${trailing ? '/' : ''}`
}

function percentBytes(s: string): Buffer {
  const bytes: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x25) {
      bytes.push(hexVal(s.charCodeAt(i + 1)) * 16 + hexVal(s.charCodeAt(i + 2)))
      i += 2
    } else bytes.push(c)
  }
  return Buffer.from(bytes)
}

const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::[0-9]{1,5})?$/

/** Returns the lower-cased host name (without port) of a Host header, or throws GW_ERR_BAD_HEADER. */
export function parseHost(host: string | undefined): string {
  if (host === undefined || host === '') {
    throw new GatewayError('GW_ERR_BAD_HEADER', { detail: 'missing Host', closeConnection: true })
  }
  if (!HOST_RE.test(host)) throw new GatewayError('GW_ERR_BAD_HEADER', { detail: 'invalid Host' })
  if (host.charCodeAt(0) === 0x5b) return host.slice(0, host.indexOf(']') + 1).toLowerCase()
  const colon = host.indexOf(':')
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase()
}

/**
 * Headers a request may carry once: policies decide on them (the body's media type, the
 * credential, the session) and a second copy could be what the upstream reads instead (Node keeps
 * the first Content-Type and Authorization, an upstream framework may keep the last; RFC 6265 §5.4:
 * one Cookie header). A duplicate is refused (400 GW_ERR_BAD_HEADER). Other singletons Node keeps
 * the first of (User-Agent, Referer, …) are reduced to that first one on the way upstream
 * (upstream/headers.ts), so the upstream sees what the policies saw.
 */
const REFUSED_DUPLICATES = new Set(['cookie', 'content-type', 'authorization', 'proxy-authorization'])

/** What `checkFraming` reads of a request (an IncomingMessage has it; an H2Request too). */
export interface FramingInput extends MaybeH2 {
  method?: string | undefined
  httpVersionMajor: number
  httpVersionMinor: number
  rawHeaders: string[]
  headers: { 'transfer-encoding'?: string | undefined }
}

/**
 * Framing checks that run before anything else reads the request (Node's strict parser has
 * already refused Content-Length with Transfer-Encoding, duplicate Content-Length, obs-fold and
 * bad chunk sizes): the header count (Node keeps only `maxHeaderCount + 1` headers, so what came
 * after is unknown), HTTP/1.x only, a single Host, a single Cookie, Content-Type, Authorization and
 * Proxy-Authorization, Transfer-Encoding only `chunked` and never in
 * HTTP/1.0, and no CONNECT or TRACE. Throws a GatewayError.
 */
export function checkFraming(req: FramingInput, maxHeaderCount: number, maxHeaderListSize = 0): void {
  const raw = req.rawHeaders
  if (raw.length / 2 > maxHeaderCount) {
    throw new GatewayError('GW_ERR_HEADERS_TOO_LARGE', {
      detail: `limit is ${maxHeaderCount} headers`,
      closeConnection: true,
    })
  }
  const h2 = req[kHttp2]
  if (h2 !== undefined) {
    checkH2(h2, maxHeaderListSize)
  } else if (req.httpVersionMajor !== 1) {
    throw new GatewayError('GW_ERR_BAD_REQUEST', { detail: 'only HTTP/1.x', closeConnection: true })
  }
  let hosts = 0
  let seen: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as string
    const len = n.length
    if (len === 4 && n.toLowerCase() === 'host') hosts++
    else if (len === 6 || len === 12 || len === 13 || len === 19) {
      const lower = n.toLowerCase()
      if (!REFUSED_DUPLICATES.has(lower)) continue
      if (seen?.includes(lower))
        throw new GatewayError('GW_ERR_BAD_HEADER', { detail: `duplicate ${n}`, closeConnection: true })
      seen ??= []
      seen.push(lower)
    }
  }
  if (hosts > 1)
    throw new GatewayError('GW_ERR_REQUEST_SMUGGLING', { detail: 'duplicate Host', closeConnection: true })
  const te = h2 === undefined ? req.headers['transfer-encoding'] : undefined // http2: see checkH2
  if (te !== undefined && req.httpVersionMinor === 0) {
    // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing.
    throw new GatewayError('GW_ERR_REQUEST_SMUGGLING', {
      detail: 'Transfer-Encoding in HTTP/1.0',
      closeConnection: true,
    })
  }
  if (te !== undefined && te.toLowerCase() !== 'chunked') {
    throw new GatewayError('GW_ERR_REQUEST_SMUGGLING', {
      detail: 'unsupported Transfer-Encoding',
      closeConnection: true,
    })
  }
  if (req.method === 'CONNECT' || req.method === 'TRACE') {
    throw new GatewayError('GW_ERR_METHOD_NOT_ALLOWED', { detail: `${req.method} is not proxied` })
  }
}

/**
 * HTTP/2's own framing rules (the facts were gathered when the request object was built, see
 * http2/messages.ts): the header list size (node:http2 advertises the limit but does not enforce
 * it), connection-specific fields and `te` other than `trailers` (nghttp2 resets such streams
 * first; checked again here whatever the library does), a Host that differs from `:authority`,
 * an unknown method or `:scheme`. Cookie crumbs were joined into one field (RFC 9113 §8.2.3), so
 * the duplicate checks that follow see what HTTP/1.1 would carry. Nothing here closes the
 * connection: in HTTP/2 a malformed request spoils only its own stream.
 */
function checkH2(h2: H2Facts, maxHeaderListSize: number): void {
  if (maxHeaderListSize > 0 && h2.listSize > maxHeaderListSize) {
    throw new GatewayError('GW_ERR_HEADERS_TOO_LARGE', {
      detail: `limit is ${maxHeaderListSize} bytes of header list`,
    })
  }
  if (h2.problem !== undefined) throw new GatewayError(h2.problem.code, { detail: h2.problem.detail })
}
