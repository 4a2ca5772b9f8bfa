import { GatewayError } from '../../gateway/errors.js'
import { definePolicy } from '../../gateway/pipeline/policy.js'
import { RequestSizeLimitConfig } from './schema.js'

/**
 * Caps request body, query and header count per route. A declared Content-Length over the limit
 * is refused before any byte of the body is read; a chunked body is counted as it streams and the
 * request fails with 413 the moment it passes the limit.
 */
export const requestSizeLimit = definePolicy({
  id: 'request-size-limit',
  priority: 10000,
  defaultEnabled: true,
  description:
    'Caps the request body (per route and per media type), the query length and the header count, with 413/414/431.',
  schema: RequestSizeLimitConfig,
  create(config) {
    const perType = new Map(Object.entries(config.contentTypes).map(([k, v]) => [k.toLowerCase(), v]))
    return {
      onRequest(ctx) {
        if (ctx.query.length > config.maxQueryLength) {
          throw new GatewayError('GW_ERR_URI_TOO_LONG', { detail: `query limit is ${config.maxQueryLength}` })
        }
        if (ctx.req.rawHeaders.length / 2 > config.maxHeaderCount) {
          throw new GatewayError('GW_ERR_HEADERS_TOO_LARGE', {
            detail: `limit is ${config.maxHeaderCount} headers`,
          })
        }
        let limit = config.maxBodyBytes
        if (perType.size > 0) {
          const ct = ctx.req.headers['content-type']
          if (ct !== undefined) {
            const semi = ct.indexOf(';')
            const t = perType.get((semi === -1 ? ct : ct.slice(0, semi)).trim().toLowerCase())
            if (t !== undefined && t < limit) limit = t
          }
        }
        if (limit < ctx.bodyLimit) ctx.bodyLimit = limit
        const cl = ctx.req.headers['content-length']
        if (cl !== undefined && Number(cl) > ctx.bodyLimit) {
          throw new GatewayError('GW_ERR_BODY_TOO_LARGE', { detail: `limit is ${ctx.bodyLimit} bytes` })
        }
      },
    }
  },
})
