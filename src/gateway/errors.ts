/**
 * The one catalogue of gateway error codes. Each code has a stable string id, an HTTP status and
 * a generic title that is safe to show to any client. The cause (what exactly was wrong) goes to
 * logs and the audit trail, never into the client's response unless it is marked `expose`.
 */
export const ERROR_CATALOGUE = {
  GW_ERR_BAD_REQUEST: { status: 400, title: 'Bad request' },
  GW_ERR_BAD_PATH: { status: 400, title: 'Ambiguous or invalid request path' },
  GW_ERR_BAD_HEADER: { status: 400, title: 'Invalid request header' },
  GW_ERR_METHOD_OVERRIDE: { status: 400, title: 'Method override not accepted' },
  GW_ERR_REQUEST_SMUGGLING: { status: 400, title: 'Malformed request framing' },
  GW_ERR_AUTH_MISSING: { status: 401, title: 'Authentication required' },
  GW_ERR_AUTH_INVALID: { status: 401, title: 'Invalid credentials' },
  GW_ERR_TOKEN_EXPIRED: { status: 401, title: 'Token expired' },
  GW_ERR_STEP_UP_REQUIRED: { status: 401, title: 'Stronger authentication required' },
  GW_ERR_FORBIDDEN: { status: 403, title: 'Forbidden' },
  GW_ERR_INSUFFICIENT_SCOPE: { status: 403, title: 'Insufficient scope' },
  GW_ERR_BANNED: { status: 403, title: 'Access from this source is suspended' },
  GW_ERR_IP_NOT_ALLOWED: { status: 403, title: 'Access from this address is not allowed' },
  GW_ERR_CORS_ORIGIN: { status: 403, title: 'Origin not allowed' },
  GW_ERR_OBJECT_FORBIDDEN: { status: 403, title: 'Access to this object is forbidden' },
  GW_ERR_ROUTE_NOT_FOUND: { status: 404, title: 'No route matches this request' },
  GW_ERR_OBJECT_NOT_FOUND: { status: 404, title: 'Object not found' },
  GW_ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed on this route' },
  GW_ERR_REQUEST_TIMEOUT: { status: 408, title: 'Request timed out' },
  GW_ERR_BODY_TOO_LARGE: { status: 413, title: 'Request body too large' },
  GW_ERR_URI_TOO_LONG: { status: 414, title: 'Request URI too long' },
  GW_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  GW_ERR_EXPECTATION_FAILED: { status: 417, title: 'Expectation not supported' },
  GW_ERR_VALIDATION: { status: 400, title: 'Request failed validation' },
  GW_ERR_PARAMETER_POLLUTION: { status: 400, title: 'Repeated request parameter' },
  GW_ERR_MALFORMED_BODY: { status: 400, title: 'Malformed request body' },
  GW_ERR_PROPERTY_NOT_ALLOWED: { status: 400, title: 'Request sets a property it may not set' },
  GW_ERR_SSRF_BLOCKED: { status: 400, title: 'URL not allowed' },
  GW_ERR_ROUTE_NOT_IN_SPEC: { status: 404, title: 'Route not in the API specification' },
  GW_ERR_METHOD_NOT_IN_SPEC: { status: 405, title: 'Method not in the API specification' },
  GW_ERR_HEADERS_TOO_LARGE: { status: 431, title: 'Request header fields too large' },
  GW_ERR_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  GW_ERR_LOCKED_OUT: { status: 429, title: 'Too many failed authentication attempts' },
  GW_ERR_QUOTA_EXCEEDED: { status: 429, title: 'Quota exceeded' },
  GW_ERR_CONCURRENCY_LIMITED: { status: 429, title: 'Too many concurrent requests' },
  GW_ERR_INTERNAL: { status: 500, title: 'Internal gateway error' },
  GW_ERR_NOT_IMPLEMENTED: { status: 501, title: 'Not implemented' },
  GW_ERR_UPSTREAM_UNAVAILABLE: { status: 502, title: 'Upstream unavailable' },
  GW_ERR_UPSTREAM_BAD_RESPONSE: { status: 502, title: 'Upstream sent an invalid response' },
  GW_ERR_UPSTREAM_RESPONSE_INVALID: {
    status: 502,
    title: 'Upstream response does not match the API specification',
  },
  GW_ERR_RESPONSE_NOT_FILTERED: { status: 502, title: 'Upstream response could not be filtered' },
  GW_ERR_RESPONSE_LEAK: { status: 502, title: 'Upstream response withheld: it carried a credential' },
  GW_ERR_OVERLOADED: { status: 503, title: 'Gateway overloaded' },
  GW_ERR_SHUTTING_DOWN: { status: 503, title: 'Gateway shutting down' },
  GW_ERR_STATE_UNAVAILABLE: { status: 503, title: 'Shared state unavailable' },
  GW_ERR_AUTH_UNAVAILABLE: { status: 503, title: 'Authentication service unavailable' },
  GW_ERR_OWNERSHIP_UNAVAILABLE: { status: 503, title: 'Ownership service unavailable' },
  GW_ERR_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timed out' },
} as const satisfies Record<string, { status: number; title: string }>

export type ErrorCode = keyof typeof ERROR_CATALOGUE

export interface GatewayErrorOptions {
  /** Internal detail for logs and audit; never sent to the client unless `expose` is true. */
  cause?: unknown
  /** A client-safe detail string to include in the problem document. */
  detail?: string
  /** Extra response headers (e.g. Retry-After, WWW-Authenticate). */
  headers?: Record<string, string>
  /** Close the client connection after responding (framing errors). */
  closeConnection?: boolean
  /** Extra client-safe members of the problem document (e.g. a list of violations). */
  extensions?: Record<string, unknown>
}

/**
 * A typed gateway error. Policies throw it in the request phase to deny a request.
 *
 * @example
 * throw new GatewayError('GW_ERR_BODY_TOO_LARGE', { detail: 'limit is 1048576 bytes' })
 */
export class GatewayError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly detail: string | undefined
  readonly headers: Record<string, string> | undefined
  readonly closeConnection: boolean
  readonly extensions: Record<string, unknown> | undefined

  constructor(code: ErrorCode, options: GatewayErrorOptions = {}) {
    super(ERROR_CATALOGUE[code].title, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'GatewayError'
    this.code = code
    this.status = ERROR_CATALOGUE[code].status
    this.detail = options.detail
    this.headers = options.headers
    this.closeConnection = options.closeConnection ?? false
    this.extensions = options.extensions
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError
}

/** Members of an RFC 9457 problem document as the gateway sends it. */
export interface Problem {
  type: string
  title: string
  status: number
  code: ErrorCode
  detail?: string
  instance?: string
  [extension: string]: unknown
}

/**
 * The one function that turns any error into an `application/problem+json` body.
 * Unknown errors become GW_ERR_INTERNAL with no detail: internals never leak to clients.
 */
export function toProblem(
  err: unknown,
  requestId: string | undefined,
): { problem: Problem; error: GatewayError } {
  const error = isGatewayError(err) ? err : new GatewayError('GW_ERR_INTERNAL', { cause: err })
  const problem: Problem = {
    type: `urn:portcullis:error:${error.code}`,
    title: ERROR_CATALOGUE[error.code].title,
    status: error.status,
    code: error.code,
  }
  if (error.detail !== undefined) problem.detail = error.detail
  if (requestId !== undefined) problem.instance = `urn:portcullis:request:${requestId}`
  if (error.extensions) {
    for (const [k, v] of Object.entries(error.extensions)) {
      if (!(k in problem)) problem[k] = v
    }
  }
  return { problem, error }
}

/**
 * A whole HTTP/1.1 problem response for a raw socket (a request Node's parser refused, an
 * Upgrade or CONNECT the gateway does not take): the same problem document as `toProblem`, with
 * the request id, and `Connection: close`.
 */
export function rawProblemResponse(err: GatewayError, requestId: string): string {
  const { problem, error } = toProblem(err, requestId)
  const body = JSON.stringify(problem)
  const reason = REASONS[error.status] ?? 'Error'
  let head = `HTTP/1.1 ${error.status} ${reason}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nx-request-id: ${requestId}\r\n`
  if (error.headers)
    for (const [k, v] of Object.entries(error.headers)) head += `${k.toLowerCase()}: ${v}\r\n`
  return `${head}connection: close\r\n\r\n${body}`
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  417: 'Expectation Failed',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
}
