/** The `tracing:` section of the config (OpenTelemetry, docs/tracing.md). */
import { type Static, Type } from '@sinclair/typebox'

export const TracingConfig = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description:
        'Trace requests with OpenTelemetry: a span per sampled request with a child span per phase (request phase with one event per policy and its time, upstream, response phase, log phase), exported over OTLP/HTTP. Off: no span, no cost; a `traceparent` the client sent is still forwarded unchanged.',
    }),
    endpoint: Type.String({
      pattern: '^https?://',
      default: 'http://127.0.0.1:4318/v1/traces',
      description: "The OTLP/HTTP traces endpoint (JSON encoding): a collector's `/v1/traces`.",
    }),
    headers: Type.Record(Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }), Type.String(), {
      default: {},
      description:
        // biome-ignore lint/suspicious/noTemplateCurlyInString: ${env:} is config syntax
        'Headers sent with every export (a backend API key, …): write secret values as `${env:NAME}` or `${file:PATH}`. Never logged.',
    }),
    sampleRatio: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0.1,
      description:
        'Share of requests traced (0 to 1) when the client sent no sampling decision. Unsampled requests cost one random number.',
    }),
    parentBased: Type.Boolean({
      default: true,
      description:
        "A request with a valid W3C `traceparent` follows its sampled flag (joins the caller's trace when the caller traces it, stays untraced when it does not), as OpenTelemetry's ParentBased sampler. Off: `sampleRatio` decides for every request (the trace id is still the caller's).",
    }),
    serviceName: Type.String({
      minLength: 1,
      default: 'portcullis',
      description: 'The `service.name` resource attribute of the spans.',
    }),
    exportTimeoutMs: Type.Integer({
      minimum: 100,
      maximum: 60000,
      default: 10000,
      description: 'Deadline of one export request.',
    }),
    maxQueueSize: Type.Integer({
      minimum: 64,
      maximum: 100000,
      default: 2048,
      description:
        'Most spans waiting for export; past it new spans are dropped (the collector is down or slow), never memory growing without bound.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Distributed tracing (OpenTelemetry).' },
)
export type TracingConfig = Static<typeof TracingConfig>
