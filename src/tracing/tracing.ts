/**
 * OpenTelemetry tracing of gateway requests (docs/tracing.md). The OpenTelemetry JS SDK (2.x, the
 * line that runs on Node 20) is imported only when `tracing.enabled` is on, so a gateway without
 * tracing loads none of it and pays one branch per request.
 *
 * A sampled request gets a SERVER span from its arrival to its response's end, with children: the
 * request phase (one event per policy: its name, outcome and time), one CLIENT span per upstream
 * attempt (its id goes to the upstream in a W3C `traceparent`), the response phase and the log
 * phase. The sampling decision is made here before any span exists (ParentBased over a ratio), so
 * an unsampled request allocates nothing. Attributes carry no query, no header but the user agent
 * and the host, and pass through the secret masks like the access log.
 */
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api'
import type { Logger } from 'pino'
import { maskSecrets } from '../secrets/mask.js'
import type { TracingConfig } from './config.js'

/** What a traced request exposes of itself to the tracer (a slice of GatewayContext). */
export interface TracedRequest {
  readonly method: string
  readonly startTime: number
  readonly req: { headers: Record<string, string | string[] | undefined>; url?: string | undefined }
  readonly clientIp: string
  readonly id: string
  path: string
  host: string
  routeName: string
  errorCode: string | undefined
  principal: { id: string } | undefined
  upstreamMs: number
  trace: RequestTrace | undefined
  traceId: string | undefined
}

interface SdkParts {
  tracer: Tracer
  api: typeof import('@opentelemetry/api')
  shutdown(): Promise<void>
  forceFlush(): Promise<void>
}

/** performance.now() → epoch milliseconds (OpenTelemetry's TimeInput). */
const origin = performance.timeOrigin
const epoch = (t: number): number => origin + t

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)

/** A W3C traceparent's ids and sampled flag, or undefined when it is not valid (version ff, zero ids, …). */
export function parseTraceparent(
  v: string | string[] | undefined,
): { traceId: string; spanId: string; sampled: boolean } | undefined {
  if (typeof v !== 'string' || v.length < 55) return undefined
  const m = TRACEPARENT.exec(v.trim())
  if (m === null) return undefined
  const [, version, traceId, spanId, flags, rest] = m as unknown as string[]
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined
  return {
    traceId: traceId as string,
    spanId: spanId as string,
    sampled: (Number.parseInt(flags as string, 16) & 1) === 1,
  }
}

export class Tracing {
  private readonly sdk: SdkParts
  private readonly ratio: number
  private readonly parentBased: boolean

  private constructor(sdk: SdkParts, config: TracingConfig) {
    this.sdk = sdk
    this.ratio = config.sampleRatio
    this.parentBased = config.parentBased
  }

  /** Loads the SDK and starts the exporter. Export failures are logged (at most once a minute). */
  static async start(config: TracingConfig, logger: Logger): Promise<Tracing> {
    const [api, base, exporterMod, resources, core] = await Promise.all([
      import('@opentelemetry/api'),
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/core'),
    ])
    let lastWarning = 0
    core.setGlobalErrorHandler((err) => {
      const now = Date.now()
      if (now - lastWarning < 60_000) return
      lastWarning = now
      // The message only: an exporter error can quote the request, whose headers may carry the
      // backend's key.
      logger.warn({ err: maskSecrets(String((err as Error)?.message ?? err)) }, 'tracing: span export failed')
    })
    const exporter = new exporterMod.OTLPTraceExporter({
      url: config.endpoint,
      headers: { ...config.headers },
      timeoutMillis: config.exportTimeoutMs,
    })
    const provider = new base.BasicTracerProvider({
      resource: resources.resourceFromAttributes({ 'service.name': config.serviceName }),
      // The decision is made in begin(); every span started is recorded.
      sampler: new base.AlwaysOnSampler(),
      spanProcessors: [
        new base.BatchSpanProcessor(exporter, {
          maxQueueSize: config.maxQueueSize,
          maxExportBatchSize: Math.min(512, config.maxQueueSize),
          scheduledDelayMillis: 1000,
          exportTimeoutMillis: config.exportTimeoutMs,
        }),
      ],
    })
    const tracer = provider.getTracer('portcullis')
    logger.info(
      { endpoint: config.endpoint, sampleRatio: config.sampleRatio, parentBased: config.parentBased },
      'tracing on (OpenTelemetry, OTLP/HTTP)',
    )
    return new Tracing(
      { tracer, api, shutdown: () => provider.shutdown(), forceFlush: () => provider.forceFlush() },
      config,
    )
  }

  /**
   * The sampling decision for a request that just arrived; a sampled one gets its trace
   * (`ctx.trace`, `ctx.traceId`) and its SERVER span. Never throws.
   */
  begin(ctx: TracedRequest): void {
    const parent = parseTraceparent(ctx.req.headers.traceparent)
    const sampled = parent !== undefined && this.parentBased ? parent.sampled : Math.random() < this.ratio
    if (!sampled) return
    try {
      const { api, tracer } = this.sdk
      const parentCtx =
        parent !== undefined
          ? api.trace.setSpanContext(api.ROOT_CONTEXT, {
              traceId: parent.traceId,
              spanId: parent.spanId,
              traceFlags: api.TraceFlags.SAMPLED,
              isRemote: true,
            })
          : api.ROOT_CONTEXT
      const root = tracer.startSpan(
        ctx.method,
        { kind: api.SpanKind.SERVER, startTime: epoch(ctx.startTime) },
        parentCtx,
      )
      ctx.trace = new RequestTrace(this.sdk, root, api.trace.setSpan(parentCtx, root))
      ctx.traceId = root.spanContext().traceId
    } catch {
      // tracing must never fail a request
    }
  }

  /** Exports what is queued (shutdown: bounded by the export timeout). */
  async close(): Promise<void> {
    await this.sdk.shutdown().catch(() => undefined)
  }

  /** Exports what is queued now (tests). */
  async flush(): Promise<void> {
    await this.sdk.forceFlush().catch(() => undefined)
  }
}

/** One policy hook's run in the request phase. */
interface HookRun {
  name: string
  start: number
  end: number
  code: string | undefined
}

/** The trace of one sampled request: phase times as they happen, spans made at its log phase. */
export class RequestTrace {
  private readonly sdk: SdkParts
  private readonly root: Span
  private readonly rootCtx: Context
  readonly hooks: HookRun[] = []
  requestStart = 0
  requestEnd = 0
  responseStart = 0
  responseEnd = 0
  private upstream: Span | undefined = undefined

  constructor(sdk: SdkParts, root: Span, rootCtx: Context) {
    this.sdk = sdk
    this.root = root
    this.rootCtx = rootCtx
  }

  /** Records a policy hook's run (`err`: it denied or failed). */
  hook(name: string, start: number, end: number, err?: unknown): void {
    this.hooks.push({ name, start, end, code: err === undefined ? undefined : errorCode(err) })
  }

  /**
   * A new upstream attempt: its CLIENT span starts now (a previous attempt's ends, failed); resolves
   * the `traceparent` the upstream gets.
   */
  startUpstream(method: string, origin: string, path: string, attempt: number): string {
    const { api, tracer } = this.sdk
    const now = performance.now()
    if (this.upstream !== undefined) {
      this.upstream.setStatus({ code: api.SpanStatusCode.ERROR, message: 'retried on another target' })
      this.upstream.end(epoch(now))
    }
    const q = path.indexOf('?')
    const target = serverOf(origin)
    const span = tracer.startSpan(
      method,
      {
        kind: api.SpanKind.CLIENT,
        startTime: epoch(now),
        attributes: {
          'http.request.method': method,
          'url.full': maskSecrets(origin + (q === -1 ? path : path.slice(0, q))),
          'server.address': target.address,
          'server.port': target.port,
          'http.request.resend_count': attempt - 1,
        },
      },
      this.rootCtx,
    )
    this.upstream = span
    const sc = span.spanContext()
    return `00-${sc.traceId}-${sc.spanId}-01`
  }

  /** The log phase of the request: every span is completed and handed to the exporter. */
  finish(
    ctx: TracedRequest,
    status: number,
    decision: string,
    durationMs: number,
    logStart: number,
    bytes: { in: number; out: number },
  ): void {
    const { api, tracer } = this.sdk
    const end = epoch(ctx.startTime + durationMs)
    if (this.requestStart > 0) {
      const phase = tracer.startSpan('request phase', { startTime: epoch(this.requestStart) }, this.rootCtx)
      for (const h of this.hooks) {
        const attrs: Attributes = {
          'portcullis.policy': h.name,
          'portcullis.duration_ms': Math.round((h.end - h.start) * 1000) / 1000,
          'portcullis.outcome': h.code === undefined ? 'pass' : 'deny',
        }
        if (h.code !== undefined) attrs['portcullis.error_code'] = h.code
        phase.addEvent(`policy ${h.name}`, attrs, epoch(h.start))
      }
      phase.end(epoch(this.requestEnd > 0 ? this.requestEnd : ctx.startTime + durationMs))
    }
    if (this.upstream !== undefined) {
      if (ctx.upstreamMs >= 0) this.upstream.setAttribute('http.response.status_code', status)
      else
        this.upstream.setStatus({ code: api.SpanStatusCode.ERROR, message: ctx.errorCode ?? 'no response' })
      this.upstream.end(end)
    }
    if (this.responseStart > 0) {
      tracer
        .startSpan('response phase', { startTime: epoch(this.responseStart) }, this.rootCtx)
        .end(epoch(this.responseEnd))
    }
    const root = this.root
    const route = ctx.routeName
    const ua = ctx.req.headers['user-agent']
    root.updateName(route !== '(none)' ? `${ctx.method} ${route}` : ctx.method)
    const attrs: Attributes = {
      'http.request.method': ctx.method,
      'http.response.status_code': status,
      'url.path': maskSecrets(ctx.path !== '' ? ctx.path : ((ctx.req.url ?? '').split('?')[0] ?? '')),
      'client.address': ctx.clientIp,
      'portcullis.request_id': ctx.id,
      'portcullis.decision': decision,
      'portcullis.request_bytes': bytes.in,
      'portcullis.response_bytes': bytes.out,
    }
    if (route !== '(none)') attrs['http.route'] = route
    if (ctx.host !== '') attrs['server.address'] = maskSecrets(ctx.host)
    if (typeof ua === 'string') attrs['user_agent.original'] = maskSecrets(ua.slice(0, 256))
    if (ctx.principal !== undefined) attrs['enduser.id'] = maskSecrets(ctx.principal.id)
    if (ctx.errorCode !== undefined) attrs['portcullis.error_code'] = ctx.errorCode
    root.setAttributes(attrs)
    if (status >= 500)
      root.setStatus({ code: api.SpanStatusCode.ERROR, message: ctx.errorCode ?? String(status) })
    root.end(end)
    tracer.startSpan('log phase', { startTime: epoch(logStart) }, this.rootCtx).end(epoch(performance.now()))
  }
}

/** Upstream origins (from the config: a few) → their span attributes, parsed once. */
const servers = new Map<string, { address: string; port: number }>()

function serverOf(origin: string): { address: string; port: number } {
  let s = servers.get(origin)
  if (s === undefined) {
    const u = new URL(origin)
    s = { address: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) }
    if (servers.size >= 256) servers.clear() // origins come from the config; bounded all the same
    servers.set(origin, s)
  }
  return s
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code
  return typeof code === 'string' ? code : 'error'
}
