/**
 * Admin API: the detectors' recent alerts (newest first).
 *
 *   GET  /v1/alerts?limit=          → { enabled, total, unacknowledged, items: Alert[] }
 *   POST /v1/alerts/{id}/ack        → the alert, now with `acknowledged: { by, at }`; 404 when it
 *                                     is no longer in the list
 */
import { GatewayError } from '../gateway/errors.js'
import type { AdminModule, AdminModuleContext } from './api.js'
import { invalid } from './list.js'
import type { AdminRequest, AdminResponse } from './router.js'

export const MAX_ALERTS_PAGE = 10_000

function badLimit(): GatewayError {
  return new GatewayError('GW_ERR_VALIDATION', {
    detail: `"limit": expected an integer from 1 to ${MAX_ALERTS_PAGE}`,
    extensions: { field: 'limit' },
  })
}

/** The alerts part of the admin API. */
export function alertsModule(ctx: AdminModuleContext): AdminModule {
  const list = (req: AdminRequest): AdminResponse => {
    let limit = 100
    for (const k of req.query.keys()) {
      if (k !== 'limit') {
        throw new GatewayError('GW_ERR_VALIDATION', {
          detail: 'unknown query parameter',
          extensions: { field: k.slice(0, 64) },
        })
      }
    }
    const all = req.query.getAll('limit')
    if (all.length > 1) throw badLimit()
    const l = all[0]
    if (l !== undefined) {
      if (!/^[0-9]{1,5}$/.test(l) || Number(l) < 1 || Number(l) > MAX_ALERTS_PAGE) throw badLimit()
      limit = Number(l)
    }
    const a = ctx.alerts
    if (a === undefined)
      return { status: 200, body: { enabled: false, total: 0, unacknowledged: 0, items: [] } }
    return {
      status: 200,
      body: { enabled: true, total: a.total, unacknowledged: a.unacknowledged, items: a.recent(limit) },
    }
  }
  const ack = (req: AdminRequest): AdminResponse => {
    for (const k of req.query.keys()) throw invalid(k, 'unknown query parameter')
    const id = req.params.id as string
    const found = ctx.alerts?.acknowledge(id, req.actor, new Date(ctx.now()))
    ctx.recordWrite(req, {
      action: 'alert.ack',
      target: id.slice(0, 128),
      outcome: found ? 'ok' : 'not-found',
    })
    if (found === undefined) throw new GatewayError('GW_ERR_ROUTE_NOT_FOUND', { detail: 'no such alert' })
    return { status: 200, body: found }
  }
  return {
    routes: [
      { method: 'GET', path: '/v1/alerts', handler: list },
      { method: 'POST', path: '/v1/alerts/:id/ack', write: true, handler: ack },
    ],
  }
}
