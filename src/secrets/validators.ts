/**
 * Confirmation steps run on a candidate secret after its pattern matched: checksums (GitHub and
 * npm tokens, Portcullis keys), structure (JWT, PEM), Luhn, and the decoders of base64 `user:pass`
 * values. Each is a pure function of the candidate; none does I/O.
 */
import { BASE62, crc32, parseKey } from '../keys/format.js'
import { allowedValue } from './allowlist.js'
import type { ValidatorId } from './types.js'

const BASE62_VALUE = (() => {
  const t = new Int8Array(128).fill(-1)
  for (let i = 0; i < BASE62.length; i++) t[BASE62.charCodeAt(i)] = i
  return t
})()

/** Value of a base62 string (digits, then A-Z, then a-z), or -1 when it has another character. */
export function base62Value(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const v = c < 128 ? (BASE62_VALUE[c] as number) : -1
    if (v < 0) return -1
    n = n * 62 + v
  }
  return n
}

/**
 * GitHub's and npm's token checksum: `<prefix>_` + 30 base62 characters + the CRC32 of those 30
 * characters in 6 base62 characters (the format GitHub published in 2021; npm adopted it).
 */
export function prefixedCrc32Valid(token: string): boolean {
  const us = token.indexOf('_')
  if (us < 0) return false
  const body = token.slice(us + 1)
  if (body.length !== 36) return false
  const random = body.slice(0, 30)
  const sum = base62Value(body.slice(30))
  return sum >= 0 && base62Value(random) >= 0 && sum === crc32(random)
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(s: string): number {
  if (s.length === 0) return 0
  const counts = new Map<number, number>()
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    counts.set(c, (counts.get(c) ?? 0) + 1)
  }
  let h = 0
  for (const n of counts.values()) {
    const p = n / s.length
    h -= p * Math.log2(p)
  }
  return h
}

/** True when `s` has at least one ASCII letter and one digit. */
export function hasLetterAndDigit(s: string): boolean {
  return /[A-Za-z]/.test(s) && /[0-9]/.test(s)
}

/** Decodes standard or URL-safe base64 (padding optional); undefined when it is not base64. */
export function decodeBase64(s: string): Buffer | undefined {
  const t = s.replace(/\s+/g, '')
  if (t.length < 4 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) return undefined
  if ((t.replace(/=+$/, '').length * 6) % 8 >= 6) return undefined // a length no encoder produces
  return Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
}

/** True when at least 95% of the bytes are printable ASCII (or tab/newline). */
export function mostlyPrintable(b: Uint8Array): boolean {
  if (b.length === 0) return false
  let bad = 0
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number
    if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13) || c > 0x7e) bad++
  }
  return bad * 20 <= b.length
}

function jsonObject(segment: string): Record<string, unknown> | undefined {
  const b = decodeBase64(segment)
  if (!b) return undefined
  try {
    const v = JSON.parse(b.toString('utf8')) as unknown
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

/** A JWS in compact form: a JSON header with `alg`, a JSON object payload. */
export function jwtValid(token: string): boolean {
  const parts = token.split('.')
  if (parts.length !== 3) return false
  const header = jsonObject(parts[0] as string)
  if (!header || typeof header.alg !== 'string') return false
  return jsonObject(parts[1] as string) !== undefined
}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/

/**
 * A PEM private key whose body is base64 of a plausible key: DER (a SEQUENCE) for RSA, EC, DSA and
 * PKCS#8, `openssh-key-v1` for OpenSSH, an OpenPGP packet for PGP. Headers (`Proc-Type`, PGP's
 * `Version:`) and JSON `\n` escapes are allowed. A truncated example (`MIIE…`) fails.
 */
export function pemValid(text: string): boolean {
  const m = PEM_RE.exec(text.replace(/\\r/g, '').replace(/\\n/g, '\n'))
  if (!m) return false
  const label = m[1] as string
  const lines = (m[2] as string).split(/\r?\n/).map((l) => l.trim())
  const body = lines.filter((l) => l !== '' && !l.includes(':') && !l.startsWith('=')).join('')
  const der = decodeBase64(body)
  if (!der || der.length < 40) return false
  if (label.includes('OPENSSH')) return der.subarray(0, 15).toString('latin1') === 'openssh-key-v1\0'
  if (label.includes('PGP')) return ((der[0] as number) & 0x80) !== 0
  return der[0] === 0x30
}

/** The Luhn check of a digit string (card numbers). */
export function luhnValid(digits: string): boolean {
  const d = digits.replace(/[ -]/g, '')
  if (!/^[0-9]{12,19}$/.test(d)) return false
  let sum = 0
  for (let i = 0; i < d.length; i++) {
    let n = d.charCodeAt(d.length - 1 - i) - 48
    if (i % 2 === 1) {
      n *= 2
      if (n > 9) n -= 9
    }
    sum += n
  }
  return sum % 10 === 0
}

/** `base64(user:password)` with a non-empty password of printable characters. */
export function basicAuthValid(b64: string): boolean {
  const b = decodeBase64(b64)
  if (!b || !mostlyPrintable(b)) return false
  const s = b.toString('latin1')
  const colon = s.indexOf(':')
  return colon > 0 && colon < s.length - 1 && !/[\r\n]/.test(s)
}

/**
 * A Kubernetes Secret value: under `data:` base64 of printable text that is no placeholder;
 * under `stringData:` (not base64) the text itself.
 */
export function k8sSecretValueValid(value: string): boolean {
  const b = decodeBase64(value)
  if (b === undefined || !mostlyPrintable(b)) return true
  const text = b.toString('latin1')
  return text.length >= 4 && allowedValue(text) === undefined
}

/**
 * The segments of a name: split at `-_./: \\` and where a lower-case letter meets a capital
 * (`getAccessToken` → get Access Token). Finer cuts (an acronym from the next word, a digit from
 * the capital after it) would make random base62 read as words (`Zq8`, `Xw2`, a capital alone):
 * 1.8% of random 16–40 character values would pass as identifiers, against 0.06%.
 */
function segments(v: string): string[] {
  return v
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .split(/[-_./: \\]+/)
    .filter((s) => s !== '')
}

/** A word, optionally followed by up to two digits (`tokenizer`, `Chain`, `HTTP`, `app2`), or a number. */
const WORD_SEGMENT = /^[A-Za-z][a-z]*[0-9]{0,2}$|^[A-Z]{2,}[0-9]{0,2}$|^[0-9]{1,4}$/

/**
 * True when a value reads as an identifier or a slug rather than random text: every segment
 * (see `segments`) is a word, optionally followed by up to two digits (`gpt2-tokenizer-fast`,
 * `getAccessTokenFromStorage`, `app.config.v2`).
 */
export function looksLikeIdentifier(v: string): boolean {
  const segs = segments(v)
  return segs.length === 0 || segs.every((s) => WORD_SEGMENT.test(s))
}

const PASSWORD_WORD = /passw|passphrase|pwd/i

/**
 * True when a value is a constant's name in upper snake case (`K8S_SECRET_VOLUME_TYPE`): CommonJS
 * output re-exports every constant as `exports.X = X`. Random keys have no such parts.
 */
export function constantName(v: string): boolean {
  return /^[A-Z][A-Z0-9]*(?:_[A-Z][A-Z0-9]*){2,}$/.test(v)
}

/**
 * True when a password-like value is a name or a path, not a password: a name that itself says
 * password, of three words or more (`auth.login.password_reset_attempts`, a metric or setting) or
 * of two words without digits (`password_missing`, an enum value; `challengePassword`, an
 * attribute), or an absolute or relative file path of words (`/run/secrets/db_password`,
 * a Docker secret file; `/home/alice/api`, a working directory).
 */
export function namesAPassword(v: string): boolean {
  if (/^(?:\/|~\/|\.{1,2}\/|[A-Za-z]:\\)/.test(v) && /[/\\].*[/\\]|^~\/|^\.{1,2}\//.test(v))
    return looksLikeIdentifier(v)
  if (!PASSWORD_WORD.test(v) || !looksLikeIdentifier(v)) return false
  const segs = segments(v)
  return segs.length >= 3 || (segs.length === 2 && segs.every((s) => /^[A-Za-z]{3,}$/.test(s)))
}

/**
 * True when the text between a name and its value (`lead`: from the match's start to the value)
 * separates them with a comma rather than `=` or `:`: `('password', 'hunter2')` is a call with a
 * name and its value, but `['password', 'hostname']` is a list of names and
 * `isinstance(private_key, ed25519.Ed25519PrivateKey)` a list of arguments.
 */
function commaLead(lead: string): boolean {
  return /^[^=:]*,[ \t]*["'`]?$/.test(lead)
}

/** True for the validators that read the text before the value (`runValidator`'s `lead`). */
export function readsLead(id: ValidatorId): boolean {
  return id === 'not-reference' || id === 'not-name'
}

/**
 * Runs a named validator on a candidate value. `lead` is the matched text before the value (the
 * name and the assignment), for the validators of `name = value` rules.
 */
export function runValidator(id: ValidatorId, secret: string, lead = ''): boolean {
  switch (id) {
    case 'github-crc32':
    case 'npm-crc32':
      return prefixedCrc32Valid(secret)
    case 'portcullis-crc32':
      return parseKey(secret).ok
    case 'jwt':
      return jwtValid(secret)
    case 'pem':
      return pemValid(secret)
    case 'luhn':
      return luhnValid(secret)
    case 'basic-auth-b64':
    case 'docker-auth-b64':
      return basicAuthValid(secret)
    case 'k8s-secret-value':
      return k8sSecretValueValid(secret)
    case 'not-identifier':
      return !looksLikeIdentifier(secret)
    case 'not-reference':
      // After a comma, an unquoted value is an argument (code), not a literal.
      if (commaLead(lead) && !/["'`]$/.test(lead)) return false
      return !looksLikeIdentifier(secret) && !constantName(secret)
    case 'not-name':
      // After a comma, a value that reads as a name is the next item of a list of names.
      if (commaLead(lead) && looksLikeIdentifier(secret)) return false
      return !namesAPassword(secret)
  }
}
