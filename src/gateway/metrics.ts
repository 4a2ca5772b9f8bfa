/**
 * Prometheus metrics (docs/metrics.md). prom-client owns the registry, the exposition format and
 * the process metrics (`process_*`, `nodejs_*`, under their usual names); the per-request series
 * (request count, duration, upstream latency, bytes in and out) are counted in plain arrays per
 * route and handed to prom-client at scrape time, because prom-client's labelled children re-hash
 * their labels on every call (several µs per request on the hot path, see docs/benchmarks.md).
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import type { Decision } from './pipeline/context.js'

const DECISIONS: readonly Decision[] = ['allowed', 'denied', 'error']
const GAUGES_NAMED_TOTAL = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]
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
    this.registry.registerMetric(
      this.histogram(
        'portcullis_request_duration_seconds',
        'Time from request received to response finished, by route.',
        (m) => m.duration,
        false,
      ) as never,
    )
    this.registry.registerMetric(
      this.histogram(
        'portcullis_upstream_duration_seconds',
        "Time from sending a request to the upstream to receiving its response head (the last attempt's), by route and upstream.",
        (m) => m.upstreamTime,
        true,
      ) as never,
    )
    this.registry.registerMetric(
      this.bytesMetric(
        'portcullis_request_bytes_total',
        'Bytes received from clients (request line, headers and body), by route.',
        (m) => m.bytesIn,
      ) as never,
    )
    this.registry.registerMetric(
      this.bytesMetric(
        'portcullis_response_bytes_total',
        'Bytes sent to clients (status line, headers and body), by route.',
        (m) => m.bytesOut,
      ) as never,
    )
    // The usual names (process_cpu_seconds_total, nodejs_eventloop_lag_seconds, …), so that
    // existing Node.js dashboards and alerts work unchanged.
    if (opts.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry })
      // Three of them are gauges named `_total` (the sums of the per-type gauges beside them,
      // which `sum(nodejs_active_handles)` gives): a gauge must not look like a counter.
      for (const name of GAUGES_NAMED_TOTAL) this.registry.removeSingleMetric(name)
    }
  }

  /** The counters of a route (kept across reloads); `upstream` labels its upstream latency. */
  forRoute(route: string, upstream?: string): RouteMetrics {
    let m = this.routes.get(route)
    if (!m) {
      m = new RouteMetrics()
      this.routes.set(route, m)
    }
    if (upstream !== undefined) m.upstream = upstream
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

  private bytesMetric(name: string, help: string, read: (m: RouteMetrics) => number): CollectedMetric {
    const routes = this.routes
    const base = { name, help, type: 'counter' as const, aggregator: 'sum' as const }
    return {
      ...base,
      reset() {},
      async get() {
        const values: MetricValue[] = []
        for (const [route, m] of routes) if (m.count > 0) values.push({ value: read(m), labels: { route } })
        return { ...base, values }
      },
    }
  }

  private histogram(
    name: string,
    help: string,
    read: (m: RouteMetrics) => Bucketed,
    byUpstream: boolean,
  ): CollectedMetric {
    const routes = this.routes
    const base = { name, help, type: 'histogram' as const, aggregator: 'sum' as const }
    return {
      ...base,
      reset() {},
      async get() {
        const values: MetricValue[] = []
        for (const [route, m] of routes) {
          const h = read(m)
          if (byUpstream && h.count === 0) continue
          const labels: Record<string, string> = byUpstream ? { route, upstream: m.upstream } : { route }
          let cumulative = 0
          for (let i = 0; i < BUCKETS.length; i++) {
            cumulative += h.buckets[i] as number
            values.push({
              value: cumulative,
              labels: { le: BUCKETS[i] as number, ...labels },
              metricName: `${name}_bucket`,
            })
          }
          values.push({ value: h.count, labels: { le: '+Inf', ...labels }, metricName: `${name}_bucket` })
          values.push({ value: h.sum, labels, metricName: `${name}_sum` })
          values.push({ value: h.count, labels, metricName: `${name}_count` })
        }
        return { ...base, values }
      },
    }
  }
}

/** A histogram's state: non-cumulative bucket counts (the last slot is over the largest bucket). */
export class Bucketed {
  readonly buckets = new Float64Array(BUCKETS.length + 1)
  sum = 0
  count = 0

  observe(seconds: number): void {
    let i = 0
    while (i < BUCKETS.length && seconds > (BUCKETS[i] as number)) i++
    this.buckets[i] = (this.buckets[i] as number) + 1
    this.sum += seconds
    this.count++
  }
}

/** Per-route counters, updated on every request with no allocation and no hashing of labels. */
export class RouteMetrics {
  /** status * 4 + decision index → count */
  readonly counts = new Map<number, number>()
  readonly duration = new Bucketed()
  readonly upstreamTime = new Bucketed()
  /** The route's upstream (set by each runtime: a reload may change it). */
  upstream = ''
  bytesIn = 0
  bytesOut = 0

  get count(): number {
    return this.duration.count
  }

  /** One finished request. `upstreamMs` < 0: no upstream response head (denied, failed, own answer). */
  observe(
    status: number,
    decision: Decision,
    seconds: number,
    bytesIn = 0,
    bytesOut = 0,
    upstreamMs = -1,
  ): void {
    const key = status * 4 + (decision === 'allowed' ? 0 : decision === 'denied' ? 1 : 2)
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
    this.duration.observe(seconds)
    if (upstreamMs >= 0) this.upstreamTime.observe(upstreamMs / 1000)
    this.bytesIn += bytesIn
    this.bytesOut += bytesOut
  }
}
