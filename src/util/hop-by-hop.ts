/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so a proxy never forwards
 * them, nor any header the `Connection` header names. One list for every proxy in Portcullis (the
 * gateway's upstream calls and the egress proxy), so that they cannot drift apart.
 */

/** Request headers a proxy does not forward: hop-by-hop, plus those it sets itself (`host`) or answers itself (`expect`). */
export const REQUEST_HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
  'http2-settings',
])

/** Response headers a proxy does not forward. */
export const RESPONSE_HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
])

/**
 * The header names a `Connection` header lists (lower case), or undefined when it names none
 * (absent, `keep-alive`, `close`).
 */
export function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined
  const s = new Set<string>()
  for (const v of Array.isArray(value) ? value : [value])
    for (const t of v.split(',')) {
      const x = t.trim().toLowerCase()
      if (x && x !== 'keep-alive' && x !== 'close') s.add(x)
    }
  return s.size > 0 ? s : undefined
}

/**
 * A copy of `headers` (Node's lower-cased header object) without the names in `hopByHop` and those
 * its Connection header names. Copying rather than deleting keeps the object in V8's fast mode.
 */
export function withoutHopByHop<T>(
  headers: Record<string, T>,
  hopByHop: ReadonlySet<string> = RESPONSE_HOP_BY_HOP,
): Record<string, T> {
  const named = connectionTokens(headers.connection as string | string[] | undefined)
  const out: Record<string, T> = {}
  for (const k in headers) {
    if (hopByHop.has(k) || named?.has(k)) continue
    out[k] = headers[k] as T
  }
  return out
}
