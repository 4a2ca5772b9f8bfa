/**
 * Masking of everything the scanner records: the identities' credentials (tokens, keys,
 * passwords) wherever they appear, the values of credential headers, credential query parameters,
 * and the values of sensitive-looking JSON fields (shortened to a prefix, so a finding still shows
 * what leaked without repeating it).
 */
import type { Exchange } from './types.js'

/** Headers whose values are always masked. */
const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-access-token',
])
const CREDENTIAL_QUERY =
  /^(?:access_?token|token|api_?key|apikey|key|password|secret|auth|jwt|sig|signature)$/i
const SENSITIVE_FIELD =
  /"((?:[\w-]*(?:password|passwd|secret|token|api_?key|apikey|private_?key|passwordhash|ssn|credit_?card|cvv)[\w-]*))"(\s*:\s*)"((?:[^"\\]|\\.)*)"/gi

export const MASK = '***'

/** Keeps the secrets to mask; add a secret as soon as it is known (a token from a login). */
export class Masker {
  private readonly secrets = new Set<string>()
  private readonly headers = new Set(CREDENTIAL_HEADERS)
  private readonly query = new Set<string>()

  addSecret(value: string | undefined): void {
    // Very short values would mask ordinary text everywhere; they are masked in headers anyway.
    if (value && value.length >= 4) this.secrets.add(value)
  }

  addHeader(name: string): void {
    this.headers.add(name.toLowerCase())
  }

  addQueryParam(name: string): void {
    this.query.add(name)
  }

  /** Replaces every known secret (and its URL-encoded form) in a text. */
  text(s: string): string {
    let out = s
    // Longest first, so a secret containing another is masked whole.
    for (const secret of [...this.secrets].sort((a, b) => b.length - a.length)) {
      if (out.includes(secret)) out = out.split(secret).join(MASK)
      const enc = encodeURIComponent(secret)
      if (enc !== secret && out.includes(enc)) out = out.split(enc).join(MASK)
    }
    return out
  }

  /** A body excerpt: secrets masked, sensitive JSON string fields shortened, cut to `max` chars. */
  body(s: string, max = 4096): string {
    // Secrets first (on the whole text, so none is left half-visible by the cut), then the cut,
    // then the field regex on at most `max` characters.
    let out = this.text(s)
    const extra = out.length - max
    if (extra > 0) out = out.slice(0, max)
    out = out.replace(SENSITIVE_FIELD, (_m, key: string, sep: string, value: string) => {
      const shown =
        value === MASK ? MASK : `${value.slice(0, Math.min(4, Math.floor(value.length / 4)))}${MASK}`
      return `"${key}"${sep}"${shown}"`
    })
    return extra > 0 ? `${out}… (${extra} more characters)` : out
  }

  headerValue(name: string, value: string): string {
    const n = name.toLowerCase()
    if (this.headers.has(n)) {
      if (n === 'authorization' || n === 'proxy-authorization') {
        const scheme = /^([A-Za-z][\w-]*)\s+\S/.exec(value)
        return scheme ? `${scheme[1]} ${MASK}` : MASK
      }
      if (n === 'cookie') return value.replace(/([^=;\s]+)=([^;]*)/g, `$1=${MASK}`)
      if (n === 'set-cookie') return value.replace(/^\s*([^=;\s]+)=([^;]*)/, `$1=${MASK}`)
      return MASK
    }
    return this.text(value)
  }

  headers_(h: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {}
    for (const [k, v] of Object.entries(h)) out[k] = this.headerValue(k, v)
    return out
  }

  url(u: string): string {
    try {
      const url = new URL(u)
      let changed = false
      for (const k of [...url.searchParams.keys()]) {
        if (this.query.has(k) || CREDENTIAL_QUERY.test(k)) {
          url.searchParams.set(k, MASK)
          changed = true
        }
      }
      return this.text(changed ? url.href.replace(/\*\*\*|%2A%2A%2A/g, MASK) : url.href)
    } catch {
      return this.text(u)
    }
  }

  exchange(e: Exchange): Exchange {
    const out: Exchange = {
      request: {
        method: e.request.method,
        url: this.url(e.request.url),
        headers: this.headers_(e.request.headers),
        ...(e.request.body !== undefined ? { body: this.body(e.request.body) } : {}),
      },
    }
    if (e.response) {
      out.response = {
        status: e.response.status,
        headers: this.headers_(e.response.headers),
        ...(e.response.body !== undefined ? { body: this.body(e.response.body) } : {}),
        durationMs: e.response.durationMs,
      }
    }
    if (e.error !== undefined) out.error = this.text(e.error)
    return out
  }
}
