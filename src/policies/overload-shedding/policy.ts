import { GatewayError } from '../../gateway/errors.js'
import { definePolicy } from '../../gateway/pipeline/policy.js'
import { acquireLoopDelay, inFlight } from '../rate-limit/load.js'
import { OverloadSheddingConfig } from './schema.js'

const COUNTED = 'overload-shedding'

/**
 * Overload shedding (OWASP API4): a flood must not take the gateway down. Before any other policy
 * runs (no signature check, no introspection call, no store round trip), a request is refused with
 * 503 GW_ERR_OVERLOADED + Retry-After while the event loop lags or too many requests are in flight.
 */
export const overloadShedding = definePolicy({
  id: 'overload-shedding',
  priority: 11_000, // first of all
  description:
    'Answers 503 GW_ERR_OVERLOADED with Retry-After, before any other policy, while the event loop delay or the requests in flight pass a threshold.',
  schema: OverloadSheddingConfig,
  create(config, { logger }) {
    const maxLagMs = config.maxEventLoopDelayMs
    const maxInFlight = config.maxInFlight
    const loop = maxLagMs !== undefined ? acquireLoopDelay() : undefined
    const retry = { 'retry-after': String(config.retryAfterSec) }
    return {
      onRequest(ctx) {
        if (
          (maxInFlight !== undefined && inFlight.get() >= maxInFlight) ||
          (loop !== undefined && maxLagMs !== undefined && loop.p99Ms() > maxLagMs)
        ) {
          // AUDIT: an overload event once PolicyDeps has `audit` (debug meanwhile: a flood must not flood the log).
          logger.debug({ event: 'overloaded', route: ctx.routeName, requestId: ctx.id }, 'shed')
          throw new GatewayError('GW_ERR_OVERLOADED', { headers: retry })
        }
        if (maxInFlight !== undefined) {
          inFlight.inc()
          ctx.state[COUNTED] = true
        }
      },
      onLog(entry) {
        if (entry.ctx.state[COUNTED] !== true) return
        entry.ctx.state[COUNTED] = false
        inFlight.dec()
      },
      close() {
        loop?.release()
      },
    }
  },
})
