/**
 * String and number formats for ajv, without a dependency (ajv-formats is not a runtime
 * dependency of Portcullis). Covered: the JSON Schema formats APIs use most (date, time,
 * date-time, email, uri, uri-reference, uuid, ipv4, ipv6, hostname, regex) and OpenAPI's own
 * (int32, int64, float, double, byte, binary, password). Any other format is accepted as
 * annotation only, with a load warning (see schema.ts).
 */
import { isIP } from 'node:net'
import type { Format } from 'ajv'

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const TIME = /^([01]\d|2[0-3]):([0-5]\d):([0-5]\d|60)(\.\d+)?([zZ]|[+-]([01]\d|2[0-3]):[0-5]\d)$/
const DAYS = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

function isDate(s: string): boolean {
  const m = DATE.exec(s)
  if (!m) return false
  const y = Number(m[1])
  const mo = Number(m[2])
  const d = Number(m[3])
  if (mo < 1 || mo > 12 || d < 1 || d > (DAYS[mo] as number)) return false
  if (mo === 2 && d === 29) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0
  return true
}

function isDateTime(s: string): boolean {
  if (s.length > 64) return false
  const t = s.search(/[tT ]/)
  return t === 10 && isDate(s.slice(0, 10)) && TIME.test(s.slice(11))
}

// RFC 5321/5322 in practice: a local part and a dotted domain, no spaces, bounded lengths.
const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/
const UUID = /^(?:urn:uuid:)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/
// RFC 3986 characters only (percent-escapes well formed), scheme required for `uri`.
const URI_CHARS = /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

function isUri(s: string): boolean {
  return SCHEME.test(s) && URI_CHARS.test(s)
}

function isRegex(s: string): boolean {
  try {
    new RegExp(s, 'u')
    return true
  } catch {
    return false
  }
}

const any = (): boolean => true

export const FORMATS: Record<string, Format> = {
  date: isDate,
  time: (s: string) => TIME.test(s),
  'date-time': isDateTime,
  email: (s: string) => s.length <= 254 && EMAIL.test(s),
  hostname: (s: string) => HOSTNAME.test(s),
  ipv4: (s: string) => isIP(s) === 4,
  ipv6: (s: string) => isIP(s) === 6,
  uri: isUri,
  'uri-reference': (s: string) => URI_CHARS.test(s),
  uuid: (s: string) => UUID.test(s),
  regex: isRegex,
  int32: {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647,
  },
  int64: { type: 'number', validate: (n: number) => Number.isInteger(n) },
  float: { type: 'number', validate: any },
  double: { type: 'number', validate: any },
  byte: (s: string) => BASE64.test(s),
  binary: any,
  password: any,
}
