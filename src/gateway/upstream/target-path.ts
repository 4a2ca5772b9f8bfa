/**
 * The path (and query) a request is sent to on an upstream target: the route's prefix stripped when
 * asked, the target's base path prepended, the route's stripped query parameters removed. Shared by
 * HTTP forwarding (forward.ts) and WebSocket handshakes (websocket/tunnel.ts).
 */
import type { GatewayContext } from '../context.js'
import { withoutParams } from '../query.js'
import type { CompiledRoute } from '../runtime.js'
import type { UpstreamTarget } from './upstream.js'

/** The upstream request target of `ctx` on `target`. */
export function upstreamPath(ctx: GatewayContext, route: CompiledRoute, target: UpstreamTarget): string {
  let path = route.stripPrefix > 0 ? ctx.path.slice(route.stripPrefix) : ctx.path
  if (path === '' || path.charCodeAt(0) !== 0x2f) path = `/${path}`
  if (target.basePath) path = target.basePath + path
  const query = route.stripQuery && ctx.query !== '' ? withoutParams(ctx.query, route.stripQuery) : ctx.query
  if (query !== '') path = `${path}?${query}`
  return path
}
