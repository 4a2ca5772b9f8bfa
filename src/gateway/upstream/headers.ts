/**
 * Headers across the proxy: what the upstream receives of the client's request (hop-by-hop,
 * forwarding and stripped headers removed; X-Forwarded-*, the request id and Host set), and what
 * the client receives of the upstream's head (hop-by-hop headers removed).
 */
import { normalizeIp } from '../client-ip.js'
import type { GatewayContext } from '../context.js'
import type { UpstreamTarget } from './upstream.js'
import { connectionTokens, REQUEST_HOP_BY_HOP } from '../../util/hop-by-hop.js'

export { withoutHopByHop } from '../../util/hop-by-hop.js'

/**
 * Headers Node keeps only the first of in `req.headers` (what policies read): later copies are not
 * forwarded, so the upstream sees the value the policies saw. (Cookie, Content-Type and
 * Authorization duplicates never get here: hygiene refuses them.)
 */
const FIRST_ONLY = new Set([
  'age',
  'authorization',
  'content-type',
  'etag',
  'expires',
  'from',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
])

const FORWARDING = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-real-ip',
])
/** The headers the upstream receives: the client's, minus hop-by-hop and stripped ones, plus X-Forwarded-*. */
export function upstreamHeaders(ctx: GatewayContext, target: UpstreamTarget): string[] {
  const req = ctx.req
  const raw = req.rawHeaders
  const out: string[] = []
  const listed = connectionTokens(req.headers.connection)
  const edits = ctx.upstreamHeaderEdits
  const strip = ctx.route?.stripHeaders
  const ridHeader = ctx.runtime.requestIdHeader
  let firstSeen: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const lower = name.toLowerCase()
    if (REQUEST_HOP_BY_HOP.has(lower) || lower === ridHeader) continue
    if (FORWARDING.has(lower)) {
      if (!ctx.fromTrustedProxy || (lower !== 'forwarded' && lower !== 'x-real-ip')) continue
    }
    if (listed?.has(lower)) continue
    if (edits?.has(lower)) continue
    if (strip?.has(lower)) continue
    if (FIRST_ONLY.has(lower)) {
      if (firstSeen?.has(lower)) continue
      firstSeen ??= new Set()
      firstSeen.add(lower)
    }
    out.push(name, raw[i + 1] as string)
  }
  const remote = normalizeIp(req.socket.remoteAddress)
  const xff = req.headers['x-forwarded-for']
  out.push('x-forwarded-for', ctx.fromTrustedProxy && xff ? `${xff}, ${remote}` : remote)
  const xfp = req.headers['x-forwarded-proto']
  out.push(
    'x-forwarded-proto',
    ctx.fromTrustedProxy && typeof xfp === 'string' ? xfp : ctx.secure ? 'https' : 'http',
  )
  const xfh = req.headers['x-forwarded-host']
  out.push(
    'x-forwarded-host',
    ctx.fromTrustedProxy && typeof xfh === 'string' ? xfh : (req.headers.host ?? ''),
  )
  out.push(ridHeader, ctx.id)
  out.push(
    'host',
    ctx.route?.upstream.config.preserveHost ? (req.headers.host ?? target.hostHeader) : target.hostHeader,
  )
  if (edits) for (const [k, v] of edits) if (v !== undefined) out.push(k, v)
  return out
}
