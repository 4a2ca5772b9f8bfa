import pino, { type DestinationStream, type Logger } from 'pino'

/** Header names whose values never reach a log. */
export const REDACTED_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']

/** A pino destination for `stdout`, `stderr` or a file path (appended, directories created). */
export function destination(dest: string): DestinationStream & { flushSync?: () => void; end?: () => void } {
  if (dest === 'stdout') return pino.destination({ dest: 1, sync: false, minLength: 4096 })
  if (dest === 'stderr') return pino.destination({ dest: 2, sync: true })
  return pino.destination({ dest, sync: false, mkdir: true, minLength: 4096 })
}

/** The gateway's own log: JSON lines on stderr. Secrets in known places are redacted. */
export function createLogger(
  level: string,
  dest: DestinationStream = pino.destination({ dest: 2, sync: true }),
): Logger {
  return pino(
    {
      level,
      base: { service: 'portcullis' },
      redact: {
        paths: [
          ...REDACTED_HEADERS.map((h) => `headers["${h}"]`),
          ...REDACTED_HEADERS.map((h) => `req.headers["${h}"]`),
          'password',
          'token',
          'secret',
        ],
        censor: '[redacted]',
      },
      serializers: { err: pino.stdSerializers.err },
    },
    dest,
  )
}

/**
 * The access log: one JSON line per request, with fixed fields only (no headers, no query
 * values, no bodies), so credentials cannot reach it.
 */
export function createAccessLog(dest: DestinationStream): Logger {
  return pino({ base: undefined, messageKey: 'msg', timestamp: pino.stdTimeFunctions.epochTime }, dest)
}
