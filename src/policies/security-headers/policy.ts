import { definePolicy } from '../../gateway/pipeline/policy.js'
import { SecurityHeadersConfig } from './schema.js'

/**
 * Adds response security headers and removes headers that disclose the upstream's technology.
 * Runs on every response, including the gateway's own problem documents.
 */
export const securityHeaders = definePolicy({
  id: 'security-headers',
  priority: 100,
  defaultEnabled: true,
  description:
    'Adds HSTS (on HTTPS), nosniff, Cache-Control: no-store, frame and referrer headers, and removes Server / X-Powered-By.',
  schema: SecurityHeadersConfig,
  create(config) {
    const hsts = config.hsts.enabled
      ? `max-age=${config.hsts.maxAge}${config.hsts.includeSubDomains ? '; includeSubDomains' : ''}${
          config.hsts.preload ? '; preload' : ''
        }`
      : undefined
    const remove = config.removeHeaders.map((h) => h.toLowerCase())
    const fixed: [string, string][] = []
    if (config.noSniff) fixed.push(['x-content-type-options', 'nosniff'])
    if (config.frameOptions !== false) fixed.push(['x-frame-options', config.frameOptions])
    if (config.contentSecurityPolicy !== false)
      fixed.push(['content-security-policy', config.contentSecurityPolicy])
    if (config.referrerPolicy !== false) fixed.push(['referrer-policy', config.referrerPolicy])
    const cacheControl = config.cacheControl
    const override = config.overrideUpstreamCacheControl
    return {
      onResponse(ctx, res) {
        const h = res.headers
        for (let i = 0; i < remove.length; i++) {
          const name = remove[i] as string
          if (h[name] !== undefined) delete h[name]
        }
        for (let i = 0; i < fixed.length; i++) {
          const f = fixed[i] as [string, string]
          h[f[0]] = f[1]
        }
        if (cacheControl !== false && (override || h['cache-control'] === undefined))
          h['cache-control'] = cacheControl
        if (hsts !== undefined && ctx.secure) h['strict-transport-security'] = hsts
      },
    }
  },
})
