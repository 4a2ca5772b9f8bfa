/**
 * Admin API: the effective config (the one serving now, after the last applied reload, with every
 * default filled in), every secret redacted (see src/config/redact.ts).
 *
 *   GET /v1/config → { config, redacted: [paths], loadedAt }
 */
import { redactConfig } from '../config/redact.js'
import type { AdminModule, AdminModuleContext } from './api.js'
import { invalid } from './list.js'
import type { AdminRequest, AdminResponse } from './router.js'

/** The effective config part of the admin API. */
export function configModule(ctx: AdminModuleContext): AdminModule {
  const get = (req: AdminRequest): AdminResponse => {
    for (const k of req.query.keys()) throw invalid(k, 'unknown query parameter')
    const eff = ctx.effectiveConfig?.()
    if (eff === undefined) return { status: 200, body: { config: null, redacted: [] } }
    const r = redactConfig(eff.config, eff.secretPaths)
    return {
      status: 200,
      body: { config: r.config, redacted: r.redacted, loadedAt: new Date(eff.loadedAt).toISOString() },
    }
  }
  return { routes: [{ method: 'GET', path: '/v1/config', handler: get }] }
}
