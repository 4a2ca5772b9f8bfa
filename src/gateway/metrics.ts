/**
 * Prometheus metrics. prom-client owns the registry, the exposition format and the process
 * metrics; the two per-request series (request count and duration) are counted in plain arrays
 * per route and handed to prom-client at scrape time, because prom-client's labelled children
 * re-hash their labels on every call (several µs per request on the hot path, see
 * docs/benchmarks.md).
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import type { Decision } from './pipeline/context.js'

const DECISIONS: readonly Decision[] = ['allowed', 'denied', 'error']
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

interface MetricValue {
  value: number
  labels: Record<string, string | number>
  metricName?: string
}

/** A metric prom-client's registry can expose: it only needs `get()`. */
interface CollectedMetric {
  name: string
  help: string
  type: 'counter' | 'histogram'
  aggregator: 'sum'
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: MetricValue[] }>
  reset(): void
}

export class GatewayMetrics {
  readonly registry = new Registry()
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
  readonly targetUp = new Gauge({
    name: 'portcullis_upstream_target_up',
    help: '1 when an upstream target takes traffic, 0 when ejected or failing health checks.',
    labelNames: ['upstream', 'target'] as const,
    registers: [this.registry],
  })
  readonly http2SessionsClosed = new Counter({
    name: 'portcullis_http2_sessions_closed_total',
    help: 'HTTP/2 connections the gateway closed to protect itself, by reason (rapid_reset).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })
  readonly reloads = new Counter({
    name: 'portcullis_config_reloads_total',
    help: 'Config reloads by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })

  private readonly routes = new Map<string, RouteMetrics>()
  /** Set by the gateway: requests being handled now. */
  inFlight: () => number = () => 0

  constructor(opts: { processMetrics?: boolean } = {}) {
    const self = this
    new Gauge({
      name: 'portcullis_in_flight_requests',
      help: 'Requests being handled now.',
      registers: [this.registry],
      collect() {
        this.set(self.inFlight())
      },
    })
    this.registry.registerMetric(this.requestsMetric() as never)
    this.registry.registerMetric(this.durationMetric() as never)
    if (opts.processMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_' })
  }

  forRoute(route: string): RouteMetrics {
    let m = this.routes.get(route)
    if (!m) {
      m = new RouteMetrics()
      this.routes.set(route, m)
    }
    return m
  }

  private requestsMetric(): CollectedMetric {
    const routes = this.routes
    const base = {
      name: 'portcullis_requests_total',
      help: 'Requests by route, status and decision.',
      type: 'counter' as const,
      aggregator: 'sum' as const,
    }
    return {
      ...base,
      reset() {},
      async get() {
        const values: MetricValue[] = []
        for (const [route, m] of routes) {
          for (const [key, value] of m.counts) {
            values.push({
              value,
              labels: { route, status: Math.floor(key / 4), decision: DECISIONS[key % 4] as string },
            })
          }
        }
        return { ...base, values }
      },
    }
  }

  private durationMetric(): CollectedMetric {
    const routes = this.routes
    const base = {
      name: 'portcullis_request_duration_seconds',
      help: 'Time from request received to response finished, by route.',
      type: 'histogram' as const,
      aggregator: 'sum' as const,
    }
    return {
      ...base,
      reset() {},
      async get() {
        const values: MetricValue[] = []
        for (const [route, m] of routes) {
          let cumulative = 0
          for (let i = 0; i < BUCKETS.length; i++) {
            cumulative += m.buckets[i] as number
            values.push({
              value: cumulative,
              labels: { le: BUCKETS[i] as number, route },
              metricName: `${base.name}_bucket`,
            })
          }
          values.push({ value: m.count, labels: { le: '+Inf', route }, metricName: `${base.name}_bucket` })
          values.push({ value: m.sum, labels: { route }, metricName: `${base.name}_sum` })
          values.push({ value: m.count, labels: { route }, metricName: `${base.name}_count` })
        }
        return { ...base, values }
      },
    }
  }
}

/** Per-route counters, updated on every request with no allocation and no hashing of labels. */
export class RouteMetrics {
  /** status * 4 + decision index → count */
  readonly counts = new Map<number, number>()
  /** Non-cumulative bucket counts; the last slot is "over the largest bucket". */
  readonly buckets = new Float64Array(BUCKETS.length + 1)
  sum = 0
  count = 0

  observe(status: number, decision: Decision, seconds: number): void {
    const key = status * 4 + (decision === 'allowed' ? 0 : decision === 'denied' ? 1 : 2)
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
    let i = 0
    while (i < BUCKETS.length && seconds > (BUCKETS[i] as number)) i++
    this.buckets[i] = (this.buckets[i] as number) + 1
    this.sum += seconds
    this.count++
  }
}
