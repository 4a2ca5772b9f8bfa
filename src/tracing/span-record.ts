/**
 * Finished spans built directly, for the OpenTelemetry batch processor and OTLP exporter.
 *
 * The gateway knows every span of a sampled request only when the request is over (its phases'
 * times are recorded as they happen, the spans are made at the log phase), so the SDK's live
 * `Span` machinery (context lookups, sampler, attribute sanitising and limits, time conversions at
 * each call, per-span processor hooks) does nothing useful here: a `SpanRecord` is the
 * `ReadableSpan` the SDK would have handed its processor, made in one step. The export path
 * (`BatchSpanProcessor`, `OTLPTraceExporter`, its serialiser) is OpenTelemetry's own, unchanged.
 *
 * This module holds no runtime import of the SDK (it is loaded only when tracing is on): the
 * numeric values of the API's enums are written here.
 */
import { randomFillSync } from 'node:crypto'
import type { Attributes, HrTime, Link, SpanContext, SpanStatus } from '@opentelemetry/api'
import type { InstrumentationScope } from '@opentelemetry/core'
import type { Resource } from '@opentelemetry/resources'
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base'

/** `SpanKind` of @opentelemetry/api. */
export const KIND_INTERNAL = 0
export const KIND_SERVER = 1
export const KIND_CLIENT = 2
/** `SpanStatusCode.ERROR` of @opentelemetry/api. */
export const STATUS_ERROR = 2
/** `TraceFlags.SAMPLED`: every span made here is sampled (the decision came first). */
export const FLAGS_SAMPLED = 1

const UNSET: SpanStatus = Object.freeze({ code: 0 })
const NO_LINKS: Link[] = Object.freeze([]) as unknown as Link[]
const NO_EVENTS: TimedEvent[] = Object.freeze([]) as unknown as TimedEvent[]

/** What every span of one process shares (its resource and instrumentation scope). */
export interface SpanOrigin {
  readonly resource: Resource
  readonly scope: InstrumentationScope
}

/** A finished span, as the span processor and the OTLP serialisers read it. */
export class SpanRecord implements ReadableSpan {
  readonly ended = true
  readonly links = NO_LINKS
  readonly droppedAttributesCount = 0
  readonly droppedEventsCount = 0
  readonly droppedLinksCount = 0
  readonly resource: Resource
  readonly instrumentationScope: InstrumentationScope

  constructor(
    origin: SpanOrigin,
    private readonly context: SpanContext,
    readonly parentSpanContext: SpanContext | undefined,
    readonly name: string,
    readonly kind: number,
    readonly startTime: HrTime,
    readonly endTime: HrTime,
    readonly attributes: Attributes,
    readonly events: TimedEvent[] = NO_EVENTS,
    readonly status: SpanStatus = UNSET,
  ) {
    this.resource = origin.resource
    this.instrumentationScope = origin.scope
  }

  spanContext(): SpanContext {
    return this.context
  }

  get duration(): HrTime {
    let s = this.endTime[0] - this.startTime[0]
    let ns = this.endTime[1] - this.startTime[1]
    if (ns < 0) {
      s -= 1
      ns += 1e9
    }
    return [s, ns]
  }
}

/** A span context of this process (sampled, not remote). */
export function localContext(traceId: string, spanId: string): SpanContext {
  return { traceId, spanId, traceFlags: FLAGS_SAMPLED, isRemote: false }
}

// performance.now() (ms since the time origin) → [epoch seconds, nanoseconds], the OpenTelemetry
// HrTime, without losing the sub-microsecond part to the size of an epoch in nanoseconds.
const originMs = performance.timeOrigin
const originSec = Math.floor(originMs / 1000)
const originNs = Math.round((originMs - originSec * 1000) * 1e6)

/** A `performance.now()` reading as an OpenTelemetry HrTime (epoch). */
export function hrTime(perfMs: number): HrTime {
  const whole = Math.floor(perfMs / 1000)
  let ns = originNs + Math.round((perfMs - whole * 1000) * 1e6)
  let s = originSec + whole
  if (ns >= 1e9) {
    s += Math.floor(ns / 1e9)
    ns %= 1e9
  }
  return [s, ns]
}

// Trace and span ids: random bytes drawn from the CSPRNG a pool at a time, as hex.
const pool = Buffer.allocUnsafe(4096)
let used = pool.length

function randomHex(bytes: number): string {
  for (;;) {
    if (used + bytes > pool.length) {
      randomFillSync(pool)
      used = 0
    }
    const start = used
    used += bytes
    // An all-zero id is invalid (W3C Trace Context); drawn with probability 2^-64 at most.
    for (let i = start; i < used; i++) if (pool[i] !== 0) return pool.toString('hex', start, used)
  }
}

/** A new random trace id (32 hex digits, not all zero). */
export const newTraceId = (): string => randomHex(16)
/** A new random span id (16 hex digits, not all zero). */
export const newSpanId = (): string => randomHex(8)
