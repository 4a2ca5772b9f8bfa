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
import type { Attributes, SpanContext, SpanStatus } from '@opentelemetry/api'
import type { ReadableSpan, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace-base'
import type { Logger } from 'pino'
import { maskSecrets } from '../secrets/mask.js'
import type { TracingConfig } from './config.js'
import {
  FLAGS_SAMPLED,
  hrTime,
  KIND_CLIENT,
  KIND_INTERNAL,
  KIND_SERVER,
  localContext,
  newSpanId,
  newTraceId,
  STATUS_ERROR,
  SpanRecord,
  type SpanOrigin,
} from './span-record.js'

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

/** The export side: OpenTelemetry's batch span processor in front of its OTLP/HTTP exporter. */
interface SdkParts extends SpanOrigin {
  processor: SpanProcessor
}

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
    const [base, exporterMod, resources, core] = await Promise.all([
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
    // Spans are made finished (src/tracing/span-record.ts) and handed to the batch processor: no
    // tracer provider, the sampling decision is made in begin().
    const processor = new base.BatchSpanProcessor(exporter, {
      maxQueueSize: config.maxQueueSize,
      maxExportBatchSize: Math.min(512, config.maxQueueSize),
      scheduledDelayMillis: 1000,
      exportTimeoutMillis: config.exportTimeoutMs,
    })
    logger.info(
      { endpoint: config.endpoint, sampleRatio: config.sampleRatio, parentBased: config.parentBased },
      'tracing on (OpenTelemetry, OTLP/HTTP)',
    )
    return new Tracing(
      {
        processor,
        resource: resources.resourceFromAttributes({ 'service.name': config.serviceName }),
        scope: { name: 'portcullis' },
      },
      config,
    )
  }

  /**
   * The sampling decision for a request that just arrived; a sampled one gets its trace
   * (`ctx.trace`, `ctx.traceId`): ids only, its spans are made when it is over. Never throws.
   */
  begin(ctx: TracedRequest): void {
    const parent = parseTraceparent(ctx.req.headers.traceparent)
    const sampled = parent !== undefined && this.parentBased ? parent.sampled : Math.random() < this.ratio
    if (!sampled) return
    try {
      const traceId = parent !== undefined ? parent.traceId : newTraceId()
      const remote: SpanContext | undefined =
        parent !== undefined
          ? { traceId, spanId: parent.spanId, traceFlags: FLAGS_SAMPLED, isRemote: true }
          : undefined
      ctx.trace = new RequestTrace(this.sdk, localContext(traceId, newSpanId()), remote)
      ctx.traceId = traceId
    } catch {
      // tracing must never fail a request
    }
  }

  /** Exports what is queued (shutdown: bounded by the export timeout). */
  async close(): Promise<void> {
    await this.sdk.processor.shutdown().catch(() => undefined)
  }

  /** Exports what is queued now (tests). */
  async flush(): Promise<void> {
    await this.sdk.processor.forceFlush().catch(() => undefined)
  }
}

/** One policy hook's run in the request phase. */
interface HookRun {
  name: string
  start: number
  end: number
  code: string | undefined
}

/** One upstream attempt (its CLIENT span). */
interface Attempt {
  context: SpanContext
  start: number
  end: number
  attributes: Attributes
}

const RETRIED: SpanStatus = Object.freeze({ code: STATUS_ERROR, message: 'retried on another target' })

/** The trace of one sampled request: phase times as they happen, spans made at its log phase. */
export class RequestTrace {
  private readonly sdk: SdkParts
  /** The request's (SERVER) span: its ids are known from the start, the children's parent. */
  private readonly root: SpanContext
  /** The caller's span, when a `traceparent` brought one. */
  private readonly remote: SpanContext | undefined
  readonly hooks: HookRun[] = []
  requestStart = 0
  requestEnd = 0
  responseStart = 0
  responseEnd = 0
  private readonly attempts: Attempt[] = []
  /** The last path masked (the upstream's and the request's are usually the same string). */
  private rawPath: string | undefined = undefined
  private maskedPath = ''

  constructor(sdk: SdkParts, root: SpanContext, remote: SpanContext | undefined) {
    this.sdk = sdk
    this.root = root
    this.remote = remote
  }

  /** Records a policy hook's run (`err`: it denied or failed). */
  hook(name: string, start: number, end: number, err?: unknown): void {
    this.hooks.push({ name, start, end, code: err === undefined ? undefined : errorCode(err) })
  }

  /**
   * A new upstream attempt: its CLIENT span starts now (a previous attempt's ends, failed); returns
   * the `traceparent` the upstream gets.
   */
  startUpstream(method: string, origin: string, path: string, attempt: number): string {
    const now = performance.now()
    const previous = this.attempts.at(-1)
    if (previous !== undefined) previous.end = now
    const q = path.indexOf('?')
    const target = serverOf(origin)
    const context = localContext(this.root.traceId, newSpanId())
    this.attempts.push({
      context,
      start: now,
      end: -1,
      attributes: {
        'http.request.method': method,
        // the origin comes from the config (masked once, with its other attributes), the path from
        // the request
        'url.full': target.maskedOrigin + this.mask(q === -1 ? path : path.slice(0, q)),
        'server.address': target.address,
        'server.port': target.port,
        'http.request.resend_count': attempt - 1,
      },
    })
    return `00-${context.traceId}-${context.spanId}-01`
  }

  /** The log phase of the request: every span is made, finished, and handed to the exporter. */
  finish(
    ctx: TracedRequest,
    status: number,
    decision: string,
    durationMs: number,
    logStart: number,
    bytes: { in: number; out: number },
  ): void {
    const { processor } = this.sdk
    const root = this.root
    const endMs = ctx.startTime + durationMs
    const end = hrTime(endMs)
    const spans: ReadableSpan[] = []
    if (this.requestStart > 0) {
      const events: TimedEvent[] = []
      for (const h of this.hooks) {
        const attributes: Attributes = {
          'portcullis.policy': h.name,
          'portcullis.duration_ms': Math.round((h.end - h.start) * 1000) / 1000,
          'portcullis.outcome': h.code === undefined ? 'pass' : 'deny',
        }
        if (h.code !== undefined) attributes['portcullis.error_code'] = h.code
        events.push({
          name: `policy ${h.name}`,
          attributes,
          time: hrTime(h.start),
          droppedAttributesCount: 0,
        })
      }
      const phaseEnd = hrTime(this.requestEnd > 0 ? this.requestEnd : endMs)
      spans.push(this.child('request phase', KIND_INTERNAL, this.requestStart, phaseEnd, {}, events))
    }
    const attempts = this.attempts
    for (let i = 0; i < attempts.length; i++) {
      const a = attempts[i] as Attempt
      const last = i === attempts.length - 1
      let spanStatus: SpanStatus | undefined
      if (!last) spanStatus = RETRIED
      else if (ctx.upstreamMs >= 0) a.attributes['http.response.status_code'] = status
      else spanStatus = { code: STATUS_ERROR, message: ctx.errorCode ?? 'no response' }
      const name = a.attributes['http.request.method'] as string
      spans.push(
        new SpanRecord(
          this.sdk,
          a.context,
          root,
          name,
          KIND_CLIENT,
          hrTime(a.start),
          last ? end : hrTime(a.end),
          a.attributes,
          undefined,
          spanStatus,
        ),
      )
    }
    if (this.responseStart > 0)
      spans.push(
        this.child('response phase', KIND_INTERNAL, this.responseStart, hrTime(this.responseEnd), {}),
      )
    const route = ctx.routeName
    const ua = ctx.req.headers['user-agent']
    const path = ctx.path !== '' ? ctx.path : ((ctx.req.url ?? '').split('?')[0] ?? '')
    const attributes: Attributes = {
      'http.request.method': ctx.method,
      'http.response.status_code': status,
      'url.path': this.mask(path),
      'client.address': ctx.clientIp,
      'portcullis.request_id': ctx.id,
      'portcullis.decision': decision,
      'portcullis.request_bytes': bytes.in,
      'portcullis.response_bytes': bytes.out,
    }
    if (route !== '(none)') attributes['http.route'] = route
    if (ctx.host !== '') attributes['server.address'] = maskSecrets(ctx.host)
    if (typeof ua === 'string') attributes['user_agent.original'] = maskSecrets(ua.slice(0, 256))
    if (ctx.principal !== undefined) attributes['enduser.id'] = maskSecrets(ctx.principal.id)
    if (ctx.errorCode !== undefined) attributes['portcullis.error_code'] = ctx.errorCode
    spans.push(
      new SpanRecord(
        this.sdk,
        root,
        this.remote,
        route !== '(none)' ? `${ctx.method} ${route}` : ctx.method,
        KIND_SERVER,
        hrTime(ctx.startTime),
        end,
        attributes,
        undefined,
        status >= 500 ? { code: STATUS_ERROR, message: ctx.errorCode ?? String(status) } : undefined,
      ),
    )
    spans.push(this.child('log phase', KIND_INTERNAL, logStart, hrTime(performance.now()), {}))
    for (const s of spans) processor.onEnd(s)
  }

  /** A child span of the request, finished. */
  private child(
    name: string,
    kind: number,
    start: number,
    end: SpanRecord['endTime'],
    attributes: Attributes,
    events?: TimedEvent[],
  ): SpanRecord {
    const context = localContext(this.root.traceId, newSpanId())
    return new SpanRecord(this.sdk, context, this.root, name, kind, hrTime(start), end, attributes, events)
  }

  /** `maskSecrets` of a path, once for the upstream's and the request's when they are the same. */
  private mask(path: string): string {
    if (path !== this.rawPath) {
      this.rawPath = path
      this.maskedPath = maskSecrets(path)
    }
    return this.maskedPath
  }
}

/** Upstream origins (from the config: a few) → their span attributes, parsed and masked once. */
const servers = new Map<string, { address: string; port: number; maskedOrigin: string }>()

function serverOf(origin: string): { address: string; port: number; maskedOrigin: string } {
  let s = servers.get(origin)
  if (s === undefined) {
    const u = new URL(origin)
    s = {
      address: u.hostname,
      port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)),
      maskedOrigin: maskSecrets(origin),
    }
    if (servers.size >= 256) servers.clear() // origins come from the config; bounded all the same
    servers.set(origin, s)
  }
  return s
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code
  return typeof code === 'string' ? code : 'error'
}
