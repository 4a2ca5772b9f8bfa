/**
 * Prometheus metrics (prom-client), one registry per gateway process. Label children are cached
 * per route so the hot path does no label hashing.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { Decision } from './pipeline/context.js'

export class GatewayMetrics {
  readonly registry = new Registry()
  readonly requests = new Counter({
    name: 'portcullis_requests_total',
    help: 'Requests by route, status and decision.',
    labelNames: ['route', 'status', 'decision'] as const,
    registers: [this.registry],
  })
  readonly duration = new Histogram({
    name: 'portcullis_request_duration_seconds',
    help: 'Time from request received to response finished, by route.',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  })
  readonly upstreamErrors = new Counter({
    name: 'portcullis_upstream_errors_total',
    help: 'Upstream failures by upstream and kind (connect, timeout, reset, ...).',
    labelNames: ['upstream', 'kind'] as const,
    registers: [this.registry],
  })
  readonly denials = new Counter({
    name: 'portcullis_denials_total',
    help: 'Requests denied or failed by the gateway, by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  })
  readonly inFlight = new Gauge({
    name: 'portcullis_in_flight_requests',
    help: 'Requests being handled now.',
    registers: [this.registry],
  })
  readonly targetUp = new Gauge({
    name: 'portcullis_upstream_target_up',
    help: '1 when an upstream target takes traffic, 0 when ejected or failing health checks.',
    labelNames: ['upstream', 'target'] as const,
    registers: [this.registry],
  })
  readonly reloads = new Counter({
    name: 'portcullis_config_reloads_total',
    help: 'Config reloads by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })

  private readonly routeCache = new Map<string, RouteMetrics>()

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_' })
  }

  forRoute(route: string): RouteMetrics {
    let m = this.routeCache.get(route)
    if (!m) {
      m = new RouteMetrics(this, route)
      this.routeCache.set(route, m)
    }
    return m
  }
}

const DECISIONS: readonly Decision[] = ['allowed', 'denied', 'error']

export class RouteMetrics {
  private readonly parent: GatewayMetrics
  private readonly route: string
  private readonly hist: ReturnType<Histogram<'route'>['labels']>
  private readonly counters = new Map<
    number,
    ReturnType<Counter<'route' | 'status' | 'decision'>['labels']>
  >()

  constructor(parent: GatewayMetrics, route: string) {
    this.parent = parent
    this.route = route
    this.hist = parent.duration.labels(route)
  }

  observe(status: number, decision: Decision, seconds: number): void {
    const key = status * 4 + DECISIONS.indexOf(decision)
    let c = this.counters.get(key)
    if (!c) {
      c = this.parent.requests.labels(this.route, String(status), decision)
      this.counters.set(key, c)
    }
    c.inc()
    this.hist.observe(seconds)
  }
}
