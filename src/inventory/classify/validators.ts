/**
 * Validators for the data classes: checksums and structural rules that turn "looks like a number"
 * into "is one" (a card number passes Luhn and has an issuer prefix, an IBAN passes ISO 7064
 * mod 97-10 with its country's length, an SSN respects the SSA's allocation rules). Every
 * function takes the candidate text and answers true or false; none throws; each is linear in its
 * input, and inputs are short (callers cut them).
 */

/** True when `digits` (only 0-9) passes the Luhn (mod 10) check. */
export function luhn(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (d < 0 || d > 9) return false
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return digits.length > 0 && sum % 10 === 0
}

/** `s` without spaces and dashes. */
function compact(s: string): string {
  return s.replace(/[ -]/g, '')
}

const ALL_SAME = /^(\d)\1+$/

/**
 * A payment card number (PAN): 13 to 19 digits, optionally grouped with spaces or dashes, an
 * issuer prefix of a major network (Visa, Mastercard, American Express, Discover, JCB, Diners
 * Club, UnionPay) with a length that network issues, and a valid Luhn check digit.
 */
export function isPaymentCard(text: string): boolean {
  if (text.length > 23 || !/^\d[\d -]*\d$/.test(text)) return false
  const d = compact(text)
  if (d.length < 13 || d.length > 19 || !/^\d+$/.test(d) || ALL_SAME.test(d)) return false
  if (!cardNetwork(d)) return false
  return luhn(d)
}

/** The card network of a PAN by issuer prefix and length, or undefined. */
export function cardNetwork(d: string): string | undefined {
  const n = d.length
  const p2 = Number(d.slice(0, 2))
  const p3 = Number(d.slice(0, 3))
  const p4 = Number(d.slice(0, 4))
  const p6 = Number(d.slice(0, 6))
  if (d[0] === '4' && (n === 13 || n === 16 || n === 19)) return 'visa'
  if (n === 16 && ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))) return 'mastercard'
  if (n === 15 && (p2 === 34 || p2 === 37)) return 'amex'
  if (n >= 16 && n <= 19 && (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649))) return 'discover'
  if (n >= 16 && n <= 19 && p4 >= 3528 && p4 <= 3589) return 'jcb'
  if (n >= 14 && n <= 19 && ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39)) return 'diners'
  if (n >= 16 && n <= 19 && p2 === 62 && p6 > 0) return 'unionpay'
  return undefined
}

/** IBAN lengths by country (ISO 13616 registry, SWIFT release 2024). */
const IBAN_LENGTHS: Record<string, number> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BI: 27,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DJ: 27,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FK: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  LY: 25,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MN: 20,
  MR: 27,
  MT: 31,
  MU: 30,
  NI: 28,
  NL: 18,
  NO: 15,
  OM: 23,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  RU: 33,
  SA: 24,
  SC: 31,
  SD: 18,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  SO: 23,
  ST: 25,
  SV: 28,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  XK: 20,
  YE: 30,
}

/**
 * An IBAN: a registered country code, the length that country uses, and check digits that make
 * the number ≡ 1 (mod 97) (ISO 7064 MOD 97-10). Spaces (groups of four) are allowed; letters are
 * upper case.
 */
export function isIban(text: string): boolean {
  if (text.length > 42) return false
  const s = text.replace(/ /g, '')
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(s)) return false
  if (IBAN_LENGTHS[s.slice(0, 2)] !== s.length) return false
  const moved = s.slice(4) + s.slice(0, 4)
  let rem = 0
  for (let i = 0; i < moved.length; i++) {
    const c = moved.charCodeAt(i)
    // Letters count as two digits (A = 10 … Z = 35).
    if (c >= 65) rem = (rem * 100 + (c - 55)) % 97
    else rem = (rem * 10 + (c - 48)) % 97
  }
  return rem === 1
}

/**
 * A US Social Security number written AAA-GG-SSSS (`dashed`) or, when `bare` is allowed (a field
 * named like an SSN), nine digits. Area 000, 666 and 900–999, group 00 and serial 0000 were
 * never issued; nor were the advertising numbers 078-05-1120 and 219-09-9999, or 123-45-6789.
 */
export function isUsSsn(text: string, bare = false): boolean {
  let d: string
  if (/^\d{3}-\d{2}-\d{4}$/.test(text)) d = text.replace(/-/g, '')
  else if (bare && /^\d{9}$/.test(text)) d = text
  else return false
  const area = d.slice(0, 3)
  if (area === '000' || area === '666' || area[0] === '9') return false
  if (d.slice(3, 5) === '00' || d.slice(5) === '0000') return false
  if (d === '078051120' || d === '219099999' || d === '123456789') return false
  return true
}

/**
 * A UK National Insurance number: two prefix letters (not D, F, I, Q, U, V; the second not O;
 * not the unallocated BG, GB, KN, NK, NT, TN, ZZ), six digits, a suffix A–D. Spaces allowed.
 */
export function isUkNino(text: string): boolean {
  const s = text.replace(/ /g, '').toUpperCase()
  if (!/^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$/.test(s)) return false
  return !['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ'].includes(s.slice(0, 2))
}

const DNI_LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE'

/** A Spanish DNI (8 digits + control letter) or NIE (X/Y/Z + 7 digits + control letter): mod 23. */
export function isSpanishDniNie(text: string): boolean {
  const s = text.replace(/[ -]/g, '').toUpperCase()
  let digits: string
  if (/^\d{8}[A-Z]$/.test(s)) digits = s.slice(0, 8)
  else if (/^[XYZ]\d{7}[A-Z]$/.test(s)) digits = String('XYZ'.indexOf(s[0] as string)) + s.slice(1, 8)
  else return false
  return DNI_LETTERS[Number(digits) % 23] === s[8]
}

/** A Brazilian CPF written ddd.ddd.ddd-dd (or 11 bare digits when `bare`): two mod 11 check digits. */
export function isBrazilCpf(text: string, bare = false): boolean {
  let d: string
  if (/^\d{3}\.\d{3}\.\d{3}-\d{2}$/.test(text)) d = text.replace(/[.-]/g, '')
  else if (bare && /^\d{11}$/.test(text)) d = text
  else return false
  if (ALL_SAME.test(d)) return false
  for (const len of [9, 10]) {
    let sum = 0
    for (let i = 0; i < len; i++) sum += Number(d[i]) * (len + 1 - i)
    const check = ((sum * 10) % 11) % 10
    if (check !== Number(d[len])) return false
  }
  return true
}

/** A Dutch BSN: nine digits passing the "11-proof" (weights 9…2 and −1). */
export function isDutchBsn(text: string): boolean {
  if (!/^\d{9}$/.test(text) || ALL_SAME.test(text)) return false
  let sum = 0
  for (let i = 0; i < 8; i++) sum += Number(text[i]) * (9 - i)
  sum -= Number(text[8])
  return sum % 11 === 0
}

/** A Canadian SIN: nine digits (groups of three allowed), Luhn, not starting with 0 or 8. */
export function isCanadaSin(text: string): boolean {
  const d = text.replace(/[ -]/g, '')
  if (!/^\d{9}$/.test(d) || d[0] === '0' || d[0] === '8' || ALL_SAME.test(d)) return false
  return luhn(d)
}

// Verhoeff tables (dihedral group D5).
const VD = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
  [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
  [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
  [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
  [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
  [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
  [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
  [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
  [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
const VP = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
  [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
  [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
  [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
  [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
  [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
  [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]

/** True when `digits` passes the Verhoeff check. */
export function verhoeff(digits: string): boolean {
  let c = 0
  for (let i = 0; i < digits.length; i++) {
    const d = digits.charCodeAt(digits.length - 1 - i) - 48
    if (d < 0 || d > 9) return false
    c = (VD[c] as number[])[(VP[i % 8] as number[])[d] as number] as number
  }
  return c === 0
}

/** An Indian Aadhaar number: 12 digits (groups of four allowed), first digit 2–9, Verhoeff. */
export function isAadhaar(text: string): boolean {
  const d = text.replace(/ /g, '')
  if (!/^[2-9]\d{11}$/.test(d) || ALL_SAME.test(d)) return false
  return verhoeff(d)
}

const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$/

/** An email address (the common dot-atom form; no quoted local parts, no IP literals). */
export function isEmail(text: string): boolean {
  if (text.length > 254 || text.length < 6) return false
  if (text.startsWith('.') || text.includes('..')) return false
  return EMAIL.test(text)
}

/**
 * A phone number: E.164 (`+` and 8–15 digits, separators allowed), or, when `hinted` (a field
 * named like a phone number), 7–15 digits with the usual separators.
 */
export function isPhone(text: string, hinted = false): boolean {
  if (text.length > 32 || !/^\+?[\d ().-]+$/.test(text)) return false
  const digits = text.replace(/\D/g, '')
  if (ALL_SAME.test(digits)) return false
  if (text.startsWith('+'))
    return /^\+[1-9]/.test(text.replace(/[ ().-]/g, '')) && digits.length >= 8 && digits.length <= 15
  return hinted && digits.length >= 7 && digits.length <= 15
}

/** An IPv4 address in dotted-quad form (no leading zeros), not 0.0.0.0. */
export function isIpv4(text: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text)
  if (!m) return false
  for (let i = 1; i <= 4; i++) {
    const p = m[i] as string
    if ((p.length > 1 && p[0] === '0') || Number(p) > 255) return false
  }
  return text !== '0.0.0.0'
}

/** An IPv6 address (full or `::`-compressed, optionally with a trailing dotted IPv4), not `::`. */
export function isIpv6(text: string): boolean {
  if (text.length < 3 || text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(':'))
    return false
  if (text === '::' || text === '::1') return text === '::1'
  const dbl = text.split('::')
  if (dbl.length > 2) return false
  const groups = (part: string) => (part === '' ? [] : part.split(':'))
  const head = groups(dbl[0] as string)
  const tail = dbl.length === 2 ? groups(dbl[1] as string) : []
  const all = [...head, ...tail]
  let count = all.length
  const last = all[all.length - 1]
  if (last?.includes('.')) {
    if (!isIpv4(last)) return false
    count += 1
    all.pop()
  }
  for (const g of all) if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return false
  return dbl.length === 2 ? count < 8 : count === 8
}

/** A calendar date in ISO form (YYYY-MM-DD, optionally with a time) or DD/MM/YYYY, MM/DD/YYYY. */
export function isDate(text: string): boolean {
  if (text.length > 35) return false
  let y: number
  let m: number
  let d: number
  let r = /^(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/.exec(text)
  if (r) {
    y = Number(r[1])
    m = Number(r[2])
    d = Number(r[3])
  } else {
    r = /^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$/.exec(text)
    if (!r) return false
    y = Number(r[3])
    const a = Number(r[1])
    const b = Number(r[2])
    // Either order; at least one must be a valid month.
    m = a <= 12 ? a : b
    d = a <= 12 ? b : a
  }
  if (y < 1850 || y > 2200 || m < 1 || m > 12 || d < 1) return false
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate()
  return d <= days
}

/** A latitude/longitude pair as numbers in range, at least one with ≥ 3 decimals (precise enough to locate). */
export function isGeoPair(lat: unknown, lon: unknown): boolean {
  if (typeof lat !== 'number' || typeof lon !== 'number') return false
  if (!Number.isFinite(lat) || !Number.isFinite(lon)) return false
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return false
  const decimals = (n: number) => {
    const s = String(n)
    const i = s.indexOf('.')
    return i === -1 ? 0 : s.length - i - 1
  }
  return decimals(lat) >= 3 || decimals(lon) >= 3
}

/** "lat,lon" text with at least four decimals each, both in range. */
export function isGeoText(text: string): boolean {
  const m = /^(-?\d{1,2}\.\d{4,}),\s?(-?\d{1,3}\.\d{4,})$/.exec(text)
  return m !== null && Math.abs(Number(m[1])) <= 90 && Math.abs(Number(m[2])) <= 180
}

/** A JWT (JWS compact): three base64url parts whose first decodes to a JSON object with `alg`. */
export function isJwt(text: string): boolean {
  if (text.length > 8192 || !/^eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*$/.test(text))
    return false
  const head = text.slice(0, text.indexOf('.'))
  try {
    const h = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as unknown
    return h !== null && typeof h === 'object' && typeof (h as { alg?: unknown }).alg === 'string'
  } catch {
    return false
  }
}

/**
 * Well-known credential formats, each anchored on its fixed prefix (cloud keys, source-hosting
 * and chat tokens, payment secret keys, private key blocks, Portcullis API keys, URLs with a
 * password): checked first, cheaply; the `secrets` engine (secrets.ts) covers the rest.
 */
const CREDENTIAL_PATTERNS: readonly RegExp[] = [
  /^(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}$/, // AWS access key id
  /^gh[pousr]_[A-Za-z0-9]{36,255}$/, // GitHub tokens
  /^github_pat_[A-Za-z0-9_]{22,255}$/,
  /^glpat-[A-Za-z0-9_-]{20,}$/, // GitLab
  /^xox[abposr]-[A-Za-z0-9-]{10,}$/, // Slack
  /^(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}$/, // Stripe secret / restricted keys
  /^AIza[0-9A-Za-z_-]{35}$/, // Google API key
  /^npm_[A-Za-z0-9]{36}$/,
  /^SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}$/, // SendGrid
  /^pcl_[0-9A-Za-z]{36}$/, // Portcullis API key
  /^-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/,
  /^[a-z][a-z0-9+.-]{1,20}:\/\/[^/\s:@]{1,128}:[^/\s@]{1,128}@[^\s]{1,256}$/, // URL with a password
]

/** A value in one of the well-known credential formats. */
export function isKnownCredential(text: string): boolean {
  if (text.length < 16 || text.length > 4096) return false
  for (const re of CREDENTIAL_PATTERNS) if (re.test(text)) return true
  return false
}

/**
 * A secret-looking value for a field named like a secret: 16–512 characters without spaces,
 * mixing at least two of lower case, upper case, digits and symbols, with ≥ 3 bits of Shannon
 * entropy per character (rules out `changeme-changeme`, words and repeated patterns).
 */
export function looksSecret(text: string): boolean {
  if (text.length < 16 || text.length > 512 || /\s/.test(text)) return false
  let kinds = 0
  if (/[a-z]/.test(text)) kinds++
  if (/[A-Z]/.test(text)) kinds++
  if (/\d/.test(text)) kinds++
  if (/[^A-Za-z0-9]/.test(text)) kinds++
  if (kinds < 2) return false
  return shannon(text) >= 3
}

/** Shannon entropy in bits per character. */
export function shannon(text: string): number {
  const counts = new Map<string, number>()
  for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1)
  let h = 0
  const n = text.length
  for (const k of counts.values()) {
    const p = k / n
    h -= p * Math.log2(p)
  }
  return h
}
