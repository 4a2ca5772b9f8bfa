/**
 * The access log's optional fields, in the order they are written (`level`, `time` and `msg`, pino's
 * line format, are always there). `accessLog.fields` in the config selects among them.
 */
export const ACCESS_LOG_FIELDS = [
  'timestamp',
  'requestId',
  'traceId',
  'method',
  'host',
  'path',
  'route',
  'status',
  'durationMs',
  'upstream',
  'upstreamMs',
  'bytesIn',
  'bytesOut',
  'decision',
  'code',
  'principal',
  'clientIp',
  'userAgent',
  'aborted',
] as const
export type AccessLogField = (typeof ACCESS_LOG_FIELDS)[number]
