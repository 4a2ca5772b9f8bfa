/**
 * Scans a sampled message for data classes: JSON bodies (walked with the field names as hints),
 * form and query parameters, headers, and free text. Also reports the JSON field paths and value
 * types it walks (the inventory's field list and the schema inference use them). Every walk is
 * bounded: nodes, depth, string length and text length; the regular expressions are fixed (no
 * user input) and linear.
 */
import type { DataClassId } from './classes.js'
import { hasSecret } from './secrets.js'
import {
  isAadhaar,
  isBrazilCpf,
  isCanadaSin,
  isDate,
  isDutchBsn,
  isEmail,
  isGeoPair,
  isGeoText,
  isIban,
  isIpv4,
  isIpv6,
  isJwt,
  isKnownCredential,
  isPaymentCard,
  isPhone,
  isSpanishDniNie,
  isUkNino,
  isUsSsn,
  looksSecret,
} from './validators.js'

/** Receives what a scan finds: a class at a field path (`$.user.email`, `?email`, `header:cookie`). */
export type ClassSink = (cls: DataClassId, path: string) => void
/** Receives the JSON fields walked: a path (`$.items[].id`) and the value's type (`string:email`, `integer`…). */
export type FieldSink = (path: string, type: string) => void

export interface ScanLimits {
  /** JSON nodes visited per message. */
  maxNodes: number
  /** Deepest nesting followed. */
  maxDepth: number
  /** Longest string value inspected (longer ones: their first part, as free text). */
  maxString: number
}

export const DEFAULT_SCAN_LIMITS: ScanLimits = { maxNodes: 5000, maxDepth: 32, maxString: 2048 }

/** Field name → lower case letters and digits only (`date_of_birth` → `dateofbirth`). */
function normKey(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '')
}

const HINT_PHONE = /phone|mobile|msisdn|cellular|^cell$|^fax$|^tel$|telephone/
const HINT_NATIONAL =
  /^(ssn|socialsecurity|socialsecuritynumber|sin|bsn|nationalid|nationalidnumber|nino|cpf|dni|nie|aadhaar|aadhar|taxid|tin|nin|personalid|idnumber)$/
const HINT_DOB = /dob|birth/
const HINT_LAT = /^(lat|latitude)$/
const HINT_LON = /^(lon|lng|long|longitude)$/
const HINT_PASSWORD = /password|passwd|^pwd$|passphrase|^pin$/
const HINT_SECRET =
  /secret|token|apikey|accesskey|privatekey|credential|authorization|^auth$|sessionid|^session$|signature|clientsecret/
const HINT_CVV = /^(cvv|cvc|cvv2|cvc2|csc|cid|securitycode|cardcode|cardverificationcode|cardsecuritycode)$/
const HINT_NOT_IP = /version|^v$/

/** Checks one scalar string value, with the field name as a hint. */
export function classifyString(value: string, key: string, path: string, sink: ClassSink): void {
  const v = value.trim()
  if (v.length === 0) return
  const k = key === '' ? '' : normKey(key)
  const cls = stringClass(v, k)
  if (cls !== undefined) sink(cls, path)
  else if (v.length > 24 && v.length <= 4096 && /\s/.test(v) && !/^[\d+(]/.test(v)) scanText(v, path, sink)
}

/** The class of a trimmed, non-empty string value under the normalized field name `k`. */
function stringClass(v: string, k: string): DataClassId | undefined {
  if (k !== '') {
    if (HINT_PASSWORD.test(k) && !/hint|policy|required|expir|reset|changed|strength|length/.test(k)) {
      return 'password'
    }
    if (HINT_CVV.test(k) && /^\d{3,4}$/.test(v)) return 'card-security-code'
  }
  if (v.length > 4096) return undefined
  if (isJwt(v)) return 'jwt'
  if (isKnownCredential(v)) return 'credential'
  if (k !== '' && HINT_SECRET.test(k) && looksSecret(v)) return 'credential'
  if (v.includes('@') && isEmail(v)) return 'email'
  if (v.length >= 16 && hasSecret(v)) return 'credential'
  const c0 = v.charCodeAt(0)
  if ((c0 >= 48 && c0 <= 57) || c0 === 43 /* + */ || c0 === 40 /* ( */) {
    if (isPaymentCard(v)) return 'payment-card'
    if (isUsSsn(v, k !== '' && /ssn|socialsecurity/.test(k))) return 'us-ssn'
    if (isBrazilCpf(v, k === 'cpf')) return 'national-id'
    if (isSpanishDniNie(v)) return 'national-id'
    if (k !== '' && HINT_NATIONAL.test(k) && (isDutchBsn(v) || isCanadaSin(v) || isAadhaar(v))) {
      return 'national-id'
    }
    if (k !== '' && HINT_DOB.test(k) && isDate(v)) return 'date-of-birth'
    if (isGeoText(v)) return 'geo-location'
    if (!HINT_NOT_IP.test(k) && isIpv4(v)) return 'ip-address'
    if (isPhone(v, k !== '' && HINT_PHONE.test(k))) return 'phone'
    return undefined
  }
  if (isIban(v)) return 'iban'
  if (isUkNino(v) || isSpanishDniNie(v)) return 'national-id'
  if (v.includes(':') && isIpv6(v)) return 'ip-address'
  return undefined
}

/** A number value: card numbers and national ids sent as JSON numbers, SSNs under a hint. */
function classifyNumber(value: number, key: string, path: string, sink: ClassSink): void {
  if (!Number.isSafeInteger(value) || value < 1_000_000) return
  const k = normKey(key)
  const s = String(value)
  if (s.length >= 13 && isPaymentCard(s)) sink('payment-card', path)
  else if (/ssn|socialsecurity/.test(k)) {
    if (isUsSsn(s.padStart(9, '0'), true)) sink('us-ssn', path)
  } else if (HINT_NATIONAL.test(k)) {
    if (isDutchBsn(s) || isCanadaSin(s) || isAadhaar(s)) sink('national-id', path)
  } else if (HINT_PHONE.test(k) && isPhone(s, true)) sink('phone', path)
}

const TEXT_PATTERNS: readonly [RegExp, (m: string) => DataClassId | undefined][] = [
  [/[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}/g, (m) => (isEmail(m) ? 'email' : undefined)],
  [/\b\d(?:[ -]?\d){12,18}\b/g, (m) => (isPaymentCard(m) ? 'payment-card' : undefined)],
  [/\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g, (m) => (isIban(m) ? 'iban' : undefined)],
  [/\b\d{3}-\d{2}-\d{4}\b/g, (m) => (isUsSsn(m) ? 'us-ssn' : undefined)],
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g, (m) => (isJwt(m) ? 'jwt' : undefined)],
  [
    /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36}\b|\b(?:sk|rk)_live_[A-Za-z0-9]{16,}\b|\bpcl_[0-9A-Za-z]{36}\b|\bAIza[0-9A-Za-z_-]{35}\b|\bxox[abposr]-[A-Za-z0-9-]{10,}/g,
    (m) => (isKnownCredential(m) ? 'credential' : undefined),
  ],
  [/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/g, () => 'credential'],
  [/\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/g, (m) => (isIpv4(m) ? 'ip-address' : undefined)],
]

/** Free text (a plain-text body, a long string value): every class with a distinctive shape. */
export function scanText(text: string, path: string, sink: ClassSink): void {
  if (hasSecret(text)) sink('credential', path)
  for (const [re, check] of TEXT_PATTERNS) {
    re.lastIndex = 0
    let hits = 0
    for (let m = re.exec(text); m !== null && hits < 50; m = re.exec(text)) {
      hits++
      const cls = check(m[0])
      if (cls !== undefined) {
        sink(cls, path)
        break
      }
    }
  }
}

/** One path segment for a key: safe characters as is, others percent-escaped. */
export function keySegment(key: string): string {
  return /^[A-Za-z0-9_$@-]{1,64}$/.test(key)
    ? key
    : encodeURIComponent(key.slice(0, 64)).replace(
        /[.[\]|*']/g,
        (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
      )
}

const STRING_FORMATS: readonly [RegExp, string][] = [
  [/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'uuid'],
  [/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/, 'date-time'],
  [/^\d{4}-\d{2}-\d{2}$/, 'date'],
  [/^https?:\/\/[^\s]{1,2000}$/, 'uri'],
]

/** The JSON Schema type of a value, with a `:format` for strings that have a recognizable one. */
export function typeOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  switch (typeof v) {
    case 'string': {
      if (v.length <= 2048) {
        if (v.includes('@') && isEmail(v)) return 'string:email'
        for (const [re, f] of STRING_FORMATS) if (re.test(v)) return `string:${f}`
        if (isIpv4(v)) return 'string:ipv4'
      }
      return 'string'
    }
    case 'number':
      return Number.isInteger(v) ? 'integer' : 'number'
    case 'boolean':
      return 'boolean'
    case 'object':
      return 'object'
    default:
      return 'string'
  }
}

/**
 * Walks a parsed JSON value: data classes to `sink`, field paths and types to `fields` (when
 * given). Stops after `limits.maxNodes` nodes and below `limits.maxDepth`.
 */
export function scanJson(
  value: unknown,
  sink: ClassSink,
  fields?: FieldSink,
  limits: ScanLimits = DEFAULT_SCAN_LIMITS,
): void {
  let budget = limits.maxNodes
  const walk = (v: unknown, key: string, path: string, depth: number): void => {
    if (--budget < 0) return
    const t = fields ? typeOf(v) : ''
    if (fields) fields(path, t)
    if (typeof v === 'string') {
      classifyString(v.length > limits.maxString ? v.slice(0, limits.maxString) : v, key, path, sink)
      return
    }
    if (typeof v === 'number') {
      classifyNumber(v, key, path, sink)
      return
    }
    if (v === null || typeof v !== 'object' || depth >= limits.maxDepth) return
    if (Array.isArray(v)) {
      const p = `${path}[]`
      // A pair of numbers under coordinates-like keys: GeoJSON [lon, lat].
      if (v.length === 2 && /coordinates|coords|latlng|lnglat|position/.test(normKey(key))) {
        if (isGeoPair(v[1], v[0]) || isGeoPair(v[0], v[1])) sink('geo-location', path)
      }
      for (let i = 0; i < v.length && budget > 0; i++) walk(v[i], key, p, depth + 1)
      return
    }
    const o = v as Record<string, unknown>
    let lat: unknown
    let lon: unknown
    for (const k of Object.keys(o)) {
      if (budget <= 0) break
      const child = o[k]
      const nk = normKey(k)
      if (HINT_LAT.test(nk)) lat = child
      else if (HINT_LON.test(nk)) lon = child
      walk(child, k, `${path}.${keySegment(k)}`, depth + 1)
    }
    if (lat !== undefined && lon !== undefined && isGeoPair(lat, lon)) sink('geo-location', path)
  }
  walk(value, '', '$', 0)
}

/** Query string or form body `a=1&b=2`: each decoded value with its name as the hint. */
export function scanForm(raw: string, sink: ClassSink, prefix = '?', maxParams = 64): void {
  let n = 0
  for (const part of raw.split('&')) {
    if (++n > maxParams) break
    if (part === '') continue
    const eq = part.indexOf('=')
    const name = decode(eq === -1 ? part : part.slice(0, eq))
    const value = eq === -1 ? '' : decode(part.slice(eq + 1))
    if (value === '') continue
    classifyString(value.slice(0, 2048), name, `${prefix}${keySegment(name)}`, sink)
  }
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    return s
  }
}

/** Request headers that carry credentials by definition (their value is not inspected). */
const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-access-token',
])

/** Headers never scanned (framing, negotiation, tracing: no personal data by design). */
const SKIP_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'accept',
  'accept-encoding',
  'accept-language',
  'connection',
  'user-agent',
  'transfer-encoding',
  'cache-control',
  'x-request-id',
  'traceparent',
  'tracestate',
  'date',
  'etag',
  'vary',
  'server',
  'x-powered-by',
  'location',
  'content-security-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-frame-options',
  'referrer-policy',
])

/**
 * Headers (lower-case names): credentials (Authorization, API key headers, cookies with a
 * session-like value), JWTs, and personal data in custom headers (`x-user-email`).
 */
export function scanHeaders(
  headers: Readonly<Record<string, string | string[] | number | undefined>>,
  sink: ClassSink,
  maxHeaders = 64,
): void {
  let n = 0
  for (const name of Object.keys(headers)) {
    if (++n > maxHeaders) break
    if (SKIP_HEADERS.has(name)) continue
    const raw = headers[name]
    if (raw === undefined) continue
    const value = (Array.isArray(raw) ? raw.join(', ') : String(raw)).slice(0, 4096)
    const path = `header:${name}`
    if (CREDENTIAL_HEADERS.has(name)) {
      const sp = value.indexOf(' ')
      const cred = sp === -1 ? value : value.slice(sp + 1).trim()
      sink(isJwt(cred) ? 'jwt' : 'credential', path)
      continue
    }
    if (name === 'cookie' || name === 'set-cookie') {
      for (const c of value.split(/;\s*|,\s*(?=[^;]*=)/)) {
        const eq = c.indexOf('=')
        if (eq <= 0) continue
        const cname = c.slice(0, eq).trim()
        const cval = c.slice(eq + 1).trim()
        if (/^(path|domain|expires|max-age|samesite|secure|httponly)$/i.test(cname)) continue
        if (isJwt(cval)) sink('jwt', path)
        else if (HINT_SECRET.test(normKey(cname)) || /sess|sid|auth|token/i.test(cname)) {
          if (cval.length >= 16) sink('credential', path)
        } else classifyString(cval, cname, path, sink)
      }
      continue
    }
    classifyString(value, name.replace(/^x-/, ''), path, sink)
  }
}
