/**
 * The phases a request goes through after routing (docs/architecture.md, "A request's life"):
 *
 *   request phase ── policies' onRequest, priority order, synchronous until a hook returns a promise
 *   response phase ─ policies' onResponse, reverse order, on upstream and gateway-made heads alike
 *   log phase ────── metrics, access log, audit, detectors, onLog hooks: batched once per turn
 */
import type { TrafficObserver } from '../inventory/observer.js'
import type { Logger } from 'pino'
import type { RequestAudit } from '../audit/request.js'
import type { GatewayContext } from './context.js'
import type { AccessLog } from './logging.js'
import type { ResponseHead } from './pipeline/context.js'
import type { LogEntry } from './pipeline/policy.js'
import type { RequestTrace } from '../tracing/tracing.js'
import type { RequestHook } from './runtime.js'

/**
 * Runs a route's request hooks in order. They are called synchronously until one returns a
 * promise; only then does the phase go asynchronous. `done` runs when every hook passed, `fail`
 * with the first error (a hook denies by throwing a GatewayError).
 */
export function runRequestPhase(
  ctx: GatewayContext,
  hooks: readonly RequestHook[],
  done: (ctx: GatewayContext) => void,
  fail: (ctx: GatewayContext, err: unknown) => void,
): void {
  for (let i = 0; i < hooks.length; i++) {
    let r: void | Promise<void>
    try {
      r = (hooks[i] as RequestHook)(ctx)
    } catch (err) {
      fail(ctx, err)
      return
    }
    if (r !== undefined) {
      continueAsync(ctx, hooks, i + 1, r).then(
        () => done(ctx),
        (err: unknown) => fail(ctx, err),
      )
      return
    }
  }
  done(ctx)
}

/**
 * runRequestPhase for a traced request (tracing on and this request sampled): the same steps,
 * each hook's time and outcome recorded for its span (src/tracing/tracing.ts).
 */
export function runRequestPhaseTraced(
  ctx: GatewayContext,
  hooks: readonly RequestHook[],
  names: readonly string[],
  done: (ctx: GatewayContext) => void,
  fail: (ctx: GatewayContext, err: unknown) => void,
): void {
  const t = ctx.trace as RequestTrace
  t.requestStart = performance.now()
  let i = 0
  const step = (): void => {
    for (; i < hooks.length; i++) {
      const name = names[i] ?? '?'
      const start = performance.now()
      let r: void | Promise<void>
      try {
        r = (hooks[i] as RequestHook)(ctx)
      } catch (err) {
        t.requestEnd = performance.now()
        t.hook(name, start, t.requestEnd, err)
        fail(ctx, err)
        return
      }
      if (r !== undefined) {
        i++
        r.then(
          () => {
            t.hook(name, start, performance.now())
            step()
          },
          (err: unknown) => {
            t.requestEnd = performance.now()
            t.hook(name, start, t.requestEnd, err)
            fail(ctx, err)
          },
        )
        return
      }
      t.hook(name, start, performance.now())
    }
    t.requestEnd = performance.now()
    done(ctx)
  }
  step()
}

async function continueAsync(
  ctx: GatewayContext,
  hooks: readonly RequestHook[],
  from: number,
  pending: Promise<void>,
): Promise<void> {
  await pending
  for (let i = from; i < hooks.length; i++) {
    const r = (hooks[i] as RequestHook)(ctx)
    if (r !== undefined) await r
  }
}

/**
 * The response phase on a head about to be written: the request id header, the route's response
 * hooks (reverse priority order), headers policies added, `Connection: close` while draining. A
 * hook that throws on an upstream head fails the request (the error propagates); on a
 * gateway-made head it is logged and the head is sent anyway.
 */
export function runResponsePhase(
  ctx: GatewayContext,
  head: ResponseHead,
  logger: Logger,
  draining: boolean,
): ResponseHead {
  const trace = ctx.trace
  if (trace !== undefined) trace.responseStart = performance.now()
  const headers = head.headers
  headers[ctx.runtime.requestIdHeader] = ctx.id
  const route = ctx.route
  if (route) {
    const hooks = route.responseHooks
    for (let i = 0; i < hooks.length; i++) {
      try {
        ;(hooks[i] as (typeof hooks)[number])(ctx, head)
      } catch (err) {
        logger.error({ err, requestId: ctx.id, route: route.name }, 'response hook failed')
        if (!head.local) throw err
      }
    }
  }
  if (ctx.responseHeaderAdds) for (const [k, v] of ctx.responseHeaderAdds) headers[k] = v
  if (draining) headers.connection = 'close'
  if (trace !== undefined) trace.responseEnd = performance.now()
  return head
}

export interface LogPhaseDeps {
  logger: Logger
  accessLog: AccessLog | undefined
  audit: RequestAudit | undefined
  detect: { observe(entry: LogEntry): void } | undefined
  /** inventory: the API inventory and the dashboard's telemetry. */
  inventory?: TrafficObserver | undefined
}

/**
 * The log phase. Requests whose response finished are queued, and the phase runs once per
 * event-loop turn over all of them (setImmediate): metrics, the access line, the detectors and the
 * policies' log hooks then run back to back over a batch, their code and data warm in the CPU
 * caches, instead of once between every two requests' proxying work (~6 µs of CPU per request on
 * the bench's plain route, docs/benchmarks.md). The queue holds at most what finished within one
 * turn. A request's runtime is released only after its log phase. Never throws.
 */
export class LogPhase {
  private queue: GatewayContext[] = []
  private scheduled = false
  private readonly deps: LogPhaseDeps
  private readonly run = (): void => this.flush()

  constructor(deps: LogPhaseDeps) {
    this.deps = deps
  }

  enqueue(ctx: GatewayContext): void {
    this.queue.push(ctx)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.run)
    }
  }

  /** Runs the log phase of every finished request still queued (also on shutdown). */
  flush(): void {
    this.scheduled = false
    const queue = this.queue
    if (queue.length === 0) return
    this.queue = []
    for (let i = 0; i < queue.length; i++) {
      const ctx = queue[i] as GatewayContext
      this.one(ctx)
      ctx.runtime.requestDone()
    }
  }

  private one(ctx: GatewayContext): void {
    const logStart = ctx.trace !== undefined ? performance.now() : 0
    this.record(ctx)
    const trace = ctx.trace
    if (trace !== undefined) {
      try {
        const bytes = { in: ctx.bytesIn(), out: ctx.logBytesOut }
        trace.finish(ctx, ctx.logStatus, ctx.decision, ctx.logDurationMs, logStart, bytes)
      } catch (err) {
        this.deps.logger.error({ err }, 'tracing: the request trace could not be completed')
      }
    }
  }

  private record(ctx: GatewayContext): void {
    const { logger, accessLog, audit, detect, inventory } = this.deps
    const durationMs = ctx.logDurationMs
    const status = ctx.logStatus
    const decision = ctx.decision
    const route = ctx.route
    try {
      const bytesIn = ctx.bytesIn()
      ;(route ? route.metrics : ctx.runtime.noRouteMetrics).observe(
        status,
        decision,
        durationMs / 1000,
        bytesIn,
        ctx.logBytesOut,
        ctx.upstreamMs,
      )
      if (accessLog !== undefined) {
        const h = ctx.req.headers
        accessLog.write({
          requestId: ctx.id,
          method: ctx.method,
          path: ctx.path !== '' ? ctx.path : rawPathForLog(ctx.req.url),
          route: ctx.routeName,
          status,
          durationMs: Math.round(durationMs * 1000) / 1000,
          bytesOut: ctx.logBytesOut,
          upstream: ctx.target?.origin,
          decision,
          code: ctx.errorCode,
          clientIp: ctx.clientIp,
          aborted: ctx.logAborted,
          bytesIn,
          upstreamMs: ctx.upstreamMs,
          host: ctx.host !== '' ? ctx.host : h.host,
          userAgent: h['user-agent'],
          principal: ctx.principal?.id,
          traceId: accessLog.wants('traceId') ? traceIdOf(ctx) : undefined,
        })
      }
    } catch (err) {
      logger.error({ err }, 'access log failed')
    }
    if (audit !== undefined) {
      try {
        audit.afterResponse(ctx, status)
      } catch (err) {
        logger.error({ err }, 'audit record failed')
      }
    }
    if (detect !== undefined || inventory !== undefined || (route && route.logHooks.length > 0)) {
      const entry: LogEntry = { ctx, status, durationMs, decision, errorCode: ctx.errorCode }
      detect?.observe(entry) // never throws
      inventory?.observe(entry) // inventory: never throws
      if (route)
        for (const hook of route.logHooks) {
          try {
            hook(entry)
          } catch (err) {
            logger.error({ err, route: route.name }, 'log hook failed')
          }
        }
    }
  }
}

/**
 * The request's W3C trace id: the gateway's own span's when tracing is on, else the one of a
 * well-formed `traceparent` the client sent (version 00: `00-<32 hex>-<16 hex>-<2 hex>`, ids not
 * all zeros), else none.
 */
function traceIdOf(ctx: GatewayContext): string | undefined {
  if (ctx.traceId !== undefined) return ctx.traceId
  const tp = ctx.req.headers.traceparent
  if (typeof tp !== 'string' || tp.length < 55) return undefined
  const m = TRACEPARENT.exec(tp)
  return m !== null && m[1] !== ZERO_TRACE ? m[1] : undefined
}
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(?:-|$)/
const ZERO_TRACE = '0'.repeat(32)

/**
 * For a request refused before its target was canonicalized: the raw path, without the query
 * (which may carry credentials), cut to 256 characters. The access log escapes it.
 */
function rawPathForLog(url: string | undefined): string {
  if (url === undefined) return ''
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  return path.length > 256 ? `${path.slice(0, 256)}…` : path
}
