/**
 * Admin API: the API inventory (src/inventory) and the dashboard's traffic data.
 *
 *   GET /v1/inventory[?flag=&class=&q=]     → the inventory: `{ generatedAt, observingSince, specs,
 *                                              store, bounds, operations }`, each operation without
 *                                              its field list (filters: a flag, a data class, a
 *                                              substring of `METHOD /path`)
 *   GET /v1/inventory/operations/{id}       → one operation in full (`id`: `METHOD /template`,
 *                                              percent-encoded); 404 when unknown
 *   GET /v1/inventory/openapi               → the OpenAPI 3.1 document reconstructed from traffic
 *   GET /v1/traffic?window=5m               → per-second requests, denials, errors by code and
 *                                              latency of this gateway (default 5m, at most 899s)
 *   GET /v1/rate-limit/top?limit=           → the rate-limit keys with the most requests (estimates)
 *
 * With the Redis store the inventory is the merged one of every gateway (read from the store,
 * so a store outage answers 503); traffic and top keys are this gateway's.
 */
import type { Telemetry } from '../dashboard/telemetry.js'
import { GatewayError } from '../gateway/errors.js'
import type { Inventory } from '../inventory/inventory.js'
import { toOpenApi } from '../inventory/openapi-export.js'
import type { InventoryOperation, InventoryView } from '../inventory/view.js'
import type { AdminModule, AdminModuleContext } from './api.js'
import { invalid, storeFailure } from './list.js'
import type { AdminRequest, AdminResponse } from './router.js'
import { DURATION_FORMS, formatDuration, parseDuration } from '../util/duration.js'

function only(req: AdminRequest, allowed: readonly string[]): void {
  const seen = new Set<string>()
  for (const k of req.query.keys()) {
    if (!allowed.includes(k)) throw invalid(k, 'unknown query parameter')
    if (seen.has(k)) throw invalid(k, 'given twice')
    seen.add(k)
  }
}

function intParam(req: AdminRequest, name: string, def: number, min: number, max: number): number {
  const v = req.query.get(name)
  if (v === null) return def
  if (!/^\d{1,6}$/.test(v) || Number(v) < min || Number(v) > max)
    throw invalid(name, `expected an integer from ${min} to ${max}`)
  return Number(v)
}

/**
 * `?window=5m`: how far back the traffic series goes, a duration (src/util/duration.ts) of whole
 * seconds from 1s to 899s (default 5m). `?seconds=300` is the old form, refused with the duration.
 */
function windowParam(req: AdminRequest): number {
  const old = req.query.get('seconds')
  if (old !== null) {
    const n = /^\d{1,6}$/.test(old) ? Number(old) : 0
    const d = n >= 1 && n <= 899 ? formatDuration(n * 1000) : '5m'
    throw invalid('seconds', `the old form; write ?window=${d} (${DURATION_FORMS})`)
  }
  const v = req.query.get('window')
  if (v === null) return 300
  const ms = parseDuration(v)
  if (ms === undefined || ms % 1000 !== 0 || ms < 1000 || ms > 899_000)
    throw invalid('window', `expected whole seconds from 1s to 899s (${DURATION_FORMS})`)
  return ms / 1000
}

/** An operation for the list: everything but the field list (which can be long). */
function summary(op: InventoryOperation): Omit<InventoryOperation, 'fields'> & { fieldCount: number } {
  const { fields, ...rest } = op
  return { ...rest, fieldCount: fields.length }
}

/** The inventory and traffic parts of the admin API. */
export function inventoryModule(ctx: AdminModuleContext): AdminModule {
  const inventory: Inventory | undefined = ctx.inventory
  const telemetry: Telemetry | undefined = ctx.telemetry
  // Concurrent reads share one build; a result is reused for a second (the dashboard polls).
  let pending: Promise<InventoryView> | undefined
  let cached: { at: number; view: InventoryView } | undefined
  const view = async (): Promise<InventoryView> => {
    if (inventory === undefined)
      throw new GatewayError('GW_ERR_ROUTE_NOT_FOUND', { detail: 'the inventory is off' })
    const t = ctx.now()
    if (cached !== undefined && t - cached.at < 1000) return cached.view
    pending ??= inventory
      .view()
      .then((v) => {
        cached = { at: ctx.now(), view: v }
        return v
      })
      .finally(() => {
        pending = undefined
      })
    try {
      return await pending
    } catch (err) {
      throw storeFailure(err, 'inventory')
    }
  }

  const list = async (req: AdminRequest): Promise<AdminResponse> => {
    only(req, ['flag', 'class', 'q'])
    const v = await view()
    const flag = req.query.get('flag')
    const cls = req.query.get('class')
    const q = req.query.get('q')?.toLowerCase()
    if (q !== undefined && q.length > 256) throw invalid('q', 'at most 256 characters')
    const ops = v.operations.filter(
      (o) =>
        (flag === null || o.flags.includes(flag as never)) &&
        (cls === null || o.dataClasses.some((d) => d.class === cls)) &&
        (q === undefined || o.id.toLowerCase().includes(q)),
    )
    return { status: 200, body: { ...v, operations: ops.map(summary) } }
  }

  const one = async (req: AdminRequest): Promise<AdminResponse> => {
    only(req, [])
    const id = req.params.id as string
    const v = await view()
    const op = v.operations.find((o) => o.id === id)
    if (op === undefined) throw new GatewayError('GW_ERR_ROUTE_NOT_FOUND', { detail: 'no such operation' })
    return { status: 200, body: op }
  }

  const openapi = async (req: AdminRequest): Promise<AdminResponse> => {
    only(req, [])
    return { status: 200, body: toOpenApi(await view()) }
  }

  const traffic = (req: AdminRequest): AdminResponse => {
    only(req, ['window', 'seconds'])
    const seconds = windowParam(req)
    if (telemetry === undefined) return { status: 200, body: { enabled: false, points: [] } }
    return { status: 200, body: { enabled: true, total: telemetry.total, points: telemetry.series(seconds) } }
  }

  const topKeys = (req: AdminRequest): AdminResponse => {
    only(req, ['limit'])
    const limit = intParam(req, 'limit', 50, 1, 200)
    if (telemetry === undefined) return { status: 200, body: { enabled: false, items: [] } }
    return { status: 200, body: { enabled: true, items: telemetry.topKeys(limit) } }
  }

  return {
    routes: [
      { method: 'GET', path: '/v1/inventory', handler: list },
      { method: 'GET', path: '/v1/inventory/operations/:id', handler: one },
      { method: 'GET', path: '/v1/inventory/openapi', handler: openapi },
      { method: 'GET', path: '/v1/traffic', handler: traffic },
      { method: 'GET', path: '/v1/rate-limit/top', handler: topKeys },
    ],
  }
}
